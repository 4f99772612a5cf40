//! The REST API under `/api/v1`, `/metrics`, and the HTTP plumbing around them:
//! request ids, access logs, HTTP metrics, authentication filters, JSON bodies,
//! pagination, audit records.
//!
//! Every route matches its path before its method, so a known path with a wrong
//! method answers 405 and an unknown path 404; every failure is the JSON body of
//! [`error::ErrorBody`].

mod agents;
mod audit;
mod auth;
mod channels;
pub mod error;
mod limits;
mod mcp_servers;
pub mod openapi;
pub mod plugins;
mod sandbox_ws;
mod sandboxes;
mod schedules;
pub mod serve;
mod sessions;
mod setup;
mod tasks;
mod tokens;
pub use users::check_username;
pub mod skills;
mod tools;
pub mod users;
pub mod web;
mod ws;
mod ws_auth;

use crate::auth::Identity;
use crate::server::Services;
use crate::store::NewAudit;
use error::ApiError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use warp::http::header::AUTHORIZATION;
use warp::http::{HeaderMap, StatusCode};
use warp::{Filter, Rejection, Reply};

/// Largest JSON request body (bytes).
pub const MAX_JSON_BODY: u64 = 2 << 20;

/// The request id of a request (set before routing).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// An authenticated request's context.
#[derive(Clone)]
pub struct Ctx {
    /// The services.
    pub s: Arc<Services>,
    /// The caller.
    pub who: Identity,
    /// The request id.
    pub request_id: String,
}

impl Ctx {
    /// Record an audit entry for this caller (failures to record are logged).
    pub async fn audit(
        &self,
        action: &str,
        target: &str,
        outcome: &str,
        details: serde_json::Value,
    ) {
        let entry = NewAudit {
            actor_id: Some(&self.who.user.id),
            actor: &self.who.user.username,
            action,
            target,
            outcome,
            details,
            request_id: Some(&self.request_id),
        };
        if let Err(e) = self.s.store.audit(entry).await {
            tracing::error!(error = %e, action, target, "cannot write the audit log");
        }
    }

    /// Require the administrator role.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.who.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("this needs the admin role"))
        }
    }

    /// Require a token scope (credentials without scopes allow everything).
    pub fn require_scope(&self, scope: &str) -> Result<(), ApiError> {
        if self.who.allows(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this API token lacks the `{scope}` scope"
            )))
        }
    }

    /// Admin-only audit-and-fail helper: records the denial and returns the error.
    pub async fn deny(&self, action: &str, target: &str, error: ApiError) -> ApiError {
        self.audit(
            action,
            target,
            "denied",
            serde_json::json!({ "reason": error.message }),
        )
        .await;
        error
    }
}

/// Pass the services into a handler.
pub fn with(
    s: Arc<Services>,
) -> impl Filter<Extract = (Arc<Services>,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || s.clone())
}

/// The request id set by [`serve`].
pub fn request_id() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::ext::optional::<RequestId>()
        .map(|r: Option<RequestId>| r.map(|r| r.0).unwrap_or_default())
}

/// Authenticate the `Authorization: Bearer` credential and build the context.
pub fn ctx(s: Arc<Services>) -> impl Filter<Extract = (Ctx,), Error = Rejection> + Clone {
    warp::header::headers_cloned()
        .and(with(s))
        .and(request_id())
        .and_then(
            |headers: HeaderMap, s: Arc<Services>, request_id: String| async move {
                let who = authenticate(&s, &headers)
                    .await
                    .map_err(warp::reject::custom)?;
                Ok::<_, Rejection>(Ctx { s, who, request_id })
            },
        )
}

async fn authenticate(s: &Services, headers: &HeaderMap) -> Result<Identity, ApiError> {
    let value = headers
        .get(AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthenticated(
                "send `Authorization: Bearer TOKEN`; get a token from POST /api/v1/auth/login",
            )
        })?
        .to_str()
        .map_err(|_| ApiError::unauthenticated("the Authorization header is not text"))?;
    let token = crate::auth::bearer(value).ok_or_else(|| {
        ApiError::unauthenticated("use the Bearer scheme: `Authorization: Bearer TOKEN`")
    })?;
    Ok(s.auth.authenticate(token).await?)
}

/// The request body, at most `limit` bytes (413 beyond), with or without a
/// Content-Length header.
pub fn limited_body(limit: u64) -> impl Filter<Extract = (Vec<u8>,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(move |length, stream| collect_limited(length, stream, limit))
}

async fn collect_limited<S, B>(
    length: Option<u64>,
    mut stream: S,
    limit: u64,
) -> Result<Vec<u8>, Rejection>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin,
    B: bytes::Buf,
{
    use futures_util::TryStreamExt;
    let too_large = || {
        warp::reject::custom(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {limit} bytes"),
        ))
    };
    if length.is_some_and(|l| l > limit) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = stream.try_next().await.map_err(|e| {
        warp::reject::custom(ApiError::bad_request(format!(
            "reading the body failed: {e}"
        )))
    })? {
        body.extend_from_slice(chunk.chunk());
        if body.len() as u64 > limit {
            return Err(too_large());
        }
    }
    Ok(body)
}

/// Whether a `Content-Type` value names JSON: `application/json` or an
/// `application/…+json` type, with any parameters (`; charset=utf-8`).
pub fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.len() > 5 && sub.ends_with("+json"))
}

/// 415 unless the request's `Content-Type` names JSON (see [`is_json`]).
pub fn json_content_type() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and_then(|ct: Option<String>| async move {
            match ct {
                Some(ct) if is_json(&ct) => Ok(()),
                other => Err(warp::reject::custom(unsupported_media_type(
                    other.as_deref(),
                ))),
            }
        })
        .untuple_one()
}

/// The 415 error for a body sent as `content_type`.
pub fn unsupported_media_type(content_type: Option<&str>) -> ApiError {
    let got = content_type.map_or_else(|| "no Content-Type".to_string(), |c| format!("`{c}`"));
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!(
            "the body must be JSON sent with `Content-Type: application/json` (got {got}); with curl, add -H 'content-type: application/json'"
        ),
    )
}

/// A JSON body of at most [`MAX_JSON_BODY`] bytes sent as JSON (415 otherwise),
/// with a clear 400 on bad input.
pub fn json_body<T: DeserializeOwned + Send>()
-> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    json_content_type()
        .and(limited_body(MAX_JSON_BODY))
        .and_then(|bytes: Vec<u8>| async move {
            // Every body is a JSON object: serde would also read a struct from
            // an array of its fields, which the OpenAPI document does not allow.
            if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                return Err(warp::reject::custom(ApiError::bad_request(
                    "invalid JSON body: expected a JSON object",
                )));
            }
            let value = serde_json::from_slice::<T>(&bytes).map_err(|e| {
                warp::reject::custom(ApiError::bad_request(format!("invalid JSON body: {e}")))
            })?;
            if holds_nul(&bytes) {
                return Err(warp::reject::custom(ApiError::bad_request(NUL_REFUSED)));
            }
            Ok(value)
        })
}

/// Why a body holding U+0000 is refused: no text column of the store (in
/// PostgreSQL) can hold it, so it is refused everywhere, on every backend.
const NUL_REFUSED: &str =
    "invalid JSON body: text cannot contain the NUL character (\\u0000); remove it and send again";

/// Whether JSON text (already parsed) holds the escape `\u0000` in a string or
/// a key. Backslashes occur only in strings, each starting a two-byte escape
/// (or a `\uXXXX` one), so skipping pairs is exact.
fn holds_nul(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json.get(i + 1..i + 6) == Some(b"u0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// A query string parsed into `T`, with a clear 400 on bad input.
pub fn query<T: DeserializeOwned + Send + 'static>()
-> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::query::raw()
        .or(warp::any().map(String::new))
        .unify()
        .and_then(|raw: String| async move {
            serde_urlencoded::from_str::<T>(&raw).map_err(|e| {
                warp::reject::custom(ApiError::bad_request(format!("invalid query string: {e}")))
            })
        })
}

/// A path segment, percent-decoded (`/plugins/caf%C3%A9` names `café`).
#[derive(Debug, Clone)]
pub struct Segment(pub String);

impl std::str::FromStr for Segment {
    type Err = std::str::Utf8Error;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Ok(Self(
            percent_encoding::percent_decode_str(raw)
                .decode_utf8()?
                .into_owned(),
        ))
    }
}

/// Whether `s` has at most `max` characters (as JSON Schema's `maxLength` counts).
pub fn max_chars(s: &str, max: usize) -> bool {
    s.chars().nth(max).is_none()
}

/// Deserialize an optional whole number from JSON: an integer or a float without
/// a fraction (`2.0`, which JSON Schema counts as an integer).
pub fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    number(d, false)
}

/// Deserialize an optional whole number from a query string: decimal digits only
/// (`0.0` or `1e3` in a URL is refused, as a form field holding a list would be).
pub fn query_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    number(d, true)
}

fn number<'de, D: serde::Deserializer<'de>>(d: D, text: bool) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Int(i64),
        Float(f64),
        Text(String),
    }
    let whole = |f: f64| {
        (f.fract() == 0.0 && f.abs() < 9.0e15)
            .then_some(f as i64)
            .ok_or_else(|| D::Error::custom(format!("{f} is not a whole number")))
    };
    match Option::<Number>::deserialize(d)? {
        None => Ok(None),
        Some(Number::Int(i)) => Ok(Some(i)),
        Some(Number::Float(f)) => whole(f).map(Some),
        Some(Number::Text(t)) if text => t
            .parse::<i64>()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("`{t}` is not a whole number"))),
        Some(Number::Text(t)) => Err(D::Error::custom(format!(
            "expected a number, got the string `{t}`"
        ))),
    }
}

/// Page parameters of list routes.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Items per page, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    #[serde(default, deserialize_with = "query_number")]
    pub limit: Option<i64>,
    /// The `next` cursor of the previous page.
    #[param(max_length = 200)]
    pub after: Option<String>,
}

impl Paging {
    /// The checked limit.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(50),
            Some(n @ 1..=500) => Ok(n as usize),
            Some(_) => Err(ApiError::bad_request("limit must be between 1 and 500")),
        }
    }

    /// The cursor, checked for length.
    pub fn after(&self) -> Result<Option<&str>, ApiError> {
        match self.after.as_deref() {
            Some(a) if !max_chars(a, 200) => {
                Err(ApiError::bad_request("after is not a cursor from this API"))
            }
            other => Ok(other),
        }
    }
}

/// The page size of a list read by seq (events, history): 1-1000, default 200.
pub fn seq_page_limit(limit: Option<i64>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(200),
        Some(n @ 1..=1000) => Ok(n as usize),
        Some(_) => Err(ApiError::bad_request("limit must be between 1 and 1000")),
    }
}

/// A page of items.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListOf<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A JSON reply with a status.
pub fn reply<T: Serialize>(status: StatusCode, body: &T) -> warp::reply::Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

/// Turn a handler result into a response.
pub fn respond(
    result: Result<warp::reply::Response, ApiError>,
) -> Result<warp::reply::Response, Rejection> {
    Ok(result.unwrap_or_else(ApiError::into_response))
}

/// Every route of the service (REST, `/mcp`, `/metrics`). Call it inside a Tokio
/// runtime: the MCP endpoint starts a task that follows plugin changes.
pub fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone {
    let api = warp::path("api").and(warp::path("v1"));
    let health = warp::path!("health")
        .and(warp::get())
        .and(with(s.clone()))
        .and_then(health);
    // Paths are disjoint, so order only decides how many filters a request
    // tries: tool calls, the hot path, come first. The rest is boxed: one
    // dynamic call per request that gets there, and a route type the
    // compiler can lay out.
    let rest = health
        .or(openapi::routes())
        .unify()
        .or(auth::routes(s.clone()))
        .unify()
        .or(setup::routes(s.clone()))
        .unify()
        .or(limits::routes(s.clone()))
        .unify()
        .or(users::routes(s.clone()))
        .unify()
        .or(tokens::routes(s.clone()))
        .unify()
        .or(plugins::routes(s.clone()))
        .unify()
        .or(audit::routes(s.clone()))
        .unify()
        .or(sandboxes::routes(s.clone()))
        .unify()
        .or(sandbox_ws::routes(s.clone()))
        .unify()
        .or(ws_auth::routes(s.clone()))
        .unify()
        .or(skills::routes(s.clone()))
        .unify()
        .boxed();
    let orchestration = tasks::routes(s.clone())
        .or(sessions::routes(s.clone()))
        .unify()
        .or(agents::routes(s.clone()))
        .unify()
        .or(channels::routes(s.clone()))
        .unify()
        .or(schedules::routes(s.clone()))
        .unify()
        .or(mcp_servers::routes(s.clone()))
        .unify()
        .or(ws::routes(s.clone()))
        .unify()
        .boxed();
    let v1 = tools::routes(s.clone())
        .or(rest)
        .unify()
        .or(orchestration)
        .unify();
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with(s.clone()))
        .and(warp::header::headers_cloned())
        .then(|s: Arc<Services>, headers: HeaderMap| async move {
            if let Err(e) = metrics_access(&s, &headers).await {
                return e.into_response();
            }
            s.sandboxes.observe().await;
            s.metrics.run_upkeep();
            warp::reply::with_header(
                s.metrics.render(),
                "content-type",
                "text/plain; version=0.0.4; charset=utf-8",
            )
            .into_response()
        });
    let mcp = crate::mcp::route(crate::mcp::Endpoint::new(s.clone()));
    api.and(v1)
        .or(mcp)
        .unify()
        .or(metrics)
        .unify()
        .or(web::routes())
        .unify()
        .recover(error::recover)
        .unify()
}

/// Who may scrape `/metrics`: anyone when the server is open (loopback only,
/// see [`crate::config::Config::metrics_open`]), else an administrator whose
/// credential allows the `metrics` scope (a session, an unscoped API token, or
/// one scoped to `metrics`).
async fn metrics_access(s: &Services, headers: &HeaderMap) -> Result<(), ApiError> {
    if s.config.metrics_open() {
        return Ok(());
    }
    let who = authenticate(s, headers).await?;
    if !who.is_admin() {
        return Err(ApiError::forbidden(
            "metrics name every user's plugins and tools: they need an administrator's credential",
        ));
    }
    if !who.allows(crate::auth::Scope::Metrics.as_str()) {
        return Err(ApiError::forbidden(
            "this API token lacks the `metrics` scope",
        ));
    }
    Ok(())
}

/// The health answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` when the database answers, `degraded` otherwise.
    pub status: String,
    /// The server version.
    pub version: String,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// Installed plugins.
    pub plugins: usize,
}

/// Liveness and readiness.
#[utoipa::path(get, path = "/api/v1/health", tag = "meta",
    responses((status = 200, description = "The server is up", body = Health),
              (status = 503, description = "The database does not answer", body = Health)))]
pub async fn health(s: Arc<Services>) -> Result<warp::reply::Response, Rejection> {
    let db = s.store.ping().await;
    let body = Health {
        status: if db.is_ok() { "ok" } else { "degraded" }.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_seconds: s.started.elapsed().as_secs(),
        plugins: s.plugins.snapshot().len(),
    };
    let status = if db.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(reply(status, &body))
}

#[cfg(test)]
mod tests {
    use super::holds_nul;

    #[test]
    fn nul_escapes_are_found_and_escaped_backslashes_are_not() {
        assert!(holds_nul(br#"{"a":"x\u0000"}"#));
        assert!(holds_nul(br#"{"\u0000":1}"#));
        assert!(holds_nul(br#"{"a":"\\\u0000"}"#));
        assert!(!holds_nul(br#"{"a":"\\u0000"}"#));
        assert!(holds_nul(br#"{"a":"\u00001"}"#));
        assert!(!holds_nul(br#"{"a":"\u0001 \n \" u0000"}"#));
    }
}
