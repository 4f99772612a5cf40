//! Users: accounts with a role and an argon2 password hash.

use super::{Page, Store, StoreError, new_id, now_ms};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including other users' resources.
    Admin,
    /// Their own resources only.
    User,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "admin" => Ok(Self::Admin),
            "user" => Ok(Self::User),
            other => Err(StoreError::Corrupt(format!("unknown role `{other}`"))),
        }
    }
}

/// A user account (never carries the password hash outside the store).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    /// Stable id.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Disabled users cannot log in and their tokens stop working.
    pub disabled: bool,
    /// Creation time (ms since the epoch).
    pub created_at: i64,
}

const COLUMNS: &str = "id, username, role, disabled, created_at";

fn user(row: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        role: Role::parse(&row.try_get::<String, _>("role")?)?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Create a user with an already-hashed password.
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User, StoreError> {
        let id = new_id();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, role, disabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 0, $5, $5)",
        )
        .bind(&id)
        .bind(username)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("user `{username}`")),
            other => other,
        })?;
        self.user(&id).await
    }

    /// A user by id.
    pub async fn user(&self, id: &str) -> Result<User, StoreError> {
        let row = sqlx::query(sql!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_one(self.pool())
            .await?;
        user(&row)
    }

    /// A user and their password hash, by login name.
    pub async fn user_for_login(&self, username: &str) -> Result<(User, String), StoreError> {
        let row = sqlx::query(sql!(
            "SELECT {COLUMNS}, password_hash FROM users WHERE username = $1"
        ))
        .bind(username)
        .fetch_one(self.pool())
        .await?;
        Ok((user(&row)?, row.try_get("password_hash")?))
    }

    /// Users ordered by id, `limit` after the cursor.
    pub async fn users(&self, after: Option<&str>, limit: usize) -> Result<Page<User>, StoreError> {
        let rows = sqlx::query(sql!(
            "SELECT {COLUMNS} FROM users WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after.unwrap_or(""))
        .bind(limit as i64 + 1)
        .fetch_all(self.pool())
        .await?;
        let items = rows.iter().map(user).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_fetched(items, limit, |u| u.id.clone()))
    }

    /// How many users exist.
    pub async fn user_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(self.pool())
            .await?)
    }

    /// How many enabled admins exist.
    pub async fn admin_count(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0")
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// Change role, disabled flag and/or password hash.
    pub async fn update_user(
        &self,
        id: &str,
        role: Option<Role>,
        disabled: Option<bool>,
        password_hash: Option<&str>,
    ) -> Result<User, StoreError> {
        let current = self.user(id).await?;
        let result = sqlx::query(
            "UPDATE users SET role = $1, disabled = $2, \
             password_hash = COALESCE($3, password_hash), updated_at = $4 WHERE id = $5",
        )
        .bind(role.unwrap_or(current.role).as_str())
        .bind(i64::from(disabled.unwrap_or(current.disabled)))
        .bind(password_hash)
        .bind(now_ms())
        .bind(id)
        .execute(self.pool())
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.user(id).await
    }

    /// Delete a user with their tokens and their plugin key-value data.
    pub async fn delete_user(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM plugin_kv WHERE namespace = $1")
            .bind(crate::runtime::KvNamespace::User(id.to_string()).key())
            .execute(&mut *tx)
            .await?;
        let result = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }
}
