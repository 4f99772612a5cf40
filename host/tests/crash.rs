//! Crash safety of the task queue: a real `switchyard serve` process is killed
//! with SIGKILL while an exec task and an agent task run, then started again
//! on the same data (SQLite, and a real Postgres). No task is left `running`,
//! every task's events are contiguous from 1 with nothing a follower saw
//! before the kill missing after it, the command that was running fails with
//! `host_restarted` (a command never runs twice), the task queued behind it
//! runs, and the agent task resumes from its last completed step with the
//! tool call that was in flight reported to the model as interrupted. A
//! channel reply cut off mid-send by SIGKILL shows as `unknown` after the
//! restart and is sent again once, with the same idempotency key.

mod common;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use switchyard_fake_llm::{FakeLlm, Reply};

const PASSWORD: &str = "crash-test-password";

/// A `serve` process on `data` (and `database`, when given), its LLM the fake.
fn serve(data: &std::path::Path, database: Option<&str>, llm: &FakeLlm) -> (Child, String) {
    let config = data.join("crash.toml");
    std::fs::write(
        &config,
        "[tasks]\nlease_secs = 3\n\n[sandbox]\nwarm_pool = 0\n\n[channels]\ndelivery_lease_secs = 3\ndelivery_backoff_secs = 1\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.arg("--data-dir")
        .arg(data)
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SWITCHYARD_ADMIN_PASSWORD", PASSWORD)
        .env("SWITCHYARD_LLM_PROVIDER", "openai")
        .env("SWITCHYARD_LLM_BASE_URL", llm.base_url_openai())
        .env("SWITCHYARD_LLM_MODEL", "fake-model")
        .env("SWITCHYARD_LLM_API_KEY", "sk-crash")
        .env_remove("SWITCHYARD_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(data.join("serve.log"))
                .unwrap(),
        ));
    if let Some(url) = database {
        cmd.env("SWITCHYARD_DATABASE_URL", url);
    }
    let mut child = cmd.spawn().expect("start switchyard serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("listening on http://"), "{first}");
    let base = first.rsplit(' ').next().unwrap().to_string();
    // Keep reading the banner so the process never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, base)
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn login(base: &str) -> Self {
        let http = reqwest::Client::new();
        let login: Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({ "username": "admin", "password": PASSWORD }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self {
            http,
            base: base.into(),
            token: login["access_token"].as_str().expect("a token").into(),
        }
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    async fn events(&self, task: &str) -> Vec<Value> {
        let page = self
            .get(&format!("/api/v1/tasks/{task}/events?limit=1000"))
            .await;
        page["items"].as_array().unwrap().clone()
    }

    async fn wait_final(&self, task: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let t = self.get(&format!("/api/v1/tasks/{task}")).await;
            if ["completed", "failed", "canceled"]
                .iter()
                .any(|s| t["status"] == *s)
            {
                return t;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never finished: {t}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The end of the servers' log, for a failure message.
fn log_tail(data: &std::path::Path) -> String {
    let log = std::fs::read_to_string(data.join("serve.log")).unwrap_or_default();
    let start = log.len().saturating_sub(6000);
    let start = (start..log.len())
        .find(|i| log.is_char_boundary(*i))
        .unwrap_or(0);
    log[start..].to_string()
}

fn kill9(child: &mut Child) {
    let ok = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -KILL");
    let _ = child.wait();
}

fn assert_contiguous(events: &[Value]) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["seq"], i as i64 + 1, "contiguous seqs: {events:#?}");
    }
}

async fn killed_mid_task_then_restarted(database: Option<String>) {
    let data = tempfile::TempDir::new().unwrap();
    let llm = FakeLlm::start().await;
    let (mut first, base) = serve(data.path(), database.as_deref(), &llm);
    let api = Api::login(&base).await;
    // An agent task whose second step is a long command: killed while it runs.
    llm.push(Reply::tool_call(
        "c1",
        "sandbox_exec",
        r#"{"command": "echo step one"}"#,
    ));
    llm.push(Reply::tool_call(
        "c2",
        "sandbox_exec",
        r#"{"command": "sleep 120"}"#,
    ));
    let agent = api
        .post(
            "/api/v1/tasks",
            json!({ "kind": "agent", "input": { "content": "do two things" } }),
        )
        .await;
    let agent_id = agent["id"].as_str().unwrap().to_string();
    let long = api
        .post(
            "/api/v1/tasks",
            json!({ "kind": "exec", "input": { "command": "for i in $(seq 1 600); do echo tick $i; sleep 0.1; done" } }),
        )
        .await;
    let long_id = long["id"].as_str().unwrap().to_string();
    let session = long["session_id"].as_str().unwrap().to_string();
    let queued = api
        .post(
            "/api/v1/tasks",
            json!({ "kind": "exec", "session_id": session, "input": { "command": "echo after the restart" } }),
        )
        .await;
    let queued_id = queued["id"].as_str().unwrap().to_string();
    // Follow until a few ticks were seen.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let seen = loop {
        let evs = api.events(&long_id).await;
        let ticks = evs.iter().filter(|e| e["type"] == "output").count();
        if ticks >= 3 {
            break evs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no output: {evs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // ... and until the agent's second call is under way.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let agent_seen = loop {
        let evs = api.events(&agent_id).await;
        let calls = evs.iter().filter(|e| e["type"] == "tool_call").count();
        let results = evs.iter().filter(|e| e["type"] == "tool_result").count();
        if calls == 2 && results == 1 {
            break evs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent never got to its second call: {evs:#?}\nserver log:\n{}",
            log_tail(data.path())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    kill9(&mut first);

    llm.push(Reply::text(
        "The long command was interrupted; stopping here.",
    ));
    let (mut second, base) = serve(data.path(), database.as_deref(), &llm);
    let api = Api::login(&base).await;
    let agent = api.wait_final(&agent_id).await;
    assert_eq!(
        agent["status"], "completed",
        "the agent task resumed: {agent}"
    );
    assert_eq!(agent["attempt"], 2, "{agent}");
    let agent_after = api.events(&agent_id).await;
    assert_contiguous(&agent_after);
    assert_eq!(&agent_after[..agent_seen.len()], &agent_seen[..]);
    let interrupted: Vec<&Value> = agent_after
        .iter()
        .filter(|e| e["type"] == "tool_result" && e["data"]["interrupted"] == true)
        .collect();
    assert_eq!(interrupted.len(), 1, "{agent_after:#?}");
    assert_eq!(interrupted[0]["data"]["id"], "c2");
    let requests = llm.requests();
    let last = requests.last().unwrap();
    let told = last.body["messages"].as_array().unwrap().iter().any(|m| {
        m["role"] == "tool"
            && m["tool_call_id"] == "c2"
            && m["content"].as_str().unwrap_or("").contains("interrupted")
    });
    assert!(
        told,
        "the model was told the call was interrupted: {}",
        last.body
    );
    let first_steps = requests
        .iter()
        .filter(|r| r.body["messages"].as_array().is_some_and(|m| m.len() == 1))
        .count();
    assert_eq!(first_steps, 1, "the first step was not asked again");
    let long = api.wait_final(&long_id).await;
    assert_eq!(long["status"], "failed", "{long}");
    assert_eq!(long["error"]["code"], "host_restarted", "{long}");
    let after = api.events(&long_id).await;
    assert_contiguous(&after);
    assert_eq!(
        &after[..seen.len()],
        &seen[..],
        "everything a follower saw before the kill is still there, unchanged"
    );
    assert_eq!(after.last().unwrap()["type"], "done");
    assert!(
        after.iter().any(|e| e["data"]["status"] == "failed"),
        "{after:#?}"
    );
    // The queued task ran on the restarted host, in the same sandbox.
    let q = api.wait_final(&queued_id).await;
    assert_eq!(q["status"], "completed", "{q}");
    let qe = api.events(&queued_id).await;
    assert_contiguous(&qe);
    assert!(
        qe.iter()
            .any(|e| e["data"]["text"] == "after the restart\n")
    );
    let history = api
        .get(&format!(
            "/api/v1/sessions/{}/messages",
            agent["session_id"].as_str().unwrap()
        ))
        .await;
    let results = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool_result")
        .count();
    assert_eq!(results, 2, "one result per call, none twice: {history}");
    let running = api.get("/api/v1/tasks?status=running&all=true").await;
    assert_eq!(running["items"], json!([]), "no task is left running");
    // The sandbox survived the crash.
    let sandboxes = api.get("/api/v1/sandboxes?all=true").await;
    for s in sandboxes["items"].as_array().unwrap() {
        api.http
            .delete(format!(
                "{base}/api/v1/sandboxes/{}",
                s["id"].as_str().unwrap()
            ))
            .bearer_auth(&api.token)
            .send()
            .await
            .unwrap();
    }
    kill9(&mut second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_task_on_sqlite() {
    killed_mid_task_then_restarted(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_task_on_postgres() {
    killed_mid_task_then_restarted(Some(common::fresh_postgres().await)).await;
}

/// A callback endpoint that records every request and never answers the first
/// one (the host is killed while it waits); later ones get 200.
struct Stall {
    addr: std::net::SocketAddr,
    keys: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Stall {
    async fn start() -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let keys = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = keys.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head and the body its content-length announces.
                let request = loop {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        break None;
                    };
                    if n == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let head = text[..end].to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break Some(head);
                        }
                    }
                };
                let Some(head) = request else { continue };
                let key = head
                    .lines()
                    .find_map(|l| l.strip_prefix("idempotency-key:"))
                    .unwrap_or("")
                    .trim()
                    .to_string();
                let first = {
                    let mut keys = seen.lock().unwrap();
                    keys.push(key);
                    keys.len() == 1
                };
                if first {
                    held.push(socket);
                } else {
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                }
            }
        });
        Self { addr, keys, task }
    }

    fn keys(&self) -> Vec<String> {
        self.keys.lock().unwrap().clone()
    }
}

impl Drop for Stall {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn reply_cut_off_mid_send_is_sent_again_once(database: Option<String>) {
    use hmac::Mac;
    const SECRET: &str = "crash-webhook-secret";
    let data = tempfile::TempDir::new().unwrap();
    let llm = FakeLlm::start().await;
    let callback = Stall::start().await;
    let (mut first, base) = serve(data.path(), database.as_deref(), &llm);
    let api = Api::login(&base).await;
    let package = std::fs::read(common::archive("webhook")).unwrap();
    let up = api
        .http
        .post(format!("{base}/api/v1/plugins?grant=true"))
        .bearer_auth(&api.token)
        .header("content-type", "application/gzip")
        .body(package)
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), 201);
    api.post(
        "/api/v1/plugins/webhook/grants",
        json!({ "http": [format!("127.0.0.1:{}", callback.addr.port())], "secrets": ["signing_secret"] }),
    )
    .await;
    api.post(
        "/api/v1/channels",
        json!({
            "plugin": "webhook",
            "config": { "callback_url": format!("http://{}/result", callback.addr) },
            "secrets": { "signing_secret": SECRET },
        }),
    )
    .await;
    llm.set_responder(|_, _| Reply::text("the result"));
    let body = json!({ "conversation": "c1", "text": "hello", "id": "delivery-1" }).to_string();
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let hook = api
        .http
        .post(format!("{base}/api/v1/channels/webhook/webhook"))
        .header("x-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), 202);
    // Kill the host while the callback holds the first attempt open.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while callback.keys().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reply never went out:\n{}",
            log_tail(data.path())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    kill9(&mut first);

    let (mut second, base) = serve(data.path(), database.as_deref(), &llm);
    let api = Api::login(&base).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while callback.keys().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cut-off reply was never sent again:\n{}",
            log_tail(data.path())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tasks = api.get("/api/v1/tasks?origin=webhook").await;
    let items = tasks["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "one task: {tasks}");
    let id = items[0]["id"].as_str().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let states = loop {
        let states: Vec<String> = api
            .events(id)
            .await
            .iter()
            .filter(|e| e["type"] == "delivery")
            .map(|e| e["data"]["state"].as_str().unwrap_or("").to_string())
            .collect();
        if states.last().is_some_and(|s| s == "delivered") {
            break states;
        }
        assert!(tokio::time::Instant::now() < deadline, "{states:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let unknown = states
        .iter()
        .position(|s| s == "unknown")
        .expect("an unknown attempt");
    assert!(unknown < states.len() - 1, "{states:?}");
    assert_contiguous(&api.events(id).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let keys = callback.keys();
    assert_eq!(keys.len(), 2, "sent once more, not again: {keys:?}");
    assert!(
        !keys[0].is_empty() && keys[0] == keys[1],
        "same idempotency key: {keys:?}"
    );
    kill9(&mut second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_reply_on_sqlite() {
    reply_cut_off_mid_send_is_sent_again_once(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_reply_on_postgres() {
    reply_cut_off_mid_send_is_sent_again_once(Some(common::fresh_postgres().await)).await;
}
