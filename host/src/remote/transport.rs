//! How the host reaches an external MCP server over streamable HTTP: the URL
//! rules, the request headers, and an HTTP client that (for servers registered
//! by non-administrators) connects only to public addresses — checked on the
//! literal host and again on every address a name resolves to, so neither a
//! URL nor a DNS answer can point the host at its own network.

use crate::net::{host_is_private, public_addrs};
use http::{HeaderName, HeaderValue};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Longest URL accepted.
pub const MAX_URL: usize = 2048;
/// Most request headers per server.
pub const MAX_HEADERS: usize = 16;
/// Longest header value (bytes).
pub const MAX_HEADER_VALUE: usize = 8192;
/// Largest single message accepted from a server (bytes).
pub const MAX_MESSAGE: usize = 8 << 20;

/// Headers the MCP transport or HTTP itself sets: never taken from a user.
const RESERVED: &[&str] = &[
    "accept",
    "connection",
    "content-length",
    "content-type",
    "host",
    "last-event-id",
    "mcp-protocol-version",
    "mcp-session-id",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Check a server URL: `http` or `https`, a host, no credentials in it (they
/// belong in a header, which is kept sealed), and for non-administrators not a
/// loopback, private or link-local address.
pub fn check_url(text: &str, public_only: bool) -> Result<reqwest_mcp::Url, String> {
    if text.len() > MAX_URL {
        return Err(format!("the URL is longer than {MAX_URL} bytes"));
    }
    let url = reqwest_mcp::Url::parse(text).map_err(|e| format!("`url` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("`url` must be an http:// or https:// URL".into());
    }
    let Some(host) = url.host_str() else {
        return Err("`url` has no host".into());
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "put credentials in `headers` (for example `Authorization`), not in the URL: headers are kept sealed"
                .into(),
        );
    }
    if url.fragment().is_some() {
        return Err("`url` must not have a #fragment".into());
    }
    if public_only && host_is_private(host) {
        return Err(format!(
            "`{host}` is not a public address; only administrators may register servers on loopback, private or link-local addresses"
        ));
    }
    Ok(url)
}

/// Check request headers: valid names and values, none the transport sets,
/// at most [`MAX_HEADERS`].
pub fn check_headers(headers: &BTreeMap<String, String>) -> Result<(), String> {
    if headers.len() > MAX_HEADERS {
        return Err(format!("at most {MAX_HEADERS} headers"));
    }
    for (name, value) in headers {
        let parsed = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{name}` is not a valid header name"))?;
        if RESERVED.contains(&parsed.as_str()) {
            return Err(format!(
                "header `{name}` is set by the MCP transport and cannot be configured"
            ));
        }
        if value.len() > MAX_HEADER_VALUE || HeaderValue::from_str(value).is_err() {
            return Err(format!(
                "the value of header `{name}` must be at most {MAX_HEADER_VALUE} bytes of visible ASCII"
            ));
        }
    }
    Ok(())
}

/// A resolver that keeps only public addresses.
struct PublicOnly;

impl reqwest_mcp::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest_mcp::dns::Name) -> reqwest_mcp::dns::Resolving {
        Box::pin(async move {
            let found = public_addrs(name.as_str()).await?;
            Ok(Box::new(found.into_iter()) as reqwest_mcp::dns::Addrs)
        })
    }
}

/// The client transport for `url` with `headers`; `public_only` for servers
/// registered by non-administrators.
pub fn http(
    url: &str,
    headers: &BTreeMap<String, String>,
    public_only: bool,
) -> Result<StreamableHttpClientTransport<reqwest_mcp::Client>, String> {
    let parsed = check_url(url, public_only)?;
    let mut builder = reqwest_mcp::Client::builder()
        .tls_backend_preconfigured((*crate::net::tls_config()).clone())
        .redirect(reqwest_mcp::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")));
    if public_only {
        builder = builder.no_proxy().dns_resolver(Arc::new(PublicOnly));
    }
    let client = builder
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))?;
    let mut custom = HashMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
        let mut value = HeaderValue::from_str(value).map_err(|e| e.to_string())?;
        value.set_sensitive(true);
        custom.insert(name, value);
    }
    let mut config = StreamableHttpClientTransportConfig::with_uri(parsed.as_str());
    config.custom_headers = custom;
    config.max_sse_event_size = MAX_MESSAGE;
    Ok(StreamableHttpClientTransport::with_client(client, config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(check_url("https://mcp.example.com/mcp", true).is_ok());
        assert!(check_url("http://127.0.0.1:9/mcp", false).is_ok());
        for (url, why) in [
            ("ftp://example.com/", "http"),
            ("http://user:pw@example.com/", "credentials"),
            ("http://127.0.0.1:9/mcp", "not a public address"),
            ("http://[::1]/mcp", "not a public address"),
            ("http://localhost/mcp", "not a public address"),
            ("http://169.254.169.254/latest", "not a public address"),
            ("http://2130706433/", "not a public address"),
            ("http://10.1.2.3/", "not a public address"),
            ("not a url", "not a URL"),
        ] {
            let e = check_url(url, true).expect_err(url);
            assert!(e.contains(why), "{url}: {e}");
        }
        assert!(check_url(&format!("https://e.com/{}", "a".repeat(MAX_URL)), false).is_err());
    }

    #[test]
    fn headers_are_checked() {
        let h = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(check_headers(&h(&[("Authorization", "Bearer abc"), ("X-Api-Key", "k")])).is_ok());
        assert!(check_headers(&h(&[("Host", "evil")])).is_err());
        assert!(check_headers(&h(&[("Mcp-Session-Id", "x")])).is_err());
        assert!(check_headers(&h(&[("bad name", "x")])).is_err());
        assert!(check_headers(&h(&[("X-A", "line\nbreak")])).is_err());
        let many: BTreeMap<String, String> = (0..=MAX_HEADERS)
            .map(|i| (format!("x-h{i}"), "v".to_string()))
            .collect();
        assert!(check_headers(&many).is_err());
    }
}
