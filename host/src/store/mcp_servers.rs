//! External MCP servers as stored: where to reach each one (a URL, or a
//! command for a sandbox), its sealed request headers, and who may use it.

use super::{Store, StoreError};
use sqlx::Row;
use sqlx::any::AnyRow;

/// One registered external MCP server.
#[derive(Debug, Clone, PartialEq)]
pub struct McpServerRow {
    /// Stable id.
    pub id: String,
    /// Who registered it (and whose tool set it joins).
    pub owner_id: String,
    /// Unique per owner: the `NAME` of `NAME__TOOL`.
    pub name: String,
    /// `http` or `stdio`.
    pub transport: String,
    /// The streamable-HTTP endpoint.
    pub url: Option<String>,
    /// The command and its arguments (JSON array), run in a sandbox.
    pub command: Option<String>,
    /// The header names (JSON array); the values are sealed in `headers`.
    pub header_names: String,
    /// The request headers (a JSON object), sealed.
    pub headers: Option<Vec<u8>>,
    /// Offered to every user (administrators only).
    pub shared: bool,
    /// Connected and offered.
    pub enabled: bool,
    /// Longest a tool call may take (seconds).
    pub timeout_secs: i64,
    /// Created (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
}

const COLUMNS: &str = "id, owner_id, name, transport, url, command, header_names, headers, shared, enabled, \
     timeout_secs, created_at, updated_at";

fn server_row(row: &AnyRow) -> Result<McpServerRow, StoreError> {
    Ok(McpServerRow {
        id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        name: row.try_get("name")?,
        transport: row.try_get("transport")?,
        url: row.try_get("url")?,
        command: row.try_get("command")?,
        header_names: row.try_get("header_names")?,
        headers: row.try_get("headers")?,
        shared: row.try_get::<i64, _>("shared")? != 0,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        timeout_secs: row.try_get("timeout_secs")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn named(e: sqlx::Error, name: &str) -> StoreError {
    match StoreError::from(e) {
        StoreError::Conflict(_) => {
            StoreError::Conflict(format!("an MCP server named `{name}` of this user"))
        }
        other => other,
    }
}

impl Store {
    /// Register an external MCP server; a conflict when the owner has one of that name.
    pub async fn insert_mcp_server(&self, s: &McpServerRow) -> Result<(), StoreError> {
        sqlx::query(sql!(
            "INSERT INTO mcp_servers ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(&s.id)
        .bind(&s.owner_id)
        .bind(&s.name)
        .bind(&s.transport)
        .bind(&s.url)
        .bind(&s.command)
        .bind(&s.header_names)
        .bind(&s.headers)
        .bind(i64::from(s.shared))
        .bind(i64::from(s.enabled))
        .bind(s.timeout_secs)
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(self.pool())
        .await
        .map_err(|e| named(e, &s.name))?;
        Ok(())
    }

    /// Replace everything but the id, owner and creation time of server `s.id`.
    /// `false` when it no longer exists.
    pub async fn update_mcp_server(&self, s: &McpServerRow) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE mcp_servers SET name = $2, transport = $3, url = $4, command = $5, header_names = $6, \
             headers = $7, shared = $8, enabled = $9, timeout_secs = $10, updated_at = $11 WHERE id = $1",
        )
        .bind(&s.id)
        .bind(&s.name)
        .bind(&s.transport)
        .bind(&s.url)
        .bind(&s.command)
        .bind(&s.header_names)
        .bind(&s.headers)
        .bind(i64::from(s.shared))
        .bind(i64::from(s.enabled))
        .bind(s.timeout_secs)
        .bind(s.updated_at)
        .execute(self.pool())
        .await
        .map_err(|e| named(e, &s.name))?;
        Ok(result.rows_affected() == 1)
    }

    /// Remove server `id`; `false` when it did not exist.
    pub async fn delete_mcp_server(&self, id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM mcp_servers WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Server `id`, if registered.
    pub async fn mcp_server(&self, id: &str) -> Result<Option<McpServerRow>, StoreError> {
        let row = sqlx::query(sql!("SELECT {COLUMNS} FROM mcp_servers WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(server_row).transpose()
    }

    /// Every registered server, oldest first.
    pub async fn mcp_servers(&self) -> Result<Vec<McpServerRow>, StoreError> {
        let rows = sqlx::query(sql!(
            "SELECT {COLUMNS} FROM mcp_servers ORDER BY created_at, id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(server_row).collect()
    }
}
