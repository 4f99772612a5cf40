//! The first-party plugins doing real work through the host: data tools, HTTP
//! fetch against a real local server, KV-backed notes, and served skills.

mod common;

use common::Host;
use serde_json::{Value, json};
use std::net::SocketAddr;
use switchyard::runtime::ErrorKind;
use warp::Filter;

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test]
async fn data_tools() {
    let host = Host::with(&["data"]).await;
    let out = host
        .ok(
            "data/json_query",
            json!({"input": {"a": [1, 2, 3]}, "filter": "[.a[] | select(. > 1) | . * 10]"}),
        )
        .await;
    assert_eq!(parse(&out)["results"], json!([[20, 30]]));
    let err = host
        .error("data/json_query", json!({"input": 1, "filter": ".[["}))
        .await;
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");

    let out = host
        .ok(
            "data/json_format",
            json!({"text": "{\"b\":1,\"a\":[true]}", "sort_keys": true}),
        )
        .await;
    assert_eq!(out, "{\n  \"a\": [\n    true\n  ],\n  \"b\": 1\n}");
    let err = host
        .error("data/json_format", json!({"text": "{oops"}))
        .await;
    assert_eq!(err.kind, ErrorKind::InvalidInput);

    let out = host
        .ok(
            "data/regex_extract",
            json!({"pattern": r"(?P<key>\w+)=(\d+)", "text": "a=1, bb=22"}),
        )
        .await;
    let v = parse(&out);
    assert_eq!(v["count"], 2);
    assert_eq!(
        v["matches"][1]["groups"][0],
        json!({"index": 1, "name": "key", "text": "bb"})
    );
    let out = host
        .ok(
            "data/regex_replace",
            json!({"pattern": r"(\d+)", "text": "a1 b22", "replacement": "<$1>"}),
        )
        .await;
    assert_eq!(
        parse(&out),
        json!({"replacements": 2, "text": "a<1> b<22>"})
    );
    let err = host
        .error("data/regex_extract", json!({"pattern": "(", "text": ""}))
        .await;
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    let err = host
        .error(
            "data/regex_extract",
            json!({"pattern": "a{1000}{1000}", "text": ""}),
        )
        .await;
    assert_eq!(
        err.kind,
        ErrorKind::InvalidInput,
        "pattern too large: {err}"
    );

    let out = host
        .ok(
            "data/text_diff",
            json!({"old": "a\nb\nc\n", "new": "a\nB\nc\n"}),
        )
        .await;
    assert!(out.contains("-b\n+B"), "{out}");
    assert!(out.contains("\"added_lines\":1"), "{out}");

    let hash = |alg: &str| host.call("data/hash", json!({"text": "abc", "algorithm": alg}));
    assert_eq!(
        hash("sha256").await.unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        hash("md5").await.unwrap(),
        "900150983cd24fb0d6963f7d28e17f72"
    );
    assert_eq!(
        hash("sha1").await.unwrap(),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(
        hash("crc").await.unwrap_err().kind,
        ErrorKind::InvalidInput,
        "schema enum is enforced"
    );

    assert_eq!(
        host.ok("data/base64_encode", json!({"text": "hi?"})).await,
        "aGk/"
    );
    assert_eq!(
        host.ok(
            "data/base64_encode",
            json!({"text": "hi?", "url_safe": true})
        )
        .await,
        "aGk_"
    );
    assert_eq!(
        host.ok("data/base64_decode", json!({"data": "aGk_"})).await,
        "hi?"
    );
    let out = host.ok("data/base64_decode", json!({"data": "//79"})).await;
    assert!(out.contains("3 bytes of binary data"), "{out}");
    assert_eq!(
        host.error("data/base64_decode", json!({"data": "!!"}))
            .await
            .kind,
        ErrorKind::InvalidInput
    );
}

#[tokio::test]
async fn tool_arguments_are_checked_against_the_schema() {
    let host = Host::with(&["data"]).await;
    let err = host.error("data/hash", json!({})).await;
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(
        err.message.contains("\"text\" is a required property"),
        "{err}"
    );
    let err = host.error("data/hash", json!({"text": 5})).await;
    assert!(err.message.contains("/text"), "{err}");
    let (plugin, tool) = ("data", "hash");
    for bad in ["not json", "[1,2]", "null"] {
        let err = switchyard::tools::call(&host.manager, plugin, tool, bad, None)
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with("invalid-input"), "{bad}: {err}");
    }
    let huge = format!("{{\"text\": \"{}\"}}", "x".repeat(2 << 20));
    let err = switchyard::tools::call(&host.manager, plugin, tool, &huge, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("more than the"), "{err}");
    let err = host.error("data/no_such_tool", json!({})).await;
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert!(
        err.message.contains("json_query"),
        "lists the real tools: {err}"
    );
}

async fn serve() -> SocketAddr {
    let page = warp::path("page").map(|| {
        warp::reply::with_header(
            "<html><head><script>evil()</script></head><body><h1>Hello</h1><p>World <b>wide</b></p></body></html>",
            "content-type",
            "text/html; charset=utf-8",
        )
    });
    let echo = warp::path("echo")
        .and(warp::method())
        .and(warp::header::optional::<String>("x-test"))
        .and(warp::body::bytes())
        .map(|m: http::Method, h: Option<String>, body: bytes::Bytes| {
            warp::reply::json(
                &json!({"method": m.as_str(), "x_test": h, "body": String::from_utf8_lossy(&body)}),
            )
        });
    let missing =
        warp::path("missing").map(|| warp::reply::with_status("gone", http::StatusCode::NOT_FOUND));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        warp::serve(page.or(echo).or(missing))
            .incoming(listener)
            .run(),
    );
    addr
}

#[tokio::test]
async fn fetch_reaches_granted_hosts_only() {
    let addr = serve().await;
    let host = Host::new().await;
    host.manager
        .install(&common::package("fetch"), &Default::default())
        .await
        .unwrap();
    let url = format!("http://{addr}/page");
    let err = host.error("fetch/get_page", json!({"url": url})).await;
    assert_eq!(err.kind, ErrorKind::Denied, "nothing granted yet: {err}");

    let only = switchyard::plugins::manifest::Capabilities {
        http: vec!["*".into()],
        ..Default::default()
    };
    host.manager.grant("fetch", Some(&only)).await.unwrap();
    let err = host.error("fetch/get_page", json!({"url": url})).await;
    assert_eq!(
        err.kind,
        ErrorKind::Denied,
        "`*` reaches no loopback address: {err}"
    );
    assert!(err.message.contains("non-public"), "{err}");
    let loopback = switchyard::plugins::manifest::Capabilities {
        http: vec![format!("127.0.0.1:{}", addr.port())],
        ..Default::default()
    };
    host.manager.grant("fetch", Some(&loopback)).await.unwrap();
    let text = host.ok("fetch/get_page", json!({"url": url})).await;
    assert!(text.contains("Hello") && text.contains("World"), "{text}");
    assert!(!text.contains("evil()"), "scripts are dropped: {text}");

    let out = host
        .ok(
            "fetch/http_request",
            json!({"url": format!("http://{addr}/echo"), "method": "POST", "headers": {"x-test": "1"}, "body": "payload"}),
        ).await;
    let v = parse(&out);
    assert_eq!(v["status"], 200);
    assert_eq!(
        parse(v["body"].as_str().unwrap()),
        json!({"method": "POST", "x_test": "1", "body": "payload"})
    );

    let err = host
        .error(
            "fetch/get_page",
            json!({"url": format!("http://{addr}/missing")}),
        )
        .await;
    assert_eq!(err.kind, ErrorKind::Failed);
    assert!(err.message.contains("404"), "{err}");
    let err = host
        .error("fetch/get_page", json!({"url": "ftp://example.com/"}))
        .await;
    assert_eq!(err.kind, ErrorKind::InvalidInput);
}

#[tokio::test]
async fn fetch_with_a_narrow_grant() {
    use switchyard::plugins::manifest::Capabilities;
    let addr = serve().await;
    let host = Host::new().await;
    host.manager
        .install(&common::package("fetch"), &Default::default())
        .await
        .unwrap();
    let err = host
        .manager
        .grant(
            "fetch",
            Some(&Capabilities {
                secrets: vec!["nope".into()],
                ..Default::default()
            }),
        )
        .await;
    assert!(err.unwrap_err().to_string().contains("does not request"));
    let err = host
        .manager
        .grant(
            "fetch",
            Some(&Capabilities {
                http: vec!["http://x/".into()],
                ..Default::default()
            }),
        )
        .await;
    assert!(
        err.unwrap_err()
            .to_string()
            .contains("not a valid host pattern")
    );
    let narrow = Capabilities {
        http: vec![format!("127.0.0.1:{}", addr.port())],
        ..Default::default()
    };
    host.manager.grant("fetch", Some(&narrow)).await.unwrap();
    assert!(
        host.call(
            "fetch/get_page",
            json!({"url": format!("http://{addr}/page")})
        )
        .await
        .is_ok()
    );
    let other = format!("http://localhost:{}/page", addr.port());
    let err = host.error("fetch/get_page", json!({"url": other})).await;
    assert_eq!(err.kind, ErrorKind::Denied, "only the granted host: {err}");
    host.manager.revoke("fetch").await.unwrap();
    let err = host
        .error(
            "fetch/get_page",
            json!({"url": format!("http://{addr}/page")}),
        )
        .await;
    assert_eq!(err.kind, ErrorKind::Denied);
}

#[tokio::test]
async fn notes_remember_recall_list_forget_and_persist() {
    let host = Host::with(&["notes"]).await;
    let first = parse(
        &host
            .ok(
                "notes/remember",
                json!({"text": "Deploys happen on Tuesdays", "tags": ["Ops"]}),
            )
            .await,
    );
    host.ok(
        "notes/remember",
        json!({"text": "The coffee machine is on floor 3"}),
    )
    .await;
    let found = parse(
        &host
            .ok("notes/recall", json!({"query": "tuesdays ops"}))
            .await,
    );
    assert_eq!(found["count"], 1);
    assert_eq!(found["notes"][0]["tags"], json!(["ops"]));
    let listed = parse(&host.ok("notes/list", json!({})).await);
    assert_eq!(listed["count"], 2);

    let reopened = common::manager_for(host.data.path()).await;
    let out = switchyard::tools::call(&reopened, "notes", "list", "{\"tag\": \"ops\"}", None)
        .await
        .unwrap();
    assert!(
        format!("{:?}", out.content).contains("Tuesdays"),
        "notes survive a restart"
    );

    let id = first["id"].as_str().unwrap();
    host.ok("notes/forget", json!({"id": id})).await;
    let err = host.error("notes/forget", json!({"id": id})).await;
    assert_eq!(err.kind, ErrorKind::NotFound);
    let err = host.error("notes/remember", json!({"text": "   "})).await;
    assert_eq!(err.kind, ErrorKind::InvalidInput);
}

#[tokio::test]
async fn skill_plugin_serves_its_skills() {
    let host = Host::with(&["starter-skills"]).await;
    let loaded = host.manager.load("starter-skills").await.unwrap();
    let contents = host.manager.contents_of(&loaded).await.unwrap();
    let names: Vec<_> = contents.skills.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["commit-messages", "code-review"]);
    let runtime = host.manager.runtime();
    let skill = runtime
        .load_skill(&loaded.component, "code-review")
        .await
        .unwrap();
    assert!(skill.instructions.starts_with("# Reviewing a change"));
    assert_eq!(skill.files[0].path, "references/checklist.md");
    let err = runtime
        .load_skill(&loaded.component, "nope")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    let err = runtime.list_tools(&loaded.component).await.unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::NotFound,
        "a skill plugin exports no tools: {err}"
    );
}

#[tokio::test]
async fn disabled_plugins_refuse_calls() {
    let host = Host::with(&["data"]).await;
    host.manager.set_enabled("data", false).await.unwrap();
    let err = switchyard::tools::call(&host.manager, "data", "hash", "{\"text\":\"a\"}", None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("disabled"), "{err}");
    host.manager.set_enabled("data", true).await.unwrap();
    assert!(host.call("data/hash", json!({"text": "a"})).await.is_ok());
    let err = switchyard::tools::call(&host.manager, "nope", "x", "{}", None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no plugin named `nope`"), "{err}");
}
