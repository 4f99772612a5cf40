//! Outbound HTTP policy: `wasi:http` requests go out only to granted hosts.

use std::sync::{Arc, Mutex};
use wasmtime_wasi_http::{WasiBody, WasiHttpHooks};

/// One allowed destination, parsed from the `capabilities.http` syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: HostMatch,
    port: PortMatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Exact(String),
    Subdomain(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortMatch {
    Default,
    Any,
    Exact(u16),
}

impl HostPattern {
    /// Parse `host`, `host:port`, `host:*`, `*.domain[:port]` or `*`.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        if pattern == "*" {
            return Ok(Self {
                host: HostMatch::Any,
                port: PortMatch::Any,
            });
        }
        let (host, port) = split_host_port(pattern);
        let port = match port {
            None => PortMatch::Default,
            Some("*") => PortMatch::Any,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => PortMatch::Exact(n),
                _ => return Err(format!("port `{p}` must be 1-65535 or `*`")),
            },
        };
        let host = host.to_ascii_lowercase();
        let (wild, name) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest.to_string()),
            None => (false, host),
        };
        let bracketed_v6 = name.starts_with('[') && name.ends_with(']') && name.len() > 2;
        let valid_name = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !(valid_name || (bracketed_v6 && !wild)) {
            return Err("expected a host name such as `api.example.com`, `*.example.com` or `localhost:8080`".into());
        }
        Ok(Self {
            host: if wild {
                HostMatch::Subdomain(name)
            } else {
                HostMatch::Exact(name)
            },
            port,
        })
    }

    /// Whether a request to `host` on `port` (with the scheme's default `default_port`) matches.
    pub fn allows(&self, host: &str, port: u16, default_port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        let host_ok = match &self.host {
            HostMatch::Any => true,
            HostMatch::Exact(h) => *h == host,
            HostMatch::Subdomain(d) => host.len() > d.len() + 1 && host.ends_with(&format!(".{d}")),
        };
        let port_ok = match self.port {
            PortMatch::Any => true,
            PortMatch::Exact(p) => p == port,
            PortMatch::Default => port == default_port,
        };
        host_ok && port_ok
    }
}

fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if s.starts_with('[') {
        return match s.find(']') {
            Some(i) => (&s[..=i], s[i + 1..].strip_prefix(':')),
            None => (s, None),
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    }
}

/// The `wasi:http` hooks of one call: checks each request against the grants and
/// records what was refused.
pub struct HttpPolicy {
    allowed: Arc<[HostPattern]>,
    denied: Arc<Mutex<Vec<String>>>,
}

impl HttpPolicy {
    /// A policy allowing `allowed`, recording refusals into `denied`.
    pub fn new(allowed: Arc<[HostPattern]>, denied: Arc<Mutex<Vec<String>>>) -> Self {
        Self { allowed, denied }
    }
}

type SendResult = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> SendResult {
        let uri = request.uri();
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let default_port = if https { 443 } else { 80 };
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri.port_u16().unwrap_or(default_port);
        if !self
            .allowed
            .iter()
            .any(|p| p.allows(&host, port, default_port))
        {
            let target = format!("{host}:{port}");
            if let Ok(mut denied) = self.denied.lock() {
                denied.push(format!("http {target}"));
            }
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let default = wasmtime_wasi_http::default_hooks();
        default.send_request(request, options, fut)
    }
}

#[cfg(test)]
mod tests {
    use super::HostPattern;

    #[test]
    fn patterns_match_as_documented() {
        let p = HostPattern::parse("example.com").unwrap();
        assert!(p.allows("example.com", 443, 443));
        assert!(p.allows("EXAMPLE.com", 80, 80));
        assert!(!p.allows("example.com", 8080, 443));
        assert!(!p.allows("evil-example.com", 443, 443));
        let p = HostPattern::parse("*.example.com").unwrap();
        assert!(p.allows("api.example.com", 443, 443));
        assert!(!p.allows("example.com", 443, 443));
        assert!(!p.allows("xexample.com", 443, 443));
        let p = HostPattern::parse("127.0.0.1:*").unwrap();
        assert!(p.allows("127.0.0.1", 9999, 80));
        assert!(
            HostPattern::parse("localhost:8080")
                .unwrap()
                .allows("localhost", 8080, 80)
        );
        assert!(HostPattern::parse("*").unwrap().allows("anything", 1, 80));
        assert!(
            HostPattern::parse("[::1]:80")
                .unwrap()
                .allows("[::1]", 80, 80)
        );
        for bad in [
            "",
            "exa mple.com",
            "a:0",
            "a:70000",
            "*.",
            "http://x",
            "a/b",
            "*.[::1]",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
