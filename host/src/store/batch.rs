//! Multi-row inserts sent together. Every statement sent to a SQLite
//! connection is a hand-off to its worker thread and back; inserts that one
//! transaction writes into several tables go there as one command (SQLite
//! numbers `$N` across the statements of a command), and to Postgres as one
//! prepared statement each.

use super::{Backend, StoreError};

/// A query on either backend with its arguments bound.
pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// The rows of one multi-row insert.
pub(crate) trait RowsInsert {
    /// How many values each row binds.
    const COLUMNS: usize;

    /// `INSERT INTO table (columns) VALUES ` (placeholders follow).
    fn head(&self) -> String;

    /// How many rows there are.
    fn rows(&self) -> usize;

    /// Bind every row's values, in column order.
    fn bind<'q>(&self, query: AnyQuery<'q>) -> AnyQuery<'q>;
}

/// Run one multi-row insert on `conn` (nothing when it has no rows).
pub(crate) async fn insert<R: RowsInsert>(
    conn: &mut sqlx::AnyConnection,
    rows: R,
) -> Result<(), StoreError> {
    if rows.rows() == 0 {
        return Ok(());
    }
    let sql = format!(
        "{}{}",
        rows.head(),
        super::placeholders(rows.rows(), R::COLUMNS)
    );
    rows.bind(sqlx::query(sqlx::AssertSqlSafe(sql)))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Inserts to write in one transaction, in order.
#[derive(Default)]
pub(crate) struct Inserts<'a> {
    parts: Vec<Part<'a>>,
}

struct Part<'a> {
    head: String,
    rows: usize,
    columns: usize,
    bind: Box<dyn Fn(AnyQuery<'static>) -> AnyQuery<'static> + Send + Sync + 'a>,
}

impl<'a> Inserts<'a> {
    /// Add `rows` (nothing when it has none).
    pub(crate) fn push<R: RowsInsert + Send + Sync + 'a>(&mut self, rows: R) {
        if rows.rows() == 0 {
            return;
        }
        self.parts.push(Part {
            head: rows.head(),
            rows: rows.rows(),
            columns: R::COLUMNS,
            bind: Box::new(move |q| rows.bind(q)),
        });
    }

    /// Run the inserts on `conn` (inside the caller's transaction).
    pub(crate) async fn run(
        self,
        conn: &mut sqlx::AnyConnection,
        backend: Backend,
    ) -> Result<(), StoreError> {
        match backend {
            Backend::Sqlite => {
                if self.parts.is_empty() {
                    return Ok(());
                }
                let mut sql = String::new();
                let mut first = 0;
                for part in &self.parts {
                    if first > 0 {
                        sql.push_str(";\n");
                    }
                    sql.push_str(&part.head);
                    sql.push_str(&super::placeholders_from(first, part.rows, part.columns));
                    first += part.rows * part.columns;
                }
                let query = self
                    .parts
                    .iter()
                    .fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |q, part| {
                        (part.bind)(q)
                    });
                query.execute(&mut *conn).await?;
            }
            Backend::Postgres => {
                for part in &self.parts {
                    let sql = format!(
                        "{}{}",
                        part.head,
                        super::placeholders(part.rows, part.columns)
                    );
                    (part.bind)(sqlx::query(sqlx::AssertSqlSafe(sql)))
                        .execute(&mut *conn)
                        .await?;
                }
            }
        }
        Ok(())
    }
}
