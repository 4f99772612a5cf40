//! `plugin new` for every kind in every language, as an author uses it: the
//! folder's `test.sh` builds the plugin with that language's tool, installs it
//! into a scratch data dir and checks it; the same package then answers through
//! the runtime (a prompt filled in, a resource read, a skill loaded, a webhook
//! taken, a reply delivered). A missing toolchain is named with its install command.

use super::{ok, run, stderr, switchyard};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use switchyard::runtime::{CallHooks, ErrorKind, KvNamespace, channel, types};
use tempfile::TempDir;

const LANGS: [&str; 4] = ["rust", "python", "js", "c"];
const KINDS: [&str; 5] = ["tool", "channel", "skill", "prompt", "resource"];

#[test]
fn every_kind_in_every_language_scaffolds_builds_and_works() {
    let work = TempDir::new().unwrap();
    let d = work.path().join("data");
    let bin = Path::new(env!("CARGO_BIN_EXE_switchyard"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let target = crate::common::target_dir().join("scaffold-target");
    for lang in LANGS {
        for kind in KINDS {
            let name = format!("{kind}-{lang}");
            let dir = work.path().join(&name);
            ok(switchyard(
                &d,
                &[
                    "plugin",
                    "new",
                    &name,
                    "--kind",
                    kind,
                    "--lang",
                    lang,
                    "--dir",
                    work.path().to_str().unwrap(),
                ],
            ));
            assert!(dir.join("wit/plugin.wit").is_file(), "{name}");
            assert!(
                !dir.join("wit/frozen").exists(),
                "{name}: only the newest contract"
            );
            if kind == "channel" {
                // Replies go to the test's own server instead of chat.example.com.
                let manifest = dir.join("plugin.toml");
                let text = std::fs::read_to_string(&manifest).unwrap();
                std::fs::write(&manifest, text.replace("chat.example.com", "127.0.0.1:*")).unwrap();
            }
            let test = Command::new(dir.join("test.sh"))
                .env("PATH", &path)
                .env("CARGO_TARGET_DIR", &target)
                .output()
                .unwrap();
            let out = String::from_utf8_lossy(&test.stdout);
            let passed = if kind == "tool" {
                format!("ok: {name}/greet answers")
            } else {
                format!("ok: {name} offers its {kind}")
            };
            assert!(
                test.status.success() && out.contains(&passed),
                "{name}: {out}{}",
                String::from_utf8_lossy(&test.stderr)
            );
            assert!(
                !dir.join("switchyard-data").exists(),
                "{name}: test.sh leaves no data dir in the plugin folder"
            );
            if lang != "rust" && kind != "tool" {
                let package = dir.join("dist").join(&name);
                ok(switchyard(
                    &d,
                    &["plugin", "install", "--grant", package.to_str().unwrap()],
                ));
            }
        }
    }
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(each_kind_answers(&d));
    missing_toolchains_are_named(&d, work.path());
}

/// The Python, JavaScript and C scaffolds of every kind but tool, called
/// through the runtime (the Rust ones: `scaffold_build_install_call_for_every_kind`).
async fn each_kind_answers(d: &Path) {
    let (reply_url, replies) = reply_server();
    for lang in ["python", "js", "c"] {
        let manager = crate::common::manager_for(d).await;
        let runtime = manager.runtime();
        let name = format!("prompt-{lang}");
        let prompt = manager.load(&name).await.unwrap().component;
        let args = vec![("topic".to_string(), "tides".to_string())];
        let filled = runtime.get_prompt(&prompt, "brief", args).await.unwrap();
        assert_eq!(filled.messages.len(), 1, "{name}");
        assert!(
            matches!(&filled.messages[0].content, types::Content::Text(t) if t == "Write a brief on tides for engineers."),
            "{name}: {:?}",
            filled.messages[0].content
        );
        let missing = runtime
            .get_prompt(&prompt, "brief", vec![])
            .await
            .unwrap_err();
        assert_eq!(missing.kind, ErrorKind::InvalidInput, "{name}: {missing}");
        let unknown = runtime
            .get_prompt(&prompt, "nope", vec![])
            .await
            .unwrap_err();
        assert_eq!(unknown.kind, ErrorKind::NotFound, "{name}: {unknown}");

        let name = format!("resource-{lang}");
        let resource = manager.load(&name).await.unwrap().component;
        let (fixed, templates) = runtime.list_resources(&resource).await.unwrap();
        assert_eq!(fixed[0].uri, format!("{name}://readme"));
        assert_eq!(templates[0].uri_template, format!("{name}://notes/{{id}}"));
        let note = runtime
            .read_resource(&resource, &format!("{name}://notes/42"))
            .await
            .unwrap();
        assert!(
            matches!(&note[0].body, types::ResourceBody::Text(t) if t == "Note 42"),
            "{name}: {:?}",
            note[0].body
        );
        assert_eq!(note[0].mime_type.as_deref(), Some("text/plain"));
        let readme = runtime
            .read_resource(&resource, &format!("{name}://readme"))
            .await
            .unwrap();
        assert_eq!(
            readme[0].mime_type.as_deref(),
            Some("text/markdown"),
            "{name}"
        );
        let gone = runtime
            .read_resource(&resource, &format!("{name}://other"))
            .await
            .unwrap_err();
        assert_eq!(gone.kind, ErrorKind::NotFound, "{name}: {gone}");

        let name = format!("skill-{lang}");
        let skill = manager.load(&name).await.unwrap().component;
        let content = runtime.load_skill(&skill, &name).await.unwrap();
        assert!(
            content.instructions.starts_with(&format!("# {name}\n")),
            "{name}"
        );
        assert_eq!(content.files[0].path, "references/example.md");
        assert_eq!(content.files[0].content, b"An example reference file.\n");
        let unknown = runtime.load_skill(&skill, "nope").await.unwrap_err();
        assert_eq!(unknown.kind, ErrorKind::NotFound, "{name}: {unknown}");

        let name = format!("channel-{lang}");
        ok(run(
            d,
            &["plugin", "secret", &name, "webhook_token"],
            Some("t0ken"),
            &[],
        ));
        ok(switchyard(
            d,
            &["plugin", "config", &name, "reply_url", &reply_url],
        ));
        let manager = crate::common::manager_for(d).await;
        let runtime = manager.runtime();
        let channel = manager.load(&name).await.unwrap().component;
        let hooks = || CallHooks {
            kv: Some(KvNamespace::Channel("test".into())),
            ..CallHooks::default()
        };
        let outcome = runtime
            .handle_webhook(&channel, webhook(lang, "t0ken", "hi there"), hooks())
            .await
            .unwrap();
        assert_eq!(outcome.response.status, 202, "{name}");
        assert!(outcome.response.headers.is_empty() && outcome.response.body.is_empty());
        let message = &outcome.messages[0];
        assert_eq!(
            (
                message.conversation_key.as_str(),
                message.sender.as_str(),
                message.text.as_str()
            ),
            ("c1", "ada", "hi there"),
            "{name}"
        );
        assert_eq!(
            message.metadata,
            vec![("delivery-id".to_string(), "d1".to_string())]
        );
        let wrong = runtime
            .handle_webhook(&channel, webhook(lang, "wrong", "hi"), hooks())
            .await
            .unwrap_err();
        assert_eq!(wrong.kind, ErrorKind::Denied, "{name}: {wrong}");
        let mut garbage = webhook(lang, "t0ken", "");
        garbage.body = b"\xff{not json".to_vec();
        let bad = runtime
            .handle_webhook(&channel, garbage, hooks())
            .await
            .unwrap_err();
        assert_eq!(bad.kind, ErrorKind::InvalidInput, "{name}: {bad}");
        let reply = channel::OutboundMessage {
            conversation_key: "c1".into(),
            reply_target: "c1".into(),
            text: "hello back".into(),
            metadata: vec![],
        };
        runtime.deliver(&channel, reply, hooks()).await.unwrap();
        let (headers, body) = replies.recv().unwrap();
        if lang == "c" {
            assert!(headers.contains("x-conversation: c1"), "{name}: {headers}");
            assert_eq!(body, "hello back");
        } else {
            let sent: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                sent,
                serde_json::json!({"conversation": "c1", "text": "hello back"})
            );
        }
    }
}

/// A webhook call as the scaffold of `lang` expects it.
fn webhook(lang: &str, token: &str, text: &str) -> types::HttpRequest {
    let mut headers = vec![("X-Webhook-Token".to_string(), token.to_string())];
    let body = if lang == "c" {
        headers.extend([
            ("x-conversation".to_string(), "c1".to_string()),
            ("x-sender".to_string(), "ada".to_string()),
            ("x-delivery-id".to_string(), "d1".to_string()),
        ]);
        text.as_bytes().to_vec()
    } else {
        serde_json::to_vec(&serde_json::json!({
            "conversation": "c1", "sender": "ada", "text": text, "id": "d1"
        }))
        .unwrap()
    };
    types::HttpRequest {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers,
        body,
    }
}

/// A local HTTP endpoint that answers 200 to each request and passes on its
/// headers (lowercased) and body (sized or chunked).
fn reply_server() -> (String, std::sync::mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/reply", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let (mut headers, mut length, mut chunked) = (String::new(), 0usize, false);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let line = line.to_ascii_lowercase();
                if let Some(v) = line.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                chunked |= line.starts_with("transfer-encoding:") && line.contains("chunked");
                headers.push_str(&line);
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            while chunked {
                let mut size = String::new();
                let _ = reader.read_line(&mut size);
                let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; size + 2];
                let _ = reader.read_exact(&mut chunk);
                body.extend_from_slice(&chunk[..size]);
                chunked = size > 0;
            }
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = tx.send((headers, String::from_utf8_lossy(&body).into_owned()));
        }
    });
    (url, rx)
}

fn missing_toolchains_are_named(d: &Path, work: &Path) {
    let bare = |lang: &str| {
        let out = run(
            d,
            &[
                "plugin",
                "build",
                work.join(format!("tool-{lang}")).to_str().unwrap(),
            ],
            None,
            &[
                ("PATH", "/nonexistent"),
                ("SWITCHYARD_GUEST_TOOLS", "/nonexistent"),
            ],
        );
        stderr(&out)
    };
    let python = bare("python");
    assert!(
        python.contains("`componentize-py` was not found: pip install componentize-py==0.25.1"),
        "{python}"
    );
    let js = bare("js");
    assert!(js.contains("@bytecodealliance/jco@1.34.0"), "{js}");
}
