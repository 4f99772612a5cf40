//! Installed skills as stored: one row per (owner, name) with its catalog
//! entry, and every file of the skill (SKILL.md included) as bytes, so any host
//! on the same database serves the same skills.

use super::{Store, StoreError, now_ms};
use sqlx::Row;
use sqlx::any::AnyRow;

/// One installed skill (without its files).
#[derive(Debug, Clone, PartialEq)]
pub struct SkillRow {
    /// Stable id.
    pub id: String,
    /// Who installed it.
    pub owner_id: String,
    /// The owner's user name.
    pub owner: String,
    /// The skill's name (unique per owner).
    pub name: String,
    /// What it does and when to use it.
    pub description: String,
    /// The other front matter fields (JSON).
    pub front: String,
    /// `private` or `shared`.
    pub visibility: String,
    /// Number of files, SKILL.md included.
    pub file_count: i64,
    /// Bytes of all files.
    pub size: i64,
    /// SHA-256 over the files (hex).
    pub sha256: String,
    /// Installed (ms).
    pub created_at: i64,
    /// Last replaced or changed (ms).
    pub updated_at: i64,
}

const COLUMNS: &str = "s.id, s.owner_id, u.username, s.name, s.description, s.front, s.visibility, \
     s.file_count, s.size, s.sha256, s.created_at, s.updated_at";

fn skill_row(row: &AnyRow) -> Result<SkillRow, StoreError> {
    Ok(SkillRow {
        id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        owner: row.try_get("username")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        front: row.try_get("front")?,
        visibility: row.try_get("visibility")?,
        file_count: row.try_get("file_count")?,
        size: row.try_get("size")?,
        sha256: row.try_get("sha256")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Install a skill with its files, or replace the owner's skill of the same
    /// name when `replace` (keeping its id and install time); a name already
    /// taken without `replace` is a conflict. A replaced skill keeps its
    /// visibility when `keep_visibility`. Answers the stored row and whether
    /// it replaced one.
    pub async fn put_skill(
        &self,
        row: &SkillRow,
        files: &[(String, Vec<u8>)],
        replace: bool,
        keep_visibility: bool,
    ) -> Result<(SkillRow, bool), StoreError> {
        let mut tx = self.begin_write().await?;
        let existing = sqlx::query(
            "SELECT id, created_at, visibility FROM skills WHERE owner_id = $1 AND name = $2",
        )
        .bind(&row.owner_id)
        .bind(&row.name)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| -> Result<(String, i64, String), StoreError> {
            Ok((
                r.try_get("id")?,
                r.try_get("created_at")?,
                r.try_get("visibility")?,
            ))
        })
        .transpose()?;
        let mut stored = row.clone();
        let replaced = existing.is_some();
        match existing {
            Some(_) if !replace => {
                return Err(StoreError::Conflict(format!(
                    "you already have a skill named `{}`",
                    row.name
                )));
            }
            Some((id, created_at, visibility)) => {
                stored.id = id;
                stored.created_at = created_at;
                if keep_visibility {
                    stored.visibility = visibility;
                }
                stored.updated_at = now_ms();
                sqlx::query("DELETE FROM skill_files WHERE skill_id = $1")
                    .bind(&stored.id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE skills SET description = $2, front = $3, visibility = $4, \
                     file_count = $5, size = $6, sha256 = $7, updated_at = $8 WHERE id = $1",
                )
                .bind(&stored.id)
                .bind(&stored.description)
                .bind(&stored.front)
                .bind(&stored.visibility)
                .bind(stored.file_count)
                .bind(stored.size)
                .bind(&stored.sha256)
                .bind(stored.updated_at)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "INSERT INTO skills (id, owner_id, name, description, front, visibility, \
                     file_count, size, sha256, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&stored.id)
                .bind(&stored.owner_id)
                .bind(&stored.name)
                .bind(&stored.description)
                .bind(&stored.front)
                .bind(&stored.visibility)
                .bind(stored.file_count)
                .bind(stored.size)
                .bind(&stored.sha256)
                .bind(stored.created_at)
                .bind(stored.updated_at)
                .execute(&mut *tx)
                .await?;
            }
        }
        for (path, content) in files {
            sqlx::query("INSERT INTO skill_files (skill_id, path, content) VALUES ($1, $2, $3)")
                .bind(&stored.id)
                .bind(path)
                .bind(content.clone())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok((stored, replaced))
    }

    /// Every installed skill, ordered by owner name then skill name.
    pub async fn skills(&self) -> Result<Vec<SkillRow>, StoreError> {
        let rows = sqlx::query(sql!(
            "SELECT {COLUMNS} FROM skills s JOIN users u ON u.id = s.owner_id \
             ORDER BY u.username, s.name"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(skill_row).collect()
    }

    /// The files of skill `id`, ordered by path.
    pub async fn skill_files(&self, id: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let rows =
            sqlx::query("SELECT path, content FROM skill_files WHERE skill_id = $1 ORDER BY path")
                .bind(id)
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("path")?, r.try_get("content")?)))
            .collect()
    }

    /// Change who may see skill `id`.
    pub async fn set_skill_visibility(&self, id: &str, visibility: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE skills SET visibility = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(visibility)
            .bind(now_ms())
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Remove skill `id` with its files.
    pub async fn delete_skill(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM skill_files WHERE skill_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM skills WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }
}
