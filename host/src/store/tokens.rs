//! API tokens and refresh tokens. Only SHA-256 hashes of token values are stored.

use super::{Page, Store, StoreError, User, new_id, now_ms};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

/// An API token as listed (never with its value).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiToken {
    /// Stable id (use it to revoke).
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// A label chosen by the owner.
    pub name: String,
    /// The first characters of the value, to recognise it.
    pub prefix: String,
    /// Scopes; empty means everything the owner may do.
    pub scopes: Vec<String>,
    /// Creation time (ms since the epoch).
    pub created_at: i64,
    /// Expiry (ms since the epoch), if any.
    pub expires_at: Option<i64>,
    /// Last use (ms since the epoch), if any.
    pub last_used_at: Option<i64>,
}

/// What to store for a new API token.
#[derive(Debug, Clone)]
pub struct NewApiToken<'a> {
    /// The owner.
    pub user_id: &'a str,
    /// Label.
    pub name: &'a str,
    /// SHA-256 hex of the value.
    pub token_hash: &'a str,
    /// Leading characters of the value.
    pub prefix: &'a str,
    /// Scopes.
    pub scopes: &'a [String],
    /// Expiry (ms since the epoch).
    pub expires_at: Option<i64>,
}

/// The result of presenting a refresh token.
#[derive(Debug)]
pub enum RefreshOutcome {
    /// Valid: it is now used up; issue a new one in `family`.
    Rotated {
        /// The owner.
        user: User,
        /// The login session the token belongs to.
        family: String,
    },
    /// Unknown, expired or revoked.
    Invalid,
    /// Already used: possible theft, so the whole family was revoked.
    Reused,
}

/// How long a session revocation is remembered: twice the longest refresh-token
/// lifetime (7 days), after which every token of the session has expired anyway.
const REVOCATION_MEMORY_MS: i64 = 14 * 24 * 60 * 60 * 1000;

const TOKEN_COLUMNS: &str =
    "id, user_id, name, prefix, scopes, created_at, expires_at, last_used_at";

fn api_token(row: &AnyRow) -> Result<ApiToken, StoreError> {
    let scopes: String = row.try_get("scopes")?;
    Ok(ApiToken {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        scopes: serde_json::from_str(&scopes).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

impl Store {
    /// Store a new API token.
    pub async fn create_api_token(&self, new: NewApiToken<'_>) -> Result<ApiToken, StoreError> {
        let id = new_id();
        let scopes = serde_json::to_string(new.scopes).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, token_hash, prefix, scopes, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(new.user_id)
        .bind(new.name)
        .bind(new.token_hash)
        .bind(new.prefix)
        .bind(scopes)
        .bind(now_ms())
        .bind(new.expires_at)
        .execute(self.pool())
        .await?;
        self.api_token(&id, None).await
    }

    /// One live token by id, optionally only if `owner` holds it.
    pub async fn api_token(&self, id: &str, owner: Option<&str>) -> Result<ApiToken, StoreError> {
        let row = sqlx::query(sql!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens \
             WHERE id = $1 AND revoked_at IS NULL AND ($2 = '' OR user_id = $2)"
        ))
        .bind(id)
        .bind(owner.unwrap_or(""))
        .fetch_one(self.pool())
        .await?;
        api_token(&row)
    }

    /// Live tokens (of `owner`, or everyone's), ordered by id.
    pub async fn api_tokens(
        &self,
        owner: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<ApiToken>, StoreError> {
        let rows = sqlx::query(sql!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens \
             WHERE revoked_at IS NULL AND ($1 = '' OR user_id = $1) AND id > $2 \
             ORDER BY id LIMIT $3"
        ))
        .bind(owner.unwrap_or(""))
        .bind(after.unwrap_or(""))
        .bind(limit as i64 + 1)
        .fetch_all(self.pool())
        .await?;
        let items = rows.iter().map(api_token).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_fetched(items, limit, |t| t.id.clone()))
    }

    /// Revoke a token (only `owner`'s unless `None`).
    pub async fn revoke_api_token(&self, id: &str, owner: Option<&str>) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 \
             WHERE id = $2 AND revoked_at IS NULL AND ($3 = '' OR user_id = $3)",
        )
        .bind(now_ms())
        .bind(id)
        .bind(owner.unwrap_or(""))
        .execute(self.pool())
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The token and its enabled owner for a presented value's hash, if live;
    /// records the use.
    pub async fn authenticate_api_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<(ApiToken, User)>, StoreError> {
        let now = now_ms();
        let row = sqlx::query(sql!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1 \
             AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let token = api_token(&row)?;
        let user = self.user(&token.user_id).await?;
        if user.disabled {
            return Ok(None);
        }
        let stale = token.last_used_at.is_none_or(|t| now - t > 60_000);
        if stale {
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&token.id)
                .execute(self.pool())
                .await?;
        }
        Ok(Some((token, user)))
    }

    /// Store a refresh token in `family` (a login session).
    pub async fn create_refresh_token(
        &self,
        user_id: &str,
        family: &str,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (id, user_id, family, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new_id())
        .bind(user_id)
        .bind(family)
        .bind(token_hash)
        .bind(now_ms())
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Use a refresh token: a valid one is marked used (rotation) in one
    /// conditional update, so exactly one of any number of concurrent uses
    /// wins; a use of a used token revokes the whole family.
    pub async fn use_refresh_token(&self, token_hash: &str) -> Result<RefreshOutcome, StoreError> {
        let now = now_ms();
        let claimed = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 \
             AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1 \
             AND NOT EXISTS (SELECT 1 FROM revoked_sessions r WHERE r.family = refresh_tokens.family)",
        )
        .bind(now)
        .bind(token_hash)
        .execute(self.pool())
        .await?;
        let row = sqlx::query(
            "SELECT user_id, family, used_at FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(RefreshOutcome::Invalid);
        };
        let family: String = row.try_get("family")?;
        if claimed.rows_affected() == 1 {
            let user = self.user(&row.try_get::<String, _>("user_id")?).await?;
            if user.disabled {
                return Ok(RefreshOutcome::Invalid);
            }
            return Ok(RefreshOutcome::Rotated { user, family });
        }
        if row.try_get::<Option<i64>, _>("used_at")?.is_some() {
            self.revoke_refresh_family(&family).await?;
            return Ok(RefreshOutcome::Reused);
        }
        Ok(RefreshOutcome::Invalid)
    }

    /// The family of a live refresh token and its owner, if the token is live.
    pub async fn refresh_token_family(
        &self,
        token_hash: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT family, user_id FROM refresh_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| Ok((r.try_get("family")?, r.try_get("user_id")?)))
            .transpose()
    }

    /// Whether a login session of `user_id` still has a live refresh token and
    /// was not revoked as a whole.
    pub async fn session_live(&self, family: &str, user_id: &str) -> Result<bool, StoreError> {
        let live: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM refresh_tokens WHERE family = $1 AND user_id = $2 \
             AND revoked_at IS NULL AND expires_at > $3 \
             AND NOT EXISTS (SELECT 1 FROM revoked_sessions r WHERE r.family = $1)",
        )
        .bind(family)
        .bind(user_id)
        .bind(now_ms())
        .fetch_one(self.pool())
        .await?;
        Ok(live > 0)
    }

    /// Revoke a login session as a whole: its refresh tokens, and any minted
    /// into it later by a rotation that raced this revocation.
    pub async fn revoke_refresh_family(&self, family: &str) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO revoked_sessions (family, revoked_at) VALUES ($1, $2) \
             ON CONFLICT (family) DO NOTHING",
        )
        .bind(family)
        .bind(now)
        .execute(self.pool())
        .await?;
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(family)
        .execute(self.pool())
        .await?;
        self.prune_revoked_sessions(now).await
    }

    /// Revoke every login session of a user except `keep` (log out everywhere
    /// else); returns how many sessions were revoked.
    pub async fn revoke_user_refresh_tokens(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<u64, StoreError> {
        let now = now_ms();
        let revoked = sqlx::query(
            "INSERT INTO revoked_sessions (family, revoked_at) \
             SELECT DISTINCT family, $1 FROM refresh_tokens \
             WHERE user_id = $2 AND family <> $3 AND revoked_at IS NULL \
             ON CONFLICT (family) DO NOTHING",
        )
        .bind(now)
        .bind(user_id)
        .bind(keep.unwrap_or(""))
        .execute(self.pool())
        .await?;
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 \
             WHERE user_id = $2 AND family <> $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .bind(keep.unwrap_or(""))
        .execute(self.pool())
        .await?;
        self.prune_revoked_sessions(now).await?;
        Ok(revoked.rows_affected())
    }

    /// Forget revocations older than any refresh token can live.
    async fn prune_revoked_sessions(&self, now: i64) -> Result<(), StoreError> {
        let horizon = now - REVOCATION_MEMORY_MS;
        sqlx::query("DELETE FROM revoked_sessions WHERE revoked_at < $1")
            .bind(horizon)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
