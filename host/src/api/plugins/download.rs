//! Downloading a plugin package for `POST /plugins/from-url`: size-capped,
//! checked against its SHA-256, and (for non-administrators) only from public
//! addresses (the rule of [`crate::net`]), so a URL install cannot probe the
//! server's own network.

use super::super::error::ApiError;
use crate::net::{host_is_private, public_addrs};
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use warp::http::StatusCode;

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;

/// Download `url` (at most `limit` bytes) and check its SHA-256 against `expected`
/// (lowercase hex). `public_only` refuses loopback, private and link-local targets,
/// including after redirects and DNS resolution.
pub async fn fetch_checked(
    url: reqwest::Url,
    expected: &str,
    limit: u64,
    public_only: bool,
) -> Result<Vec<u8>, ApiError> {
    let bytes = fetch(url, limit, public_only).await?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != expected {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "checksum_mismatch",
            format!(
                "the download's sha256 is {actual}, not the expected {expected}; nothing was installed"
            ),
        ));
    }
    Ok(bytes)
}

/// The error for a download that did not happen.
fn failed(e: &dyn std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "download_failed",
        format!("cannot download the package: {e}"),
    )
}

fn refused(host: &str) -> String {
    format!(
        "`{host}` is not a public address; only administrators may install from loopback, private or link-local addresses"
    )
}

async fn fetch(url: reqwest::Url, limit: u64, public_only: bool) -> Result<Vec<u8>, ApiError> {
    if public_only && literal_is_private(&url) {
        return Err(failed(&refused(url.host_str().unwrap_or(""))));
    }
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else if public_only && literal_is_private(attempt.url()) {
            let message = refused(attempt.url().host_str().unwrap_or(""));
            attempt.error(message)
        } else {
            attempt.follow()
        }
    });
    let mut client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .connect_timeout(std::time::Duration::from_secs(10))
        .redirect(redirects);
    if public_only {
        client = client.dns_resolver(Arc::new(PublicOnly));
    }
    let client = client
        .build()
        .map_err(|e| ApiError::internal("building the HTTP client", &e))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| failed(&chain(&e)))?;
    if !response.status().is_success() {
        return Err(failed(&format!(
            "the server answered {}",
            response.status()
        )));
    }
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(super::install::too_large(limit));
    }
    let mut stream = response.bytes_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.try_next().await.map_err(|e| failed(&chain(&e)))? {
        out.extend_from_slice(&chunk);
        if out.len() as u64 > limit {
            return Err(super::install::too_large(limit));
        }
    }
    Ok(out)
}

/// An error with its causes (reqwest hides the reason a connection failed in them).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether the URL's host is an IP literal outside the public internet.
fn literal_is_private(url: &reqwest::Url) -> bool {
    url.host_str().is_none_or(host_is_private)
}

/// A resolver that keeps only public addresses.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let found = public_addrs(name.as_str()).await?;
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
