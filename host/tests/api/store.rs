//! The store on both backends: migrations are idempotent, plugin KV follows the
//! runtime's contract (exact prefixes, case-sensitive keys, quota), audit filters.

use crate::harness::{Backend, fresh_postgres};
use switchyard::runtime::KvStore;
use switchyard::store::{AuditFilter, NewAudit, PluginRow, SqlKv, Store};

crate::on_both_backends!(
    migrations_rerun_cleanly_and_kv_keeps_its_contract,
    audit_filters_and_pages
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
    for key in ["a%1", "a_2", "ab", "A3", "b"] {
        kv.set("p", key, key.as_bytes().to_vec()).await.unwrap();
    }
    kv.set("q", "a%1", b"other".to_vec()).await.unwrap();
    assert_eq!(
        kv.list("p", "a%", 10).await.unwrap(),
        ["a%1"],
        "% is literal"
    );
    assert_eq!(
        kv.list("p", "a_", 10).await.unwrap(),
        ["a_2"],
        "_ is literal"
    );
    assert_eq!(
        kv.list("p", "a", 10).await.unwrap().len(),
        3,
        "case-sensitive"
    );
    assert_eq!(kv.list("p", "", 2).await.unwrap().len(), 2, "limit");
    assert_eq!(kv.get("p", "a%1").await.unwrap().unwrap(), b"a%1");
    assert_eq!(
        kv.get("q", "a%1").await.unwrap().unwrap(),
        b"other",
        "namespaced"
    );
    kv.set("p", "b", b"new".to_vec()).await.unwrap();
    assert_eq!(kv.get("p", "b").await.unwrap().unwrap(), b"new");
    assert!(kv.delete("p", "b").await.unwrap());
    assert!(!kv.delete("p", "b").await.unwrap());
    let big = vec![7u8; 1 << 20];
    let mut stored = 0;
    for i in 0..20 {
        match kv.set("p", &format!("big{i}"), big.clone()).await {
            Ok(()) => stored += 1,
            Err(e) => {
                assert!(e.to_string().contains("full"), "{e}");
                break;
            }
        }
    }
    assert_eq!(stored, 15, "16 MiB quota");
    store.delete_plugin("p").await.unwrap();
    assert!(
        kv.get("p", "a%1").await.unwrap().is_none(),
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
