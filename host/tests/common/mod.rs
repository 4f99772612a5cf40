//! Shared helpers for the integration tests: the plugin packages built by
//! `scripts/build-plugins`, a fresh data dir, and a plugin manager over it.

#![allow(dead_code, missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;
use switchyard::config::Config;
use switchyard::plugins::{InstallOptions, PluginManager};
use switchyard::runtime::Runtime;
use switchyard::store::Store;
use tempfile::TempDir;

/// The cargo target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The package directory of a first-party plugin or fixture.
pub fn package(name: &str) -> PathBuf {
    let dir = target_dir().join("packages").join(name);
    assert!(
        dir.join("plugin.toml").is_file(),
        "package `{name}` is missing at {}: run `scripts/build-plugins` (or `scripts/test`) first",
        dir.display()
    );
    dir
}

/// A copy of package `name` whose manifest text went through `edit` (the component
/// is the same; the manifest may rename the plugin or change its limits).
pub fn package_variant(name: &str, edit: impl FnOnce(String) -> String) -> TempDir {
    let src = package(name);
    let dir = TempDir::new().expect("temp dir");
    std::fs::copy(
        src.join(format!("{name}.wasm")),
        dir.path().join(format!("{name}.wasm")),
    )
    .expect("copy component");
    let manifest = std::fs::read_to_string(src.join("plugin.toml")).expect("manifest");
    std::fs::write(dir.path().join("plugin.toml"), edit(manifest)).expect("write manifest");
    dir
}

/// The `.tar.gz` of a package.
pub fn archive(name: &str) -> PathBuf {
    package(name);
    target_dir()
        .join("packages")
        .join(format!("{name}-0.1.0.tar.gz"))
}

/// The component bytes of a package.
pub fn component(name: &str) -> Vec<u8> {
    std::fs::read(package(name).join(format!("{name}.wasm"))).expect("component")
}

/// A temporary data dir with a manager over it.
pub struct Host {
    pub data: TempDir,
    pub manager: PluginManager,
}

impl Host {
    pub async fn new() -> Self {
        let data = TempDir::new().expect("temp dir");
        let manager = manager_for(data.path()).await;
        Self { data, manager }
    }

    /// Install packages with every requested capability granted.
    pub async fn with(names: &[&str]) -> Self {
        let host = Self::new().await;
        for name in names {
            host.manager
                .install(&package(name), &grant_all())
                .await
                .expect("install");
        }
        host
    }

    /// Call a tool that must succeed, and return its text.
    pub async fn ok(&self, tool: &str, args: serde_json::Value) -> String {
        match self.call(tool, args).await {
            Ok(out) => out,
            Err(e) => panic!("`{tool}` was expected to succeed but failed: {e}"),
        }
    }

    /// Call a tool that must fail, and return the failure.
    pub async fn error(
        &self,
        tool: &str,
        args: serde_json::Value,
    ) -> switchyard::runtime::PluginError {
        match self.call(tool, args).await {
            Ok(out) => panic!("`{tool}` was expected to fail but returned: {out}"),
            Err(e) => e,
        }
    }

    /// Call a tool; `Ok` holds the text of all content blocks joined by newlines.
    pub async fn call(
        &self,
        tool: &str,
        args: serde_json::Value,
    ) -> Result<String, switchyard::runtime::PluginError> {
        let (plugin, name) = tool.split_once('/').expect("PLUGIN/TOOL");
        match switchyard::tools::call(&self.manager, plugin, name, &args.to_string(), None).await {
            Ok(out) => Ok(out
                .content
                .iter()
                .map(|c| match c {
                    switchyard::runtime::types::Content::Text(t)
                    | switchyard::runtime::types::Content::Json(t) => t.clone(),
                    switchyard::runtime::types::Content::Image(b)
                    | switchyard::runtime::types::Content::Bytes(b)
                    | switchyard::runtime::types::Content::Audio(b) => {
                        format!("[{} {} bytes]", b.mime_type, b.data.len())
                    }
                    switchyard::runtime::types::Content::Resource(r) => format!("[{}]", r.uri),
                })
                .collect::<Vec<_>>()
                .join("\n")),
            Err(switchyard::tools::CallError::Tool(e)) => Err(e),
            Err(e) => panic!("the plugin could not be loaded: {e}"),
        }
    }
}

/// Install options that grant everything requested.
pub fn grant_all() -> InstallOptions {
    InstallOptions {
        grant_all: true,
        owner_id: None,
    }
}

/// A manager over `data_dir` with SQLite in it. The precompiled-artifact cache is
/// shared by all tests (it is keyed by engine and component hash) so each
/// component compiles once.
pub async fn manager_for(data_dir: &std::path::Path) -> PluginManager {
    manager_cached(data_dir, &target_dir().join("test-artifact-cache")).await
}

/// A manager over `data_dir` whose precompiled artifacts live in `cache`.
pub async fn manager_cached(data_dir: &std::path::Path, cache: &std::path::Path) -> PluginManager {
    let config = Config::new(data_dir);
    let mut options = config.runtime_options();
    options.cache_dir = Some(cache.to_path_buf());
    let runtime = Runtime::new(options).expect("runtime");
    let store = Store::open(&config.database_url()).await.expect("store");
    let cipher = switchyard::server::secret_cipher(&config).expect("cipher");
    PluginManager::new(data_dir, Arc::new(runtime), store, cipher)
}

/// An archive entry: path, type, contents.
pub type Entry<'a> = (&'a str, tar::EntryType, &'a [u8]);

/// A `.tar.gz` with raw entry names (so hostile names like `../x` survive).
pub fn tar_gz(entries: &[Entry]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for (name, kind, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        if *kind == tar::EntryType::Symlink {
            header.set_link_name("/etc/passwd").unwrap();
        }
        let bytes = header.as_mut_bytes();
        bytes[..100].fill(0);
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// A `.tar.gz` under 2 MiB with one file that unpacks to 300 MiB (not
/// `plugin.toml`, which is refused at 64 KiB before anything is unpacked).
pub fn tar_bomb() -> Vec<u8> {
    use std::io::Read;
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut builder = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_size(300 << 20);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(
            &mut header,
            "padding.bin",
            std::io::repeat(b' ').take(300 << 20),
        )
        .unwrap();
    builder.into_inner().unwrap().finish().unwrap()
}

/// The admin URL of the test Postgres server (see scripts/postgres).
fn postgres_admin_url() -> String {
    std::env::var("SWITCHYARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://switchyard:switchyard@127.0.0.1:5432/postgres".into())
}

/// A fresh, empty Postgres database; its URL.
pub async fn fresh_postgres() -> String {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let admin = postgres_admin_url();
    let mut conn = sqlx::AnyConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| {
            panic!("Postgres at {admin} is not reachable ({e}); run scripts/postgres first")
        });
    let name = format!("sy_test_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let base = admin.rsplit_once('/').expect("url with a database").0;
    format!("{base}/{name}")
}
