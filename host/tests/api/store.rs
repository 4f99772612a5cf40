//! The store on both backends: migrations are idempotent, plugin KV follows the
//! runtime's contract (exact prefixes, case-sensitive keys, quota), audit filters.

use crate::harness::{Backend, fresh_postgres};
use switchyard::runtime::{KvNamespace, KvStore};
use switchyard::store::{AuditFilter, NewAudit, PluginRow, SqlKv, Store};

crate::on_both_backends!(
    migrations_rerun_cleanly_and_kv_keeps_its_contract,
    audit_filters_and_pages,
    kv_rows_from_before_namespaces_go_to_the_owner_or_shared
);

async fn open(backend: Backend, dir: &std::path::Path) -> Store {
    let url = match backend {
        Backend::Sqlite => switchyard::store::sqlite_url(dir),
        Backend::Postgres => fresh_postgres().await,
    };
    let store = Store::open(&url).await.expect("open");
    assert_eq!(
        store.migrate().await.unwrap(),
        0,
        "a second migration run applies nothing"
    );
    store
}

fn row(name: &str) -> PluginRow {
    PluginRow {
        name: name.into(),
        version: "0.1.0".into(),
        owner_id: None,
        enabled: true,
        granted: "{}".into(),
        config: "{}".into(),
        installed_at: 1,
        updated_at: 1,
        revision: 0,
    }
}

async fn migrations_rerun_cleanly_and_kv_keeps_its_contract(backend: Backend) {
    let dir = tempfile::TempDir::new().unwrap();
    let store = open(backend, dir.path()).await;
    for name in ["p", "q"] {
        store.put_plugin(&row(name)).await.unwrap();
    }
    let again = store.put_plugin(&row("p")).await.unwrap();
    assert_eq!(again.revision, 2, "revisions move on every change");
    let kv = SqlKv::new(store.clone());
    let ns = KvNamespace::User("u1".into());
    for key in ["a%1", "a_2", "ab", "A3", "b"] {
        kv.set("p", &ns, key, key.as_bytes().to_vec())
            .await
            .unwrap();
    }
    kv.set("q", &ns, "a%1", b"other".to_vec()).await.unwrap();
    assert_eq!(
        kv.list("p", &ns, "a%", 10).await.unwrap(),
        ["a%1"],
        "% is literal"
    );
    assert_eq!(
        kv.list("p", &ns, "a_", 10).await.unwrap(),
        ["a_2"],
        "_ is literal"
    );
    assert_eq!(
        kv.list("p", &ns, "a", 10).await.unwrap().len(),
        3,
        "case-sensitive"
    );
    assert_eq!(kv.list("p", &ns, "", 2).await.unwrap().len(), 2, "limit");
    assert_eq!(kv.get("p", &ns, "a%1").await.unwrap().unwrap(), b"a%1");
    assert_eq!(
        kv.get("q", &ns, "a%1").await.unwrap().unwrap(),
        b"other",
        "namespaced by plugin"
    );
    kv.set("p", &ns, "b", b"new".to_vec()).await.unwrap();
    assert_eq!(kv.get("p", &ns, "b").await.unwrap().unwrap(), b"new");
    assert!(kv.delete("p", &ns, "b").await.unwrap());
    assert!(!kv.delete("p", &ns, "b").await.unwrap());
    // Other namespaces of the same plugin see none of it, and share no quota.
    for other in [
        KvNamespace::User("u2".into()),
        KvNamespace::Shared,
        KvNamespace::Local,
    ] {
        assert!(
            kv.get("p", &other, "a%1").await.unwrap().is_none(),
            "{other:?}"
        );
        assert!(kv.list("p", &other, "", 10).await.unwrap().is_empty());
        assert!(!kv.delete("p", &other, "ab").await.unwrap());
        kv.set("p", &other, "ab", b"theirs".to_vec()).await.unwrap();
    }
    assert_eq!(kv.get("p", &ns, "ab").await.unwrap().unwrap(), b"ab");
    let big = vec![7u8; 1 << 20];
    for space in [&ns, &KvNamespace::Shared] {
        let mut stored = 0;
        for i in 0..20 {
            match kv.set("p", space, &format!("big{i}"), big.clone()).await {
                Ok(()) => stored += 1,
                Err(e) => {
                    assert!(e.to_string().contains("full"), "{e}");
                    break;
                }
            }
        }
        assert_eq!(stored, 15, "16 MiB quota per namespace ({space:?})");
    }
    store.delete_plugin("p").await.unwrap();
    assert!(
        kv.get("p", &ns, "a%1").await.unwrap().is_none(),
        "removal deletes the data"
    );
    store.close().await;
}

async fn audit_filters_and_pages(backend: Backend) {
    let dir = tempfile::TempDir::new().unwrap();
    let store = open(backend, dir.path()).await;
    for (i, (action, outcome)) in [
        ("plugin.install", "ok"),
        ("plugin.grant", "denied"),
        ("user.create", "ok"),
        ("plugin.remove", "error"),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .audit(NewAudit {
                actor_id: Some(if i % 2 == 0 { "u1" } else { "u2" }),
                actor: "someone",
                action,
                target: "t",
                outcome,
                details: serde_json::json!({ "i": i }),
                request_id: None,
            })
            .await
            .unwrap();
    }
    let all = |f: AuditFilter| {
        let store = store.clone();
        async move { store.audit_entries(&f, None, 10).await.unwrap().items.len() }
    };
    assert_eq!(all(AuditFilter::default()).await, 4);
    assert_eq!(
        all(AuditFilter {
            action: Some("plugin.".into()),
            ..Default::default()
        })
        .await,
        3
    );
    assert_eq!(
        all(AuditFilter {
            action: Some("plugin".into()),
            ..Default::default()
        })
        .await,
        0,
        "exact unless it ends with a dot"
    );
    assert_eq!(
        all(AuditFilter {
            actor_id: Some("u1".into()),
            ..Default::default()
        })
        .await,
        2
    );
    assert_eq!(
        all(AuditFilter {
            outcome: Some("denied".into()),
            ..Default::default()
        })
        .await,
        1
    );
    assert_eq!(
        all(AuditFilter {
            since: Some(i64::MAX - 1),
            ..Default::default()
        })
        .await,
        0
    );
    let first = store
        .audit_entries(&AuditFilter::default(), None, 3)
        .await
        .unwrap();
    assert_eq!(first.items.len(), 3);
    assert_eq!(first.items[0].action, "plugin.remove", "newest first");
    let rest = store
        .audit_entries(&AuditFilter::default(), first.next.as_deref(), 3)
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(rest.next.is_none());
    store.close().await;
}

/// A database at migration 2 (plugin KV keyed by plugin only), with rows of an
/// owned and an unowned plugin, migrated to the current schema.
async fn kv_rows_from_before_namespaces_go_to_the_owner_or_shared(backend: Backend) {
    let dir = tempfile::TempDir::new().unwrap();
    let url = match backend {
        Backend::Sqlite => switchyard::store::sqlite_url(dir.path()),
        Backend::Postgres => fresh_postgres().await,
    };
    // The migrations before 0003, as a directory of their own.
    let folder = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../migrations")
        .join(folder);
    let before = tempfile::TempDir::new().unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let name = entry.unwrap().file_name();
        if name.to_string_lossy().as_ref() < "0003" {
            std::fs::copy(source.join(&name), before.path().join(&name)).unwrap();
        }
    }
    let old = sqlx::migrate::Migrator::new(before.path()).await.unwrap();
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    old.run(&pool).await.unwrap();
    for sql in [
        "INSERT INTO users (id, username, password_hash, role, disabled, created_at, updated_at) \
         VALUES ('u1', 'alice', 'x', 'user', 0, 1, 1)",
        "INSERT INTO plugins (name, version, owner_id, enabled, granted, config, installed_at, updated_at, revision) \
         VALUES ('mine', '0.1.0', 'u1', 1, '{\"kv\":true}', '{}', 1, 1, 1)",
        "INSERT INTO plugins (name, version, owner_id, enabled, granted, config, installed_at, updated_at, revision) \
         VALUES ('everyone', '0.1.0', NULL, 1, '{\"kv\":true}', '{}', 1, 1, 1)",
        "INSERT INTO plugin_kv (plugin, key, value, updated_at) VALUES ('mine', 'k', CAST('v1' AS BLOB), 1)",
        "INSERT INTO plugin_kv (plugin, key, value, updated_at) VALUES ('everyone', 'k', CAST('v2' AS BLOB), 1)",
    ] {
        let sql = if backend == Backend::Postgres {
            sql.replace("AS BLOB", "AS BYTEA")
        } else {
            sql.to_string()
        };
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    let store = Store::open(&url).await.expect("migrates");
    let kv = SqlKv::new(store.clone());
    let alice = KvNamespace::User("u1".into());
    assert_eq!(
        kv.get("mine", &alice, "k").await.unwrap().unwrap(),
        b"v1",
        "to the owner"
    );
    assert!(
        kv.get("mine", &KvNamespace::Shared, "k")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        kv.get("everyone", &KvNamespace::Shared, "k")
            .await
            .unwrap()
            .unwrap(),
        b"v2",
        "unowned plugins' rows become shared"
    );
    assert!(kv.get("everyone", &alice, "k").await.unwrap().is_none());
    kv.set("mine", &KvNamespace::Shared, "k", b"s".to_vec())
        .await
        .unwrap();
    assert_eq!(kv.get("mine", &alice, "k").await.unwrap().unwrap(), b"v1");
    kv.set("everyone", &alice, "k", b"hers".to_vec())
        .await
        .unwrap();
    store.delete_user("u1").await.unwrap();
    assert!(
        kv.get("everyone", &alice, "k").await.unwrap().is_none(),
        "a deleted user's data goes with them"
    );
    assert_eq!(
        kv.get("everyone", &KvNamespace::Shared, "k")
            .await
            .unwrap()
            .unwrap(),
        b"v2"
    );
    store.close().await;
}
