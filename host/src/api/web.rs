//! The web console at `/`: the files Vite built into `web/dist`, embedded at
//! compile time, served with their content type, an ETag, long caching for the
//! hashed `assets/` and the precompressed `.br`/`.gz` sibling the browser
//! accepts. Every other page path gets `index.html` (the console routes in the
//! browser). Each answer carries a strict Content-Security-Policy: scripts,
//! styles and connections only from this origin, no inline script, no frames.
//! A binary built without the console answers with a page that says how to
//! build it.

use bytes::Bytes;
use rust_embed::RustEmbed;
use warp::http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use warp::path::FullPath;
use warp::{Filter, Rejection};

#[derive(RustEmbed)]
#[folder = "../web/dist"]
#[allow_missing = true]
#[exclude = ".vite/*"]
#[exclude = "*.gz"]
#[exclude = "*.br"]
struct Assets;

#[derive(RustEmbed)]
#[folder = "../web/dist"]
#[allow_missing = true]
#[include = "*.gz"]
#[include = "*.br"]
struct Compressed;

/// The policy every console answer carries.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; object-src 'none'; \
base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Whether this binary carries the built console.
pub fn built() -> bool {
    Assets::get("index.html").is_some()
}

/// GET and HEAD of any path outside `/api/`, `/mcp` and `/metrics`.
pub(super) fn routes() -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone
{
    warp::get()
        .or(warp::head())
        .unify()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and_then(|path: FullPath, headers: HeaderMap| async move {
            let path = path.as_str().trim_start_matches('/');
            let first = path.split('/').next().unwrap_or_default();
            if matches!(first, "api" | "mcp" | "metrics") {
                return Err(warp::reject::not_found());
            }
            Ok(serve(path, &headers))
        })
}

fn serve(path: &str, headers: &HeaderMap) -> warp::reply::Response {
    if !built() {
        return not_built();
    }
    let (name, file) = match Assets::get(path) {
        Some(file) if !path.is_empty() => (path, file),
        // A missing hashed asset is an old page asking for a file a newer
        // build replaced: a 404, not the page.
        _ if path.starts_with("assets/") => return missing(),
        _ => match Assets::get("index.html") {
            Some(file) => ("index.html", file),
            None => return not_built(),
        },
    };
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let cache = if name.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, content_type(name))
        .header(header::CACHE_CONTROL, cache)
        .header(header::ETAG, &etag)
        .header(header::VARY, "accept-encoding");
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let body = if fresh {
        builder = builder.status(StatusCode::NOT_MODIFIED);
        Bytes::new()
    } else {
        match encoded(name, headers) {
            Some((encoding, bytes)) => {
                builder = builder.header(header::CONTENT_ENCODING, encoding);
                bytes
            }
            None => Bytes::from(file.data.into_owned()),
        }
    };
    secure(builder.body(body.into()).unwrap_or_else(|_| missing()))
}

/// The precompressed copy of `name` in the best encoding the client accepts.
fn encoded(name: &str, headers: &HeaderMap) -> Option<(&'static str, Bytes)> {
    let accepted = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let accepts = |coding: &str| {
        accepted.split(',').any(|part| {
            let mut it = part.split(';');
            let token = it.next().unwrap_or_default().trim();
            let refused = it.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            token.eq_ignore_ascii_case(coding) && !refused
        })
    };
    [("br", "br"), ("gzip", "gz")]
        .into_iter()
        .filter(|(coding, _)| accepts(coding))
        .find_map(|(coding, ext)| {
            Compressed::get(&format!("{name}.{ext}"))
                .map(|f| (coding, Bytes::from(f.data.into_owned())))
        })
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "woff2" => "font/woff2",
        "wasm" => "application/wasm",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The headers every console answer carries.
fn secure(mut response: warp::reply::Response) -> warp::reply::Response {
    let h = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn missing() -> warp::reply::Response {
    let mut r = warp::reply::Response::new("not found".into());
    *r.status_mut() = StatusCode::NOT_FOUND;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    secure(r)
}

fn not_built() -> warp::reply::Response {
    const PAGE: &str = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
<title>switchyard</title><body style=\"font-family:system-ui;max-width:40rem;margin:3rem auto;padding:0 1rem\">\
<h1>The web console is not built into this binary</h1>\
<p>This switchyard was compiled without the console. Build it (Node 20.19 or newer), then rebuild the host:</p>\
<pre>scripts/web\ncargo build -p switchyard</pre>\
<p>The REST API (<a href=\"/api/v1/openapi.json\">/api/v1</a>), MCP (<code>/mcp</code>) and metrics work without it.</p>\
</body></html>";
    let mut r = warp::reply::Response::new(PAGE.into());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let mut r = secure(r);
    // The page's only style is its own attribute.
    r.headers_mut().insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    r
}
