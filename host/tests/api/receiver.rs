//! A local stand-in for the providers' APIs replies are sent to (GitHub's
//! comments, a webhook callback): it records every request, can fail the next
//! N posts with 502, and lists posted comments back on `GET …/comments`.

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use warp::Filter;
use warp::http::{HeaderMap, Method, StatusCode};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// Whether it was answered with success.
    pub ok: bool,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct State {
    received: Mutex<Vec<Received>>,
    fail_next: AtomicUsize,
}

/// The running receiver.
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start() -> Self {
        let state = Arc::new(State::default());
        let shared = state.clone();
        let route = warp::method()
            .and(warp::path::full())
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .map(
                move |method: Method, path: warp::path::FullPath, headers, body: bytes::Bytes| {
                    let path = path.as_str().to_string();
                    let state = &shared;
                    let posts = |st: &State| -> Vec<Value> {
                        st.received
                            .lock()
                            .unwrap()
                            .iter()
                            .filter(|r| r.method == "POST" && r.ok)
                            .map(|r| json!({ "body": r.json()["body"] }))
                            .collect()
                    };
                    if method == Method::GET {
                        let list = posts(state);
                        return warp::reply::with_status(warp::reply::json(&list), StatusCode::OK);
                    }
                    let failing = state
                        .fail_next
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    state.received.lock().unwrap().push(Received {
                        method: method.to_string(),
                        path,
                        headers,
                        body: body.to_vec(),
                        ok: !failing,
                    });
                    if failing {
                        return warp::reply::with_status(
                            warp::reply::json(&json!({ "message": "bad gateway" })),
                            StatusCode::BAD_GATEWAY,
                        );
                    }
                    warp::reply::with_status(
                        warp::reply::json(&json!({ "ok": true, "id": posts(state).len() })),
                        StatusCode::CREATED,
                    )
                },
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(warp::serve(route).incoming(listener).run());
        Self { addr, state, task }
    }

    /// Answer the next `n` posts with 502.
    pub fn fail_next(&self, n: usize) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// The posts received so far (failed ones included; see `ok`).
    pub fn posts(&self) -> Vec<Received> {
        self.state
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == "POST")
            .cloned()
            .collect()
    }

    /// Wait until `n` posts arrived (panics after 60 s).
    pub async fn wait_posts(&self, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let posts = self.posts();
            if posts.len() >= n {
                return posts;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {n} posts arrived",
                posts.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
