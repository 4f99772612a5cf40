//! The HTTP accept loop: TCP_NODELAY on every connection, HTTP/1.1 and HTTP/2,
//! a request id, an access log line and HTTP metrics per request, and graceful
//! shutdown that lets requests in flight finish.

use super::RequestId;
use hyper::body::Incoming;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tower_service::Service;
use warp::Filter;

/// The client address of a request.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Serve `filter` on `listener` until `shutdown` resolves, then stop accepting
/// and wait (at most `drain`) for requests in flight.
pub async fn serve<F>(
    listener: TcpListener,
    filter: F,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) where
    F: Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
{
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let service = warp::service(filter.clone());
        let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            handle(service.clone(), req, peer)
        });
        let connection = Builder::new(TokioExecutor::new())
            .serve_connection_with_upgrades(TokioIo::new(stream), svc)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after the shutdown grace period were cut off");
    }
}

async fn handle<S>(
    mut service: S,
    mut req: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> Result<warp::reply::Response, std::convert::Infallible>
where
    S: Service<
            hyper::Request<Incoming>,
            Response = warp::reply::Response,
            Error = std::convert::Infallible,
        >,
{
    let started = Instant::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map_or_else(crate::tools::new_request_id, str::to_string);
    let method = method_label(req.method());
    let route = route_label(req.uri().path());
    req.extensions_mut().insert(Peer(peer));
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let mut response = service.call(req).await?;
    if response.status() == http::StatusCode::METHOD_NOT_ALLOWED
        && let Some(allow) = super::openapi::allowed_methods().get(route)
        && let Ok(v) = allow.parse()
    {
        response.headers_mut().insert(http::header::ALLOW, v);
    }
    if let Ok(v) = request_id.parse() {
        response.headers_mut().insert("x-request-id", v);
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    metrics::counter!("switchyard_http_requests_total",
        "method" => method, "route" => route, "status" => status.to_string())
    .increment(1);
    metrics::histogram!("switchyard_http_request_duration_seconds",
        "method" => method, "route" => route)
    .record(elapsed.as_secs_f64());
    tracing::debug!(request_id, method, route, status, micros = elapsed.as_micros() as u64, %peer, "request");
    Ok(response)
}

/// The metric label of a method: the standard ones by name, anything a client
/// made up as `OTHER` (bounded cardinality).
pub fn method_label(method: &http::Method) -> &'static str {
    use http::Method as M;
    match *method {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::PATCH => "PATCH",
        M::DELETE => "DELETE",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        M::TRACE => "TRACE",
        M::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

/// The route label of every web console page and asset.
pub const CONSOLE_ROUTE: &str = "/ (console)";

/// The route template of a path, for metric labels (bounded cardinality).
pub fn route_label(path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["metrics"] => "/metrics",
        ["mcp"] => "/mcp",
        ["api", "v1", rest @ ..] => match rest {
            ["health"] => "/api/v1/health",
            ["openapi.json"] => "/api/v1/openapi.json",
            ["docs"] => "/api/v1/docs",
            ["auth", "login"] => "/api/v1/auth/login",
            ["auth", "refresh"] => "/api/v1/auth/refresh",
            ["auth", "logout"] => "/api/v1/auth/logout",
            ["auth", "me"] => "/api/v1/auth/me",
            ["ws-tickets"] => "/api/v1/ws-tickets",
            ["setup"] => "/api/v1/setup",
            ["limits"] => "/api/v1/limits",
            ["users"] => "/api/v1/users",
            ["users", _] => "/api/v1/users/{id}",
            ["tokens"] => "/api/v1/tokens",
            ["tokens", _] => "/api/v1/tokens/{id}",
            ["plugins"] => "/api/v1/plugins",
            ["plugins", "from-url"] => "/api/v1/plugins/from-url",
            ["plugins", "from-path"] => "/api/v1/plugins/from-path",
            ["plugins", _] => "/api/v1/plugins/{name}",
            ["plugins", _, "grants"] => "/api/v1/plugins/{name}/grants",
            ["plugins", _, "install"] => "/api/v1/plugins/{name}/install",
            ["plugins", _, "config", _] => "/api/v1/plugins/{name}/config/{key}",
            ["plugins", _, "secrets", _] => "/api/v1/plugins/{name}/secrets/{secret}",
            ["tools"] => "/api/v1/tools",
            ["tools", _, _] => "/api/v1/tools/{plugin}/{tool}:call",
            ["skills"] => "/api/v1/skills",
            ["skills", _, _] => "/api/v1/skills/{source}/{name}",
            ["audit"] => "/api/v1/audit",
            ["users", _, "sandbox-limits"] => "/api/v1/users/{id}/sandbox-limits",
            ["sandboxes"] => "/api/v1/sandboxes",
            ["tasks"] => "/api/v1/tasks",
            ["tasks", _] => "/api/v1/tasks/{id}",
            ["tasks", _, "cancel"] => "/api/v1/tasks/{id}/cancel",
            ["tasks", _, "events"] => "/api/v1/tasks/{id}/events",
            ["sessions"] => "/api/v1/sessions",
            ["sessions", _] => "/api/v1/sessions/{id}",
            ["sessions", _, "messages"] => "/api/v1/sessions/{id}/messages",
            ["agents"] => "/api/v1/agents",
            ["agents", _] => "/api/v1/agents/{id}",
            ["channels"] => "/api/v1/channels",
            ["channels", _] => "/api/v1/channels/{id}",
            ["channels", _, "webhook"] => "/api/v1/channels/{plugin}/webhook",
            ["channels", _, "deliveries"] => "/api/v1/channels/{id}/deliveries",
            ["channels", _, _, "webhook"] => "/api/v1/channels/{plugin}/{instance}/webhook",
            ["channels", _, "deliveries", _, "retry"] => {
                "/api/v1/channels/{id}/deliveries/{delivery}/retry"
            }
            ["schedules"] => "/api/v1/schedules",
            ["schedules", "preview"] => "/api/v1/schedules/preview",
            ["schedules", _] => "/api/v1/schedules/{id}",
            ["schedules", _, "pause"] => "/api/v1/schedules/{id}/pause",
            ["schedules", _, "resume"] => "/api/v1/schedules/{id}/resume",
            ["schedules", _, "runs"] => "/api/v1/schedules/{id}/runs",
            ["mcp-servers"] => "/api/v1/mcp-servers",
            ["mcp-servers", _] => "/api/v1/mcp-servers/{id}",
            ["mcp-servers", _, "reconnect"] => "/api/v1/mcp-servers/{id}/reconnect",
            ["mcp-servers", _, "tools"] => "/api/v1/mcp-servers/{id}/tools",
            ["ws"] => "/api/v1/ws",
            ["sandboxes", "storage"] => "/api/v1/sandboxes/storage",
            ["sandboxes", _] => "/api/v1/sandboxes/{id}",
            ["sandboxes", _, "stop"] => "/api/v1/sandboxes/{id}/stop",
            ["sandboxes", _, "exec"] => "/api/v1/sandboxes/{id}/exec",
            ["sandboxes", _, "exec", "ws"] => "/api/v1/sandboxes/{id}/exec/ws",
            ["sandboxes", _, "terminal"] => "/api/v1/sandboxes/{id}/terminal",
            ["sandboxes", _, "stats"] => "/api/v1/sandboxes/{id}/stats",
            ["sandboxes", _, "files"] => "/api/v1/sandboxes/{id}/files",
            ["sandboxes", _, "file"] => "/api/v1/sandboxes/{id}/file",
            _ => "unmatched",
        },
        _ => CONSOLE_ROUTE,
    }
}
