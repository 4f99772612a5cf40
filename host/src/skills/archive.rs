//! Skill archives: an Agent Skills folder uploaded as `.tar.gz` or `.zip`,
//! unpacked in memory and checked before anything is stored.
//!
//! Layout: `SKILL.md` (or `skill.md`) at the top of the archive, or inside its
//! one top-level folder, which must then carry the skill's name. Only regular
//! files and folders; no absolute paths, `..`, links or devices; bounded in
//! entries, per-file and total size, so a hostile archive is refused whole.

use super::{FrontMatter, MAX_SKILL_MD, parse};
use sha2::{Digest, Sha256};
use std::io::Read;

/// Largest archive accepted (bytes, compressed).
pub const MAX_ARCHIVE: u64 = 8 << 20;
/// Most bytes of files a skill may hold, unpacked.
pub const MAX_FILES_BYTES: u64 = 4 << 20;
/// Most files a skill may hold, SKILL.md included.
pub const MAX_FILES: usize = 65;
/// Most archive entries read (folders count).
const MAX_ENTRIES: usize = 512;

/// A checked skill: its front matter and every file (SKILL.md first).
#[derive(Debug)]
pub struct Bundle {
    /// The parsed front matter.
    pub front: FrontMatter,
    /// `(path, bytes)` with paths relative to the skill folder.
    pub files: Vec<(String, Vec<u8>)>,
    /// SHA-256 over the paths and contents (hex).
    pub sha256: String,
}

impl Bundle {
    /// Bytes of all files.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|(_, c)| c.len() as u64).sum()
    }
}

/// Unpack and check a `.tar.gz` or `.zip` skill archive (told apart by content).
pub fn open(bytes: &[u8]) -> Result<Bundle, String> {
    if bytes.len() as u64 > MAX_ARCHIVE {
        return Err(format!("the archive is larger than {MAX_ARCHIVE} bytes"));
    }
    let entries = match bytes {
        [0x1f, 0x8b, ..] => untar(bytes)?,
        [b'P', b'K', 3, 4, ..] | [b'P', b'K', 5, 6, ..] => unzip(bytes)?,
        _ => return Err("the upload is neither a .tar.gz nor a .zip archive".into()),
    };
    bundle(entries)
}

/// Keep an entry's relative path, or refuse it; folders and metadata yield `None`.
fn clean(raw: &str) -> Result<Option<String>, String> {
    let name = raw.trim_start_matches("./").trim_end_matches('/');
    if name.is_empty() || name == "." {
        return Ok(None);
    }
    crate::plugins::manifest::check_relative_path(name).map_err(|e| format!("entry {e}"))?;
    // Finder's resource forks are not part of the skill.
    if name.split('/').any(|p| p == "__MACOSX" || p == ".DS_Store") {
        return Ok(None);
    }
    Ok(Some(name.to_string()))
}

/// Read at most what is left of the budget from `reader`.
fn read_bounded(reader: impl Read, name: &str, total: &mut u64) -> Result<Vec<u8>, String> {
    let budget = MAX_FILES_BYTES + MAX_SKILL_MD - *total;
    let mut out = Vec::new();
    reader
        .take(budget + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("reading `{name}`: {e}"))?;
    *total += out.len() as u64;
    if out.len() as u64 > budget {
        return Err(format!(
            "the skill unpacks to more than {} bytes",
            MAX_FILES_BYTES + MAX_SKILL_MD
        ));
    }
    Ok(out)
}

fn untar(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let entries = archive
        .entries()
        .map_err(|e| format!("not a .tar.gz archive: {e}"))?;
    let mut files = Vec::new();
    let mut total = 0;
    for (count, entry) in entries.enumerate() {
        let entry = entry.map_err(|e| format!("not a .tar.gz archive: {e}"))?;
        if count >= MAX_ENTRIES {
            return Err(format!("the archive has more than {MAX_ENTRIES} entries"));
        }
        let raw = entry
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            tar::EntryType::Directory => {
                clean(&raw)?;
                continue;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            other => {
                return Err(format!(
                    "entry `{raw}` is a {other:?}; skill archives hold only files and folders"
                ));
            }
        }
        let Some(name) = clean(&raw)? else { continue };
        let content = read_bounded(entry, &name, &mut total)?;
        files.push((name, content));
    }
    Ok(files)
}

fn unzip(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a .zip archive: {e}"))?;
    if archive.len() > MAX_ENTRIES {
        return Err(format!("the archive has more than {MAX_ENTRIES} entries"));
    }
    let mut files = Vec::new();
    let mut total = 0;
    for i in 0..archive.len() {
        let entry = archive
            .by_index(i)
            .map_err(|e| format!("not a .zip archive: {e}"))?;
        let raw = entry
            .name()
            .map_err(|e| format!("not a .zip archive: {e}"))?
            .into_owned();
        if entry.is_dir() {
            clean(&raw)?;
            continue;
        }
        if entry.is_symlink() || !entry.is_file() {
            return Err(format!(
                "entry `{raw}` is a link; skill archives hold only files and folders"
            ));
        }
        let Some(name) = clean(&raw)? else { continue };
        let content = read_bounded(entry, &name, &mut total)?;
        files.push((name, content));
    }
    Ok(files)
}

fn is_skill_md(path: &str) -> bool {
    path == "SKILL.md" || path == "skill.md"
}

/// Find the skill folder inside the entries, check SKILL.md and the limits.
fn bundle(entries: Vec<(String, Vec<u8>)>) -> Result<Bundle, String> {
    let at_root = entries.iter().any(|(p, _)| is_skill_md(p));
    let (folder, entries) = if at_root {
        (None, entries)
    } else {
        let top = entries
            .first()
            .and_then(|(p, _)| p.split_once('/'))
            .map(|(top, _)| top.to_string())
            .ok_or("the archive holds no SKILL.md")?;
        let prefix = format!("{top}/");
        if entries.iter().any(|(p, _)| !p.starts_with(&prefix)) {
            return Err(
                "SKILL.md must be at the top of the archive or inside its one top-level folder"
                    .into(),
            );
        }
        let inner = entries
            .into_iter()
            .map(|(p, c)| (p[prefix.len()..].to_string(), c))
            .collect();
        (Some(top), inner)
    };
    let mut files: Vec<(String, Vec<u8>)> = Vec::with_capacity(entries.len());
    let mut skill_md = None;
    for (path, content) in entries {
        if is_skill_md(&path) {
            if skill_md.is_some() {
                return Err("the archive holds both SKILL.md and skill.md".into());
            }
            skill_md = Some(content);
        } else if files.iter().any(|(p, _)| *p == path) {
            return Err(format!("`{path}` appears twice in the archive"));
        } else {
            files.push((path, content));
        }
    }
    let skill_md = skill_md.ok_or("the archive holds no SKILL.md")?;
    if skill_md.len() as u64 > MAX_SKILL_MD {
        return Err(format!("SKILL.md is larger than {MAX_SKILL_MD} bytes"));
    }
    if files.len() + 1 > MAX_FILES {
        return Err(format!(
            "a skill holds at most {MAX_FILES} files (this one has {})",
            files.len() + 1
        ));
    }
    let others: u64 = files.iter().map(|(_, c)| c.len() as u64).sum();
    if others > MAX_FILES_BYTES {
        return Err(format!(
            "a skill's files (besides SKILL.md) are at most {MAX_FILES_BYTES} bytes"
        ));
    }
    let text = std::str::from_utf8(&skill_md).map_err(|_| "SKILL.md is not UTF-8")?;
    let (front, _) = parse(text)?;
    if let Some(folder) = folder {
        super::check_folder(&front.name, &folder)?;
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files.insert(0, ("SKILL.md".to_string(), skill_md));
    let mut hash = Sha256::new();
    for (path, content) in &files {
        hash.update((path.len() as u64).to_le_bytes());
        hash.update(path.as_bytes());
        hash.update((content.len() as u64).to_le_bytes());
        hash.update(content);
    }
    Ok(Bundle {
        front,
        files,
        sha256: hex::encode(hash.finalize()),
    })
}

/// Pack the skill folder `dir` as a `.tar.gz` with the folder as its one
/// top-level entry; links are kept as links, so [`open`] refuses them.
pub fn pack_folder(dir: &std::path::Path) -> Result<Vec<u8>, String> {
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .ok_or_else(|| format!("{} is not a folder", dir.display()))?;
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    tar.append_dir_all(&name, dir)
        .map_err(|e| format!("packing {}: {e}", dir.display()))?;
    tar.into_inner()
        .and_then(|gz| gz.finish())
        .map_err(|e| format!("packing {}: {e}", dir.display()))
}
