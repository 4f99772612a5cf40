//! Installed-plugin state (version, owner, enabled flag, grants, configuration)
//! and plugin secrets, sealed with ChaCha20-Poly1305 before they reach the database.

use super::{Store, StoreError, now_ms};
use crate::runtime::{BoxFuture, SecretSource};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::path::Path;

/// The stored state of one installed plugin. JSON columns stay JSON text here;
/// the plugins module owns their meaning.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginRow {
    /// Plugin name (primary key).
    pub name: String,
    /// Installed version.
    pub version: String,
    /// The user who installed it; `None` for plugins shared with everyone.
    pub owner_id: Option<String>,
    /// Whether calls are allowed.
    pub enabled: bool,
    /// Granted capabilities (JSON).
    pub granted: String,
    /// Configuration values (JSON object of strings).
    pub config: String,
    /// When this version was installed (ms).
    pub installed_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
    /// Increases with every change; hot reload compares it.
    pub revision: i64,
}

const COLUMNS: &str =
    "name, version, owner_id, enabled, granted, config, installed_at, updated_at, revision";

fn plugin_row(row: &AnyRow) -> Result<PluginRow, StoreError> {
    Ok(PluginRow {
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        owner_id: row.try_get("owner_id")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        granted: row.try_get("granted")?,
        config: row.try_get("config")?,
        installed_at: row.try_get("installed_at")?,
        updated_at: row.try_get("updated_at")?,
        revision: row.try_get("revision")?,
    })
}

impl Store {
    /// Every installed plugin, by name.
    pub async fn plugins(&self) -> Result<Vec<PluginRow>, StoreError> {
        let rows = sqlx::query(sql!("SELECT {COLUMNS} FROM plugins ORDER BY name"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(plugin_row).collect()
    }

    /// One installed plugin.
    pub async fn plugin(&self, name: &str) -> Result<PluginRow, StoreError> {
        let row = sqlx::query(sql!("SELECT {COLUMNS} FROM plugins WHERE name = $1"))
            .bind(name)
            .fetch_one(self.pool())
            .await?;
        plugin_row(&row)
    }

    /// Insert or replace a plugin's state; the revision moves past the stored one.
    pub async fn put_plugin(&self, row: &PluginRow) -> Result<PluginRow, StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO plugins (name, version, owner_id, enabled, granted, config, installed_at, updated_at, revision) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1) \
             ON CONFLICT (name) DO UPDATE SET version = excluded.version, owner_id = excluded.owner_id, \
             enabled = excluded.enabled, granted = excluded.granted, config = excluded.config, \
             installed_at = excluded.installed_at, updated_at = excluded.updated_at, \
             revision = plugins.revision + 1",
        )
        .bind(&row.name)
        .bind(&row.version)
        .bind(row.owner_id.as_deref())
        .bind(i64::from(row.enabled))
        .bind(&row.granted)
        .bind(&row.config)
        .bind(row.installed_at)
        .bind(now)
        .execute(self.pool())
        .await?;
        self.plugin(&row.name).await
    }

    /// Delete a plugin's state with its secrets and key-value data.
    pub async fn delete_plugin(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for table in ["plugin_secrets", "plugin_kv"] {
            sqlx::query(sql!("DELETE FROM {table} WHERE plugin = $1"))
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        let result = sqlx::query("DELETE FROM plugins WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Set (or with `None`, delete) a sealed secret; bumps the plugin's revision.
    pub async fn put_plugin_secret(
        &self,
        plugin: &str,
        name: &str,
        sealed: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        match sealed {
            Some(bytes) => {
                sqlx::query(
                    "INSERT INTO plugin_secrets (plugin, name, sealed, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (plugin, name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
                )
                .bind(plugin)
                .bind(name)
                .bind(bytes)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM plugin_secrets WHERE plugin = $1 AND name = $2")
                    .bind(plugin)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query("UPDATE plugins SET revision = revision + 1, updated_at = $1 WHERE name = $2")
            .bind(now_ms())
            .bind(plugin)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A sealed secret.
    pub async fn plugin_secret(
        &self,
        plugin: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT sealed FROM plugin_secrets WHERE plugin = $1 AND name = $2")
                .bind(plugin)
                .bind(name)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// The names of a plugin's secrets that have values.
    pub async fn plugin_secret_names(&self, plugin: &str) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT name FROM plugin_secrets WHERE plugin = $1 ORDER BY name")
                .bind(plugin)
                .fetch_all(self.pool())
                .await?,
        )
    }
}

/// Seals and opens secret values with a key kept outside the database.
#[derive(Clone)]
pub struct SecretCipher {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretCipher(..)")
    }
}

impl SecretCipher {
    /// A cipher from a 32-byte key.
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        }
    }

    /// The key in `path` (hex), created with mode 0600 when missing.
    pub fn from_key_file(path: &Path) -> std::io::Result<Self> {
        let invalid = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
        let key = match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim()).map_err(|_| invalid("key is not hex"))?;
                <[u8; 32]>::try_from(bytes.as_slice())
                    .map_err(|_| invalid("key must be 32 bytes (64 hex characters)"))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                write_private(path, hex::encode(key).as_bytes())?;
                key
            }
            Err(e) => return Err(e),
        };
        Ok(Self::new(key))
    }

    /// Encrypt `plain`, bound to `plugin/name` so sealed values cannot be swapped.
    pub fn seal(&self, plugin: &str, name: &str, plain: &str) -> Vec<u8> {
        let nonce: [u8; 12] = rand::random();
        let aad = format!("{plugin}/{name}");
        let mut out = nonce.to_vec();
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                chacha20poly1305::aead::Payload {
                    msg: plain.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .unwrap_or_default();
        out.extend(sealed);
        out
    }

    /// Decrypt a value sealed for `plugin/name`; `None` if it was tampered with
    /// or sealed under another key.
    pub fn open(&self, plugin: &str, name: &str, sealed: &[u8]) -> Option<String> {
        if sealed.len() < 12 {
            return None;
        }
        let (nonce, body) = sealed.split_at(12);
        let aad = format!("{plugin}/{name}");
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                chacha20poly1305::aead::Payload {
                    msg: body,
                    aad: aad.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

/// Write a file only the owner can read.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// Plugin secrets read from the store and opened with the cipher.
#[derive(Debug, Clone)]
pub struct SqlSecrets {
    store: Store,
    cipher: SecretCipher,
}

impl SqlSecrets {
    /// Secrets in `store`, sealed with `cipher`.
    pub fn new(store: Store, cipher: SecretCipher) -> Self {
        Self { store, cipher }
    }

    /// The cipher values are sealed with.
    pub fn cipher(&self) -> &SecretCipher {
        &self.cipher
    }

    /// Seal and store (or with `None`, delete) a secret.
    pub async fn set(
        &self,
        plugin: &str,
        name: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        let sealed = value.map(|v| self.cipher.seal(plugin, name, v));
        self.store.put_plugin_secret(plugin, name, sealed).await
    }
}

impl SqlSecrets {
    /// Seal and store (or with `None`, delete) a channel instance's secret.
    pub async fn set_channel(
        &self,
        instance_id: &str,
        name: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        let owner = format!("channel:{instance_id}");
        let sealed = value.map(|v| self.cipher.seal(&owner, name, v));
        self.store
            .put_channel_secret(instance_id, name, sealed)
            .await
    }

    /// A channel instance's own secret, opened; `None` when unset or unreadable.
    pub async fn channel(&self, instance_id: &str, name: &str) -> Option<String> {
        let sealed = match self.store.channel_secret(instance_id, name).await {
            Ok(s) => s?,
            Err(e) => {
                tracing::warn!(instance = instance_id, secret = name, error = %e, "secret unavailable");
                return None;
            }
        };
        self.cipher
            .open(&format!("channel:{instance_id}"), name, &sealed)
    }
}

impl SecretSource for SqlSecrets {
    fn secret<'a>(&'a self, plugin: &'a str, name: &'a str) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move {
            let sealed = match self.store.plugin_secret(plugin, name).await {
                Ok(Some(s)) => s,
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!(plugin, secret = name, error = %e, "secret unavailable");
                    return None;
                }
            };
            let value = self.cipher.open(plugin, name, &sealed);
            if value.is_none() {
                tracing::warn!(
                    plugin,
                    secret = name,
                    "secret cannot be opened with this key"
                );
            }
            value
        })
    }
}

#[cfg(test)]
mod tests {
    use super::SecretCipher;

    #[test]
    fn sealed_secrets_open_only_for_their_owner_and_key() {
        let cipher = SecretCipher::new([7; 32]);
        let sealed = cipher.seal("p", "token", "s3cret");
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(
            cipher.open("p", "token", &sealed).as_deref(),
            Some("s3cret")
        );
        assert_eq!(cipher.open("p", "other", &sealed), None);
        assert_eq!(cipher.open("q", "token", &sealed), None);
        assert_eq!(SecretCipher::new([8; 32]).open("p", "token", &sealed), None);
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(cipher.open("p", "token", &tampered), None);
    }
}
