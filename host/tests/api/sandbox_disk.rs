//! Workspace disks against the real Docker engine: the kernel enforces each
//! workspace's size (ENOSPC inside, the host's disk bounded by the size), the
//! data survives stop/start, a lost loop device and a host restart, delete
//! frees everything, the per-user storage quota counts stopped sandboxes,
//! sizes only grow, administrators see storage per user, and start-up
//! reaping removes orphaned workspaces but keeps kept ones.

use crate::harness::{Backend, Server};
use crate::sandboxes::{cleanup, create, exec};
use serde_json::json;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

crate::on_both_backends!(the_storage_quota_counts_stopped_sandboxes);

async fn volume_of(server: &Server, id: &str) -> String {
    server
        .services
        .store
        .sandbox(id)
        .await
        .unwrap()
        .unwrap()
        .volume
}

fn image_of(server: &Server, volume: &str) -> PathBuf {
    server
        .services
        .sandboxes
        .disks()
        .expect("disk limits are on")
        .image(volume)
}

/// The loop devices backed by `image`.
fn loops_of(image: &std::path::Path) -> Vec<String> {
    let out = std::process::Command::new("losetup")
        .args(["-j", &image.to_string_lossy()])
        .output()
        .expect("losetup");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').next().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_is_a_filesystem_of_its_size() {
    let server = Server::start(Backend::Sqlite).await;
    let admin = server.admin.clone();
    let id = create(
        &admin,
        json!({ "name": "small", "limits": { "disk_mb": 64 } }),
    )
    .await;
    let got = admin.get(&format!("/api/v1/sandboxes/{id}")).await;
    assert_eq!(got.body["limits"]["disk_mb"], 64);
    let df = exec(
        &admin,
        &id,
        json!({ "command": "df -k --output=size,target /workspace | tail -1; ls" }),
    )
    .await;
    let out = df.body["stdout"].as_str().unwrap().to_string();
    let kib: u64 = out.split_whitespace().next().unwrap().parse().unwrap();
    assert!((40_000..=65_536).contains(&kib), "df shows the size: {out}");
    assert!(
        out.contains("/workspace\noutput\n"),
        "the image's /workspace was copied in: {out}"
    );

    // Writing past the size fails inside, with ENOSPC; the host holds at most the size.
    let image = image_of(&server, &volume_of(&server, &id).await);
    let full = exec(
        &admin,
        &id,
        json!({ "command": "echo kept > note; dd if=/dev/zero of=fill bs=1M count=200 2>&1 | grep -o 'No space left on device' | head -1; sync; fallocate -l 5G big; echo fallocate=$?" }),
    )
    .await;
    let text = format!("{}{}", full.body["stdout"], full.body["stderr"]);
    assert!(text.contains("fallocate=1"), "{text}");
    assert!(text.contains("No space left on device"), "{text}");
    let on_host = std::fs::metadata(&image).unwrap().blocks() * 512;
    assert!(
        (40 << 20..=65 << 20).contains(&on_host),
        "the image takes {on_host} bytes of the host's disk"
    );
    // Deleted files give their blocks back to the host (discard, at the
    // filesystem's journal commits).
    exec(&admin, &id, json!({ "command": "rm -f fill big; sync" })).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let after = std::fs::metadata(&image).unwrap().blocks() * 512;
        if after < on_host / 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{after} after deleting, {on_host} before"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        exec(&admin, &id, json!({ "command": "sync" })).await;
    }

    // Stop/start keeps the data.
    assert_eq!(
        admin
            .post(&format!("/api/v1/sandboxes/{id}/stop"), json!({}))
            .await
            .status,
        200
    );
    let r = exec(&admin, &id, json!({ "command": "cat note" })).await;
    assert_eq!(r.body["stdout"], "kept\n", "{}", r.text);

    // A reboot loses loop devices: the next start attaches the image again
    // (on another device, since a stranger took the old one) and re-points the volume.
    assert_eq!(
        admin
            .post(&format!("/api/v1/sandboxes/{id}/stop"), json!({}))
            .await
            .status,
        200
    );
    let old = loops_of(&image);
    assert_eq!(old.len(), 1, "{old:?}");
    std::process::Command::new("losetup")
        .args(["-d", &old[0]])
        .status()
        .unwrap();
    let stranger = server.data.path().join("stranger.img");
    std::fs::File::create(&stranger)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let taken = std::process::Command::new("losetup")
        .args(["--find", "--show", &stranger.to_string_lossy()])
        .output()
        .unwrap();
    let taken = String::from_utf8_lossy(&taken.stdout).trim().to_string();
    let r = exec(&admin, &id, json!({ "command": "cat note" })).await;
    assert_eq!(r.body["stdout"], "kept\n", "{}", r.text);
    let new = loops_of(&image);
    assert_eq!(new.len(), 1);
    assert_ne!(new[0], taken, "the workspace is not the stranger's device");
    std::process::Command::new("losetup")
        .args(["-d", &taken])
        .status()
        .unwrap();

    // A host restart re-attaches: same data.
    let (data, config) = server.into_data().await;
    let again = Server::resume(data, config).await;
    again.services.sandboxes.reattach().await.unwrap();
    let r = exec(
        &again.admin,
        &id,
        json!({ "command": "cat note; df -k --output=size /workspace | tail -1" }),
    )
    .await;
    assert!(
        r.body["stdout"].as_str().unwrap().starts_with("kept\n"),
        "{}",
        r.text
    );

    // Delete frees everything: the volume, the loop device, the image.
    let volume = volume_of(&again, &id).await;
    assert_eq!(
        again
            .admin
            .delete(&format!("/api/v1/sandboxes/{id}"))
            .await
            .status,
        204
    );
    assert!(!image.exists(), "the image is deleted");
    assert!(loops_of(&image).is_empty(), "the loop device is detached");
    let left = again
        .services
        .sandboxes
        .driver()
        .list_volumes(&format!(
            "io.switchyard.instance={}",
            again.services.sandboxes.instance()
        ))
        .await
        .unwrap();
    assert!(
        left.iter().all(|(v, _)| *v != volume),
        "the volume is removed"
    );
    cleanup(&again).await;
    again.stop().await;
}

async fn the_storage_quota_counts_stopped_sandboxes(backend: Backend) {
    let server = Server::start(backend).await;
    let (alice, alice_id) = server.user("alice", "user").await;
    let r = server
        .admin
        .put(
            &format!("/api/v1/users/{alice_id}/sandbox-limits"),
            json!({ "storage_mb": 200 }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let first = create(&alice, json!({ "limits": { "disk_mb": 128 } })).await;
    assert_eq!(
        alice
            .post(&format!("/api/v1/sandboxes/{first}/stop"), json!({}))
            .await
            .status,
        200
    );
    let refused = alice
        .post("/api/v1/sandboxes", json!({ "limits": { "disk_mb": 128 } }))
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(refused.text.contains("storage quota"), "{}", refused.text);
    let second = create(&alice, json!({ "limits": { "disk_mb": 64 } })).await;

    // Administrators see storage per user; others may not.
    let view = server.admin.get("/api/v1/sandboxes/storage").await;
    assert_eq!(view.status, 200, "{}", view.text);
    let mine = view.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user_id"] == alice_id.as_str())
        .cloned()
        .expect("alice is listed");
    assert_eq!(mine["username"], "alice");
    assert_eq!(mine["sandboxes"], 2);
    assert_eq!(mine["allocated_mb"], 192);
    assert_eq!(mine["quota_mb"], 200);
    assert!(mine["used_bytes"].as_u64().unwrap() > 0);
    assert_eq!(alice.get("/api/v1/sandboxes/storage").await.status, 403);

    // Sizes grow (within the quota), never shrink.
    let shrink = alice
        .patch(
            &format!("/api/v1/sandboxes/{first}"),
            json!({ "disk_mb": 64 }),
        )
        .await;
    assert_eq!(shrink.status, 409, "{}", shrink.text);
    assert!(shrink.text.contains("cannot shrink"), "{}", shrink.text);
    let beyond = alice
        .patch(
            &format!("/api/v1/sandboxes/{first}"),
            json!({ "disk_mb": 256 }),
        )
        .await;
    assert_eq!(beyond.status, 409, "{}", beyond.text);
    assert_eq!(
        alice
            .delete(&format!("/api/v1/sandboxes/{second}"))
            .await
            .status,
        204
    );
    let grown = alice
        .patch(
            &format!("/api/v1/sandboxes/{first}"),
            json!({ "disk_mb": 192 }),
        )
        .await;
    assert_eq!(grown.status, 200, "{}", grown.text);
    assert_eq!(grown.body["limits"]["disk_mb"], 192);
    let df = exec(
        &alice,
        &first,
        json!({ "command": "df -k --output=size /workspace | tail -1" }),
    )
    .await;
    let kib: u64 = df.body["stdout"].as_str().unwrap().trim().parse().unwrap();
    assert!(
        (128 * 1024..=192 * 1024).contains(&kib),
        "grown on restart: {kib} KiB"
    );
    cleanup(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_reaps_orphaned_workspaces_and_keeps_kept_ones() {
    let server = Server::start(Backend::Sqlite).await;
    let sandboxes = &server.services.sandboxes;
    let disks = sandboxes.disks().expect("disk limits are on").clone();
    // A warm-pool workspace whose host was killed before its container started.
    let orphan = format!("switchyard-ws-orphan{}", std::process::id());
    let labels = HashMap::from([
        ("io.switchyard.managed".to_string(), "1".to_string()),
        (
            "io.switchyard.instance".to_string(),
            sandboxes.instance().to_string(),
        ),
        ("io.switchyard.pool".to_string(), "1".to_string()),
        ("io.switchyard.volume".to_string(), orphan.clone()),
    ]);
    let device = disks.prepare(&orphan, 64).await.unwrap();
    sandboxes
        .driver()
        .ensure_volume(&orphan, &labels, Some(&device))
        .await
        .unwrap();
    // A sandbox deleted with keep_volume, and one still alive.
    let kept = create(&server.admin, json!({ "limits": { "disk_mb": 64 } })).await;
    exec(
        &server.admin,
        &kept,
        json!({ "command": "echo precious > file" }),
    )
    .await;
    let kept_volume = volume_of(&server, &kept).await;
    let r = server
        .admin
        .delete(&format!("/api/v1/sandboxes/{kept}?keep_volume=true"))
        .await;
    assert_eq!(r.status, 204);
    let alive = create(&server.admin, json!({ "limits": { "disk_mb": 64 } })).await;
    let alive_volume = volume_of(&server, &alive).await;

    sandboxes.reattach().await.unwrap();
    let label = format!("io.switchyard.instance={}", sandboxes.instance());
    let volumes: Vec<String> = sandboxes
        .driver()
        .list_volumes(&label)
        .await
        .unwrap()
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    assert!(
        !volumes.contains(&orphan),
        "the orphaned volume was removed: {volumes:?}"
    );
    assert!(!disks.image(&orphan).exists(), "and its image");
    assert!(
        loops_of(&disks.image(&orphan)).is_empty(),
        "and its loop device"
    );
    assert!(
        volumes.contains(&alive_volume),
        "a live sandbox's volume stays"
    );
    assert!(disks.image(&kept_volume).exists(), "a kept workspace stays");
    assert!(
        loops_of(&disks.image(&kept_volume)).is_empty(),
        "detached while kept"
    );
    let r = exec(&server.admin, &alive, json!({ "command": "echo fine" })).await;
    assert_eq!(r.body["stdout"], "fine\n");
    cleanup(&server).await;
    disks.remove(&kept_volume).await.unwrap();
    server.stop().await;
}
