//! Installed skills over REST, on SQLite and Postgres: the shipped skills
//! (`skills/`) uploaded as `.tar.gz` and `.zip`, private until shared, changed
//! only by their owner or an administrator; hostile and invalid archives
//! refused with nothing stored; and an enabled skill's script running in the
//! session's Docker sandbox during an agent task.

use crate::harness::{Backend, Client, Resp, Server};
use crate::tasks::{events, wait_done};
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use switchyard::agent::config::{ApiKey, ProviderKind};
use switchyard_fake_llm::{FakeLlm, Reply};

crate::on_both_backends!(
    a_plugin_package_of_skill_folders_needs_no_component,
    installed_skills_are_private_until_shared_and_changed_only_by_their_owner,
    hostile_and_invalid_skill_archives_are_refused,
    an_enabled_skill_runs_its_script_in_the_sandbox,
);

fn shipped(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../skills")
        .join(name)
}

fn tar_gz(name: &str) -> Vec<u8> {
    switchyard::skills::archive::pack_folder(&shipped(name)).unwrap()
}

/// A `.zip` of the shipped skill `name`, its files under `name/`.
fn zip_of(name: &str) -> Vec<u8> {
    let root = shipped(name);
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(&root).unwrap().to_string_lossy();
            out.start_file(
                format!("{name}/{rel}"),
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
            out.write_all(&std::fs::read(&path).unwrap()).unwrap();
        }
    }
    out.finish().unwrap().into_inner()
}

/// A `.zip` holding `files` as given.
fn zip_files(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, content) in files {
        out.start_file(*path, zip::write::SimpleFileOptions::default())
            .unwrap();
        out.write_all(content).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// A `.tar.gz` whose entries are written raw (names unchecked, as an attacker would).
fn raw_tar(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, kind, content) in entries {
        let mut header = tar::Header::new_old();
        let name = &mut header.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_entry_type(*kind);
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        if *kind == tar::EntryType::Symlink {
            header.set_link_name("/etc/passwd").unwrap();
        }
        header.set_cksum();
        builder.append(&header, *content).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

async fn install(client: &Client, query: &str, bytes: Vec<u8>, mime: &str) -> Resp {
    client
        .send(
            client
                .request(reqwest::Method::POST, &format!("/api/v1/skills{query}"))
                .header("content-type", mime)
                .body(bytes),
        )
        .await
}

fn names(list: &Resp) -> Vec<String> {
    list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}/{}",
                s["plugin"].as_str().unwrap(),
                s["name"].as_str().unwrap()
            )
        })
        .collect()
}

async fn a_plugin_package_of_skill_folders_needs_no_component(backend: Backend) {
    let server = Server::start(backend).await;
    let (alice, _) = server.user("alice", "user").await;
    let (bob, _) = server.user("bob", "user").await;
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(
        dir.path().join("plugin.toml"),
        "name = \"team-skills\"\nversion = \"1.0.0\"\ndescription = \"Our team's skills\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("skills")).unwrap();
    switchyard::plugins::registry::copy_tree(
        &shipped("csv-chart"),
        &dir.path().join("skills/csv-chart"),
    )
    .unwrap();
    let package = switchyard::skills::archive::pack_folder(dir.path()).unwrap();
    let up = alice.upload("", package).await;
    assert_eq!(up.status, 201, "{}", up.text);
    assert_eq!(up.body["plugin"]["kinds"], json!([]));
    assert_eq!(up.body["plugin"]["skills"], 1);
    assert_eq!(up.body["plugin"]["tools"], 0);
    assert!(up.body["plugin"]["problem"].is_null(), "{}", up.text);
    let listed = alice.get("/api/v1/skills").await;
    let entry = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["plugin"] == "team-skills")
        .unwrap_or_else(|| panic!("{}", listed.text))
        .clone();
    assert_eq!(entry["name"], "csv-chart");
    assert_eq!(entry["source"], "folder");
    let read = alice.get("/api/v1/skills/team-skills/csv-chart").await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert!(!names(&bob.get("/api/v1/skills").await).contains(&"team-skills/csv-chart".into()));
    let m = crate::mcp::Mcp::open(&alice).await;
    let prompts = m.rpc("prompts/list", json!({})).await;
    assert!(prompts.to_string().contains("csv-chart"), "{prompts}");
    let call = alice.call("team-skills", "anything", json!({})).await;
    assert_eq!(call.status, 404, "{}", call.text);
    assert!(call.text.contains("has no component"), "{}", call.text);
    server.stop().await;
}

async fn installed_skills_are_private_until_shared_and_changed_only_by_their_owner(
    backend: Backend,
) {
    let server = Server::start(backend).await;
    let (alice, _) = server.user("alice", "user").await;
    let (bob, _) = server.user("bob", "user").await;
    let up = install(&alice, "", tar_gz("csv-chart"), "application/gzip").await;
    assert_eq!(up.status, 201, "{}", up.text);
    assert_eq!(up.body["plugin"], "@alice");
    assert_eq!(up.body["name"], "csv-chart");
    assert_eq!(up.body["visibility"], "private");
    assert_eq!(up.body["source"], "installed");
    assert_eq!(up.body["license"], "Apache-2.0");
    assert_eq!(up.body["metadata"]["version"], "1.0");
    let again = install(&alice, "", tar_gz("csv-chart"), "application/gzip").await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert!(again.text.contains("replace"), "{}", again.text);
    let replaced = install(
        &alice,
        "?replace=true",
        tar_gz("csv-chart"),
        "application/gzip",
    )
    .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);

    // Private: alice and administrators see it, bob does not.
    assert!(names(&alice.get("/api/v1/skills").await).contains(&"@alice/csv-chart".into()));
    assert!(names(&server.admin.get("/api/v1/skills").await).contains(&"@alice/csv-chart".into()));
    assert!(!names(&bob.get("/api/v1/skills").await).contains(&"@alice/csv-chart".into()));
    assert_eq!(bob.get("/api/v1/skills/@alice/csv-chart").await.status, 404);
    assert_eq!(
        bob.delete("/api/v1/skills/@alice/csv-chart").await.status,
        404
    );
    let read = alice.get("/api/v1/skills/@alice/csv-chart").await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert!(
        read.body["instructions"]
            .as_str()
            .unwrap()
            .starts_with("# CSV to chart")
    );
    let files: Vec<&str> = read.body["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["scripts/csv_chart.py"]);
    assert!(
        read.body["files"][0]["text"]
            .as_str()
            .unwrap()
            .contains("def main")
    );

    // Shared: bob sees and reads it, but cannot change or remove it.
    let shared = alice
        .patch(
            "/api/v1/skills/@alice/csv-chart",
            json!({ "visibility": "shared" }),
        )
        .await;
    assert_eq!(shared.status, 200, "{}", shared.text);
    assert_eq!(shared.body["visibility"], "shared");
    let kept = install(
        &alice,
        "?replace=true",
        tar_gz("csv-chart"),
        "application/gzip",
    )
    .await;
    assert_eq!(
        kept.body["visibility"], "shared",
        "a replaced skill keeps its visibility"
    );
    assert!(names(&bob.get("/api/v1/skills").await).contains(&"@alice/csv-chart".into()));
    assert_eq!(bob.get("/api/v1/skills/@alice/csv-chart").await.status, 200);
    assert_eq!(
        bob.delete("/api/v1/skills/@alice/csv-chart").await.status,
        403
    );
    let bob_patch = bob
        .patch(
            "/api/v1/skills/@alice/csv-chart",
            json!({ "visibility": "private" }),
        )
        .await;
    assert_eq!(bob_patch.status, 403);
    let bad = alice
        .patch(
            "/api/v1/skills/@alice/csv-chart",
            json!({ "visibility": "everyone" }),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text);

    // Bob installs his own as a .zip; the same name stays two skills.
    let zip = install(
        &bob,
        "?visibility=shared",
        zip_of("csv-chart"),
        "application/zip",
    )
    .await;
    assert_eq!(zip.status, 201, "{}", zip.text);
    assert_eq!(zip.body["plugin"], "@bob");
    let notes = install(&bob, "", zip_of("release-notes"), "application/zip").await;
    assert_eq!(notes.status, 201, "{}", notes.text);
    let seen = names(&bob.get("/api/v1/skills").await);
    let own = seen.iter().position(|n| n == "@bob/csv-chart").unwrap();
    let theirs = seen.iter().position(|n| n == "@alice/csv-chart").unwrap();
    assert!(own < theirs, "own skills come first: {seen:?}");

    // Plugin and folder skills cannot be changed through this route.
    assert_eq!(
        server
            .admin
            .delete("/api/v1/skills/_local/nope")
            .await
            .status,
        404
    );
    // Unauthenticated callers get nothing.
    let anon = server.anon();
    assert_eq!(anon.get("/api/v1/skills").await.status, 401);
    assert_eq!(
        install(&anon, "", tar_gz("diff-review"), "application/gzip")
            .await
            .status,
        401
    );
    // The owner (or an administrator) removes it; then it is gone for everyone.
    assert_eq!(
        alice.delete("/api/v1/skills/@alice/csv-chart").await.status,
        204
    );
    assert_eq!(
        alice.get("/api/v1/skills/@alice/csv-chart").await.status,
        404
    );
    assert_eq!(
        server
            .admin
            .delete("/api/v1/skills/@bob/release-notes")
            .await
            .status,
        204
    );
    let audit = server.admin.get("/api/v1/audit?action=skill.install").await;
    assert!(audit.text.contains("@alice/csv-chart"), "{}", audit.text);
    server.stop().await;
}

async fn hostile_and_invalid_skill_archives_are_refused(backend: Backend) {
    let server = Server::start(backend).await;
    let (alice, _) = server.user("alice", "user").await;
    let md = b"---\nname: evil\ndescription: Tries to escape.\n---\nBody\n".as_slice();
    let refused: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "path traversal in a tar",
            raw_tar(&[
                ("evil/SKILL.md", tar::EntryType::Regular, md),
                ("evil/../../x.sh", tar::EntryType::Regular, b"boom"),
            ]),
            "..",
        ),
        (
            "absolute path in a tar",
            raw_tar(&[("/evil/SKILL.md", tar::EntryType::Regular, md)]),
            "relative",
        ),
        (
            "a symlink",
            raw_tar(&[
                ("evil/SKILL.md", tar::EntryType::Regular, md),
                ("evil/passwd", tar::EntryType::Symlink, b""),
            ]),
            "only files and folders",
        ),
        (
            "path traversal in a zip",
            zip_files(&[("evil/SKILL.md", md), ("evil/../../x.sh", b"boom")]),
            "..",
        ),
        (
            "a zip bomb",
            zip_files(&[
                ("evil/SKILL.md", md),
                ("evil/zeros.bin", &vec![0u8; 6 << 20]),
            ]),
            "more than",
        ),
        (
            "no SKILL.md",
            zip_files(&[("evil/README.md", b"hello")]),
            "no SKILL.md",
        ),
        (
            "two top-level folders",
            zip_files(&[("evil/SKILL.md", md), ("other/x.txt", b"x")]),
            "top-level folder",
        ),
        (
            "a folder not named as the skill",
            zip_files(&[("renamed/SKILL.md", md)]),
            "must carry the skill's name",
        ),
        (
            "an unknown front matter field",
            zip_files(&[(
                "SKILL.md",
                b"---\nname: evil\ndescription: d\nversion: 2\n---\n",
            )]),
            "unknown field",
        ),
        (
            "an upper-case name",
            zip_files(&[("SKILL.md", b"---\nname: Evil\ndescription: d\n---\n")]),
            "lowercase",
        ),
        (
            "no front matter",
            zip_files(&[("SKILL.md", b"# Just a title\n")]),
            "front matter",
        ),
        ("not an archive", b"just some text".to_vec(), "neither"),
        ("an empty body", Vec::new(), "neither"),
        (
            "a truncated gzip",
            tar_gz("diff-review")[..40].to_vec(),
            "not a .tar.gz",
        ),
    ];
    for (what, bytes, says) in refused {
        let r = install(&alice, "", bytes, "application/octet-stream").await;
        assert_eq!(r.status, 422, "{what}: {}", r.text);
        assert_eq!(r.code(), "invalid_skill", "{what}");
        assert!(r.text.contains(says), "{what}: {}", r.text);
    }
    // Declared too large: answered 413 before the body is read (raw socket, so
    // the client cannot race the early answer while still sending).
    let huge = crate::bad_input::raw_http(
        &server.base,
        &format!(
            "POST /api/v1/skills HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/gzip\r\ncontent-length: {}\r\n\r\n",
            alice.token.as_deref().unwrap(),
            9 << 20
        ),
    )
    .await;
    assert!(huge.starts_with("HTTP/1.1 413"), "{huge}");
    let list = alice.get("/api/v1/skills").await;
    assert!(
        !list.text.contains("@alice"),
        "nothing was stored: {}",
        list.text
    );
    // A session refuses skill references that are not names.
    let bad = alice
        .post("/api/v1/sessions", json!({ "skills": ["Bad Name!"] }))
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    server.stop().await;
}

async fn an_enabled_skill_runs_its_script_in_the_sandbox(backend: Backend) {
    let fake = FakeLlm::start().await;
    let server = Server::start_with(backend, |c| {
        c.llm.provider = Some(ProviderKind::OpenAi);
        c.llm.base_url = Some(fake.base_url_openai());
        c.llm.model = Some("fake-model".into());
        c.llm.api_key = Some(ApiKey::new("sk-test"));
        c.llm.timeout_secs = 5;
    })
    .await;
    let (alice, _) = server.user("alice", "user").await;
    let up = install(&alice, "", tar_gz("csv-chart"), "application/gzip").await;
    assert_eq!(up.status, 201, "{}", up.text);
    let session = alice
        .post("/api/v1/sessions", json!({ "skills": ["csv-chart"] }))
        .await;
    assert_eq!(session.status, 201, "{}", session.text);
    let command = "printf 'month,sales\\nJan,3\\nFeb,5\\n' > /workspace/sales.csv && \
                   python3 /workspace/skills/csv-chart/scripts/csv_chart.py /workspace/sales.csv \
                   --kind line --out /workspace/output/sales.svg && head -c 4 /workspace/output/sales.svg";
    fake.push(Reply::tool_call(
        "call_1",
        "load_skill",
        r#"{"name": "csv-chart"}"#,
    ));
    fake.push(Reply::tool_call(
        "call_2",
        "sandbox_exec",
        json!({ "command": command }).to_string(),
    ));
    fake.push(Reply::text("The chart is at /workspace/output/sales.svg."));
    fake.push(Reply::text("Sales chart"));
    let task = alice
        .post(
            "/api/v1/tasks",
            json!({ "kind": "agent", "session_id": session.body["id"], "input": { "content": "Chart my sales" } }),
        )
        .await;
    assert_eq!(task.status, 202, "{}", task.text);
    let id = task.body["id"].as_str().unwrap();
    let done = wait_done(&alice, id).await;
    assert_eq!(done["status"], "completed", "{done}");
    let evs = events(&alice, id).await;
    let results: Vec<&Value> = evs.iter().filter(|e| e["type"] == "tool_result").collect();
    assert_eq!(results.len(), 2, "{evs:?}");
    let loaded = results[0]["data"]["content"].as_str().unwrap();
    assert!(
        loaded.contains("# CSV to chart") && loaded.contains("scripts/csv_chart.py"),
        "{loaded}"
    );
    let ran = results[1]["data"]["content"].as_str().unwrap();
    assert_eq!(results[1]["data"]["is_error"], false, "{ran}");
    let exec: Value = serde_json::from_str(ran).unwrap();
    assert_eq!(exec["exit_code"], 0, "{ran}");
    let stdout = exec["stdout"].as_str().unwrap();
    assert!(
        stdout.contains("\"chart\": \"/workspace/output/sales.svg\"") && stdout.ends_with("<svg"),
        "{stdout}"
    );
    assert!(
        evs.iter().any(|e| e["type"] == "log"
            && e["data"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("copied to /workspace/skills/csv-chart/")),
        "{evs:?}"
    );
    // The model was told about the skill in its system prompt.
    let first = &fake.requests()[0];
    let system = first.body["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("csv-chart") && system.contains("/workspace/skills/"),
        "{system}"
    );
    server.stop().await;
}
