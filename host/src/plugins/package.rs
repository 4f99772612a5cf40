//! Plugin packages: a directory, or a `.tar.gz` of one, holding `plugin.toml`, the
//! component and optional `skills/<name>/SKILL.md` folders (a package of skill
//! folders alone needs no component). In an archive, `plugin.toml` sits at the
//! top or inside its single top-level folder.
//!
//! Archives are unpacked defensively: only regular files and directories, no
//! absolute or `..` paths, no links, and caps on entry count and unpacked bytes.

use super::manifest::{MAX_MANIFEST_BYTES, Manifest, ManifestError};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// Largest component accepted (bytes).
pub const MAX_COMPONENT_BYTES: u64 = 64 << 20;
/// Most bytes an archive may unpack to.
pub const MAX_UNPACKED_BYTES: u64 = 256 << 20;
/// Most entries an archive may hold.
pub const MAX_ENTRIES: usize = 10_000;

/// Why a package could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The path does not exist or cannot be read (the message leaves the path
    /// out: it may be a server's scratch file; the path is logged).
    #[error("cannot read the package: {reason}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// No `plugin.toml` where one was expected.
    #[error(
        "the package holds no plugin.toml: a package is a directory (or .tar.gz) with plugin.toml at its top"
    )]
    NoManifest,
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The archive is malformed or hostile.
    #[error("unsafe or malformed archive: {0}")]
    Archive(String),
    /// The component file is missing, escapes the package, or is too large.
    #[error("component: {0}")]
    Component(String),
}

/// An opened package: its manifest, component bytes, and where its files are.
#[derive(Debug)]
pub struct Package {
    /// The validated manifest.
    pub manifest: Manifest,
    /// The component bytes (`None` for a package of skill folders only).
    pub component: Option<Vec<u8>>,
    /// The directory holding `plugin.toml` (inside `_unpacked` for archives).
    pub dir: PathBuf,
    _unpacked: Option<TempDir>,
}

impl Package {
    /// Open a package directory or `.tar.gz` file. Archives are unpacked into a
    /// temporary directory under `scratch`, removed when the package is dropped.
    pub fn open(path: &Path, scratch: &Path) -> Result<Self, PackageError> {
        let io = |e: std::io::Error| {
            tracing::warn!(path = %path.display(), error = %e, "cannot read a package");
            PackageError::Io {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        };
        let meta = fs::metadata(path).map_err(io)?;
        let (dir, unpacked) = if meta.is_dir() {
            (path.to_path_buf(), None)
        } else {
            fs::create_dir_all(scratch).map_err(io)?;
            let tmp = tempfile::Builder::new()
                .prefix(".unpack-")
                .tempdir_in(scratch)
                .map_err(io)?;
            let file = fs::File::open(path).map_err(io)?;
            unpack(file, tmp.path())?;
            (package_root(tmp.path())?, Some(tmp))
        };
        let manifest = Manifest::parse(&read_manifest(&dir.join("plugin.toml")).map_err(
            |e| match e.kind() {
                std::io::ErrorKind::NotFound => PackageError::NoManifest,
                _ => io(e),
            },
        )??)?;
        let component = match &manifest.component {
            Some(path) => Some(
                read_inside(&dir, path, MAX_COMPONENT_BYTES).map_err(PackageError::Component)?,
            ),
            None => None,
        };
        Ok(Self {
            manifest,
            component,
            dir,
            _unpacked: unpacked,
        })
    }
}

/// The text of `plugin.toml` at `path`, refused unread when it is larger than
/// [`MAX_MANIFEST_BYTES`] (never more than that is read into memory).
fn read_manifest(path: &Path) -> std::io::Result<Result<String, PackageError>> {
    let file = fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > MAX_MANIFEST_BYTES as u64 {
        return Ok(Err(super::manifest::too_large(len).into()));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_MANIFEST_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Ok(Err(super::manifest::too_large(bytes.len() as u64).into()));
    }
    Ok(String::from_utf8(bytes).map_err(|_| {
        PackageError::Manifest(ManifestError::Parse("the file is not UTF-8 text".into()))
    }))
}

/// Read `relative` inside `base`, refusing paths (or symlinks) that lead outside it.
pub fn read_inside(base: &Path, relative: &str, max: u64) -> Result<Vec<u8>, String> {
    super::manifest::check_relative_path(relative)?;
    let base = base
        .canonicalize()
        .map_err(|e| format!("the package directory cannot be read: {e}"))?;
    let full = base
        .join(relative)
        .canonicalize()
        .map_err(|e| format!("`{relative}` cannot be read: {e}"))?;
    if !full.starts_with(&base) {
        return Err(format!("`{relative}` resolves outside the package"));
    }
    let file = fs::File::open(&full).map_err(|e| format!("`{relative}`: {e}"))?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    if len > max {
        return Err(format!(
            "`{relative}` is {len} bytes, more than the {max} allowed"
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > max {
        return Err(format!(
            "`{relative}` is larger than the {max} bytes allowed"
        ));
    }
    Ok(bytes)
}

/// `plugin.toml` at the top of the archive, or inside its single top-level directory.
fn package_root(dir: &Path) -> Result<PathBuf, PackageError> {
    if dir.join("plugin.toml").is_file() {
        return Ok(dir.to_path_buf());
    }
    let entries: Vec<_> = fs::read_dir(dir)
        .map_err(|e| PackageError::Archive(e.to_string()))?
        .filter_map(Result::ok)
        .collect();
    match entries.as_slice() {
        [one] if one.path().join("plugin.toml").is_file() => Ok(one.path()),
        _ => Err(PackageError::NoManifest),
    }
}

fn unpack(file: fs::File, dest: &Path) -> Result<(), PackageError> {
    let bad = |m: String| PackageError::Archive(m);
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut total: u64 = 0;
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("not a .tar.gz file: {e}")))?;
    for (count, entry) in entries.enumerate() {
        let mut entry = entry.map_err(|e| bad(format!("not a .tar.gz file: {e}")))?;
        if count >= MAX_ENTRIES {
            return Err(bad(format!("more than {MAX_ENTRIES} entries")));
        }
        let path = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let name = path.to_string_lossy().replace('\\', "/");
        let name = name.trim_start_matches("./").trim_end_matches('/');
        if name.is_empty() {
            continue;
        }
        super::manifest::check_relative_path(name).map_err(|e| bad(format!("entry {e}")))?;
        let size = entry.header().size().unwrap_or(u64::MAX);
        if name.rsplit('/').next() == Some("plugin.toml") && size > MAX_MANIFEST_BYTES as u64 {
            return Err(super::manifest::too_large(size).into());
        }
        let target = dest.join(name);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                fs::create_dir_all(&target).map_err(|e| bad(e.to_string()))?
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(|e| bad(e.to_string()))?;
                }
                let mut out = fs::File::create(&target).map_err(|e| bad(e.to_string()))?;
                let budget = MAX_UNPACKED_BYTES - total;
                let copied = std::io::copy(&mut (&mut entry).take(budget + 1), &mut out)
                    .map_err(|e| bad(format!("reading `{name}`: {e}")))?;
                total += copied;
                if total > MAX_UNPACKED_BYTES {
                    return Err(bad(format!(
                        "unpacks to more than {MAX_UNPACKED_BYTES} bytes"
                    )));
                }
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            other => {
                return Err(bad(format!(
                    "entry `{name}` is a {other:?}; only files and directories are allowed"
                )));
            }
        }
    }
    Ok(())
}
