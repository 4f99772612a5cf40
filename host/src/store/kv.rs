//! Plugin key-value spaces in the `plugin_kv` table, behind the runtime's
//! [`KvStore`] trait. Rows are keyed by (plugin, namespace, key); each namespace
//! of a plugin (a user's, the shared one) stays under its own quota.

use super::{Store, now_ms};
use crate::runtime::{BoxFuture, KvError, KvNamespace, KvStore};

/// Most bytes (keys + values) one namespace of one plugin may keep.
pub const KV_QUOTA_BYTES: i64 = 16 << 20;

/// Key-value storage on the store.
#[derive(Debug, Clone)]
pub struct SqlKv {
    store: Store,
}

impl SqlKv {
    /// KV spaces kept in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

fn unavailable(e: impl std::fmt::Display) -> KvError {
    KvError::Unavailable(e.to_string())
}

impl KvStore for SqlKv {
    fn get<'a>(
        &'a self,
        plugin: &'a str,
        ns: &'a KvNamespace,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, KvError>> {
        Box::pin(async move {
            sqlx::query_scalar(
                "SELECT value FROM plugin_kv WHERE plugin = $1 AND namespace = $2 AND key = $3",
            )
            .bind(plugin)
            .bind(ns.key())
            .bind(key)
            .fetch_optional(self.store.pool())
            .await
            .map_err(unavailable)
        })
    }

    fn set<'a>(
        &'a self,
        plugin: &'a str,
        ns: &'a KvNamespace,
        key: &'a str,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), KvError>> {
        Box::pin(async move {
            let namespace = ns.key();
            let mut tx = self.store.begin_write().await.map_err(unavailable)?;
            let used: Option<i64> = sqlx::query_scalar(
                "SELECT CAST(SUM(LENGTH(key) + LENGTH(value)) AS BIGINT) FROM plugin_kv \
                 WHERE plugin = $1 AND namespace = $2 AND key <> $3",
            )
            .bind(plugin)
            .bind(&namespace)
            .bind(key)
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
            let size = (key.len() + value.len()) as i64;
            if used.unwrap_or(0) + size > KV_QUOTA_BYTES {
                return Err(KvError::Invalid(format!(
                    "this key-value space is full ({KV_QUOTA_BYTES} bytes); delete keys first"
                )));
            }
            sqlx::query(
                "INSERT INTO plugin_kv (plugin, namespace, key, value, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (plugin, namespace, key) \
                 DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )
            .bind(plugin)
            .bind(&namespace)
            .bind(key)
            .bind(value)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            tx.commit().await.map_err(unavailable)
        })
    }

    fn delete<'a>(
        &'a self,
        plugin: &'a str,
        ns: &'a KvNamespace,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, KvError>> {
        Box::pin(async move {
            let result = sqlx::query(
                "DELETE FROM plugin_kv WHERE plugin = $1 AND namespace = $2 AND key = $3",
            )
            .bind(plugin)
            .bind(ns.key())
            .bind(key)
            .execute(self.store.pool())
            .await
            .map_err(unavailable)?;
            Ok(result.rows_affected() > 0)
        })
    }

    fn list<'a>(
        &'a self,
        plugin: &'a str,
        ns: &'a KvNamespace,
        prefix: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<String>, KvError>> {
        Box::pin(async move {
            sqlx::query_scalar(
                "SELECT key FROM plugin_kv WHERE plugin = $1 AND namespace = $2 \
                 AND substr(key, 1, CAST($3 AS INTEGER)) = $4 ORDER BY key LIMIT $5",
            )
            .bind(plugin)
            .bind(ns.key())
            .bind(prefix.chars().count() as i64)
            .bind(prefix)
            .bind(limit as i64)
            .fetch_all(self.store.pool())
            .await
            .map_err(unavailable)
        })
    }
}
