//! File-backed plugin storage in the data dir: each plugin's key-value space in
//! `kv/<plugin>.json` and its secrets in `secrets/<plugin>.json` (mode 0600).
//!
//! Every write goes to disk before it is acknowledged (temp file + rename).

use crate::runtime::{BoxFuture, KvError, KvStore, SecretSource};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Most bytes (keys + values) one plugin may keep.
pub const KV_QUOTA_BYTES: usize = 16 << 20;

type Space = BTreeMap<String, String>;

/// Key-value spaces as JSON files (values hex-encoded), cached in memory.
pub struct FileKv {
    dir: PathBuf,
    spaces: Mutex<HashMap<String, Space>>,
}

impl FileKv {
    /// Storage under `data_dir/kv`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("kv"),
            spaces: Mutex::new(HashMap::new()),
        }
    }

    /// Run `f` on the plugin's space. When `f` reports a change, the new space is
    /// written to disk before it replaces the cached one (reads clone nothing).
    fn with_space<T>(
        &self,
        plugin: &str,
        f: impl FnOnce(&Space) -> Result<(T, Option<Space>), KvError>,
    ) -> Result<T, KvError> {
        let unavailable = |e: &dyn std::fmt::Display| KvError::Unavailable(e.to_string());
        let mut spaces = self
            .spaces
            .lock()
            .map_err(|_| KvError::Unavailable("lock poisoned".into()))?;
        if !spaces.contains_key(plugin) {
            let loaded = match fs::read(self.file(plugin)) {
                Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| unavailable(&e))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Space::new(),
                Err(e) => return Err(unavailable(&e)),
            };
            spaces.insert(plugin.to_string(), loaded);
        }
        let space = spaces
            .get_mut(plugin)
            .ok_or_else(|| KvError::Unavailable("space vanished".into()))?;
        let (value, changed) = f(space)?;
        if let Some(changed) = changed {
            fs::create_dir_all(&self.dir).map_err(|e| unavailable(&e))?;
            let bytes = serde_json::to_vec(&changed).map_err(|e| unavailable(&e))?;
            let tmp = self.file(plugin).with_extension("tmp");
            fs::write(&tmp, bytes)
                .and_then(|()| fs::rename(&tmp, self.file(plugin)))
                .map_err(|e| unavailable(&e))?;
            *space = changed;
        }
        Ok(value)
    }

    fn file(&self, plugin: &str) -> PathBuf {
        self.dir.join(format!("{plugin}.json"))
    }

    /// Drop a plugin's whole space (on removal).
    pub fn clear(&self, plugin: &str) -> std::io::Result<()> {
        if let Ok(mut spaces) = self.spaces.lock() {
            spaces.remove(plugin);
        }
        match fs::remove_file(self.file(plugin)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl KvStore for FileKv {
    fn get<'a>(
        &'a self,
        plugin: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, KvError>> {
        Box::pin(async move {
            self.with_space(plugin, |s| {
                let value = s
                    .get(key)
                    .map(|v| hex::decode(v).map_err(|e| KvError::Unavailable(e.to_string())));
                Ok((value.transpose()?, None))
            })
        })
    }

    fn set<'a>(
        &'a self,
        plugin: &'a str,
        key: &'a str,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), KvError>> {
        Box::pin(async move {
            self.with_space(plugin, |s| {
                let used: usize = s.iter().filter(|(k, _)| *k != key).map(|(k, v)| k.len() + v.len() / 2).sum();
                if used + key.len() + value.len() > KV_QUOTA_BYTES {
                    return Err(KvError::Invalid(format!(
                        "the plugin's key-value space is full ({KV_QUOTA_BYTES} bytes); delete keys first"
                    )));
                }
                let mut next = s.clone();
                next.insert(key.to_string(), hex::encode(value));
                Ok(((), Some(next)))
            })
        })
    }

    fn delete<'a>(&'a self, plugin: &'a str, key: &'a str) -> BoxFuture<'a, Result<bool, KvError>> {
        Box::pin(async move {
            self.with_space(plugin, |s| {
                if !s.contains_key(key) {
                    return Ok((false, None));
                }
                let mut next = s.clone();
                next.remove(key);
                Ok((true, Some(next)))
            })
        })
    }

    fn list<'a>(
        &'a self,
        plugin: &'a str,
        prefix: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<String>, KvError>> {
        Box::pin(async move {
            self.with_space(plugin, |s| {
                let keys = s
                    .range(prefix.to_string()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .take(limit)
                    .map(|(k, _)| k.clone())
                    .collect();
                Ok((keys, None))
            })
        })
    }
}

/// Secrets as JSON files readable only by the owner.
pub struct FileSecrets {
    dir: PathBuf,
}

impl FileSecrets {
    /// Secrets under `data_dir/secrets`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("secrets"),
        }
    }

    fn read(&self, plugin: &str) -> BTreeMap<String, String> {
        fs::read(self.dir.join(format!("{plugin}.json")))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Set (or with `None`, delete) a secret.
    pub fn set(&self, plugin: &str, name: &str, value: Option<&str>) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut all = self.read(plugin);
        match value {
            Some(v) => all.insert(name.to_string(), v.to_string()),
            None => all.remove(name),
        };
        fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("{plugin}.json"));
        let tmp = path.with_extension("tmp");
        let _ = fs::remove_file(&tmp);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&serde_json::to_vec(&all)?)?;
        file.sync_all()?;
        fs::rename(tmp, path)
    }

    /// The names of the secrets that have values (never the values).
    pub fn names(&self, plugin: &str) -> Vec<String> {
        self.read(plugin).into_keys().collect()
    }

    /// Drop all of a plugin's secrets.
    pub fn clear(&self, plugin: &str) -> std::io::Result<()> {
        match fs::remove_file(self.dir.join(format!("{plugin}.json"))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl SecretSource for FileSecrets {
    fn secret<'a>(&'a self, plugin: &'a str, name: &'a str) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move { self.read(plugin).remove(name) })
    }
}

#[cfg(test)]
mod tests {
    use super::{FileKv, KV_QUOTA_BYTES};
    use crate::runtime::{KvError, KvStore};

    #[tokio::test]
    async fn kv_persists_lists_and_enforces_the_quota() {
        let dir = tempfile::TempDir::new().unwrap();
        let kv = FileKv::new(dir.path());
        kv.set("p", "a/1", b"one".to_vec()).await.unwrap();
        kv.set("p", "a/2", b"two".to_vec()).await.unwrap();
        kv.set("p", "b", b"x".to_vec()).await.unwrap();
        kv.set("other", "a/9", b"theirs".to_vec()).await.unwrap();
        assert_eq!(kv.list("p", "a/", 10).await.unwrap(), ["a/1", "a/2"]);
        assert_eq!(kv.list("p", "a/", 1).await.unwrap(), ["a/1"]);
        assert!(kv.delete("p", "b").await.unwrap());
        assert!(!kv.delete("p", "b").await.unwrap());

        let reopened = FileKv::new(dir.path());
        assert_eq!(
            reopened.get("p", "a/2").await.unwrap().as_deref(),
            Some(&b"two"[..])
        );
        assert_eq!(reopened.get("p", "b").await.unwrap(), None);

        let chunk = vec![7u8; 4 << 20];
        let mut stored = 0;
        let err = loop {
            match reopened
                .set("p", &format!("big/{stored}"), chunk.clone())
                .await
            {
                Ok(()) => stored += 1,
                Err(e) => break e,
            }
        };
        assert!(
            matches!(err, KvError::Invalid(ref m) if m.contains("full")),
            "{err}"
        );
        assert_eq!(stored, KV_QUOTA_BYTES / (4 << 20) - 1);
        assert!(reopened.delete("p", "big/0").await.unwrap());
        reopened.set("p", "big/again", chunk).await.unwrap();
        reopened.clear("p").unwrap();
        assert_eq!(
            FileKv::new(dir.path()).list("p", "", 10).await.unwrap(),
            Vec::<String>::new()
        );
    }
}
