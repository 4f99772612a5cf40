//! `switchyard plugin new`: scaffold a plugin crate that builds anywhere.
//!
//! The SDK is not published to a registry, so the scaffold carries it: the WIT
//! contract and the SDK sources are embedded in the binary and written into the
//! new crate (`wit/`, `sdk/`), which is its own cargo workspace.

use super::manifest::{Kind, check_plugin_name};
use rust_embed::RustEmbed;
use std::fs;
use std::path::{Path, PathBuf};

/// The newest WIT contract (not the frozen copies of released versions).
#[derive(RustEmbed)]
#[folder = "../wit"]
#[include = "*.wit"]
#[exclude = "frozen/*"]
struct Wit;

/// Write the WIT contract this binary was built with into `dir` (`plugin.wit`
/// and `deps/`).
pub fn write_wit(dir: &Path) -> std::io::Result<()> {
    for path in Wit::iter() {
        if let Some(file) = Wit::get(&path) {
            let target = dir.join(path.as_ref());
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(target, file.data)?;
        }
    }
    Ok(())
}

#[derive(RustEmbed)]
#[folder = "../plugin-sdk"]
#[include = "Cargo.toml"]
#[include = "README.md"]
#[include = "src/*.rs"]
struct Sdk;

/// Why scaffolding failed.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name is not a valid plugin name.
    #[error("{0}")]
    Name(String),
    /// The target directory exists and is not empty.
    #[error("`{0}` already exists and is not empty: pick another name or remove it")]
    Exists(PathBuf),
    /// No template exists for this kind.
    #[error(
        "there is no template for {0} plugins yet: start from a tool plugin and see docs/plugins.md"
    )]
    NoTemplate(Kind),
    /// Writing failed.
    #[error("writing `{path}`: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
}

/// Create `parent/name/` holding a buildable plugin crate of `kind`.
pub fn new(parent: &Path, name: &str, kind: Kind) -> Result<PathBuf, ScaffoldError> {
    check_plugin_name(name).map_err(ScaffoldError::Name)?;
    let dir = parent.join(name);
    if dir.exists()
        && fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(ScaffoldError::Exists(dir));
    }
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{kind}}", &kind.to_string())
    };
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "Cargo.toml".into(),
            fill(include_str!("templates/Cargo.toml.tpl")).into(),
        ),
        (
            "README.md".into(),
            fill(include_str!("templates/README.md.tpl")).into(),
        ),
        (".gitignore".into(), b"/target\n/dist\n".to_vec()),
    ];
    let (manifest, lib) = match kind {
        Kind::Tool => (
            include_str!("templates/tool.plugin.toml.tpl"),
            include_str!("templates/tool.lib.rs.tpl"),
        ),
        Kind::Skill => (
            include_str!("templates/skill.plugin.toml.tpl"),
            include_str!("templates/skill.lib.rs.tpl"),
        ),
        Kind::Channel => (
            include_str!("templates/channel.plugin.toml.tpl"),
            include_str!("templates/channel.lib.rs.tpl"),
        ),
        Kind::Prompt | Kind::Resource => return Err(ScaffoldError::NoTemplate(kind)),
    };
    files.push(("plugin.toml".into(), fill(manifest).into()));
    files.push(("src/lib.rs".into(), fill(lib).into()));
    if kind == Kind::Skill {
        files.push((
            "src/SKILL.md".into(),
            fill(include_str!("templates/skill.SKILL.md.tpl")).into(),
        ));
    }
    for path in Wit::iter() {
        if let Some(file) = Wit::get(&path) {
            files.push((format!("wit/{path}"), file.data.into_owned()));
        }
    }
    for path in Sdk::iter() {
        if let Some(file) = Sdk::get(&path) {
            files.push((format!("sdk/{path}"), file.data.into_owned()));
        }
    }
    for (relative, bytes) in files {
        let path = dir.join(&relative);
        let io = |e: std::io::Error| ScaffoldError::Io {
            path: path.clone(),
            reason: e.to_string(),
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io)?;
        }
        fs::write(&path, bytes).map_err(io)?;
    }
    Ok(dir)
}
