//! Schedules across real `switchyard serve` processes: two hosts on one
//! Postgres decide every slot of a one-second schedule exactly once between
//! them, and a host killed with SIGKILL and started again on its SQLite data
//! neither loses nor repeats a run.

mod common;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PASSWORD: &str = "schedule-test-password";

/// Tasks are held `pending` (no dispatcher slots), so runs are all that
/// happens; the interval floor is lowered so a test takes seconds.
const CONFIG: &str = "[schedules]\nmin_interval_secs = 1\npoll_secs = 1\n\n[tasks]\nmax_running = 0\n\n[sandbox]\nwarm_pool = 0\n";

fn serve(data: &std::path::Path, database: Option<&str>) -> (Child, String) {
    let config = data.join("schedules.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.arg("--data-dir")
        .arg(data)
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SWITCHYARD_ADMIN_PASSWORD", PASSWORD)
        .env(
            "SWITCHYARD_JWT_SECRET",
            "a-secret-shared-by-both-hosts-of-this-test",
        )
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
    std::thread::spawn(move || for _ in lines {});
    (child, base)
}

fn kill9(child: &mut Child) {
    let ok = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let _ = child.wait();
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

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    async fn every_second(&self) -> String {
        let created = self
            .send(
                reqwest::Method::POST,
                "/api/v1/schedules",
                Some(json!({ "name": "every second", "trigger": { "type": "interval", "every_secs": 1 },
                             "task": { "kind": "exec", "input": { "command": "true" } },
                             "overlap": "allow_all", "catchup": "all", "catchup_max": 100 })),
            )
            .await;
        created["id"].as_str().unwrap().to_string()
    }

    /// Pause the schedule and check its history: every slot from the first to
    /// the last started exactly once, each with its own task from the schedule.
    async fn check_every_slot_once(&self, id: &str) -> usize {
        self.send(
            reqwest::Method::POST,
            &format!("/api/v1/schedules/{id}/pause"),
            None,
        )
        .await;
        let runs = self
            .send(
                reqwest::Method::GET,
                &format!("/api/v1/schedules/{id}/runs?limit=500"),
                None,
            )
            .await;
        let mut items = runs["items"].as_array().unwrap().clone();
        items.reverse();
        assert!(items.iter().all(|r| r["state"] == "started"), "{items:?}");
        let slots: Vec<i64> = items
            .iter()
            .map(|r| r["slot_ms"].as_i64().unwrap())
            .collect();
        for pair in slots.windows(2) {
            assert_eq!(
                pair[1] - pair[0],
                1000,
                "a slot lost or repeated: {slots:?}"
            );
        }
        let mut task_ids: Vec<&str> = items
            .iter()
            .map(|r| r["task_id"].as_str().unwrap())
            .collect();
        task_ids.sort_unstable();
        task_ids.dedup();
        assert_eq!(task_ids.len(), items.len());
        let tasks = self
            .send(
                reqwest::Method::GET,
                "/api/v1/tasks?origin=schedule&limit=500",
                None,
            )
            .await;
        assert_eq!(
            tasks["items"].as_array().unwrap().len(),
            items.len(),
            "one task per run"
        );
        items.len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_on_one_postgres_decide_each_slot_once() {
    let url = common::fresh_postgres().await;
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, a_base) = serve(a_dir.path(), Some(&url));
    let (mut b, b_base) = serve(b_dir.path(), Some(&url));
    let api = Api::login(&a_base).await;
    let id = api.every_second().await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    // The other host serves the same schedule.
    let other = Api::login(&b_base).await;
    let seen = other
        .send(
            reqwest::Method::GET,
            &format!("/api/v1/schedules/{id}"),
            None,
        )
        .await;
    assert_eq!(seen["name"], "every second");
    let n = api.check_every_slot_once(&id).await;
    assert!(n >= 5, "only {n} runs in 8 s");
    kill9(&mut a);
    kill9(&mut b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_mid_schedule_neither_loses_nor_repeats_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let (mut host, base) = serve(dir.path(), None);
    let api = Api::login(&base).await;
    let id = api.every_second().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    kill9(&mut host);
    // Down for two seconds: those slots are started after the restart.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (mut host, base) = serve(dir.path(), None);
    let api = Api::login(&base).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let n = api.check_every_slot_once(&id).await;
    assert!(n >= 6, "only {n} runs in 8 s");
    kill9(&mut host);
}
