//! The on-disk cache of precompiled components, keyed by the engine's
//! compatibility hash and the SHA-256 of the component bytes.

use sha2::{Digest, Sha256};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Artifacts written this recently are never pruned: an install may be about to use one.
const PRUNE_GRACE: std::time::Duration = std::time::Duration::from_secs(120);

/// Precompiled artifacts under `dir/<engine hash>/<sha256>.cwasm`.
pub struct ArtifactCache {
    root: PathBuf,
    dir: PathBuf,
}

/// What a prune removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Files removed.
    pub files: usize,
    /// Bytes freed.
    pub bytes: u64,
}

impl ArtifactCache {
    /// A cache for `engine` under `root`.
    pub fn new(root: &Path, engine: &Engine) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            root: root.to_path_buf(),
            dir: root.join(format!("{:016x}", hasher.finish())),
        }
    }

    /// The cache key of component `bytes` (its SHA-256, hex).
    pub fn key(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// Remove every artifact whose key is not in `keep`, and the folders of
    /// other engines (an older switchyard or other settings), sparing files
    /// written in the last two minutes.
    pub fn prune(&self, keep: &std::collections::HashSet<String>) -> Pruned {
        let mut pruned = Pruned::default();
        let old = |meta: &std::fs::Metadata| {
            meta.modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > PRUNE_GRACE)
        };
        let Ok(engines) = std::fs::read_dir(&self.root) else {
            return pruned;
        };
        for engine in engines.filter_map(Result::ok) {
            let current = engine.path() == self.dir;
            let Ok(files) = std::fs::read_dir(engine.path()) else {
                continue;
            };
            for file in files.filter_map(Result::ok) {
                let path = file.path();
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                let Ok(meta) = file.metadata() else { continue };
                if (current && keep.contains(stem)) || !old(&meta) {
                    continue;
                }
                if std::fs::remove_file(&path).is_ok() {
                    pruned.files += 1;
                    pruned.bytes += meta.len();
                }
            }
            if !current {
                let _ = std::fs::remove_dir(engine.path());
            }
        }
        pruned
    }

    /// Load the component from the cache, or compile it and store the artifact.
    /// A corrupt or stale artifact is recompiled; a cache that cannot be written is
    /// only logged (the compiled component is still returned).
    pub fn load_or_compile(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
        let path = self.dir.join(format!("{}.cwasm", Self::key(bytes)));
        if path.exists() {
            match load_artifact(engine, &path) {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "recompiling unusable cached artifact")
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = self.store(&path, &component) {
            tracing::warn!(path = %path.display(), error = %e, "could not write the precompiled artifact");
        }
        Ok(component)
    }

    fn store(&self, path: &Path, component: &Component) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let bytes = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

#[allow(unsafe_code)]
fn load_artifact(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the artifact was produced by `Component::serialize` of an engine with the
    // same compatibility hash (the directory name) and written by this host into its own
    // data directory; wasmtime checks the header and engine settings before use.
    unsafe { Component::deserialize_file(engine, path) }
}
