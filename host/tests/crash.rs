//! Crash safety of the task queue: a real `switchyard serve` process is killed
//! with SIGKILL while an exec task and an agent task run, then started again
//! on the same data (SQLite, and a real Postgres). No task is left `running`,
//! every task's events are contiguous from 1 with nothing a follower saw
//! before the kill missing after it, the command that was running fails with
//! `host_restarted` (a command never runs twice), the task queued behind it
//! runs, and the agent task resumes from its last completed step with the
//! tool call that was in flight reported to the model as interrupted.

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
        "[tasks]\nlease_secs = 3\n\n[sandbox]\nwarm_pool = 0\n",
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
