//! The `switchyard` binary as a user runs it: help, install, inspect, tool calls
//! and their exit codes, secrets from stdin, and the scaffold → build → install →
//! call flow for every plugin kind, outside the repository.

mod common;
#[path = "cli/scaffolds.rs"]
mod scaffolds;

use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use tempfile::TempDir;

fn switchyard(data: &Path, args: &[&str]) -> Output {
    run(data, args, None, &[])
}

fn run(data: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.arg("--data-dir")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn switchyard");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "failed: {}\n{}", stdout(&o), stderr(&o));
    stdout(&o)
}

#[test]
fn help_covers_every_command() {
    let data = TempDir::new().unwrap();
    let top = ok(switchyard(data.path(), &["--help"]));
    assert!(
        top.contains("plugin")
            && top.contains("tool")
            && top.contains("image")
            && top.contains("--data-dir"),
        "{top}"
    );
    let image = ok(switchyard(data.path(), &["image", "build", "--help"]));
    assert!(
        image.contains("debootstrap") && image.contains("--base"),
        "{image}"
    );
    let plugin = ok(switchyard(data.path(), &["plugin", "--help"]));
    for sub in [
        "new", "build", "install", "list", "inspect", "remove", "enable", "disable", "grant",
        "revoke", "config", "secret",
    ] {
        assert!(
            plugin.contains(sub),
            "`plugin {sub}` missing from help:\n{plugin}"
        );
        ok(switchyard(data.path(), &["plugin", sub, "--help"]));
    }
    ok(switchyard(data.path(), &["tool", "call", "--help"]));
    let bad = switchyard(data.path(), &["plugin", "frobnicate"]);
    assert_eq!(bad.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn install_inspect_and_call_tools() {
    let data = TempDir::new().unwrap();
    let d = data.path();
    let empty = ok(switchyard(d, &["plugin", "list"]));
    assert!(empty.contains("No plugins installed"), "{empty}");
    let installed = ok(switchyard(
        d,
        &[
            "plugin",
            "install",
            common::package("data").to_str().unwrap(),
        ],
    ));
    assert!(
        installed.contains("Installed data 0.1.0") && installed.contains("data/json_query"),
        "{installed}"
    );
    let list: Value =
        serde_json::from_str(&ok(switchyard(d, &["plugin", "list", "--json"]))).unwrap();
    assert_eq!(list[0]["name"], "data");
    let inspect = ok(switchyard(d, &["plugin", "inspect", "data"]));
    assert!(
        inspect.contains("tool data/hash") && inspect.contains("\"algorithm\""),
        "schemas are shown:\n{inspect}"
    );
    assert!(inspect.contains("skill json-with-jq"), "{inspect}");

    let out = ok(switchyard(
        d,
        &["tool", "call", "data/hash", r#"{"text":"abc"}"#],
    ));
    assert_eq!(
        out.trim(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let out = ok(run(
        d,
        &["tool", "call", "data/base64_encode", "-"],
        Some(r#"{"text":"stdin"}"#),
        &[],
    ));
    assert_eq!(out.trim(), "c3RkaW4=");
    let json: Value = serde_json::from_str(&ok(switchyard(
        d,
        &[
            "tool",
            "call",
            "--json",
            "data/json_query",
            r#"{"input":[1,2],"filter":"add"}"#,
        ],
    )))
    .unwrap();
    assert_eq!(json["structured"]["results"], serde_json::json!([3]));

    let bad = switchyard(d, &["tool", "call", "data/hash", "{}"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("error (invalid-input)"),
        "{}",
        stderr(&bad)
    );
    let bad = switchyard(d, &["tool", "call", "data/hash", "{not json"]);
    assert_eq!(bad.status.code(), Some(1));
    let bad = switchyard(d, &["tool", "call", "datahash"]);
    assert!(stderr(&bad).contains("PLUGIN/TOOL"), "{}", stderr(&bad));
    let bad = switchyard(d, &["tool", "call", "nope/x"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("no plugin named `nope`"),
        "{}",
        stderr(&bad)
    );
    let tools = ok(switchyard(d, &["tool", "list"]));
    assert!(tools.contains("data/json_query"), "{tools}");
    ok(switchyard(d, &["plugin", "remove", "data"]));
    assert!(ok(switchyard(d, &["plugin", "list"])).contains("No plugins installed"));
}

#[test]
fn secrets_come_from_stdin_and_are_never_shown() {
    let data = TempDir::new().unwrap();
    let d = data.path();
    ok(switchyard(
        d,
        &[
            "plugin",
            "install",
            "--grant",
            common::package("hostile").to_str().unwrap(),
        ],
    ));
    let bad = run(d, &["plugin", "secret", "hostile", "nope"], Some("x"), &[]);
    assert!(
        stderr(&bad).contains("does not declare secret `nope`"),
        "{}",
        stderr(&bad)
    );
    let empty = run(d, &["plugin", "secret", "hostile", "token"], Some(""), &[]);
    assert!(!empty.status.success());
    ok(run(
        d,
        &["plugin", "secret", "hostile", "token"],
        Some("hunter2\n"),
        &[],
    ));
    let out = ok(switchyard(
        d,
        &["tool", "call", "hostile/read_secret", r#"{"name":"token"}"#],
    ));
    assert_eq!(out.trim(), "hunter2");
    let inspect = ok(switchyard(d, &["plugin", "inspect", "hostile", "--json"]));
    assert!(
        !inspect.contains("hunter2"),
        "secret values are never printed"
    );
    assert!(
        inspect.contains("\"secrets_set\": [\n    \"token\""),
        "{inspect}"
    );
    let mode =
        std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(d.join("secret.key")).unwrap());
    assert_eq!(mode & 0o077, 0, "the sealing key is private");
    let db = std::fs::read(d.join("switchyard.db")).unwrap();
    let wal = std::fs::read(d.join("switchyard.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(
            !bytes.windows(7).any(|w| w == b"hunter2"),
            "secrets are sealed at rest"
        );
    }
    let cfg = ok(switchyard(
        d,
        &["plugin", "config", "hostile", "greeting", "hey"],
    ));
    assert!(cfg.contains("greeting = hey"), "{cfg}");
    let bad = switchyard(d, &["plugin", "config", "hostile", "nope", "1"]);
    assert!(
        stderr(&bad).contains("no config key `nope`"),
        "{}",
        stderr(&bad)
    );
    assert_eq!(
        ok(switchyard(
            d,
            &[
                "tool",
                "call",
                "hostile/read_config",
                r#"{"name":"greeting"}"#
            ]
        ))
        .trim(),
        "hey"
    );
    ok(switchyard(d, &["plugin", "disable", "hostile"]));
    let off = switchyard(d, &["tool", "call", "hostile/echo", r#"{"text":"x"}"#]);
    assert!(stderr(&off).contains("disabled"), "{}", stderr(&off));
}

#[test]
fn build_errors_say_what_to_do() {
    let data = TempDir::new().unwrap();
    let d = data.path();
    let not_plugin = switchyard(d, &["plugin", "build", d.to_str().unwrap()]);
    assert!(
        stderr(&not_plugin).contains("switchyard plugin new"),
        "{}",
        stderr(&not_plugin)
    );
    ok(switchyard(
        d,
        &["plugin", "new", "demo", "--dir", d.to_str().unwrap()],
    ));
    let demo = d.join("demo");
    let no_target = run(
        d,
        &["plugin", "build", demo.to_str().unwrap()],
        None,
        &[("RUSTC", "/bin/false")],
    );
    assert!(
        stderr(&no_target).contains("rustup target add wasm32-wasip2"),
        "{}",
        stderr(&no_target)
    );
    let no_cargo = run(
        d,
        &["plugin", "build", demo.to_str().unwrap()],
        None,
        &[("CARGO", "/nonexistent/cargo")],
    );
    assert!(
        stderr(&no_cargo).contains("`cargo` was not found"),
        "{}",
        stderr(&no_cargo)
    );
    let again = switchyard(d, &["plugin", "new", "demo", "--dir", d.to_str().unwrap()]);
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    let bad = switchyard(
        d,
        &["plugin", "new", "Bad_Name", "--dir", d.to_str().unwrap()],
    );
    assert!(
        stderr(&bad).contains("not a valid plugin name"),
        "{}",
        stderr(&bad)
    );
}

/// The flow from the README, for every kind, in a directory outside the repository.
#[tokio::test]
async fn scaffold_build_install_call_for_every_kind() {
    let work = TempDir::new().unwrap();
    let d = work.path().join("data");
    let target = common::target_dir().join("scaffold-target");
    let env = [("CARGO_TARGET_DIR", target.to_str().unwrap())];
    for kind in ["tool", "skill", "channel", "prompt", "resource"] {
        let name = format!("demo-{kind}");
        ok(run(
            &d,
            &[
                "plugin",
                "new",
                &name,
                "--kind",
                kind,
                "--dir",
                work.path().to_str().unwrap(),
            ],
            None,
            &env,
        ));
        let dir = work.path().join(&name);
        assert!(dir.join("sdk/src/lib.rs").is_file() && dir.join("wit/plugin.wit").is_file());
        let built = ok(run(
            &d,
            &["plugin", "build", dir.to_str().unwrap(), "--archive"],
            None,
            &env,
        ));
        assert!(built.contains(&format!("Built {name} 0.1.0")), "{built}");
        let archive = dir.join(format!("dist/{name}-0.1.0.tar.gz"));
        ok(run(
            &d,
            &["plugin", "install", "--grant", archive.to_str().unwrap()],
            None,
            &env,
        ));
    }
    let out = ok(switchyard(
        &d,
        &["tool", "call", "demo-tool/greet", r#"{"name":"Ada"}"#],
    ));
    assert_eq!(out.trim(), "Hello, Ada!");
    let skill = ok(switchyard(&d, &["plugin", "inspect", "demo-skill"]));
    assert!(
        skill.contains("skill demo-skill: Explains what this skill does"),
        "{skill}"
    );
    let prompt = ok(switchyard(&d, &["plugin", "inspect", "demo-prompt"]));
    assert!(
        prompt.contains("prompt demo-prompt/brief: Ask for a short brief on a topic"),
        "{prompt}"
    );
    let resource = ok(switchyard(&d, &["plugin", "inspect", "demo-resource"]));
    assert!(
        resource.contains("resource demo-resource://readme: readme")
            && resource.contains("resource template demo-resource://notes/{id}: note"),
        "{resource}"
    );
    let channel = ok(switchyard(&d, &["plugin", "inspect", "demo-channel"]));
    assert!(
        channel.contains("channel demo-channel: JSON webhook channel"),
        "{channel}"
    );

    ok(run(
        &d,
        &["plugin", "secret", "demo-channel", "webhook_token"],
        Some("t0ken"),
        &[],
    ));
    let manager = common::manager_for(&d).await;
    let loaded = manager.load("demo-channel").await.unwrap();
    let request = |token: &str| {
        use hmac::Mac;
        let body = br#"{"conversation":"c1","sender":"ada","text":"hi","id":"d1"}"#.to_vec();
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(token.as_bytes()).unwrap();
        mac.update(&body);
        let signature = hex::encode(mac.finalize().into_bytes());
        switchyard::runtime::types::HttpRequest {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: vec![("x-signature".into(), format!("sha256={signature}"))],
            body,
        }
    };
    let outcome = manager
        .runtime()
        .handle_webhook(&loaded.component, request("t0ken"), Default::default())
        .await
        .unwrap();
    assert_eq!(outcome.response.status, 202);
    assert_eq!(outcome.messages[0].text, "hi");
    assert_eq!(
        outcome.messages[0].metadata,
        vec![("delivery-id".to_string(), "d1".to_string())]
    );
    let err = manager
        .runtime()
        .handle_webhook(&loaded.component, request("wrong"), Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind, switchyard::runtime::ErrorKind::Denied);
    let reply = switchyard::runtime::channel::OutboundMessage {
        conversation_key: "c1".into(),
        reply_target: "c1".into(),
        text: "hello".into(),
        metadata: vec![],
    };
    ok(switchyard(
        &d,
        &[
            "plugin",
            "config",
            "demo-channel",
            "reply_url",
            "http://127.0.0.1:9/reply",
        ],
    ));
    let loaded = manager.load("demo-channel").await.unwrap();
    let err = manager
        .runtime()
        .deliver(&loaded.component, reply, Default::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        switchyard::runtime::ErrorKind::Denied,
        "reply host not granted: {err}"
    );
}

#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    let data = TempDir::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["plugin", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn mcp_stdio_says_which_user_it_needs() {
    let data = TempDir::new().unwrap();
    ok(switchyard(data.path(), &["mcp-stdio", "--help"]));
    let none = run(data.path(), &["mcp-stdio"], Some(""), &[]);
    assert!(!none.status.success());
    assert!(stderr(&none).contains("user create"), "{}", stderr(&none));
    ok(run(
        data.path(),
        &["user", "create", "ann", "--admin"],
        Some("a-long-password\n"),
        &[],
    ));
    ok(run(
        data.path(),
        &["user", "create", "ben"],
        Some("a-long-password\n"),
        &[],
    ));
    let several = run(data.path(), &["mcp-stdio"], Some(""), &[]);
    assert!(stderr(&several).contains("--user"), "{}", stderr(&several));
    let unknown = run(
        data.path(),
        &["mcp-stdio", "--user", "nobody"],
        Some(""),
        &[],
    );
    assert!(
        stderr(&unknown).contains("no user `nobody`"),
        "{}",
        stderr(&unknown)
    );
    // A real session: initialize, then list tools, over stdin/stdout.
    let session = run(
        data.path(),
        &["mcp-stdio", "--user", "ann"],
        Some(concat!(
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
            "\n",
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            "\n",
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
            "\n",
            "{not json\n",
            r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#,
            "\n",
        )),
        &[],
    );
    let out = stdout(&session);
    assert!(
        out.contains(r#""serverInfo":{"name":"switchyard""#),
        "{out}"
    );
    assert!(
        out.contains(r#""id":2,"result":{"tools":[{"name":"sandbox_create""#),
        "only the host's sandbox tools, no plugins: {out}"
    );
    assert!(
        out.contains(r#""id":3,"result":{}"#),
        "a bad line does not end the session: {out}"
    );
    assert!(
        out.lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "stdout holds only JSON-RPC: {out}"
    );
}

#[test]
fn tool_call_runs_as_a_user_or_the_local_operator() {
    let data = TempDir::new().unwrap();
    let d = data.path();
    let notes = common::package("notes");
    ok(switchyard(
        d,
        &["plugin", "install", "--grant", notes.to_str().unwrap()],
    ));
    ok(run(
        d,
        &["user", "create", "alice"],
        Some("a-long-password\n"),
        &[],
    ));
    let note = r#"{"text":"alice's note"}"#;
    ok(switchyard(
        d,
        &["tool", "call", "notes/remember", note, "--user", "alice"],
    ));
    let count = |args: &[&str]| -> u64 {
        let out = ok(switchyard(d, args));
        let v: Value = serde_json::from_str(out.trim()).expect("json");
        v["count"].as_u64().expect("count")
    };
    let as_alice = ["tool", "call", "notes/list", "{}", "--user", "alice"];
    assert_eq!(count(&as_alice), 1, "alice's own space");
    assert_eq!(
        count(&["tool", "call", "notes/list"]),
        0,
        "the operator's space is separate"
    );
    let unknown = switchyard(d, &["tool", "call", "notes/list", "--user", "nobody"]);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("no user `nobody`"),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn skills_are_validated_installed_listed_shown_and_removed() {
    let data = TempDir::new().unwrap();
    let skills = Path::new(env!("CARGO_MANIFEST_DIR")).join("../skills");
    let csv = skills.join("csv-chart");
    let csv = csv.to_str().unwrap();
    let help = ok(switchyard(data.path(), &["skill", "--help"]));
    for sub in [
        "validate",
        "install",
        "list",
        "show",
        "visibility",
        "remove",
    ] {
        assert!(help.contains(sub), "`skill {sub}` missing:\n{help}");
        ok(switchyard(data.path(), &["skill", sub, "--help"]));
    }
    assert!(
        ok(switchyard(data.path(), &["skill", "validate", csv]))
            .contains("`csv-chart` is a valid skill")
    );
    let bad = TempDir::new().unwrap();
    let folder = bad.path().join("Bad");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(
        folder.join("SKILL.md"),
        "---\nname: Bad\ndescription: d\n---\n",
    )
    .unwrap();
    let refused = switchyard(
        data.path(),
        &["skill", "validate", folder.to_str().unwrap()],
    );
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("lowercase"),
        "{}",
        stderr(&refused)
    );
    // Without a user there is nobody to own it, and the error says what to do.
    let nobody = switchyard(data.path(), &["skill", "install", csv]);
    assert!(!nobody.status.success());
    assert!(
        stderr(&nobody).contains("switchyard user create"),
        "{}",
        stderr(&nobody)
    );
    ok(run(
        data.path(),
        &["user", "create", "root", "--admin"],
        Some("a-long-password\n"),
        &[],
    ));
    assert!(
        ok(switchyard(
            data.path(),
            &["skill", "install", csv, "--visibility", "shared"]
        ))
        .contains("Installed @root/csv-chart (shared)")
    );
    let again = switchyard(data.path(), &["skill", "install", csv]);
    assert!(stderr(&again).contains("replace"), "{}", stderr(&again));
    assert!(
        ok(switchyard(
            data.path(),
            &["skill", "install", csv, "--replace"]
        ))
        .contains("Replaced")
    );
    let list = ok(switchyard(data.path(), &["skill", "list"]));
    assert!(list.contains("@root/csv-chart\tshared"), "{list}");
    let json: Value =
        serde_json::from_str(&ok(switchyard(data.path(), &["skill", "list", "--json"]))).unwrap();
    assert_eq!(json[0]["name"], "csv-chart");
    let show = ok(switchyard(
        data.path(),
        &["skill", "show", "@root/csv-chart"],
    ));
    assert!(
        show.contains("# CSV to chart") && show.contains("scripts/csv_chart.py"),
        "{show}"
    );
    assert!(
        ok(switchyard(
            data.path(),
            &["skill", "visibility", "@root/csv-chart", "private"]
        ))
        .contains("now private")
    );
    assert!(
        ok(switchyard(
            data.path(),
            &["skill", "remove", "@root/csv-chart"]
        ))
        .contains("Removed")
    );
    let gone = switchyard(data.path(), &["skill", "show", "@root/csv-chart"]);
    assert!(stderr(&gone).contains("no skill"), "{}", stderr(&gone));
}

#[test]
fn schedules_are_created_previewed_paused_listed_and_deleted() {
    let data = TempDir::new().unwrap();
    let help = ok(switchyard(data.path(), &["schedule", "--help"]));
    for sub in [
        "create", "list", "show", "preview", "pause", "resume", "delete", "runs",
    ] {
        assert!(help.contains(sub), "`schedule {sub}` missing:\n{help}");
        ok(switchyard(data.path(), &["schedule", sub, "--help"]));
    }
    let preview = ok(switchyard(
        data.path(),
        &[
            "schedule",
            "preview",
            "--cron",
            "0 12 * * *",
            "--timezone",
            "Asia/Kolkata",
            "--count",
            "2",
        ],
    ));
    assert_eq!(preview.lines().count(), 2, "{preview}");
    assert!(preview.contains("T12:00:00+05:30"), "{preview}");
    let no_admin = switchyard(
        data.path(),
        &["schedule", "create", "x", "--every", "1h", "--exec", "true"],
    );
    assert!(!no_admin.status.success());
    assert!(
        stderr(&no_admin).contains("switchyard user create"),
        "{}",
        stderr(&no_admin)
    );
    ok(run(
        data.path(),
        &["user", "create", "root", "--admin"],
        Some("root-password-1\n"),
        &[],
    ));
    let created = ok(switchyard(
        data.path(),
        &[
            "schedule",
            "create",
            "nightly",
            "--cron",
            "0 2 * * *",
            "--timezone",
            "Europe/Berlin",
            "--exec",
            "make report",
        ],
    ));
    assert!(created.contains("Created schedule `nightly`"), "{created}");
    let bad = switchyard(
        data.path(),
        &[
            "schedule", "create", "fast", "--every", "30s", "--exec", "true",
        ],
    );
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("min_interval_secs"),
        "{}",
        stderr(&bad)
    );
    let zone = switchyard(
        data.path(),
        &[
            "schedule",
            "create",
            "z",
            "--cron",
            "0 2 * * *",
            "--timezone",
            "Moon/Base",
            "--exec",
            "true",
        ],
    );
    assert!(stderr(&zone).contains("IANA"), "{}", stderr(&zone));
    let missing_zone = switchyard(
        data.path(),
        &[
            "schedule",
            "create",
            "z",
            "--cron",
            "0 2 * * *",
            "--exec",
            "true",
        ],
    );
    assert_eq!(
        missing_zone.status.code(),
        Some(2),
        "usage error: --cron needs --timezone"
    );
    assert!(ok(switchyard(data.path(), &["schedule", "pause", "nightly"])).contains("paused"));
    let list = ok(switchyard(data.path(), &["schedule", "list"]));
    assert!(
        list.contains("nightly") && list.contains("paused"),
        "{list}"
    );
    assert!(ok(switchyard(data.path(), &["schedule", "resume", "nightly"])).contains("active"));
    let shown: Value = serde_json::from_str(&ok(switchyard(
        data.path(),
        &["schedule", "show", "nightly"],
    )))
    .unwrap();
    assert_eq!(shown["task"]["input"]["command"], "make report");
    assert!(ok(switchyard(data.path(), &["schedule", "runs", "nightly"])).contains("No runs yet"));
    assert!(ok(switchyard(data.path(), &["schedule", "delete", "nightly"])).contains("Deleted"));
    assert!(ok(switchyard(data.path(), &["schedule", "list"])).contains("No schedules yet"));
}
