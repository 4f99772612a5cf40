//! `fetch`: web pages as readable text, and general HTTP requests, to the hosts an
//! administrator granted.

use std::collections::BTreeMap;
use switchyard_plugin_sdk::prelude::*;

/// Largest body read by default (bytes).
const DEFAULT_MAX_BYTES: usize = 2 << 20;
/// Redirects `get_page` follows at most.
const MAX_REDIRECTS: usize = 5;

#[derive(Deserialize, JsonSchema)]
struct GetPage {
    /// The http(s) URL of the page.
    url: String,
    /// Line width of the readable text.
    #[serde(default = "width")]
    width: usize,
}

#[derive(Deserialize, JsonSchema)]
struct HttpRequest {
    /// The http(s) URL.
    url: String,
    /// HTTP method.
    #[serde(default = "get")]
    method: String,
    /// Request headers.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Request body (text). For JSON, also set a content-type header.
    #[serde(default)]
    body: Option<String>,
    /// Convert an HTML response to readable text.
    #[serde(default)]
    readable: bool,
    /// Largest response body to read (bytes, default 2 MiB).
    #[serde(default)]
    max_bytes: Option<usize>,
}

fn width() -> usize {
    100
}
fn get() -> String {
    "GET".into()
}

struct Fetch;

impl ToolPlugin for Fetch {
    fn tools() -> Tools {
        Tools::new()
            .with(
                Tool::new("get_page", "Fetch a web page and return its content as readable text (HTML converted)", get_page)
                    .read_only()
                    .open_world(),
            )
            .with(
                Tool::new(
                    "http_request",
                    "Send an HTTP request (any method, headers, body) and return status, headers and body",
                    http_request,
                )
                .open_world(),
            )
    }
}

export_tools!(Fetch);

fn user_agent() -> String {
    config::get("user_agent").unwrap_or_else(|| "switchyard-fetch/0.1".into())
}

fn get_page(a: GetPage, _: &Context) -> Result<Output> {
    let mut url = a.url.clone();
    let mut hops = 0;
    let response = loop {
        let response = http::Request::get(&url)
            .header("user-agent", &user_agent())
            .header("accept", "text/html, text/plain;q=0.9, */*;q=0.5")
            .max_body(DEFAULT_MAX_BYTES)
            .send()?;
        let location = response
            .header("location")
            .filter(|_| (300..400).contains(&response.status));
        match location {
            Some(next) if hops < MAX_REDIRECTS => {
                // Each hop is a new request, checked by the host like the first.
                url = resolve(&url, next);
                hops += 1;
            }
            _ => break response,
        }
    };
    if !response.is_success() {
        return Err(Error::failed(format!(
            "{} answered HTTP {}",
            a.url, response.status
        )));
    }
    let text = body_text(&response, true, a.width.clamp(20, 400));
    Ok(Output::text(text))
}

fn http_request(a: HttpRequest, _: &Context) -> Result<Output> {
    let mut request = http::Request::new(&a.method, &a.url)
        .header("user-agent", &user_agent())
        .max_body(a.max_bytes.unwrap_or(DEFAULT_MAX_BYTES));
    for (name, value) in &a.headers {
        request = request.header(name, value);
    }
    if let Some(body) = a.body {
        request = request.body(body);
    }
    let response = request.send()?;
    let headers: BTreeMap<String, String> = response.headers.iter().cloned().collect();
    let text = body_text(&response, a.readable, 100);
    Output::json(&json!({
        "status": response.status,
        "headers": headers,
        "content_type": response.header("content-type"),
        "body": text,
    }))
}

/// A redirect target: absolute, or a path on the current URL's origin.
fn resolve(current: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let origin_end = current
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| current[start..].find('/').map(|j| start + j))
        .unwrap_or(current.len());
    let path = if location.starts_with('/') {
        location.to_string()
    } else {
        format!("/{location}")
    };
    format!("{}{path}", &current[..origin_end])
}

/// The body as text; HTML becomes readable text when `readable`.
fn body_text(response: &http::Response, readable: bool, width: usize) -> String {
    let is_html = response
        .header("content-type")
        .is_some_and(|c| c.contains("html"));
    if readable && is_html {
        html_to_text(&response.body, width)
    } else {
        response.text()
    }
}

/// Render HTML as plain text (links as footnotes, scripts and styles dropped).
pub fn html_to_text(html: &[u8], width: usize) -> String {
    html2text::from_read(html, width).unwrap_or_else(|_| String::from_utf8_lossy(html).into_owned())
}

#[cfg(test)]
mod tests {
    use super::html_to_text;

    #[test]
    fn html_becomes_readable_text() {
        let html = b"<html><head><style>p{}</style><script>alert(1)</script></head><body><h1>Title</h1><p>Hello <a href='https://x.test/'>link</a></p></body></html>";
        let text = html_to_text(html, 80);
        assert!(text.contains("Title"), "{text}");
        assert!(text.contains("Hello"), "{text}");
        assert!(!text.contains("alert"), "{text}");
    }
}
