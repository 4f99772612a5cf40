//! DNS-rebinding protection for `/mcp`: which `Host` and `Origin` headers are
//! accepted. Loopback names, the listen address and the public URL always are;
//! `[mcp] allowed_hosts` / `allowed_origins` add more (`*` accepts any).

use crate::config::Config;
use warp::http::HeaderMap;

const LOOPBACK: [&str; 4] = ["localhost", "127.0.0.1", "[::1]", "::1"];

/// The accepted `Host` and `Origin` values.
#[derive(Debug, Clone)]
pub struct Access {
    hosts: Vec<String>,
    any_host: bool,
    origins: Vec<String>,
    any_origin: bool,
}

/// Split `host[:port]` (IPv6 in brackets) into host and port.
fn split_authority(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => {
                let port = authority[end + 1..].strip_prefix(':');
                (&authority[..=end], port)
            }
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (authority, None),
    }
}

fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    ))
}

impl Access {
    /// The lists for `config`.
    pub fn new(config: &Config) -> Self {
        let mut hosts: Vec<String> = LOOPBACK.iter().map(|h| h.to_string()).collect();
        hosts.push(config.listen.ip().to_string());
        hosts.push(config.listen.to_string());
        let public = config.public_url.as_deref().and_then(origin_of);
        if let Some(origin) = &public
            && let Some((_, authority)) = origin.split_once("://")
        {
            hosts.push(authority.to_string());
            hosts.push(split_authority(authority).0.to_string());
        }
        let mcp = &config.mcp;
        hosts.extend(mcp.allowed_hosts.iter().map(|h| h.to_ascii_lowercase()));
        let mut origins: Vec<String> = public.into_iter().collect();
        origins.extend(
            mcp.allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase()),
        );
        Self {
            any_host: mcp.allowed_hosts.iter().any(|h| h == "*"),
            any_origin: mcp.allowed_origins.iter().any(|o| o == "*"),
            hosts,
            origins,
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let (name, _) = split_authority(&host);
        self.any_host || self.hosts.iter().any(|h| *h == host || *h == name)
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        if self.any_origin {
            return true;
        }
        let origin = origin.to_ascii_lowercase();
        let loopback = origin_of(&origin).is_some_and(|o| {
            let (scheme, authority) = o.split_once("://").unwrap_or_default();
            matches!(scheme, "http" | "https") && LOOPBACK.contains(&split_authority(authority).0)
        });
        loopback || self.origins.contains(&origin)
    }

    /// Accept or refuse a request's authority (its `Host` header, or the
    /// request target's authority in HTTP/2) and its `Origin` header.
    pub fn check(&self, host: Option<&str>, headers: &HeaderMap) -> Result<(), String> {
        let host = host.unwrap_or("");
        if !self.host_allowed(host) {
            return Err(format!(
                "Forbidden: Host `{host}` is not allowed here; add it to [mcp] allowed_hosts"
            ));
        }
        if let Some(origin) = headers.get(http::header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !self.origin_allowed(origin) {
                return Err(format!(
                    "Forbidden: Origin `{origin}` is not allowed here; add it to [mcp] allowed_origins"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(access: &Access, host: &str, origin: Option<&str>) -> Result<(), String> {
        let mut h = HeaderMap::new();
        if let Some(o) = origin {
            h.insert("origin", o.parse().unwrap());
        }
        access.check(Some(host), &h)
    }

    #[test]
    fn loopback_and_configured_hosts_pass_others_fail() {
        let mut config = Config::new("/tmp/x");
        config.public_url = Some("https://agents.example.com/".into());
        config.mcp.allowed_hosts = vec!["internal.lan:8080".into()];
        let access = Access::new(&config);
        for ok in [
            "localhost:7700",
            "127.0.0.1",
            "[::1]:9",
            "agents.example.com",
            "internal.lan:8080",
        ] {
            assert!(check(&access, ok, None).is_ok(), "{ok}");
        }
        for bad in [
            "evil.example.com",
            "internal.lan:9999",
            "",
            "localhost.evil.com",
        ] {
            assert!(check(&access, bad, None).is_err(), "{bad}");
        }
        assert!(check(&access, "localhost", Some("http://localhost:3000")).is_ok());
        assert!(check(&access, "localhost", Some("https://agents.example.com")).is_ok());
        assert!(check(&access, "localhost", Some("https://evil.example.com")).is_err());
        assert!(check(&access, "localhost", Some("null")).is_err());
    }
}
