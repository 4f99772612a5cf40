//! Outbound HTTP through `wasi:http/outgoing-handler`.
//!
//! The host only lets requests through to the hosts listed under
//! `capabilities.http` in `plugin.toml` and granted by an administrator; any
//! other request fails with [`Error::Denied`].
//!
//! ```ignore
//! let page = http::Request::get("https://example.com/").send()?;
//! let text = page.text()?;
//! ```

use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use crate::bindings::wasi::io::streams::StreamError;
use crate::error::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest response body read unless [`Request::max_body`] says otherwise (10 MiB).
pub const DEFAULT_MAX_BODY: usize = 10 * 1024 * 1024;

/// An HTTP request under construction.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    max_body: usize,
}

/// A complete HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The header fields, names lower-case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body (at most the request's `max_body` bytes).
    pub body: Vec<u8>,
}

impl Request {
    /// A request with any method (`GET`, `POST`, `PUT`, `DELETE`, ...).
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            max_body: DEFAULT_MAX_BODY,
        }
    }
    /// A `GET` request.
    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }
    /// A `POST` request.
    pub fn post(url: &str) -> Self {
        Self::new("POST", url)
    }
    /// Add a header field.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
    /// Set the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
    /// Set a JSON body and its content type.
    pub fn json<T: Serialize>(self, value: &T) -> Result<Self> {
        let body = serde_json::to_vec(value)?;
        Ok(self.header("content-type", "application/json").body(body))
    }
    /// Fail with `failed` when the response body is longer than `bytes`.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Send the request and read the whole response.
    pub fn send(self) -> Result<Response> {
        let url = Url::parse(&self.url)?;
        let fields = Fields::new();
        for (name, value) in &self.headers {
            fields
                .append(&name.to_ascii_lowercase(), value.as_bytes())
                .map_err(|e| Error::invalid_input(format!("header `{name}`: {e:?}")))?;
        }
        let request = OutgoingRequest::new(fields);
        let method = match self.method.as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_string()),
        };
        let invalid =
            |what: &str| Error::invalid_input(format!("invalid {what} in `{}`", self.url));
        request
            .set_method(&method)
            .map_err(|()| invalid("method"))?;
        request
            .set_scheme(Some(&if url.https {
                Scheme::Https
            } else {
                Scheme::Http
            }))
            .map_err(|()| invalid("scheme"))?;
        request
            .set_authority(Some(&url.authority))
            .map_err(|()| invalid("host"))?;
        request
            .set_path_with_query(Some(&url.path_and_query))
            .map_err(|()| invalid("path"))?;
        let outgoing_body = request
            .body()
            .map_err(|()| Error::failed("request body taken twice"))?;
        let pending = outgoing_handler::handle(request, None)
            .map_err(|code| map_error_code(code, &url.authority))?;
        let written = write_body(&outgoing_body, &self.body).and_then(|()| {
            OutgoingBody::finish(outgoing_body, None)
                .map_err(|code| map_error_code(code, &url.authority))
        });
        // The response (or the reason there is none, e.g. a denied host) explains a
        // failed body write better than the write error itself.
        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(map_error_code(code, &url.authority)),
            Some(Err(())) | None => {
                return Err(written
                    .err()
                    .unwrap_or_else(|| Error::failed("HTTP response lost")));
            }
        };
        written?;
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect();
        let body = response
            .consume()
            .map_err(|()| Error::failed("response body taken twice"))?;
        let bytes = read_body(&body, self.max_body, &url.authority)?;
        drop(body);
        Ok(Response {
            status,
            headers,
            body: bytes,
        })
    }
}

fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let stream = body
        .write()
        .map_err(|()| Error::failed("request body stream taken twice"))?;
    for chunk in bytes.chunks(4096) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|e| Error::failed(format!("writing the request body: {e:?}")))?;
    }
    Ok(())
}

fn read_body(body: &IncomingBody, max: usize, authority: &str) -> Result<Vec<u8>> {
    let stream = body
        .stream()
        .map_err(|()| Error::failed("response body stream taken twice"))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                if bytes.len() + chunk.len() > max {
                    return Err(Error::failed(format!(
                        "the response from {authority} is larger than {max} bytes"
                    )));
                }
                bytes.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => return Ok(bytes),
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(Error::unavailable(format!(
                    "reading the response from {authority}: {}",
                    e.to_debug_string()
                )));
            }
        }
    }
}

fn map_error_code(code: ErrorCode, authority: &str) -> Error {
    match code {
        ErrorCode::HttpRequestDenied => Error::denied(format!(
            "outbound HTTP to `{authority}` is not granted to this plugin: list it under \
             capabilities.http in plugin.toml and have an administrator grant it"
        )),
        ErrorCode::DestinationIpProhibited => Error::denied(format!(
            "`{authority}` is a loopback, private or otherwise non-public address: \
             only an administrator's grant of that address (or its range) allows it"
        )),
        ErrorCode::DnsError(_)
        | ErrorCode::DnsTimeout
        | ErrorCode::DestinationNotFound
        | ErrorCode::DestinationUnavailable
        | ErrorCode::ConnectionRefused
        | ErrorCode::ConnectionTerminated
        | ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::ConnectionLimitReached
        | ErrorCode::HttpResponseTimeout => {
            Error::unavailable(format!("`{authority}` is unreachable: {code:?}"))
        }
        other => Error::failed(format!("HTTP request to `{authority}` failed: {other:?}")),
    }
}

impl Response {
    /// The first header field with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::failed(format!("the response is not the JSON expected: {e}")))
    }
    /// `true` for 2xx statuses.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The parts of an `http(s)://` URL that `wasi:http` takes.
#[derive(Debug, PartialEq)]
struct Url {
    https: bool,
    authority: String,
    path_and_query: String,
}

impl Url {
    fn parse(url: &str) -> Result<Self> {
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(Error::invalid_input(format!(
                "`{url}` is not an http:// or https:// URL"
            )));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if authority.is_empty()
            || authority.contains('@')
            || authority.contains(char::is_whitespace)
        {
            return Err(Error::invalid_input(format!("`{url}` has no valid host")));
        }
        let tail = rest[end..].split('#').next().unwrap_or("");
        let path_and_query = match tail.chars().next() {
            None => "/".to_string(),
            Some('?') => format!("/{tail}"),
            Some(_) => tail.to_string(),
        };
        Ok(Self {
            https,
            authority: authority.to_string(),
            path_and_query,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Url;

    #[test]
    fn parses_urls() {
        let u = Url::parse("https://example.com:8443/a/b?x=1#frag").unwrap();
        assert!(u.https);
        assert_eq!(u.authority, "example.com:8443");
        assert_eq!(u.path_and_query, "/a/b?x=1");
        assert_eq!(Url::parse("http://h").unwrap().path_and_query, "/");
        assert_eq!(Url::parse("http://h?q").unwrap().path_and_query, "/?q");
        assert!(Url::parse("ftp://h/").is_err());
        assert!(Url::parse("https:///x").is_err());
        assert!(Url::parse("https://user@h/").is_err());
    }
}
