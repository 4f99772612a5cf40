//! What both provider clients share: the HTTP client, one step's attempts with retries and
//! backoff, the idle timeout, the classification of HTTP failures, and reading the event stream.
//!
//! A step is retried only while nothing of it was streamed to the caller: once a delta went
//! out, a failure is returned as it is and the caller decides.

use super::sse::{SseEvent, SseParser};
use super::{Delta, ProviderError, StepOutput};
use crate::agent::config::{ApiKey, ResolvedLlm};
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc::Sender;
use tokio::time::timeout;

/// The most a `retry-after` is honoured for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The first backoff step.
const BACKOFF_BASE: Duration = Duration::from_millis(200);
/// The longest backoff without a `retry-after`.
const BACKOFF_CAP: Duration = Duration::from_secs(10);
/// The longest connect phase.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of an error body is read.
const ERROR_BODY_CAP: usize = 64 << 10;
/// How many characters of a provider's message an error keeps.
const MESSAGE_CAP: usize = 500;

/// Turns the events of one response into deltas and, at the terminator, a step.
pub(crate) trait Decoder {
    /// Handles one event, pushing what the caller should see into `out`; `Ok(true)` when the
    /// event was the stream's terminator.
    fn event(&mut self, event: SseEvent, out: &mut Vec<Delta>) -> Result<bool, ProviderError>;
    /// The step, once the terminator arrived.
    fn finish(self) -> StepOutput;
}

/// One provider endpoint: a client with the auth headers, the URL and the limits.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    client: reqwest::Client,
    url: String,
    provider: &'static str,
    terminator: &'static str,
    key: Option<ApiKey>,
    timeout: Duration,
    max_retries: u32,
}

/// Builds a header value from a key, marked sensitive so no `Debug` shows it.
pub(crate) fn secret_header(key: &ApiKey, prefix: &str) -> Result<HeaderValue, ProviderError> {
    let mut value = HeaderValue::from_str(&format!("{prefix}{}", key.expose())).map_err(|_| {
        ProviderError::Fatal {
            code: "llm_config",
            message: "the LLM API key holds characters that cannot go in an HTTP header".into(),
        }
    })?;
    value.set_sensitive(true);
    Ok(value)
}

impl Transport {
    /// A client for `POST {base_url}{path}` with `headers` on every request.
    pub fn new(
        resolved: &ResolvedLlm,
        path: &str,
        headers: Vec<(HeaderName, HeaderValue)>,
        provider: &'static str,
        terminator: &'static str,
    ) -> Result<Self, ProviderError> {
        let mut map = HeaderMap::new();
        map.extend(headers.into_iter().map(|(k, v)| (Some(k), v)));
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let client = reqwest::Client::builder()
            .default_headers(map)
            .connect_timeout(CONNECT_TIMEOUT.min(resolved.timeout))
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::Fatal {
                code: "llm_config",
                message: format!("cannot build the HTTP client for {provider}: {}", chain(&e)),
            })?;
        Ok(Self {
            client,
            url: format!("{}{path}", resolved.base_url),
            provider,
            terminator,
            key: resolved.api_key.clone(),
            timeout: resolved.timeout,
            max_retries: resolved.max_retries,
        })
    }

    /// Runs one step: attempts (a fresh decoder each) until one succeeds, fails for good, or
    /// fails after streaming something.
    pub async fn run<D: Decoder>(
        &self,
        body: &serde_json::Value,
        new_decoder: impl Fn() -> D,
        deltas: &Sender<Delta>,
    ) -> Result<StepOutput, ProviderError> {
        let body = Bytes::from(serde_json::to_vec(body).map_err(|e| ProviderError::Fatal {
            code: "llm_bad_request",
            message: format!("cannot encode the request: {e}"),
        })?);
        let mut retries = 0;
        loop {
            let mut emitted = false;
            let err = match self
                .attempt(body.clone(), new_decoder(), deltas, &mut emitted)
                .await
            {
                Ok(output) => return Ok(output),
                Err(err) => self.redact(err),
            };
            if !err.is_retryable() || emitted || retries >= self.max_retries {
                tracing::warn!(provider = self.provider, retries, streamed = emitted,
                    code = err.code(), error = %err, "LLM step failed");
                return Err(match err {
                    ProviderError::Retryable {
                        message,
                        retry_after,
                    } if retries > 0 => ProviderError::Retryable {
                        message: format!("{message} (gave up after {retries} retries)"),
                        retry_after,
                    },
                    other => other,
                });
            }
            let wait = backoff(retries, err.retry_after());
            tracing::info!(provider = self.provider, retry = retries + 1,
                wait_ms = wait.as_millis() as u64, error = %err, "LLM step failed; retrying");
            tokio::time::sleep(wait).await;
            retries += 1;
        }
    }

    /// One request and its stream. Sets `emitted` once a delta went to the caller.
    async fn attempt<D: Decoder>(
        &self,
        body: Bytes,
        mut decoder: D,
        deltas: &Sender<Delta>,
        emitted: &mut bool,
    ) -> Result<StepOutput, ProviderError> {
        tracing::debug!(provider = self.provider, url = %self.url, "LLM request");
        let send = self.client.post(&self.url).body(body).send();
        let response = match timeout(self.timeout, send).await {
            Err(_) => return Err(ProviderError::Timeout),
            Ok(Err(e)) => return Err(self.network_error(&e)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if !status.is_success() {
            return Err(self.status_error(response).await);
        }
        if is_json(&response) {
            let text = read_capped(response, self.timeout).await?;
            return Err(ProviderError::protocol(format!(
                "the {} provider answered with JSON instead of an event stream: {}",
                self.provider,
                provider_message(&text)
            )));
        }
        let mut stream = response.bytes_stream();
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        loop {
            let chunk = match timeout(self.timeout, stream.next()).await {
                Err(_) => return Err(ProviderError::Timeout),
                Ok(None) => {
                    let how = if parser.pending() {
                        "mid-event"
                    } else {
                        "before its end"
                    };
                    return Err(ProviderError::retryable(format!(
                        "the {} stream was cut off {how} (no {})",
                        self.provider, self.terminator
                    )));
                }
                Ok(Some(Err(e))) => {
                    return Err(ProviderError::retryable(format!(
                        "the {} stream broke: {}",
                        self.provider,
                        chain(&e)
                    )));
                }
                Ok(Some(Ok(chunk))) => chunk,
            };
            let events = parser.push(&chunk).map_err(|e| {
                ProviderError::protocol(format!("the {} stream: {e}", self.provider))
            })?;
            for event in events {
                let done = decoder.event(event, &mut out)?;
                for delta in out.drain(..) {
                    *emitted = true;
                    // A caller that stopped listening still gets the whole step.
                    let _ = deltas.send(delta).await;
                }
                if done {
                    return Ok(decoder.finish());
                }
            }
        }
    }

    /// A failure to send the request or to read its headers.
    fn network_error(&self, e: &reqwest::Error) -> ProviderError {
        ProviderError::retryable(format!(
            "cannot reach the {} provider at {}: {}",
            self.provider,
            self.url,
            chain(e)
        ))
    }

    /// A non-2xx answer, with the provider's message from its error body.
    async fn status_error(&self, response: Response) -> ProviderError {
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let detail = match read_capped(response, self.timeout).await {
            Ok(body) => provider_message(&body),
            Err(_) => String::from("(the error body could not be read)"),
        };
        let what = format!("the {} provider answered {status}: {detail}", self.provider);
        match fatal_code(status) {
            None => ProviderError::Retryable {
                message: what,
                retry_after,
            },
            Some(code) => {
                let hint = match code {
                    "llm_auth" => " (check the API key and its permissions)",
                    "llm_not_found" => " (check [llm] base_url and model)",
                    _ => "",
                };
                ProviderError::Fatal {
                    code,
                    message: format!("{what}{hint}"),
                }
            }
        }
    }

    /// Removes the key from a message, should a server have echoed it.
    fn redact(&self, err: ProviderError) -> ProviderError {
        let Some(key) = self
            .key
            .as_ref()
            .map(ApiKey::expose)
            .filter(|k| !k.is_empty())
        else {
            return err;
        };
        match err {
            ProviderError::Retryable {
                message,
                retry_after,
            } => ProviderError::Retryable {
                message: message.replace(key, "***"),
                retry_after,
            },
            ProviderError::Fatal { code, message } => ProviderError::Fatal {
                code,
                message: message.replace(key, "***"),
            },
            ProviderError::Timeout => ProviderError::Timeout,
        }
    }
}

/// Whether a 2xx answer is JSON (a server that ignored `stream: true`, or an error).
fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"))
}

/// Reads at most [`ERROR_BODY_CAP`] bytes of a body, each chunk within `idle`.
async fn read_capped(response: Response, idle: Duration) -> Result<Vec<u8>, ProviderError> {
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_CAP {
        match timeout(idle, stream.next()).await {
            Err(_) => return Err(ProviderError::Timeout),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(ProviderError::retryable(chain(&e))),
            Ok(Some(Ok(chunk))) => body.extend_from_slice(&chunk),
        }
    }
    body.truncate(ERROR_BODY_CAP);
    Ok(body)
}

/// The message of an error body (`{"error": {"message"}}` for both providers, or a few other
/// shapes local servers use), else the body's text; at most [`MESSAGE_CAP`] characters.
pub(crate) fn provider_message(body: &[u8]) -> String {
    let parsed = serde_json::from_slice::<serde_json::Value>(body).ok();
    let found = parsed.as_ref().and_then(|v| {
        ["/error/message", "/message", "/error", "/detail"]
            .iter()
            .find_map(|p| v.pointer(p).and_then(serde_json::Value::as_str))
            .map(str::to_owned)
    });
    let text = found.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    let text = if text.is_empty() {
        String::from("(no message)")
    } else {
        text
    };
    truncate(&text, MESSAGE_CAP)
}

/// The first `max` characters of `text`, marked when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The provider's `retry-after-ms` or `retry-after` (seconds or an HTTP date), capped.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let secs = |text: &str| {
        text.parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
    };
    let wait = if let Some(ms) = header("retry-after-ms").and_then(secs) {
        Duration::from_secs_f64((ms / 1000.0).min(MAX_RETRY_AFTER.as_secs_f64()))
    } else {
        let value = header(RETRY_AFTER.as_str())?;
        match secs(value) {
            Some(s) => Duration::from_secs_f64(s.min(MAX_RETRY_AFTER.as_secs_f64())),
            None => httpdate::parse_http_date(value)
                .ok()?
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// How long to wait before retry number `retry + 1`: the provider's `retry-after` when it
/// gave one, else exponential from 200 ms with jitter (half fixed, half random), capped.
pub(crate) fn backoff(retry: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(wait) = retry_after {
        return wait.min(MAX_RETRY_AFTER);
    }
    let full = BACKOFF_BASE
        .saturating_mul(2u32.saturating_pow(retry.min(16)))
        .min(BACKOFF_CAP);
    full / 2 + full.mul_f64(rand::random::<f64>() / 2.0)
}

/// The error code of a status that is not worth retrying; `None` for 408, 409, 425, 429 and
/// 5xx (Anthropic's 529 included).
fn fatal_code(status: StatusCode) -> Option<&'static str> {
    match status.as_u16() {
        408 | 409 | 425 | 429 | 500..=599 => None,
        401 | 403 => Some("llm_auth"),
        404 => Some("llm_not_found"),
        400..=499 => Some("llm_bad_request"),
        _ => Some("llm_protocol"),
    }
}

/// An error and its sources, joined with `: ` (reqwest puts the cause in the sources).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_dates_and_milliseconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3600"));
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&soon).expect("ascii"));
        let wait = retry_after(&headers).expect("a date");
        assert!(
            wait > Duration::from_secs(27) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(250)));
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        for retry in 0..20 {
            let full = BACKOFF_BASE
                .saturating_mul(2u32.saturating_pow(retry))
                .min(BACKOFF_CAP);
            let wait = backoff(retry, None);
            assert!(wait >= full / 2 && wait <= full, "{retry}: {wait:?}");
        }
        assert_eq!(
            backoff(0, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(backoff(0, Some(Duration::from_secs(600))), MAX_RETRY_AFTER);
    }

    #[test]
    fn provider_messages_are_extracted_and_truncated() {
        let openai = br#"{"error":{"message":"Incorrect API key","type":"invalid_request_error"}}"#;
        assert_eq!(provider_message(openai), "Incorrect API key");
        let anthropic =
            br#"{"type":"error","error":{"type":"not_found_error","message":"model: x"}}"#;
        assert_eq!(provider_message(anthropic), "model: x");
        assert_eq!(provider_message(br#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(provider_message(b"  upstream down \n"), "upstream down");
        assert_eq!(provider_message(b""), "(no message)");
        let long = "\u{e9}".repeat(2000);
        let cut = provider_message(long.as_bytes());
        assert_eq!(cut.chars().count(), MESSAGE_CAP + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn statuses_are_classified() {
        let code = |n| fatal_code(StatusCode::from_u16(n).expect("valid status"));
        for retryable in [408, 409, 429, 500, 502, 503, 529] {
            assert_eq!(code(retryable), None, "{retryable}");
        }
        assert_eq!(code(400), Some("llm_bad_request"));
        assert_eq!(code(422), Some("llm_bad_request"));
        assert_eq!(code(401), Some("llm_auth"));
        assert_eq!(code(403), Some("llm_auth"));
        assert_eq!(code(404), Some("llm_not_found"));
        assert_eq!(code(302), Some("llm_protocol"));
    }
}
