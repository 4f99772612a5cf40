//! The store: every SQL query switchyard runs, behind one repository type.
//!
//! One [`Store`] wraps an sqlx `AnyPool` on SQLite (embedded, the default, a file
//! in the data directory) or Postgres (`SWITCHYARD_DATABASE_URL=postgres://…`).
//! Queries are checked at run time and written in a portable subset: ids are
//! TEXT (UUIDv7, time-ordered), times BIGINT milliseconds since the Unix epoch,
//! JSON TEXT, flags INTEGER. Migrations live in `migrations/<backend>/` and are
//! embedded in the binary. No HTTP types here: callers map [`StoreError`].

/// A query built from constant fragments only (column lists, table names):
/// values always go through bind parameters.
macro_rules! sql {
    ($($fmt:tt)*) => {
        sqlx::AssertSqlSafe(format!($($fmt)*))
    };
}

mod audit;
mod batch;
mod channels;
mod events;
mod intake;
mod kv;
mod mcp_servers;
mod plugins;
mod recent;
mod sandboxes;
mod schedules;
mod sessions;
mod settings;
mod skills;
mod tasks;
mod tokens;
mod users;

pub use audit::{AuditEntry, AuditFilter, NewAudit};
pub use channels::{ChannelRow, DeliveryRow};
pub use events::EventRow;
pub use intake::{ChannelTask, Queued};
pub use kv::SqlKv;
pub use mcp_servers::McpServerRow;
pub use plugins::{PluginRow, SecretCipher, SqlSecrets};
pub use recent::Recent;
pub use sandboxes::{SandboxRow, SandboxState};
pub use schedules::{Firing, RunRow, ScheduleRow, StartedTask};
pub use sessions::{AgentRow, MessageRow, SessionRow};
pub use skills::SkillRow;
pub use tasks::{ClaimLimits, Finish, TaskFilter, TaskKind, TaskRow, TaskStatus};
pub use tokens::{ApiToken, NewApiToken, RefreshOutcome};
pub use users::{Role, User};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::path::Path;
use std::time::Duration;

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist.
    #[error("not found")]
    NotFound,
    /// A unique value is already taken.
    #[error("{0} already exists")]
    Conflict(String),
    /// A row it refers to does not exist (deleted meanwhile).
    #[error("a row it refers to is gone: {0}")]
    Dangling(String),
    /// The database could not be reached or failed.
    #[error("database error: {0}")]
    Database(String),
    /// Migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// A stored value could not be decoded.
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Self::Conflict(db.table().unwrap_or("the value").to_string())
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                Self::Dangling(db.message().to_string())
            }
            _ => Self::Database(e.to_string()),
        }
    }
}

/// Whether `e` is Postgres rolling the statement back to break a deadlock
/// (or a serialization conflict): trying it again can succeed.
fn lost_a_deadlock(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01" | "40001")))
}

/// Which SQL engine the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// A Postgres server.
    Postgres,
}

/// The repository: a connection pool and the backend it speaks.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// This process's writer turn on SQLite (one writer at a time).
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    intake: std::sync::Arc<intake::Intake>,
}

/// A write transaction (use it as a connection; end it with
/// [`WriteTx::commit`]). On SQLite it holds this process's writer turn.
pub(crate) struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl WriteTx {
    /// Commit, then give up the writer turn.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    /// Roll back, then give up the writer turn.
    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

/// The SQLite URL for the default database file in `data_dir`.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("switchyard.db").display()
    )
}

/// Create a missing SQLite database file with mode 0600 (SQLite gives its
/// `-wal` and `-shm` files the database file's mode).
fn create_sqlite_file(url: &str) -> Result<(), StoreError> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    crate::datadir::create_private_file(Path::new(path))
        .map_err(|e| StoreError::Database(format!("cannot create the database file: {e}")))
}

impl Store {
    /// Connect to `url` (`sqlite://…` or `postgres://…`) without migrating.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Database(format!(
                "unsupported database URL `{}`: use sqlite://PATH or postgres://…",
                redact_url(url)
            )));
        };
        if backend == Backend::Sqlite {
            create_sqlite_file(url)?;
        }
        let mut options = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            // A SQLite connection is a file in this process: it cannot go
            // stale, and a ping is one more hand-off to its worker thread.
            .test_before_acquire(backend == Backend::Postgres);
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                         PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                    )
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = options
            .connect(url)
            .await
            .map_err(|e| StoreError::Database(format!("cannot open {}: {e}", redact_url(url))))?;
        Ok(Self {
            pool,
            backend,
            writer: Default::default(),
            intake: Default::default(),
        })
    }

    /// Connect and apply pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Apply the embedded migrations for this backend; returns how many were new.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("../migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("../migrations/postgres"),
        };
        let before = self.applied_migrations().await;
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(migrator
            .iter()
            .count()
            .saturating_sub(before.unwrap_or_default()))
    }

    async fn applied_migrations(&self) -> Option<usize> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&self.pool)
            .await
            .ok()?;
        usize::try_from(count).ok()
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Close every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begin a transaction that will write. On SQLite it takes the write lock at
    /// once (`BEGIN IMMEDIATE`), so it waits its turn under `busy_timeout`
    /// instead of failing with "database is locked" when it reads first and
    /// another connection commits before it writes. Writers of this process
    /// queue for their turn on an async lock first: SQLite's own busy handler
    /// waits by sleeping whole milliseconds, which caps contended writes at a
    /// few hundred per second.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => {
                let turn = self.writer.clone().lock_owned().await;
                Ok(WriteTx {
                    tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
                    _turn: Some(turn),
                })
            }
            Backend::Postgres => Ok(WriteTx {
                tx: self.pool.begin().await?,
                _turn: None,
            }),
        }
    }
}

/// `($1, …, $cols), ($cols+1, …), …`: the placeholders of a multi-row insert.
fn placeholders(rows: usize, cols: usize) -> String {
    placeholders_from(0, rows, cols)
}

/// [`placeholders`] numbered after the `first` arguments bound before.
fn placeholders_from(first: usize, rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 6);
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(first + r * cols + c + 1).to_string());
        }
        out.push(')');
    }
    out
}

/// A URL with any password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Milliseconds since the Unix epoch, as stored.
pub fn now_ms() -> i64 {
    crate::runtime::system_clock() as i64
}

/// A new time-ordered id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// One page of a list and the cursor for the next.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// Build a page from `limit + 1` fetched items.
    fn from_fetched(mut items: Vec<T>, limit: usize, key: impl Fn(&T) -> String) -> Self {
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(key)
        } else {
            None
        };
        Self { items, next }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://sy:hunter2@localhost/db"),
            "postgres://sy:***@localhost/db"
        );
        assert_eq!(
            redact_url("postgres://localhost/db"),
            "postgres://localhost/db"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }

    #[test]
    fn placeholders_number_every_value() {
        assert_eq!(super::placeholders(1, 2), "($1, $2)");
        assert_eq!(super::placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(super::placeholders_from(4, 1, 2), "($5, $6)");
    }
}
