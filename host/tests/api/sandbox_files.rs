//! Downloads stream out of the sandbox: the size comes first (as
//! Content-Length), the bytes follow as the sandbox reads them, and a client
//! that leaves early stops the reader.

use crate::harness::{Backend, Server};
use crate::sandboxes::{cleanup, create, exec};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_stream_and_stop_when_the_client_leaves() {
    let server = Server::start(Backend::Sqlite).await;
    let admin = &server.admin;
    let id = create(admin, json!({})).await;
    let made = exec(
        admin,
        &id,
        json!({ "command": "head -c 67108864 /dev/urandom > big && printf abc > small && : > empty" }),
    )
    .await;
    assert_eq!(made.body["exit_code"], 0, "{}", made.text);
    let get = |path: &str| {
        admin.request(
            reqwest::Method::GET,
            &format!("/api/v1/sandboxes/{id}/file?path={path}"),
        )
    };

    let small = get("small").send().await.unwrap();
    assert_eq!(small.status(), 200);
    assert_eq!(small.content_length(), Some(3));
    assert_eq!(small.bytes().await.unwrap().as_ref(), b"abc");
    let empty = get("empty").send().await.unwrap();
    assert_eq!(empty.content_length(), Some(0));
    assert!(empty.bytes().await.unwrap().is_empty());

    // The whole 64 MiB arrives with its digest intact.
    let big = get("big").send().await.unwrap();
    assert_eq!(big.content_length(), Some(64 << 20));
    let bytes = big.bytes().await.unwrap();
    assert_eq!(bytes.len(), 64 << 20);
    let digest = exec(
        admin,
        &id,
        json!({ "command": "sha256sum big | cut -c1-64" }),
    )
    .await;
    let ours = {
        use sha2::Digest;
        format!("{:x}\n", sha2::Sha256::digest(&bytes))
    };
    assert_eq!(digest.body["stdout"], ours);

    // A client that reads one chunk and leaves: the reader is killed.
    let mut partial = get("big").send().await.unwrap();
    assert!(!partial.chunk().await.unwrap().unwrap().is_empty());
    drop(partial);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = exec(
            admin,
            &id,
            json!({ "command": "ps -eo args | grep -c '^cat -- /workspace/big' || true" }),
        )
        .await;
        if left.body["stdout"] == "0\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reader still runs: {}",
            left.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cleanup(&server).await;
    server.stop().await;
}
