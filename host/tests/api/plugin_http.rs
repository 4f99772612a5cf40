//! Outbound plugin HTTP through the real `fetch` plugin: granted `*`, it still
//! reaches no loopback, private or metadata address (in any numeric spelling, by
//! a name that resolves there, or through a redirect) unless an admin granted
//! that address; every refusal is a guest-visible `denied` and an audit entry.

use crate::harness::{Client, Resp, Server, package_bytes};
use serde_json::json;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use switchyard::net::{Lookup, Resolve, Resolver};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A resolver with a fixed table (names outside it do not resolve).
struct Table(HashMap<&'static str, IpAddr>);

impl Resolve for Table {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a> {
        Box::pin(async move {
            match self.0.get(host) {
                Some(ip) => Ok(vec![SocketAddr::new(*ip, port)]),
                None => Err(std::io::Error::other(format!("no such host `{host}`"))),
            }
        })
    }
}

/// A loopback HTTP server answering every request with `reply` (status line + headers).
async fn serve(reply: String) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(reply.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    port
}

async fn page(user: &Client, url: &str) -> Resp {
    user.call("fetch", "get_page", json!({ "url": url })).await
}

fn assert_refused(r: &Resp, url: &str) {
    assert_eq!(r.status, 403, "{url}: {}", r.text);
    assert_eq!(r.code(), "capability_denied", "{url}");
    let message = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("non-public"), "{url}: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_http_reaches_only_public_or_granted_addresses() {
    let body = "secret metrics";
    let secret = serve(format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))
    .await;
    let redirector = serve(format!(
        "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{secret}/metrics\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    ))
    .await;
    let table = Table(HashMap::from([
        ("public.example", "127.0.0.1".parse().unwrap()),
        ("metadata.example", "169.254.169.254".parse().unwrap()),
    ]));
    let server = Server::start_with(crate::harness::Backend::Sqlite, |c| {
        c.resolver = Resolver::new(table);
    })
    .await;
    let r = server
        .admin
        .upload("?grant=true", package_bytes("fetch"))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.body["plugin"]["granted"]["http"],
        json!(["*"]),
        "{}",
        r.body
    );
    let (alice, _) = server.user("alice", "user").await;

    let direct = format!("http://127.0.0.1:{secret}/metrics");
    assert_refused(&page(&alice, &direct).await, &direct);
    for host in [
        "127.1",
        "0.0.0.0",
        "2130706433",
        "0x7f.1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "169.254.169.254",
        "10.0.0.1",
        "public.example",
        "metadata.example",
    ] {
        let url = format!("http://{host}:{secret}/metrics");
        let r = page(&alice, &url).await;
        assert_refused(&r, &url);
        assert!(!r.text.contains(body), "{url}: {}", r.text);
    }
    let audit = server.admin.get("/api/v1/audit?outcome=denied").await;
    assert!(
        audit.text.contains(&format!(
            "http 127.0.0.1:{secret} (non-public address 127.0.0.1)"
        )),
        "{}",
        audit.text
    );
    assert!(audit.text.contains("http public.example"), "{}", audit.text);

    // An administrator's grant of the address opens exactly that address and port.
    let r = server
        .admin
        .post(
            "/api/v1/plugins/fetch/grants",
            json!({ "http": [format!("127.0.0.1:{secret}"), format!("127.0.0.0/8:{redirector}")] }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for url in [
        direct.clone(),
        format!("http://public.example:{secret}/metrics"),
    ] {
        let r = page(&alice, &url).await;
        assert_eq!(r.status, 200, "{url}: {}", r.text);
        assert!(r.text.contains(body), "{}", r.text);
    }

    // A redirect is a new request, checked again: the redirector is granted, the
    // target address is only granted on another port.
    let r = server.admin.delete("/api/v1/plugins/fetch/grants").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = server
        .admin
        .post(
            "/api/v1/plugins/fetch/grants",
            json!({ "http": ["*", format!("127.0.0.1:{redirector}")] }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let url = format!("http://public.example:{redirector}/start");
    let r = page(&alice, &url).await;
    assert_refused(&r, &url);
    assert!(!r.text.contains(body), "{}", r.text);
    server.stop().await;
}
