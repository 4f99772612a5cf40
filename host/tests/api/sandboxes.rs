//! Sandboxes against the real Docker engine and the worker image (see
//! scripts/docker): lifecycle, commands, byte-exact files, limits (pids,
//! memory, network, deadlines, output cap), quota, two-user isolation, hostile
//! paths, re-attaching after a host restart, and an absent engine.

use crate::harness::{Backend, Client, Resp, Server};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use switchyard::sandbox::Driver;
use switchyard::sandbox::docker::DockerDriver;

crate::on_both_backends!(a_sandbox_runs_commands_and_keeps_files);

/// Create a sandbox; panics unless 201.
pub async fn create(client: &Client, body: Value) -> String {
    let r = client.post("/api/v1/sandboxes", body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_str().unwrap().to_string()
}

pub async fn exec(client: &Client, id: &str, body: Value) -> Resp {
    client
        .post(&format!("/api/v1/sandboxes/{id}/exec"), body)
        .await
}

async fn upload(client: &Client, id: &str, path: &str, data: Vec<u8>) -> Resp {
    client
        .send(
            client
                .request(
                    reqwest::Method::PUT,
                    &format!("/api/v1/sandboxes/{id}/file?path={path}"),
                )
                .body(data),
        )
        .await
}

async fn download(client: &Client, id: &str, path: &str) -> (u16, Vec<u8>) {
    let r = client
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/sandboxes/{id}/file?path={path}"),
        )
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.bytes().await.unwrap().to_vec())
}

/// Delete every sandbox of the server (and their volumes).
pub async fn cleanup(server: &Server) {
    let all = server
        .admin
        .get("/api/v1/sandboxes?all=true&limit=500")
        .await;
    for s in all.body["items"].as_array().cloned().unwrap_or_default() {
        let id = s["id"].as_str().unwrap();
        server
            .admin
            .delete(&format!("/api/v1/sandboxes/{id}"))
            .await;
    }
    server.services.sandboxes.drain_pool().await;
}

async fn container_of(server: &Server, id: &str) -> String {
    let row = server.services.store.sandbox(id).await.unwrap().unwrap();
    row.container_id.expect("a container")
}

async fn a_sandbox_runs_commands_and_keeps_files(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = &server.admin;
    let id = create(admin, json!({ "name": "work" })).await;
    let got = admin.get(&format!("/api/v1/sandboxes/{id}")).await;
    assert_eq!(got.body["state"], "idle");
    assert_eq!(got.body["name"], "work");
    assert_eq!(got.body["limits"]["network"], false);
    assert_eq!(
        admin
            .post("/api/v1/sandboxes", json!({ "name": "work" }))
            .await
            .status,
        409
    );

    let r = exec(
        admin,
        &id,
        json!({ "command": "echo hello; echo oops >&2; exit 3" }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["exit_code"], 3);
    assert_eq!(r.body["stdout"], "hello\n");
    assert_eq!(r.body["stderr"], "oops\n");
    let who = exec(admin, &id, json!({ "argv": ["id", "-u"] })).await;
    assert_eq!(
        who.body["stdout"], "1000\n",
        "runs as the non-root agent user"
    );
    let piped = exec(
        admin,
        &id,
        json!({ "command": "tr a-z A-Z", "stdin": "shout" }),
    )
    .await;
    assert_eq!(piped.body["stdout"], "SHOUT");
    let env = exec(
        admin,
        &id,
        json!({ "command": "echo $GREETING", "env": { "GREETING": "hi" }, "workdir": "output" }),
    )
    .await;
    assert_eq!(env.body["stdout"], "hi\n");
    let binary = exec(
        admin,
        &id,
        json!({ "command": "printf '\\377\\376\\000x'" }),
    )
    .await;
    assert_eq!(binary.body["encoding"], "base64");
    assert_eq!(binary.body["stdout"], "//4AeA==");
    let hardened = exec(
        admin,
        &id,
        json!({ "command": "touch /etc/x 2>/dev/null || echo ro; grep -E 'CapEff|NoNewPrivs' /proc/self/status; touch /tmp/t && echo tmp" }),
    )
    .await;
    assert_eq!(
        hardened.body["stdout"], "ro\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\ntmp\n",
        "read-only root, no capabilities, no new privileges, writable /tmp"
    );

    // Files round-trip byte-exactly, binary and large.
    let blob: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let put = upload(admin, &id, "data/blob.bin", blob.clone()).await;
    assert_eq!(put.status, 201, "{}", put.text);
    assert_eq!(put.body["path"], "/workspace/data/blob.bin");
    let (status, back) = download(admin, &id, "/workspace/data/blob.bin").await;
    assert_eq!(status, 200);
    assert!(back == blob, "3 MiB came back byte-exact");
    let sum = exec(
        admin,
        &id,
        json!({ "command": "sha256sum data/blob.bin | cut -c1-64" }),
    )
    .await;
    use sha2::Digest;
    assert_eq!(
        sum.body["stdout"],
        format!("{}\n", hex::encode(sha2::Sha256::digest(&blob)))
    );
    assert_eq!(upload(admin, &id, "empty", Vec::new()).await.status, 201);
    assert_eq!(download(admin, &id, "empty").await, (200, Vec::new()));
    exec(
        admin,
        &id,
        json!({ "command": "echo result > output/report.txt" }),
    )
    .await;
    let listed = admin
        .get(&format!("/api/v1/sandboxes/{id}/files?path=output"))
        .await;
    assert_eq!(listed.body["items"][0]["path"], "report.txt");
    assert_eq!(listed.body["items"][0]["kind"], "file");
    assert_eq!(listed.body["items"][0]["size"], 7);
    let deep = admin
        .get(&format!("/api/v1/sandboxes/{id}/files?depth=2"))
        .await;
    let paths: Vec<&str> = deep.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"data/blob.bin") && paths.contains(&"output/report.txt"),
        "{paths:?}"
    );
    let stats = admin.get(&format!("/api/v1/sandboxes/{id}/stats")).await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    assert_eq!(stats.body["memory_limit_bytes"], 512u64 << 20);

    // Stop removes the container and keeps the workspace; the next command restarts it.
    let container = container_of(&server, &id).await;
    let stopped = admin
        .post(&format!("/api/v1/sandboxes/{id}/stop"), json!({}))
        .await;
    assert_eq!(stopped.body["state"], "stopped");
    let driver = DockerDriver::new(None);
    assert!(
        driver.inspect(&container).await.is_err(),
        "the container is gone"
    );
    let again = exec(admin, &id, json!({ "command": "cat output/report.txt" })).await;
    assert_eq!(again.body["stdout"], "result\n", "the workspace survived");
    assert_eq!(
        admin.get(&format!("/api/v1/sandboxes/{id}")).await.body["state"],
        "idle"
    );

    // Delete removes the container and the volume.
    let container = container_of(&server, &id).await;
    let volume = server
        .services
        .store
        .sandbox(&id)
        .await
        .unwrap()
        .unwrap()
        .volume;
    assert_eq!(
        admin
            .delete(&format!("/api/v1/sandboxes/{id}"))
            .await
            .status,
        204
    );
    assert!(driver.inspect(&container).await.is_err());
    let docker = driver.client().await.unwrap();
    assert!(
        docker.inspect_volume(&volume).await.is_err(),
        "the volume is gone"
    );
    assert_eq!(
        admin.get(&format!("/api/v1/sandboxes/{id}")).await.status,
        404
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_contain_hostile_commands() {
    let server = Server::start_with(Backend::Sqlite, |c| {
        c.sandbox.max_output_bytes = 256 << 10;
    })
    .await;
    let admin = &server.admin;
    let id = create(
        admin,
        json!({ "limits": { "memory_mb": 96, "pids": 64, "exec_timeout_secs": 20 } }),
    )
    .await;

    let bomb = exec(
        admin,
        &id,
        json!({ "command": "f() { f | f & }; f", "timeout_secs": 5 }),
    )
    .await;
    assert_eq!(bomb.status, 200, "{}", bomb.text);
    // The bomb's last processes die as their forks fail; then the sandbox answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive = exec(admin, &id, json!({ "command": "echo alive" })).await;
        if alive.body["stdout"] == "alive\n" {
            break;
        }
        eprintln!("not yet: {}", alive.text);
        assert!(
            Instant::now() < deadline,
            "the fork bomb was contained: {}\n{}",
            bomb.text,
            alive.text
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let hog = exec(
        admin,
        &id,
        json!({ "command": "python3 -c 'b = bytearray(1 << 30); print(len(b))'" }),
    )
    .await;
    assert_eq!(hog.body["exit_code"], 137, "{}", hog.text);
    assert_eq!(hog.body["oom_killed"], true, "{}", hog.text);
    assert_eq!(
        exec(admin, &id, json!({ "command": "echo ok" })).await.body["stdout"],
        "ok\n"
    );
    let plain_kill = exec(admin, &id, json!({ "command": "kill -9 $$" })).await;
    assert_eq!(plain_kill.body["exit_code"], 137);
    assert_eq!(
        plain_kill.body["oom_killed"], false,
        "a plain SIGKILL is not an OOM"
    );

    let net = exec(
        admin,
        &id,
        json!({ "command": "python3 -c 'import socket; socket.create_connection((\"1.1.1.1\", 80), timeout=3)' 2>&1 | tail -1; ls /sys/class/net" }),
    )
    .await;
    let text = net.body["stdout"].as_str().unwrap();
    assert!(
        text.contains("unreachable") || text.contains("Error"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("lo"), "only loopback: {text}");

    let started = Instant::now();
    let slow = exec(
        admin,
        &id,
        json!({ "command": "sleep 60", "timeout_secs": 1 }),
    )
    .await;
    assert_eq!(slow.body["timed_out"], true, "{}", slow.text);
    assert!(started.elapsed() < Duration::from_secs(10));

    let started = Instant::now();
    let flood = exec(
        admin,
        &id,
        json!({ "command": "cat /dev/zero", "timeout_secs": 20 }),
    )
    .await;
    assert_eq!(flood.body["truncated"], true, "{}", flood.body["exit_code"]);
    assert_eq!(flood.body["timed_out"], false);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "cut and killed, not left to the deadline"
    );
    let stdout = flood.body["stdout"].as_str().unwrap();
    assert_eq!(stdout.len(), 256 << 10, "exactly the cap is kept");
    assert!(
        flood.body["stderr"]
            .as_str()
            .unwrap()
            .contains("output truncated after 262144 bytes")
    );
    let procs = exec(
        admin,
        &id,
        json!({ "command": "ps -eo comm= | grep -c '^cat$' || true" }),
    )
    .await;
    assert_eq!(
        procs.body["stdout"], "0\n",
        "the flooding command was killed"
    );
    cleanup(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_limits_and_owners_are_enforced() {
    let server = Server::start(Backend::Sqlite).await;
    let (bob, bob_id) = server.user("bob", "user").await;
    let (carol, _) = server.user("carol", "user").await;
    let admin = &server.admin;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            create(
                &bob,
                json!({ "name": format!("b{n}"), "limits": { "memory_mb": 64 } }),
            )
            .await,
        );
    }
    let over = bob.post("/api/v1/sandboxes", json!({ "name": "b3" })).await;
    assert_eq!(over.status, 409, "{}", over.text);
    assert!(
        over.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("quota is 3")
    );
    // A stopped sandbox frees a slot; restarting it needs one again.
    bob.post(&format!("/api/v1/sandboxes/{}/stop", ids[0]), json!({}))
        .await;
    let b3 = create(&bob, json!({ "name": "b3", "limits": { "memory_mb": 64 } })).await;
    assert_eq!(
        exec(&bob, &ids[0], json!({ "command": "true" }))
            .await
            .status,
        409
    );
    // Administrators raise the quota and the maxima.
    let limits = format!("/api/v1/users/{bob_id}/sandbox-limits");
    assert_eq!(bob.put(&limits, json!({ "quota": 9 })).await.status, 403);
    let set = admin
        .put(
            &limits,
            json!({ "quota": 4, "max": { "memory_mb": 128, "network": true } }),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.text);
    assert_eq!(admin.get(&limits).await.body["max"]["memory_mb"], 128);
    assert_eq!(
        exec(&bob, &ids[0], json!({ "command": "true" })).await.body["exit_code"],
        0
    );
    let too_big = bob
        .post(
            "/api/v1/sandboxes",
            json!({ "limits": { "memory_mb": 256 } }),
        )
        .await;
    assert_eq!(too_big.status, 403, "{}", too_big.text);
    assert!(too_big.text.contains("above your maximum of 128"));
    let no_net = carol
        .post(
            "/api/v1/sandboxes",
            json!({ "limits": { "network": true } }),
        )
        .await;
    assert_eq!(no_net.status, 403, "{}", no_net.text);
    for bad in [
        json!({ "limits": { "memory_mb": 1 } }),
        json!({ "limits": { "cpus": 0 } }),
        json!({ "limits": { "pids": -1 } }),
        json!({ "name": "Bad Name" }),
        json!({ "name": "x".repeat(64) }),
        json!({ "surprise": true }),
    ] {
        let r = carol.post("/api/v1/sandboxes", bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
    assert_eq!(
        admin
            .put(&limits, json!({ "max": { "cpus": -1 } }))
            .await
            .status,
        400
    );

    // Carol cannot see or touch Bob's sandboxes; the admin can.
    let b = &ids[1];
    assert_eq!(
        carol.get(&format!("/api/v1/sandboxes/{b}")).await.status,
        404
    );
    assert_eq!(
        exec(&carol, b, json!({ "command": "true" })).await.status,
        404
    );
    assert_eq!(download(&carol, b, "x").await.0, 404);
    assert_eq!(upload(&carol, b, "x", b"x".to_vec()).await.status, 404);
    assert_eq!(
        carol
            .get(&format!("/api/v1/sandboxes/{b}/files"))
            .await
            .status,
        404
    );
    assert_eq!(
        carol
            .get(&format!("/api/v1/sandboxes/{b}/stats"))
            .await
            .status,
        404
    );
    assert_eq!(
        carol
            .post(&format!("/api/v1/sandboxes/{b}/stop"), json!({}))
            .await
            .status,
        404
    );
    assert_eq!(
        carol.delete(&format!("/api/v1/sandboxes/{b}")).await.status,
        404
    );
    assert_eq!(
        carol.get("/api/v1/sandboxes?all=true").await.body["items"],
        json!([])
    );
    assert_eq!(
        bob.get("/api/v1/sandboxes").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        admin.get("/api/v1/sandboxes").await.body["items"],
        json!([])
    );
    assert_eq!(
        admin.get("/api/v1/sandboxes?all=true").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        exec(admin, b, json!({ "command": "true" })).await.status,
        200
    );
    assert_eq!(
        server.anon().get("/api/v1/sandboxes").await.status,
        401,
        "no token, no sandboxes"
    );
    // `PUT {}` restores the system's limits; the resource has no DELETE.
    assert_eq!(admin.put(&limits, json!({})).await.status, 200);
    let restored = admin.get(&limits).await;
    assert_eq!(restored.body["quota"], Value::Null, "{}", restored.text);
    assert_eq!(restored.body["max"]["memory_mb"], Value::Null);
    assert_eq!(admin.delete(&limits).await.status, 405);
    let _ = b3;
    cleanup(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_paths_and_inputs_are_refused() {
    let server = Server::start_with(Backend::Sqlite, |c| {
        c.sandbox.max_file_bytes = 1 << 20;
    })
    .await;
    let admin = &server.admin;
    let id = create(admin, json!({})).await;
    exec(
        admin,
        &id,
        json!({ "command": "ln -s /etc etc-link; ln -s /etc/passwd pw; ln -s output out-link" }),
    )
    .await;
    for path in [
        "../etc/passwd",
        "/etc/passwd",
        "a/../../etc/passwd",
        "%2e%2e/etc/passwd",
    ] {
        let (status, _) = download(admin, &id, path).await;
        assert_eq!(status, 400, "{path}");
    }
    for path in ["etc-link/passwd", "pw"] {
        let (status, body) = download(admin, &id, path).await;
        assert_eq!(status, 400, "{path}: {}", String::from_utf8_lossy(&body));
        assert!(String::from_utf8_lossy(&body).contains("outside /workspace"));
        assert_eq!(
            upload(admin, &id, path, b"x".to_vec()).await.status,
            400,
            "{path}"
        );
    }
    assert_eq!(
        upload(admin, &id, "etc-link/new", b"x".to_vec())
            .await
            .status,
        400
    );
    assert_eq!(
        upload(admin, &id, "out-link/ok.txt", b"fine".to_vec())
            .await
            .status,
        201,
        "links inside the workspace are fine"
    );
    assert_eq!(
        download(admin, &id, "output/ok.txt").await,
        (200, b"fine".to_vec())
    );
    assert_eq!(download(admin, &id, "missing").await.0, 404);
    assert_eq!(
        download(admin, &id, "output").await.0,
        400,
        "a directory is not a file"
    );
    assert_eq!(
        upload(admin, &id, "output", b"x".to_vec()).await.status,
        400
    );
    let huge = upload(admin, &id, "big", vec![7u8; (1 << 20) + 1]).await;
    assert_eq!(huge.status, 413, "{}", huge.text);
    assert_eq!(
        download(admin, &id, "big").await.0,
        404,
        "nothing was written"
    );
    exec(
        admin,
        &id,
        json!({ "command": "head -c 2000000 /dev/zero > output/large" }),
    )
    .await;
    assert_eq!(download(admin, &id, "output/large").await.0, 413);
    for bad in [
        json!({}),
        json!({ "command": "" }),
        json!({ "command": "true", "argv": ["true"] }),
        json!({ "argv": [] }),
        json!({ "command": "true", "env": { "A=B": "x" } }),
        json!({ "command": "true", "env": { "SY_EXEC": "x" } }),
        json!({ "command": "true", "timeout_secs": 0 }),
        json!({ "command": "true", "timeout_secs": 100000 }),
        json!({ "command": "true", "workdir": "../.." }),
        json!({ "command": "true", "bogus": 1 }),
    ] {
        let r = exec(admin, &id, bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
    let big_stdin = exec(
        admin,
        &id,
        json!({ "command": "wc -c", "stdin": "x".repeat((1 << 20) + 1) }),
    )
    .await;
    assert_eq!(big_stdin.status, 413);
    let nul = exec(admin, &id, json!({ "argv": ["echo", "a\u{0}b"] })).await;
    assert!(nul.status == 400 || nul.status == 200, "{}", nul.text);
    assert_eq!(
        exec(admin, &id, json!({ "command": "echo still" }))
            .await
            .body["stdout"],
        "still\n"
    );
    assert_eq!(admin.get("/api/v1/sandboxes/nope").await.status, 404);
    cleanup(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_host_reattaches_and_reaps_orphans() {
    let server = Server::start_with(Backend::Sqlite, |c| c.sandbox.warm_pool = 1).await;
    server.services.sandboxes.start_background();
    let admin = server.admin.clone();
    let id = create(&admin, json!({ "name": "keeper" })).await;
    exec(&admin, &id, json!({ "command": "echo kept > note" })).await;
    let container = container_of(&server, &id).await;
    let config = server.services.config.clone();
    // An orphan: a labelled container of this host that no sandbox claims.
    let orphan = {
        let s = &server.services.sandboxes;
        let row = server.services.store.sandbox(&id).await.unwrap().unwrap();
        let mut spec = switchyard::sandbox::driver::ContainerSpec {
            image: config.sandbox.image.clone(),
            labels: Default::default(),
            volume: row.volume.clone(),
            limits: config.sandbox.defaults,
        };
        let c = s.driver().list("io.switchyard.managed").await.unwrap();
        spec.labels = c.iter().find(|x| x.id == container).unwrap().labels.clone();
        spec.labels
            .insert("io.switchyard.sandbox".into(), "gone".into());
        s.driver().start(&spec).await.unwrap()
    };
    // The host goes away without touching its containers, and comes back.
    let (data, config) = server.into_data().await;
    let again = Server::resume(data, config).await;
    again.services.sandboxes.reattach().await.unwrap();
    let r = exec(&again.admin, &id, json!({ "command": "cat note" })).await;
    assert_eq!(r.body["stdout"], "kept\n", "{}", r.text);
    assert_eq!(
        container_of(&again, &id).await,
        container,
        "the same container, re-attached"
    );
    let driver = DockerDriver::new(None);
    assert!(
        driver.inspect(&orphan).await.is_err(),
        "the orphan was removed"
    );
    cleanup(&again).await;
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warm_pool_hands_out_started_containers() {
    let server = Server::start_with(Backend::Sqlite, |c| c.sandbox.warm_pool = 1).await;
    server.services.sandboxes.start_background();
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.services.sandboxes.pool_size() == 0 {
        assert!(Instant::now() < deadline, "the pool filled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    let id = create(&server.admin, json!({})).await;
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        exec(&server.admin, &id, json!({ "command": "ls" }))
            .await
            .body["stdout"],
        "output\n"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.services.sandboxes.pool_size() == 0 {
        assert!(Instant::now() < deadline, "the pool refilled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Custom limits never take a pooled container.
    let custom = create(&server.admin, json!({ "limits": { "memory_mb": 100 } })).await;
    let stats = server
        .admin
        .get(&format!("/api/v1/sandboxes/{custom}/stats"))
        .await;
    assert_eq!(stats.body["memory_limit_bytes"], 100u64 << 20);
    cleanup(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_engine_means_503_until_it_comes_back() {
    let dir = tempfile::TempDir::new().unwrap();
    let socket = dir.path().join("docker.sock");
    let socket_text = socket.to_string_lossy().to_string();
    let server = Server::start_with(Backend::Sqlite, |c| {
        c.sandbox.docker_socket = Some(socket_text);
    })
    .await;
    let r = server.admin.post("/api/v1/sandboxes", json!({})).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.text.contains("start it"), "{}", r.text);
    assert_eq!(server.admin.get("/api/v1/sandboxes").await.status, 200);
    assert_eq!(server.admin.get("/api/v1/health").await.status, 200);
    let m = crate::mcp::Mcp::open(&server.admin).await;
    let names = m.tool_names().await;
    assert!(
        !names.iter().any(|n| n.starts_with("sandbox_")),
        "no sandbox tools are offered while no engine answers: {names:?}"
    );
    assert!(names.contains(&"task_run".to_string()), "{names:?}");
    // The engine "comes back" at the configured socket.
    std::os::unix::fs::symlink("/var/run/docker.sock", &socket).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !m.tool_names().await.contains(&"sandbox_exec".to_string()) {
        assert!(Instant::now() < deadline, "the sandbox tools came back");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let id = create(&server.admin, json!({})).await;
    assert_eq!(
        exec(&server.admin, &id, json!({ "command": "echo back" }))
            .await
            .body["stdout"],
        "back\n"
    );
    cleanup(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_clients_work_in_sandboxes() {
    use crate::mcp::Mcp;
    let server = Server::start(Backend::Sqlite).await;
    let (bob, _) = server.user("bob", "user").await;
    let (carol, _) = server.user("carol", "user").await;
    let m = Mcp::open(&bob).await;
    let names = m.tool_names().await;
    for tool in [
        "sandbox_create",
        "sandbox_exec",
        "sandbox_write_file",
        "sandbox_read_file",
        "sandbox_list_files",
        "sandbox_list",
        "sandbox_delete",
    ] {
        assert!(names.contains(&tool.to_string()), "{tool} in {names:?}");
    }
    let created = m.call("sandbox_create", json!({ "name": "mcp" })).await;
    let id = created["result"]["structuredContent"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ran = m
        .call(
            "sandbox_exec",
            json!({ "id": id, "command": "echo from-mcp; mkdir -p output" }),
        )
        .await;
    assert_eq!(
        ran["result"]["structuredContent"]["stdout"], "from-mcp\n",
        "{ran}"
    );
    assert_eq!(ran["result"]["isError"], false);
    let failed = m
        .call("sandbox_exec", json!({ "id": id, "command": "exit 4" }))
        .await;
    assert_eq!(failed["result"]["isError"], true);
    assert_eq!(failed["result"]["structuredContent"]["exit_code"], 4);
    let wrote = m
        .call(
            "sandbox_write_file",
            json!({ "id": id, "path": "output/n.txt", "content": "notes ✓" }),
        )
        .await;
    assert_eq!(wrote["result"]["structuredContent"]["size"], 9, "{wrote}");
    let bin = m
        .call(
            "sandbox_write_file",
            json!({ "id": id, "path": "b.bin", "base64": "AP8A/w==" }),
        )
        .await;
    assert_eq!(bin["result"]["structuredContent"]["size"], 4, "{bin}");
    let read = m
        .call(
            "sandbox_read_file",
            json!({ "id": id, "path": "output/n.txt" }),
        )
        .await;
    assert_eq!(read["result"]["content"][0]["text"], "notes ✓");
    let read_bin = m
        .call("sandbox_read_file", json!({ "id": id, "path": "b.bin" }))
        .await;
    assert_eq!(
        read_bin["result"]["structuredContent"]["base64"],
        "AP8A/w=="
    );
    let listed = m
        .call("sandbox_list_files", json!({ "id": id, "path": "output" }))
        .await;
    assert_eq!(
        listed["result"]["structuredContent"]["items"][0]["path"],
        "n.txt"
    );
    let listing = m.call("sandbox_list", json!({})).await;
    assert_eq!(
        listing["result"]["structuredContent"]["sandboxes"][0]["name"],
        "mcp"
    );
    // Bad input and other users' sandboxes are tool errors; the session goes on.
    for (tool, args) in [
        (
            "sandbox_read_file",
            json!({ "id": id, "path": "../../etc/passwd" }),
        ),
        (
            "sandbox_write_file",
            json!({ "id": id, "path": "x", "content": "a", "base64": "YQ==" }),
        ),
        (
            "sandbox_write_file",
            json!({ "id": id, "path": "x", "base64": "%%%" }),
        ),
        ("sandbox_exec", json!({ "id": id })),
        ("sandbox_exec", json!({ "id": 5, "command": "true" })),
        ("sandbox_create", json!({ "name": "Bad Name" })),
    ] {
        let r = m.call(tool, args.clone()).await;
        assert_eq!(r["result"]["isError"], true, "{tool} {args}: {r}");
    }
    let other = Mcp::open(&carol).await;
    let stolen = other
        .call("sandbox_exec", json!({ "id": id, "command": "true" }))
        .await;
    assert_eq!(stolen["result"]["isError"], true);
    assert!(
        stolen["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("no sandbox")
    );
    assert_eq!(
        other.call("sandbox_list", json!({})).await["result"]["structuredContent"]["sandboxes"],
        json!([])
    );
    let gone = m.call("sandbox_delete", json!({ "id": id })).await;
    assert_eq!(gone["result"]["isError"], false, "{gone}");
    assert_eq!(
        bob.get(&format!("/api/v1/sandboxes/{id}")).await.status,
        404
    );
    cleanup(&server).await;
    server.stop().await;
}

/// Open a WebSocket at `path` with `token` in the Authorization header (or none).
async fn websocket(
    server: &Server,
    path: &str,
    token: Option<&str>,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    u16,
> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}{path}", server.base.replacen("http", "ws", 1));
    let mut req = url.into_client_request().unwrap();
    if let Some(t) = token {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("websocket: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_stream_commands_and_drive_a_terminal() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let server = Server::start(Backend::Sqlite).await;
    let (carol, _) = server.user("carol", "user").await;
    let token = server.admin.token.clone().unwrap();
    let id = create(&server.admin, json!({})).await;

    // Streamed exec: output frames in order, then the exit message.
    let mut ws = websocket(
        &server,
        &format!("/api/v1/sandboxes/{id}/exec/ws"),
        Some(&token),
    )
    .await
    .unwrap();
    let cmd =
        json!({ "command": "for i in 1 2 3; do echo $i; sleep 0.2; done; echo done >&2; exit 7" });
    ws.send(Message::text(cmd.to_string())).await.unwrap();
    let (mut stdout, mut stderr, mut exit) = (Vec::new(), Vec::new(), Value::Null);
    let mut arrivals = Vec::new();
    while let Some(Ok(m)) = ws.next().await {
        match m {
            Message::Binary(b) if b[0] == 1 => {
                arrivals.push(Instant::now());
                stdout.extend_from_slice(&b[1..]);
            }
            Message::Binary(b) if b[0] == 2 => stderr.extend_from_slice(&b[1..]),
            Message::Text(t) => exit = serde_json::from_str(t.as_str()).unwrap(),
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert_eq!(stdout, b"1\n2\n3\n");
    assert_eq!(stderr, b"done\n");
    assert_eq!(exit["type"], "exit");
    assert_eq!(exit["exit_code"], 7);
    assert!(
        arrivals.len() >= 2
            && *arrivals.last().unwrap() - arrivals[0] >= Duration::from_millis(300),
        "output streamed as it happened"
    );
    let mut bad = websocket(
        &server,
        &format!("/api/v1/sandboxes/{id}/exec/ws"),
        Some(&token),
    )
    .await
    .unwrap();
    bad.send(Message::text("not json")).await.unwrap();
    match bad.next().await {
        Some(Ok(Message::Text(t))) => assert!(t.as_str().contains("invalid command"), "{t}"),
        other => panic!("{other:?}"),
    }

    // Who may connect.
    assert_eq!(
        websocket(&server, &format!("/api/v1/sandboxes/{id}/terminal"), None)
            .await
            .err(),
        Some(401)
    );
    let carol_token = carol.token.clone().unwrap();
    assert_eq!(
        websocket(
            &server,
            &format!("/api/v1/sandboxes/{id}/terminal"),
            Some(&carol_token)
        )
        .await
        .err(),
        Some(404)
    );
    assert_eq!(
        websocket(
            &server,
            &format!("/api/v1/sandboxes/{id}/terminal?rows=0"),
            Some(&token)
        )
        .await
        .err(),
        Some(400)
    );

    // A terminal with the token in the query (as browsers connect): type, resize, exit.
    let mut term = websocket(
        &server,
        &format!("/api/v1/sandboxes/{id}/terminal?rows=24&cols=80&access_token={token}"),
        None,
    )
    .await
    .unwrap();
    async fn read_until(
        term: &mut (
                 impl futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
                 + Unpin
             ),
        needle: &str,
    ) -> String {
        let mut seen = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !seen.contains(needle) {
            match tokio::time::timeout_at(deadline, term.next()).await {
                Ok(Some(Ok(Message::Binary(b)))) => seen.push_str(&String::from_utf8_lossy(&b)),
                Ok(Some(Ok(Message::Text(t)))) => seen.push_str(t.as_str()),
                Ok(Some(Ok(_))) => {}
                other => panic!("waiting for {needle:?}, saw {seen:?}: {other:?}"),
            }
        }
        seen
    }
    term.send(Message::binary(b"echo $((6*7))\n".to_vec()))
        .await
        .unwrap();
    read_until(&mut term, "42").await;
    term.send(Message::text(
        json!({ "type": "resize", "rows": 30, "cols": 100 }).to_string(),
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    term.send(Message::binary(b"stty size\n".to_vec()))
        .await
        .unwrap();
    read_until(&mut term, "30 100").await;
    term.send(Message::binary(b"exit\n".to_vec()))
        .await
        .unwrap();
    read_until(&mut term, "\"exit\"").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while server
        .admin
        .get(&format!("/api/v1/sandboxes/{id}"))
        .await
        .body["state"]
        != "idle"
    {
        assert!(
            Instant::now() < deadline,
            "the sandbox is idle once the terminal closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cleanup(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sandboxes_are_stopped_and_restart_on_use() {
    let server = Server::start_with(Backend::Sqlite, |c| c.sandbox.idle_ttl_secs = 1).await;
    server.services.sandboxes.start_background();
    let id = create(&server.admin, json!({})).await;
    exec(&server.admin, &id, json!({ "command": "echo kept > f" })).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = server.admin.get(&format!("/api/v1/sandboxes/{id}")).await;
        if s.body["state"] == "stopped" {
            assert_eq!(s.body["detail"], "stopped after 1 s idle");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the idle reaper stopped the sandbox: {}",
            s.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let again = exec(&server.admin, &id, json!({ "command": "cat f" })).await;
    assert_eq!(again.body["stdout"], "kept\n", "{}", again.text);
    cleanup(&server).await;
    server.stop().await;
}
