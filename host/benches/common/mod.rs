//! What the server benchmarks share: a raw hyper load client, latency
//! statistics, process CPU accounting, servers on the serve loop, the bare warp
//! echo floor, and closed-loop throughput.

#![allow(dead_code, missing_docs)]

use hyper::body::{Body, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use warp::{Filter, Rejection, Reply};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The component of package `name` built by `scripts/build-plugins`.
pub fn component_bytes(name: &str) -> Vec<u8> {
    let path = target_dir().join(format!("packages/{name}/{name}.wasm"));
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/build-plugins first", path.display()))
}

pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------
// The load client: one raw hyper HTTP/1.1 connection per task.

/// A keep-alive HTTP/1.1 connection with TCP_NODELAY and prebuilt headers.
pub struct Client {
    pub sender: SendRequest<String>,
    pub host: HeaderValue,
    pub json: HeaderValue,
    pub bearer: Option<HeaderValue>,
    /// Sent with every request (e.g. MCP's `accept` and `mcp-session-id`).
    pub extra: Vec<(HeaderName, HeaderValue)>,
}

impl Client {
    pub async fn connect(addr: SocketAddr, token: Option<&str>) -> Result<Self, BoxError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("client connection error: {e}");
            }
        });
        Ok(Self {
            sender,
            host: HeaderValue::from_str(&addr.to_string())?,
            json: HeaderValue::from_static("application/json"),
            bearer: token
                .map(|t| HeaderValue::from_str(&format!("Bearer {t}")))
                .transpose()?,
            extra: Vec::new(),
        })
    }

    /// POST `body` to `path`; returns the status and the response body length.
    pub async fn post(
        &mut self,
        path: &'static str,
        body: &str,
    ) -> Result<(StatusCode, Vec<u8>), BoxError> {
        let (status, _, body) = self.exchange(Method::POST, path, body).await?;
        Ok((status, body))
    }

    /// Send `method path` with `body`; returns the status, headers and body.
    pub async fn exchange(
        &mut self,
        method: Method,
        path: &'static str,
        body: &str,
    ) -> Result<(StatusCode, hyper::HeaderMap, Vec<u8>), BoxError> {
        self.sender.ready().await?;
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, self.json.clone());
        if let Some(bearer) = &self.bearer {
            builder = builder.header(AUTHORIZATION, bearer.clone());
        }
        for (name, value) in &self.extra {
            builder = builder.header(name, value.clone());
        }
        let response = self
            .sender
            .send_request(builder.body(body.to_string())?)
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_body(response.into_body()).await?;
        Ok((status, headers, body))
    }

    /// POST and require a 200; returns nothing (the hot loop).
    pub async fn call(&mut self, path: &'static str, body: &str) -> Result<(), BoxError> {
        let (status, body) = self.post(path, body).await?;
        if status != StatusCode::OK {
            return Err(format!(
                "{path} answered {status}: {}",
                String::from_utf8_lossy(&body)
            )
            .into());
        }
        Ok(())
    }
}

pub async fn read_body(mut body: Incoming) -> Result<Vec<u8>, BoxError> {
    let mut out = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame?.into_data() {
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Statistics and process accounting.

#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub mean: f64,
    pub n: usize,
}

impl Latency {
    pub fn of(samples: &mut [Duration]) -> Self {
        samples.sort_unstable();
        let n = samples.len();
        let at = |p: f64| {
            let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
            samples[rank - 1].as_secs_f64() * 1e6
        };
        let mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() / n as f64 * 1e6;
        Self {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            mean,
            n,
        }
    }

    pub fn json(&self) -> Value {
        json!({ "p50_us": round1(self.p50), "p90_us": round1(self.p90), "p99_us": round1(self.p99),
                "mean_us": round1(self.mean), "calls": self.n })
    }
}

pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// CPU seconds (user + system) from a `/proc/.../stat` file (clock ticks of 10 ms).
pub fn cpu_seconds(stat_file: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_file).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // After the name: state is field 3, utime field 14, stime field 15.
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(14) + ticks(15)) as f64 / 100.0
}

/// CPU used by the whole process and by the calling thread so far.
pub fn cpu_now() -> (f64, f64) {
    (
        cpu_seconds("/proc/self/stat"),
        cpu_seconds("/proc/thread-self/stat"),
    )
}

pub fn status_field_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

// ---------------------------------------------------------------------------
// Servers.

/// A server running on the server runtime until dropped.
pub struct Running {
    pub addr: SocketAddr,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub fn start<F>(rt: &tokio::runtime::Runtime, filter: F) -> Result<Self, BoxError>
    where
        F: Filter<Extract = (warp::reply::Response,), Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
    {
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = rt.spawn(switchyard::api::serve::serve(
            listener,
            filter,
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(5),
        ));
        Ok(Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn stop(mut self, rt: &tokio::runtime::Runtime) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = rt.block_on(task);
        }
    }
}

/// The floor: a bare warp JSON echo, nothing of switchyard but the accept loop.
pub fn floor_filter()
-> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone + Send + Sync + 'static
{
    warp::path!("echo")
        .and(warp::post())
        .and(warp::body::json())
        .map(|v: Value| warp::reply::json(&v).into_response())
        .recover(|_: Rejection| async {
            Ok::<_, Infallible>(StatusCode::NOT_FOUND.into_response())
        })
        .unify()
}

#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    pub connections: usize,
    pub calls_per_sec: f64,
    /// Process CPU minus the client thread's, per call.
    pub server_cpu_us_per_call: f64,
    pub client_cpu_us_per_call: f64,
    pub latency: Latency,
}

impl Throughput {
    pub fn json(&self) -> Value {
        json!({
            "connections": self.connections,
            "calls_per_sec": self.calls_per_sec.round(),
            "server_cpu_us_per_call": round1(self.server_cpu_us_per_call),
            "client_cpu_us_per_call": round1(self.client_cpu_us_per_call),
            "latency": self.latency.json(),
        })
    }
}

/// `n` plain keep-alive connections to `addr`.
pub async fn connect_many(
    addr: SocketAddr,
    token: Option<&str>,
    n: usize,
) -> Result<Vec<Client>, BoxError> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(Client::connect(addr, token).await?);
    }
    Ok(clients)
}

/// Closed loop: `clients` each sending the next request as soon as
/// the previous answer arrived, for `secs`.
pub async fn closed_loop(
    clients: Vec<Client>,
    path: &'static str,
    body: &'static str,
    secs: f64,
) -> Result<Throughput, BoxError> {
    let connections = clients.len();
    let mut clients = clients;
    for c in &mut clients {
        for _ in 0..20 {
            c.call(path, body).await?;
        }
    }
    let window = Duration::from_secs_f64(secs);
    let (cpu0, client_cpu0) = cpu_now();
    let start = Instant::now();
    let deadline = start + window;
    let mut tasks = tokio::task::JoinSet::new();
    for mut c in clients {
        tasks.spawn(async move {
            let mut samples = Vec::with_capacity(1 << 16);
            while Instant::now() < deadline {
                let t = Instant::now();
                c.call(path, body).await?;
                let done = Instant::now();
                if done <= deadline {
                    samples.push(done - t);
                }
            }
            Ok::<_, BoxError>(samples)
        });
    }
    let mut all = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined??);
    }
    let elapsed = start.elapsed().as_secs_f64().max(secs);
    let (cpu1, client_cpu1) = cpu_now();
    let calls = all.len().max(1) as f64;
    let client_cpu = client_cpu1 - client_cpu0;
    Ok(Throughput {
        connections,
        calls_per_sec: calls / elapsed,
        server_cpu_us_per_call: ((cpu1 - cpu0) - client_cpu).max(0.0) / calls * 1e6,
        client_cpu_us_per_call: client_cpu / calls * 1e6,
        latency: Latency::of(&mut all),
    })
}

/// Log in with the REST API; returns the access token.
pub async fn login(http: &reqwest::Client, base: &str) -> Result<String, BoxError> {
    let response = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": "admin", "password": "benchpass1" }))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    body.get("access_token")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("login answered {status}: {body}").into())
}

/// Upload and grant the echo package with the REST API.
pub async fn install_echo(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    package: &Path,
) -> Result<(), BoxError> {
    let bytes = std::fs::read(package)?;
    let response = http
        .post(format!("{base}/api/v1/plugins?grant=true"))
        .bearer_auth(token)
        .header("content-type", "application/gzip")
        .body(bytes)
        .send()
        .await?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("install answered {status}: {}", response.text().await?).into());
    }
    Ok(())
}

/// Open services over a fresh data dir `data` (artifact cache in the target dir)
/// with user `admin` (password `benchpass1`), and serve every route on `rt`.
pub fn serve_api(
    rt: &tokio::runtime::Runtime,
    data: &Path,
) -> Result<(Running, std::sync::Arc<switchyard::server::Services>), BoxError> {
    let mut config = switchyard::config::Config::new(data);
    config.cache_dir = target_dir().join("bench-artifact-cache");
    let services = rt.block_on(async {
        let services = switchyard::server::Services::open(config).await?;
        let hash = switchyard::auth::password::hash("benchpass1")?;
        services
            .store
            .create_user("admin", &hash, switchyard::store::Role::Admin)
            .await?;
        Ok::<_, BoxError>(services)
    })?;
    let routes = {
        let _runtime = rt.enter();
        switchyard::api::routes(services.clone())
    };
    Ok((Running::start(rt, routes)?, services))
}

// ---------------------------------------------------------------------------
// MCP sessions.

/// The MCP endpoint.
pub const MCP_PATH: &str = "/mcp";
const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// A connection that accepts MCP answers; `initialize` makes it a session.
pub async fn mcp_connect(addr: SocketAddr, token: &str) -> Result<Client, BoxError> {
    let mut c = Client::connect(addr, Some(token)).await?;
    c.extra.push((
        ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    ));
    Ok(c)
}

/// Open a session on `c`; returns its id (sent with every later request).
pub async fn initialize(c: &mut Client) -> Result<HeaderValue, BoxError> {
    c.extra.retain(|(n, _)| n != "mcp-session-id");
    let (status, headers, body) = c.exchange(Method::POST, MCP_PATH, INITIALIZE).await?;
    let session = headers.get("mcp-session-id").cloned().ok_or_else(|| {
        format!(
            "initialize answered {status}: {}",
            String::from_utf8_lossy(&body)
        )
    })?;
    c.extra
        .push((HeaderName::from_static("mcp-session-id"), session.clone()));
    let (status, _) = c.post(MCP_PATH, INITIALIZED).await?;
    if status != StatusCode::ACCEPTED {
        return Err(format!("initialized answered {status}").into());
    }
    Ok(session)
}

pub async fn mcp_session(addr: SocketAddr, token: &str) -> Result<Client, BoxError> {
    let mut c = mcp_connect(addr, token).await?;
    initialize(&mut c).await?;
    Ok(c)
}
