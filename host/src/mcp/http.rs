//! MCP over streamable HTTP at `/mcp`, inside the same warp server as the REST
//! API. Before rmcp sees a request this face checks, in order: the `Host` and
//! `Origin` headers (DNS-rebinding protection), the Bearer credential (401 with
//! `WWW-Authenticate` without one), and that a session id belongs to the caller
//! (404 otherwise, exactly like an unknown session).

use super::access::Access;
use super::handler::Handler;
use super::hub::Hub;
use crate::auth::Identity;
use crate::server::Services;
use bytes::Bytes;
use http_body_util::{BodyDataStream, BodyExt, Full};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::sync::Arc;
use std::time::Duration;
use warp::http::{HeaderMap, Method, StatusCode};
use warp::{Filter, Rejection, Reply};

/// Largest JSON-RPC request body at `/mcp` (bytes).
pub const MAX_BODY: usize = 4 << 20;
const SESSION_HEADER: &str = "mcp-session-id";

type Service = StreamableHttpService<Handler, LocalSessionManager>;

/// The `/mcp` endpoint: rmcp's service behind the host's checks.
pub struct Endpoint {
    s: Arc<Services>,
    hub: Arc<Hub>,
    access: Access,
    service: Service,
    sessions: Arc<LocalSessionManager>,
}

/// Most open sessions one user may hold.
pub const MAX_SESSIONS_PER_USER: usize = 64;

impl Endpoint {
    /// The endpoint for `s`, with sessions (or stateless JSON, as configured).
    pub fn new(s: Arc<Services>) -> Arc<Self> {
        let hub = Hub::start(&s);
        let factory = {
            let (s, hub) = (s.clone(), hub.clone());
            move || Ok(Handler::new(s.clone(), hub.clone(), None))
        };
        let stateless = s.config.mcp.stateless;
        // Host and Origin are checked by `Access` before authentication.
        let config = StreamableHttpServerConfig::default()
            .disable_allowed_hosts()
            .disable_allowed_origins()
            .with_legacy_session_mode(!stateless)
            .with_json_response(stateless)
            .with_sse_keep_alive(Some(Duration::from_secs(15)))
            .with_max_request_body_bytes(MAX_BODY);
        let sessions = Arc::new(LocalSessionManager::default());
        let service = StreamableHttpService::new(factory, sessions.clone(), config);
        Arc::new(Self {
            access: Access::new(&s.config),
            s,
            hub,
            service,
            sessions,
        })
    }

    /// The session registry.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }
}

/// The `/mcp` route.
pub fn route(
    endpoint: Arc<Endpoint>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::path("mcp")
        .and(warp::path::end())
        .and(warp::method())
        .and(warp::host::optional())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(crate::api::limited_body(MAX_BODY as u64))
        .and_then(
            move |method, host: Option<warp::host::Authority>, query, headers, body| {
                let endpoint = endpoint.clone();
                let host = host.map(|a| a.as_str().to_string());
                async move {
                    let request = Incoming {
                        method,
                        host,
                        query,
                        headers,
                        body,
                    };
                    Ok::<_, Rejection>(endpoint.handle(request).await)
                }
            },
        )
}

/// What the `/mcp` filter extracted from a request.
struct Incoming {
    method: Method,
    host: Option<String>,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// Whether the request says its body is JSON (rmcp answers 415 otherwise).
fn json_content(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

fn plain(status: StatusCode, text: &str) -> warp::reply::Response {
    warp::reply::with_status(text.to_string(), status).into_response()
}

fn too_many_sessions() -> warp::reply::Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": -32000, "message": format!(
            "you have {MAX_SESSIONS_PER_USER} MCP sessions open: close some with DELETE /mcp (mcp-session-id) or wait for idle ones to expire"
        ) },
    });
    warp::reply::with_status(warp::reply::json(&body), StatusCode::TOO_MANY_REQUESTS)
        .into_response()
}

fn unauthorized(reason: &str) -> warp::reply::Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": -32001, "message": reason },
    });
    let mut response = warp::reply::with_status(warp::reply::json(&body), StatusCode::UNAUTHORIZED)
        .into_response();
    let challenge = format!(
        "Bearer realm=\"switchyard\", error=\"invalid_token\", error_description=\"{}\"",
        reason.replace('"', "'")
    );
    if let Ok(v) = challenge.parse() {
        response
            .headers_mut()
            .insert(http::header::WWW_AUTHENTICATE, v);
    }
    response
}

impl Endpoint {
    async fn identify(&self, headers: &HeaderMap) -> Result<Identity, String> {
        match headers.get(http::header::AUTHORIZATION) {
            Some(value) => {
                let token = value
                    .to_str()
                    .ok()
                    .and_then(crate::auth::bearer)
                    .ok_or("use the Bearer scheme: `Authorization: Bearer TOKEN`")?;
                self.s.auth.authenticate(token).await.map_err(|e| match e {
                    crate::auth::AuthError::Store(e) => {
                        tracing::error!(error = %e, "authenticating an MCP request");
                        "the credential could not be checked; retry".to_string()
                    }
                    other => other.to_string(),
                })
            }
            None => match &self.s.config.mcp.anonymous_user {
                Some(name) => self.anonymous(name).await,
                None => Err(
                    "send `Authorization: Bearer TOKEN` (an API token from POST /api/v1/tokens, or an access token from POST /api/v1/auth/login)"
                        .into(),
                ),
            },
        }
    }

    /// How many sessions `user_id` holds open (forgetting the owners of sessions
    /// rmcp has closed).
    async fn open_sessions(&self, user_id: &str) -> usize {
        let open = self.sessions.sessions.read().await;
        self.hub.retain_owners(|id| open.contains_key(id));
        self.hub.sessions_of(user_id)
    }

    async fn anonymous(&self, name: &str) -> Result<Identity, String> {
        match self.s.store.user_for_login(name).await {
            Ok((user, _)) if !user.disabled => Ok(Identity {
                user,
                session: None,
                token_id: None,
                scopes: None,
            }),
            _ => Err(format!(
                "the anonymous MCP user `{name}` does not exist or is disabled"
            )),
        }
    }

    async fn handle(&self, request: Incoming) -> warp::reply::Response {
        let Incoming {
            method,
            host,
            query,
            headers,
            body,
        } = request;
        if let Err(reason) = self.access.check(host.as_deref(), &headers) {
            return plain(StatusCode::FORBIDDEN, &reason);
        }
        let who = match self.identify(&headers).await {
            Ok(who) => who,
            Err(reason) => return unauthorized(&reason),
        };
        let session = headers
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if let Some(id) = &session
            && !self.hub.owned_by(id, &who.user.id)
        {
            return plain(StatusCode::NOT_FOUND, "Not Found: Session not found");
        }
        if method == Method::POST
            && session.is_none()
            && !self.s.config.mcp.stateless
            && self.open_sessions(&who.user.id).await >= MAX_SESSIONS_PER_USER
        {
            return too_many_sessions();
        }
        if method == Method::POST {
            if (session.is_some() || self.s.config.mcp.stateless)
                && let Some(response) =
                    super::tasks::answer(&self.s, &self.hub, session.as_deref(), &who, &body).await
            {
                return response;
            }
            if let Some(id) = &session
                && let Some(response) =
                    super::fast::answer(&self.s, &self.hub, id, &who, &headers, &body).await
            {
                return response;
            }
            if json_content(&headers)
                && let Some(response) = super::malformed::reject(&body)
            {
                return response;
            }
        }
        let patch = (method == Method::POST)
            .then(|| super::tasks::needs_patch(&body))
            .flatten();
        let uri = if query.is_empty() {
            "/mcp".to_string()
        } else {
            format!("/mcp?{query}")
        };
        let mut request = http::Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = method.clone();
        if let Ok(uri) = uri.parse() {
            *request.uri_mut() = uri;
        }
        *request.headers_mut() = headers;
        let user_id = who.user.id.clone();
        request.extensions_mut().insert(who);
        let response = self.service.handle(request).await;
        if let Some(id) = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            && session.is_none()
        {
            self.hub.set_owner(id, &user_id);
        }
        if let Some(id) = &session {
            self.hub.touch(id);
        }
        let (mut parts, body) = response.into_parts();
        if method == Method::DELETE
            && parts.status.is_success()
            && let Some(id) = &session
        {
            self.hub.forget(id);
            // The session is gone, not pending: some clients (the Python SDK)
            // expect 200 here and warn on 202.
            parts.status = StatusCode::OK;
        }
        let mut reply = match patch {
            Some(kind) if parts.status.is_success() => {
                // These answers end with their one message: read, amend, resend.
                let read = tokio::time::timeout(Duration::from_secs(30), body.collect()).await;
                let Ok(Ok(collected)) = read else {
                    return plain(StatusCode::GATEWAY_TIMEOUT, "the MCP answer did not end");
                };
                let amended = super::tasks::patch(kind, &collected.to_bytes());
                parts.headers.remove(http::header::CONTENT_LENGTH);
                warp::reply::Response::new(amended.into())
            }
            _ => warp::reply::stream(BodyDataStream::new(body)).into_response(),
        };
        *reply.status_mut() = parts.status;
        *reply.headers_mut() = parts.headers;
        reply
    }
}
