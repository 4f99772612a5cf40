//! Installing packages: directories and archives, upgrades and grants, and every
//! kind of bad package refused with a precise error and nothing left behind.

mod common;

use common::{Host, package};
use std::path::Path;
use switchyard::plugins::PluginsError;
use switchyard::plugins::package::PackageError;
use switchyard::runtime::LoadError;
use tempfile::TempDir;

/// A package dir with `manifest` and the component bytes `wasm` as `x.wasm`.
fn package_with(manifest: &str, wasm: &[u8]) -> TempDir {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("plugin.toml"), manifest).unwrap();
    std::fs::write(dir.path().join("x.wasm"), wasm).unwrap();
    dir
}

const TOOL_MANIFEST: &str = "name = \"x\"\nversion = \"0.1.0\"\ndescription = \"d\"\nkinds = [\"tool\"]\ncomponent = \"x.wasm\"\n";

async fn assert_nothing_installed(host: &Host) {
    assert!(host.manager.list().await.unwrap().is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(host.manager.registry().root())
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[tokio::test]
async fn installs_from_directory_and_archive_and_lists() {
    let host = Host::new().await;
    let report = host
        .manager
        .install(&package("data"), &Default::default())
        .await
        .unwrap();
    assert_eq!(report.installed.manifest.name, "data");
    assert!(report.contents.tools.iter().any(|t| t.name == "json_query"));
    assert!(
        report
            .contents
            .skills
            .iter()
            .any(|s| s.name == "json-with-jq"),
        "folder skill shipped in the package"
    );
    host.manager
        .install(&common::archive("notes"), &Default::default())
        .await
        .unwrap();
    let names: Vec<_> = host
        .manager
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.manifest.name)
        .collect();
    assert_eq!(names, ["data", "notes"]);
    let notes = host.manager.get("notes").await.unwrap();
    assert!(
        notes.pending().kv.any(),
        "kv requested but not granted without --grant"
    );
    host.manager.remove("notes").await.unwrap();
    assert!(host.manager.get("notes").await.is_err());
}

#[tokio::test]
async fn upgrade_keeps_grants_and_leaves_new_capabilities_pending() {
    let host = Host::new().await;
    host.manager
        .install(&package("hostile"), &common::grant_all())
        .await
        .unwrap();
    host.manager
        .set_config("hostile", "greeting", Some("hi"))
        .await
        .unwrap();
    let dir = common::package_variant("hostile", |m| {
        m.replace("version = \"0.1.0\"", "version = \"0.2.0\"")
            .replace(
                "http = [\"127.0.0.1:*\"]",
                "http = [\"127.0.0.1:*\", \"api.example.com\"]",
            )
    });
    let report = host
        .manager
        .install(dir.path(), &Default::default())
        .await
        .unwrap();
    assert_eq!(report.replaced.unwrap().to_string(), "0.1.0");
    assert_eq!(report.pending.http, ["api.example.com"]);
    assert!(
        report.installed.state.granted.kv.any(),
        "earlier grants stay"
    );
    assert_eq!(
        report.installed.state.config["greeting"], "hi",
        "config survives upgrades"
    );
}

#[tokio::test]
async fn manifest_errors_are_precise() {
    let host = Host::new().await;
    let wasm = common::component("hostile");
    let cases = [
        (
            "version = \"0.1.0\"\ndescription = \"d\"\nkinds = [\"tool\"]\ncomponent = \"x.wasm\"\n",
            "missing field `name`",
        ),
        (
            &TOOL_MANIFEST.replace("[\"tool\"]", "[\"tools\"]"),
            "unknown variant `tools`",
        ),
        (&TOOL_MANIFEST.replace("0.1.0", "one"), "version"),
        (
            &format!("{TOOL_MANIFEST}[limits]\nmemory_mb = 0\n"),
            "limits.memory_mb: must be between 1 and 4096, got 0",
        ),
        (
            &format!("{TOOL_MANIFEST}[limits]\ntimeout_ms = 9999999\n"),
            "limits.timeout_ms",
        ),
        (
            &format!("{TOOL_MANIFEST}[capabilities]\nhtpp = [\"x.com\"]\n"),
            "unknown field `htpp`",
        ),
        (
            &format!("{TOOL_MANIFEST}[capabilities]\nhttp = [\"http://x.com/\"]\n"),
            "capabilities.http",
        ),
        (
            &TOOL_MANIFEST.replace("name = \"x\"", "name = \"Bad_Name\""),
            "name:",
        ),
        (&TOOL_MANIFEST.replace("x.wasm", "../x.wasm"), "component:"),
        (
            &TOOL_MANIFEST.replace("[\"tool\"]", "[]"),
            "kinds: list at least one",
        ),
        (
            "name = \"x\"\nversion = \"0.1.0\"\ndescription = \"d\"\nkinds = [\"skill\"]\n",
            "a package without `component` holds only skills/NAME/SKILL.md folders, which need no kind",
        ),
        (
            "name = \"x\"\nversion = \"0.1.0\"\ndescription = \"d\"\n[capabilities]\nkv = \"user\"\n",
            "capabilities and config need a component",
        ),
        (
            // A TOML error keeps its lines: the snippet and the caret stay readable.
            &format!("{TOOL_MANIFEST}[limits]\nmemory = 16\n"),
            "\n7 | memory = 16\n",
        ),
    ];
    for (manifest, expected) in cases {
        let dir = package_with(manifest, &wasm);
        let err = host
            .manager
            .install(dir.path(), &common::grant_all())
            .await
            .unwrap_err();
        assert!(
            matches!(err, PluginsError::Package(PackageError::Manifest(_))),
            "{manifest}: {err}"
        );
        assert!(
            err.to_string().contains(expected),
            "expected `{expected}` in: {err}"
        );
    }
    assert_nothing_installed(&host).await;
}

#[tokio::test]
async fn components_that_do_not_fit_are_refused() {
    let host = Host::new().await;
    let hostile = common::component("hostile");
    let core_module = wat::parse_str("(module)").unwrap();
    let foreign_import = wat::parse_str(
        r#"(component (import "evil:thing/api@1.0.0" (instance (export "run" (func)))))"#,
    )
    .unwrap();
    let command =
        std::fs::read(common::target_dir().join("wasm32-wasip2/release/wasi-command.wasm"))
            .expect("wasi-command fixture (scripts/build-plugins builds it)");
    let cases: Vec<(String, Vec<u8>, &str)> = vec![
        (
            TOOL_MANIFEST.into(),
            b"not wasm at all".to_vec(),
            "magic bytes",
        ),
        (TOOL_MANIFEST.into(), core_module, "core WebAssembly module"),
        (TOOL_MANIFEST.into(), foreign_import, "evil:thing/api"),
        (TOOL_MANIFEST.into(), command, "targets another world"),
        (
            TOOL_MANIFEST.replace("[\"tool\"]", "[\"tool\", \"skill\"]"),
            hostile.clone(),
            "does not export `switchyard:plugin/skill@0.1.0`",
        ),
        (
            TOOL_MANIFEST.replace("[\"tool\"]", "[\"channel\"]"),
            hostile,
            "kinds does not list \"tool\"",
        ),
    ];
    for (manifest, wasm, expected) in cases {
        let dir = package_with(&manifest, &wasm);
        let err = host
            .manager
            .install(dir.path(), &common::grant_all())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "expected `{expected}` in: {err}"
        );
        if expected.contains("magic") || expected.contains("core") {
            assert!(
                matches!(err, PluginsError::Load(LoadError::NotAComponent(_))),
                "{err}"
            );
        }
    }
    assert_nothing_installed(&host).await;
    host.manager
        .install(&package("hostile"), &common::grant_all())
        .await
        .unwrap();
    assert_eq!(
        host.ok("hostile/echo", serde_json::json!({"text": "ok"}))
            .await,
        "ok"
    );
}

use common::Entry;

fn write_archive(path: &Path, entries: &[Entry]) {
    std::fs::write(path, common::tar_gz(entries)).unwrap();
}

#[tokio::test]
async fn hostile_archives_are_refused() {
    let host = Host::new().await;
    let dir = TempDir::new().unwrap();
    let wasm = common::component("hostile");
    let manifest = TOOL_MANIFEST.as_bytes();
    let regular = tar::EntryType::Regular;
    let cases: Vec<(&str, Vec<Entry>, &str)> = vec![
        (
            "slip",
            vec![
                ("plugin.toml", regular, manifest),
                ("../escape.wasm", regular, &wasm),
            ],
            "`..`",
        ),
        (
            "absolute",
            vec![("/tmp/x.wasm", regular, &wasm)],
            "relative path",
        ),
        (
            "link",
            vec![
                ("plugin.toml", regular, manifest),
                ("x.wasm", tar::EntryType::Symlink, b""),
            ],
            "Symlink",
        ),
        (
            "nomanifest",
            vec![("x.wasm", regular, &wasm)],
            "holds no plugin.toml",
        ),
    ];
    for (name, entries, expected) in cases {
        let path = dir.path().join(format!("{name}.tar.gz"));
        write_archive(&path, &entries);
        let err = host
            .manager
            .install(&path, &common::grant_all())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "{name}: expected `{expected}` in: {err}"
        );
    }
    let garbage = dir.path().join("garbage.tar.gz");
    std::fs::write(&garbage, b"\x1f\x8b definitely not gzip").unwrap();
    let err = host
        .manager
        .install(&garbage, &common::grant_all())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a .tar.gz"), "{err}");
    assert!(!dir.path().parent().unwrap().join("escape.wasm").exists());
    assert_nothing_installed(&host).await;
}

#[tokio::test]
async fn tarball_bomb_is_stopped() {
    let host = Host::new().await;
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("bomb.tar.gz");
    std::fs::write(&path, common::tar_bomb()).unwrap();
    assert!(
        std::fs::metadata(&path).unwrap().len() < 2 << 20,
        "the bomb is small packed"
    );
    let err = host
        .manager
        .install(&path, &common::grant_all())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unpacks to more than"), "{err}");
    assert_nothing_installed(&host).await;
    let tmp = host.data.path().join("tmp");
    assert_eq!(
        std::fs::read_dir(tmp).unwrap().count(),
        0,
        "unpacked files are cleaned up"
    );
}

#[tokio::test]
async fn component_symlink_out_of_package_is_refused() {
    let host = Host::new().await;
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("plugin.toml"), TOOL_MANIFEST).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", dir.path().join("x.wasm")).unwrap();
    let err = host
        .manager
        .install(dir.path(), &common::grant_all())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("outside the package"), "{err}");
    assert_nothing_installed(&host).await;
}

#[tokio::test]
async fn skill_folders_install_without_a_component() {
    let host = Host::new().await;
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join("plugin.toml"),
        "name = \"team-skills\"\nversion = \"1.0.0\"\ndescription = \"Our team's skills\"\n",
    )
    .unwrap();
    let skill = dir.path().join("skills/release-notes");
    std::fs::create_dir_all(skill.join("scripts")).unwrap();
    std::fs::write(
        skill.join("SKILL.md"),
        "---\nname: release-notes\ndescription: Write release notes from a git log\n---\nRead `git log`, group by kind.\n",
    )
    .unwrap();
    std::fs::write(skill.join("scripts/log.sh"), "git log --oneline\n").unwrap();
    let report = host
        .manager
        .install(dir.path(), &Default::default())
        .await
        .unwrap();
    assert!(report.contents.tools.is_empty());
    let names: Vec<_> = report.contents.skills.iter().map(|s| &s.name).collect();
    assert_eq!(names, ["release-notes"]);
    assert!(report.pending.is_empty(), "nothing to grant");
    let installed = host.manager.get("team-skills").await.unwrap();
    assert!(
        installed
            .dir
            .join("skills/release-notes/scripts/log.sh")
            .is_file()
    );
    let err = host.manager.load("team-skills").await.err().unwrap();
    assert!(err.to_string().contains("has no component"), "{err}");
    // As an archive with one top-level folder, too.
    let archive = dir.path().join("../team-skills-1.1.0.tar.gz");
    let text = std::fs::read_to_string(dir.path().join("plugin.toml")).unwrap();
    std::fs::write(
        dir.path().join("plugin.toml"),
        text.replace("1.0.0", "1.1.0"),
    )
    .unwrap();
    let file = std::fs::File::create(&archive).unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::fast(),
    ));
    tar.append_dir_all("team-skills", dir.path()).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    let report = host
        .manager
        .install(&archive, &Default::default())
        .await
        .unwrap();
    assert_eq!(report.replaced.unwrap().to_string(), "1.0.0");
    std::fs::remove_file(&archive).unwrap();

    // Without any skill folder there is nothing to install.
    let empty = TempDir::new().unwrap();
    std::fs::write(
        empty.path().join("plugin.toml"),
        "name = \"nothing\"\nversion = \"1.0.0\"\ndescription = \"d\"\n",
    )
    .unwrap();
    let err = host
        .manager
        .install(empty.path(), &Default::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no skills/NAME/SKILL.md"), "{err}");
}

/// The precompiled artifacts under the data directory's cache, by name.
fn artifacts(data: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for engine in std::fs::read_dir(data.join("cache"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for file in std::fs::read_dir(engine.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(file.path());
        }
    }
    out
}

fn age(files: &[std::path::PathBuf]) {
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for f in files {
        std::fs::File::options()
            .write(true)
            .open(f)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
    }
}

#[tokio::test]
async fn artifacts_no_installed_plugin_uses_are_pruned() {
    let data = TempDir::new().unwrap();
    let host = Host {
        manager: common::manager_cached(data.path(), &data.path().join("cache")).await,
        data,
    };
    for name in ["echo", "notes"] {
        host.manager
            .install(&package(name), &common::grant_all())
            .await
            .unwrap();
    }
    let both = artifacts(host.data.path());
    assert_eq!(both.len(), 2, "{both:?}");
    // A stale artifact of another engine goes too.
    let other = host.data.path().join("cache/0000000000000000");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("old.cwasm"), b"stale").unwrap();
    age(&artifacts(host.data.path()));
    host.manager.remove("notes").await.unwrap();
    let left = artifacts(host.data.path());
    assert_eq!(left.len(), 1, "only echo's artifact stays: {left:?}");
    assert!(both.contains(&left[0]));
    assert!(!other.exists());
    // A fresh artifact (an install in progress) is spared.
    host.manager
        .install(&package("notes"), &common::grant_all())
        .await
        .unwrap();
    host.manager.remove("notes").await.unwrap();
    assert_eq!(
        artifacts(host.data.path()).len(),
        2,
        "written in the last two minutes"
    );
    age(&artifacts(host.data.path()));
    assert_eq!(host.manager.prune_cache().await.unwrap().files, 1);
    assert_eq!(artifacts(host.data.path()).len(), 1);
}
