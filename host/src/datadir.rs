//! The data directory's hygiene: it holds the database, the key that seals
//! secrets and users' plugins, so only the server's own user may read it. It is
//! created 0700; at start every directory in it is set to 0700 and every file to
//! 0600 (whatever the umask), and leftovers of installs cut short by a crash
//! (`plugins/.staging-*`, `tmp/.unpack-*`, `tmp/.upload-*`) are removed.

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Mode of every directory in the data dir.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file in the data dir.
pub const FILE_MODE: u32 = 0o600;
/// How deep [`secure`] walks (the data dir's layout is shallow; plugin
/// packages add a few levels).
const MAX_DEPTH: usize = 12;
/// Leftover prefixes by subdirectory.
const LEFTOVERS: &[(&str, &str)] = &[
    ("plugins", ".staging-"),
    ("tmp", ".unpack-"),
    ("tmp", ".upload-"),
];

/// Why the data directory could not be prepared.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct DataDirError {
    /// The path that failed.
    pub path: PathBuf,
    /// The failure.
    pub source: std::io::Error,
}

fn failed(path: &Path) -> impl FnOnce(std::io::Error) -> DataDirError + '_ {
    move |source| DataDirError {
        path: path.to_path_buf(),
        source,
    }
}

/// Create `dir` (and its parents) and give it mode 0700.
pub fn create(dir: &Path) -> Result<(), DataDirError> {
    std::fs::create_dir_all(dir).map_err(failed(dir))?;
    std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE)).map_err(failed(dir))
}

/// Create `dir` 0700 and tighten everything in it (directories 0700, files
/// 0600; symbolic links are not followed; what cannot be changed is logged);
/// returns how many modes changed.
pub fn secure(dir: &Path) -> Result<usize, DataDirError> {
    create(dir)?;
    let mut changed = Vec::new();
    walk(dir, 0, &mut changed)?;
    if !changed.is_empty() {
        let shown: Vec<String> = changed
            .iter()
            .take(5)
            .map(|p| p.display().to_string())
            .collect();
        tracing::info!(
            count = changed.len(),
            examples = %shown.join(", "),
            "tightened modes in the data directory (directories 0700, files 0600)"
        );
    }
    Ok(changed.len())
}

fn walk(dir: &Path, depth: usize, changed: &mut Vec<PathBuf>) -> Result<(), DataDirError> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(failed(dir))? {
        let entry = entry.map_err(failed(dir))?;
        let path = entry.path();
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(failed(&path)(e)),
        };
        let want = if meta.is_dir() {
            DIR_MODE
        } else if meta.is_file() {
            FILE_MODE
        } else {
            continue;
        };
        if meta.permissions().mode() & 0o777 != want {
            match std::fs::set_permissions(&path, Permissions::from_mode(want)) {
                Ok(()) => changed.push(path.clone()),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot tighten the mode of a file in the data directory");
                }
            }
        }
        if meta.is_dir()
            && let Err(e) = walk(&path, depth + 1, changed)
        {
            tracing::warn!(error = %e, "cannot tighten modes below a directory in the data directory");
        }
    }
    Ok(())
}

/// Create (if missing) a file that only the owner may read, mode 0600.
pub fn create_private_file(path: &Path) -> Result<(), DataDirError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(_) => {
            std::fs::set_permissions(path, Permissions::from_mode(FILE_MODE)).map_err(failed(path))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(failed(path)(e)),
    }
}

/// Remove what installs cut short by a crash left behind; returns the removed
/// paths. Call it before the server accepts requests (an install in flight
/// would lose its files).
pub fn remove_leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for (sub, prefix) in LEFTOVERS {
        let parent = dir.join(sub);
        let Ok(entries) = std::fs::read_dir(&parent) else {
            continue;
        };
        for entry in entries.flatten() {
            if !entry.file_name().to_string_lossy().starts_with(prefix) {
                continue;
            }
            let path = entry.path();
            let result = match entry.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
                _ => std::fs::remove_file(&path),
            };
            match result {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "removed the leftover of an interrupted install");
                    removed.push(path);
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove a leftover of an interrupted install");
                }
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn secure_tightens_directories_and_files() {
        let tmp = tempfile::TempDir::new().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(data.join("plugins/echo")).unwrap();
        std::fs::write(data.join("switchyard.db"), b"x").unwrap();
        std::fs::write(data.join("plugins/echo/plugin.toml"), b"x").unwrap();
        for p in [&data, &data.join("plugins")] {
            std::fs::set_permissions(p, Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::set_permissions(data.join("switchyard.db"), Permissions::from_mode(0o644))
            .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", data.join("link")).unwrap();
        assert!(secure(&data).unwrap() >= 3);
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("plugins")), 0o700);
        assert_eq!(mode(&data.join("switchyard.db")), 0o600);
        assert_eq!(mode(&data.join("plugins/echo/plugin.toml")), 0o600);
        assert_ne!(
            mode(Path::new("/etc/passwd")),
            0o600,
            "links are not followed"
        );
        assert_eq!(secure(&data).unwrap(), 0, "a second run changes nothing");
        let fresh = data.join("fresh.db");
        create_private_file(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o600);
    }

    #[test]
    fn leftovers_of_interrupted_installs_are_removed() {
        let tmp = tempfile::TempDir::new().unwrap();
        let d = tmp.path();
        for dir in [
            "plugins/.staging-echo-1",
            "tmp/.unpack-2",
            "plugins/echo",
            "tmp/keep",
        ] {
            std::fs::create_dir_all(d.join(dir)).unwrap();
        }
        std::fs::write(d.join("tmp/.upload-3"), b"partial").unwrap();
        let mut removed = remove_leftovers(d);
        removed.sort();
        assert_eq!(
            removed,
            [
                d.join("plugins/.staging-echo-1"),
                d.join("tmp/.unpack-2"),
                d.join("tmp/.upload-3")
            ]
        );
        assert!(d.join("plugins/echo").is_dir() && d.join("tmp/keep").is_dir());
    }
}
