//! A scripted fake LLM provider for switchyard's tests and benchmarks.
//!
//! The real providers cannot run here (no network, no keys, no determinism), so the host's
//! provider clients and the agent loop are tested against this double: a real HTTP/1.1 server
//! on `127.0.0.1:0` that speaks both streaming protocols as the providers document them —
//! OpenAI chat completions on `POST /v1/chat/completions` (chunks, `data: [DONE]`, usage when
//! `stream_options.include_usage` asks for it) and Anthropic Messages on `POST /v1/messages`
//! (`event:`/`data:` pairs from `message_start` to `message_stop`, with a `ping`).
//!
//! Replies are scripted protocol-neutrally with [`Reply`] and rendered for the route that was
//! hit: queued ones ([`FakeLlm::push`]) are served in order, and when the queue is empty a
//! [`FakeLlm::set_responder`] function computes one from the request. Every request is
//! recorded ([`FakeLlm::requests`]) for assertions. Each event is written as two body chunks
//! split in its middle, so clients see events cut at arbitrary bytes, as on a real network.
//!
//! ```no_run
//! # async fn demo() {
//! use switchyard_fake_llm::{FakeLlm, Reply};
//! let llm = FakeLlm::start().await;
//! llm.push(Reply::status(500, "{}"));
//! llm.push(Reply::text("Hello there"));
//! let _openai = llm.base_url_openai(); // http://127.0.0.1:PORT/v1
//! # }
//! ```

mod render;
mod reply;

pub use reply::Reply;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use render::{After, Context};
use reply::Kind;
use serde_json::Value;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context as TaskContext, Poll};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

/// The wire protocol of the route a request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `POST /v1/chat/completions`.
    OpenAi,
    /// `POST /v1/messages`.
    Anthropic,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The method, e.g. `POST`.
    pub method: String,
    /// The path, e.g. `/v1/messages`.
    pub path: String,
    /// The headers, names in lowercase, in the order they came.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON (`Null` when it was not JSON).
    pub body: Value,
}

impl Recorded {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A reply computed from a request body.
type Responder = Arc<dyn Fn(&Value, Protocol) -> Reply + Send + Sync>;

#[derive(Default)]
struct State {
    queue: VecDeque<Reply>,
    requests: Vec<Recorded>,
    responder: Option<Responder>,
}

/// The running fake server. Dropping it stops the server and every connection.
pub struct FakeLlm {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for FakeLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeLlm")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeLlm {
    /// Starts a server on `127.0.0.1:0` (panics when no loopback port can be bound).
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake-llm: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake-llm: local address");
        let state = Arc::new(Mutex::new(State::default()));
        let task = tokio::spawn(accept(listener, Arc::clone(&state)));
        Self { addr, state, task }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL for an OpenAI-compatible client: `http://127.0.0.1:PORT/v1`.
    pub fn base_url_openai(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The base URL for an Anthropic client: `http://127.0.0.1:PORT`.
    pub fn base_url_anthropic(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues a reply; queued replies are served in order, to either route.
    pub fn push(&self, reply: Reply) {
        self.lock().queue.push_back(reply);
    }

    /// Computes replies from the request body when the queue is empty (without one, an empty
    /// queue answers 500 with a message saying so).
    pub fn set_responder(
        &self,
        responder: impl Fn(&Value, Protocol) -> Reply + Send + Sync + 'static,
    ) {
        self.lock().responder = Some(Arc::new(responder));
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// How many requests were received so far.
    pub fn request_count(&self) -> usize {
        self.lock().requests.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Accepts connections until the server is dropped (which aborts this task and, with the
/// join set, every connection).
async fn accept(listener: TcpListener, state: Arc<Mutex<State>>) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, say: let connections finish before accepting again.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(req, Arc::clone(&state)));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Records one request and answers it with the next reply.
async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
) -> Result<Response<ChannelBody>, Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let protocol = match (method.as_str(), path.as_str()) {
        ("POST", "/v1/chat/completions") => Some(Protocol::OpenAi),
        ("POST", "/v1/messages") => Some(Protocol::Anthropic),
        _ => None,
    };
    let (queued, responder, number) = {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        state.requests.push(Recorded {
            method,
            path: path.clone(),
            headers,
            body: body.clone(),
        });
        let number = state.requests.len() as u64;
        (state.queue.pop_front(), state.responder.clone(), number)
    };
    let Some(protocol) = protocol else {
        let body = format!("{{\"error\":{{\"message\":\"fake-llm: no route for {path}\"}}}}");
        return Ok(full(StatusCode::NOT_FOUND, body, None));
    };
    let reply = match (queued, responder) {
        (Some(reply), _) => reply,
        (None, Some(responder)) => responder(&body, protocol),
        (None, None) => Reply::api_error(500, "fake-llm: no reply was queued for this request"),
    };
    Ok(respond(protocol, reply, &body, number).await)
}

/// The response for `reply` on `protocol`'s route.
async fn respond(
    protocol: Protocol,
    reply: Reply,
    body: &Value,
    number: u64,
) -> Response<ChannelBody> {
    let ctx = Context { body, number };
    match &reply.kind {
        Kind::HangBeforeHeaders => std::future::pending().await,
        Kind::Status { code, body } => {
            full(status(*code), body.clone(), reply.retry_after.as_deref())
        }
        Kind::ApiError { code, message } => full(
            status(*code),
            render::error_body(protocol, *code, message),
            reply.retry_after.as_deref(),
        ),
        Kind::Stream { parts, end } => {
            let script = render::stream(protocol, &reply, parts, end, &ctx);
            let (tx, rx) = mpsc::channel(16);
            tokio::spawn(produce(script, reply.delay, tx));
            let mut response = Response::new(ChannelBody { rx });
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
    }
}

/// Writes a stream's events, each as two chunks split in its middle.
async fn produce(script: render::Script, delay: std::time::Duration, tx: Sender) {
    for event in script.events {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let bytes = Bytes::from(event);
        let middle = bytes.len() / 2;
        for part in [bytes.slice(..middle), bytes.slice(middle..)] {
            if !part.is_empty() && tx.send(Ok(part)).await.is_err() {
                return;
            }
        }
    }
    match script.after {
        After::Close => {}
        After::Hang => tx.closed().await,
        After::Abort => {
            // Give the connection time to flush what was sent: the client must see it first.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let _ = tx
                .send(Err(std::io::Error::other(
                    "fake-llm: connection dropped mid-stream",
                )))
                .await;
        }
    }
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A response with a whole JSON body.
fn full(status: StatusCode, body: String, retry_after: Option<&str>) -> Response<ChannelBody> {
    let (tx, rx) = mpsc::channel(1);
    let _ = tx.try_send(Ok(Bytes::from(body)));
    let mut response = Response::new(ChannelBody { rx });
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert(RETRY_AFTER, value);
    }
    response
}

/// The sending side of a [`ChannelBody`]; an `Err` aborts the connection.
type Sender = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// A response body fed from a channel.
struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|r| r.map(Frame::data)))
    }
}
