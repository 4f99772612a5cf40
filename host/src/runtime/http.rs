//! Outbound HTTP policy: `wasi:http` requests go out only to granted hosts, and
//! only to public addresses unless an administrator granted the address itself.
//!
//! Each request is checked twice: its URL host against the granted patterns, then
//! every address the host resolves to (numeric forms such as `127.1` read as the
//! address they are) against [`crate::net::is_public`] or an address grant
//! (`10.0.0.5`, `10.0.0.0/24`, `127.0.0.1:8080`). The connection goes to an address
//! that passed, with no second lookup. Redirects come back to the guest, and the
//! request that follows one is checked like any other.

use super::outbound;
use crate::net::{self, IpNet, Resolver};
use std::net::{IpAddr, SocketAddr};
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
    Net(IpNet),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortMatch {
    Default,
    Any,
    Exact(u16),
}

impl HostPattern {
    /// Parse `host`, `host:port`, `host:*`, `*.domain[:port]`, `*`, or an address
    /// or range: `10.0.0.5`, `10.0.0.0/24[:port]`, `[::1]:8080`, `[fd00::/8]`.
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
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if host.contains('/') || net::parse_ip_literal(&host).is_some() {
            let Some(range) = IpNet::parse(bare) else {
                return Err(format!(
                    "`{host}` is not an address or CIDR range such as `10.0.0.0/24`"
                ));
            };
            return Ok(Self {
                host: HostMatch::Net(range),
                port,
            });
        }
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

    /// Whether a request to URL host `host` on `port` (with the scheme's default
    /// `default_port`) matches. An address pattern matches numeric hosts inside it.
    pub fn allows(&self, host: &str, port: u16, default_port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        let host_ok = match &self.host {
            HostMatch::Any => true,
            HostMatch::Exact(h) => *h == host,
            HostMatch::Subdomain(d) => host.len() > d.len() + 1 && host.ends_with(&format!(".{d}")),
            HostMatch::Net(range) => {
                net::parse_ip_literal(&host).is_some_and(|ip| range.contains(ip))
            }
        };
        host_ok && self.port_ok(port, default_port)
    }

    /// Whether this is an address grant covering `ip` on `port`: the only way a
    /// non-public address is reached.
    pub fn admits_address(&self, ip: IpAddr, port: u16, default_port: u16) -> bool {
        matches!(&self.host, HostMatch::Net(range) if range.contains(ip))
            && self.port_ok(port, default_port)
    }

    fn port_ok(&self, port: u16, default_port: u16) -> bool {
        match self.port {
            PortMatch::Any => true,
            PortMatch::Exact(p) => p == port,
            PortMatch::Default => port == default_port,
        }
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
/// the address rule, and records what was refused.
pub struct HttpPolicy {
    allowed: Arc<[HostPattern]>,
    resolver: Resolver,
    denied: Arc<Mutex<Vec<String>>>,
}

impl HttpPolicy {
    /// A policy allowing `allowed`, resolving names with `resolver`, recording
    /// refusals into `denied`.
    pub fn new(
        allowed: Arc<[HostPattern]>,
        resolver: Resolver,
        denied: Arc<Mutex<Vec<String>>>,
    ) -> Self {
        Self {
            allowed,
            resolver,
            denied,
        }
    }
}

type SendResult = Box<dyn Future<Output = wasmtime_wasi_http::Result<outbound::Sent>> + Send>;

fn record(denied: &Mutex<Vec<String>>, what: String) {
    tracing::warn!(capability = %what, "denied capability");
    if let Ok(mut denied) = denied.lock() {
        denied.push(what);
    }
}

/// The addresses of `host` the grants let a request reach: the public ones and
/// those inside an address grant.
async fn checked_addresses(
    allowed: &[HostPattern],
    resolver: &Resolver,
    host: &str,
    port: u16,
    default_port: u16,
) -> Result<Vec<SocketAddr>, (wasmtime_wasi_http::Error, Option<String>)> {
    let found = match net::parse_ip_literal(host) {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => resolver.lookup(host, port).await.map_err(|e| {
            let error = wasmtime_wasi_http::Error::DnsError {
                rcode: Some(e.to_string()),
                info_code: None,
            };
            (error, None)
        })?,
    };
    let admitted = |a: &SocketAddr| {
        net::is_public(a.ip())
            || allowed
                .iter()
                .any(|p| p.admits_address(a.ip(), port, default_port))
    };
    let (ok, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = found.into_iter().partition(admitted);
    if ok.is_empty() {
        let shown = refused
            .first()
            .map_or("nothing".to_string(), |a| a.ip().to_string());
        let what = format!("http {host}:{port} (non-public address {shown})");
        return Err((
            wasmtime_wasi_http::Error::DestinationIpProhibited,
            Some(what),
        ));
    }
    Ok(ok)
}

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> SendResult {
        drop(fut);
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
            record(&self.denied, format!("http {host}:{port}"));
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let (allowed, resolver, denied) = (
            self.allowed.clone(),
            self.resolver.clone(),
            self.denied.clone(),
        );
        Box::new(async move {
            let addrs =
                match checked_addresses(&allowed, &resolver, &host, port, default_port).await {
                    Ok(addrs) => addrs,
                    Err((error, what)) => {
                        if let Some(what) = what {
                            record(&denied, what);
                        }
                        return Err(error);
                    }
                };
            outbound::send(request, options, addrs, host).await
        })
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
        let range = HostPattern::parse("10.0.0.0/24:8080").unwrap();
        assert!(range.allows("10.0.0.9", 8080, 80));
        assert!(range.admits_address("10.0.0.9".parse().unwrap(), 8080, 80));
        assert!(!range.admits_address("10.0.1.9".parse().unwrap(), 8080, 80));
        assert!(!range.admits_address("10.0.0.9".parse().unwrap(), 80, 80));
        let one = HostPattern::parse("127.0.0.1:*").unwrap();
        assert!(
            one.allows("127.1", 1, 80),
            "numeric forms are the address they read as"
        );
        assert!(
            !one.allows("localhost", 1, 80),
            "an address grant is not a name grant"
        );
        assert!(HostPattern::parse("[fd00::/8]").unwrap().admits_address(
            "fd00::5".parse().unwrap(),
            80,
            80
        ));
        let any = HostPattern::parse("*").unwrap();
        assert!(
            !any.admits_address("127.0.0.1".parse().unwrap(), 80, 80),
            "`*` admits no private address"
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
            "10.0.0.0/33",
            "x/8",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
