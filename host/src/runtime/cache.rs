//! The on-disk cache of precompiled components, keyed by the engine's
//! compatibility hash and the SHA-256 of the component bytes.

use sha2::{Digest, Sha256};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Precompiled artifacts under `dir/<engine hash>/<sha256>.cwasm`.
pub struct ArtifactCache {
    dir: PathBuf,
}

impl ArtifactCache {
    /// A cache for `engine` under `root`.
    pub fn new(root: &Path, engine: &Engine) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir: root.join(format!("{:016x}", hasher.finish())),
        }
    }

    /// Load the component from the cache, or compile it and store the artifact.
    /// A corrupt or stale artifact is recompiled; a cache that cannot be written is
    /// only logged (the compiled component is still returned).
    pub fn load_or_compile(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
        let path = self
            .dir
            .join(format!("{}.cwasm", hex::encode(Sha256::digest(bytes))));
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
