//! `switchyard plugin new`: scaffold a plugin, in Rust, Python, JavaScript or C,
//! that builds anywhere with `switchyard plugin build` and has a `test.sh`.
//!
//! The SDK is not published to a registry, so the scaffold carries it: the WIT
//! contract (and, for Rust, the SDK sources) are embedded in the binary and
//! written into the new folder (`wit/`, `sdk/`).

use super::build::Lang;
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
    /// Writing failed.
    #[error("writing `{path}`: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
}

/// Create `parent/name/` holding a buildable plugin of `kind` in `lang`.
pub fn new(parent: &Path, name: &str, kind: Kind, lang: Lang) -> Result<PathBuf, ScaffoldError> {
    check_plugin_name(name).map_err(ScaffoldError::Name)?;
    let dir = parent.join(name);
    if dir.exists()
        && fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(ScaffoldError::Exists(dir));
    }
    let tool = match lang {
        Lang::Rust => "cargo, wasm32-wasip2",
        Lang::Python => "componentize-py",
        Lang::Js => "jco componentize",
        Lang::C => "wit-bindgen c + clang",
    };
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{kind}}", &kind.to_string())
            .replace("{{lang}}", &lang.to_string())
            .replace("{{tool}}", tool)
    };
    let mut files: Vec<(String, Vec<u8>)> = vec![(
        ".gitignore".into(),
        b"/target\n/dist\n/switchyard-data\n__pycache__/\n".to_vec(),
    )];
    let (source, path) = source(lang, kind);
    files.push(("plugin.toml".into(), fill(manifest(kind)).into()));
    files.push((path.into(), fill(source).into()));
    let test = match kind {
        Kind::Tool => include_str!("templates/test.sh.tpl").to_string(),
        _ => {
            include_str!("templates/test-inspect.sh.tpl").replace("{{expect}}", expect(lang, kind))
        }
    };
    files.push(("test.sh".into(), fill(&test).into()));
    if lang == Lang::Rust {
        files.push((
            "Cargo.toml".into(),
            fill(include_str!("templates/Cargo.toml.tpl")).into(),
        ));
        files.push((
            "README.md".into(),
            fill(include_str!("templates/README.md.tpl")).into(),
        ));
        for path in Sdk::iter() {
            if let Some(file) = Sdk::get(&path) {
                files.push((format!("sdk/{path}"), file.data.into_owned()));
            }
        }
        if kind == Kind::Skill {
            files.push((
                "src/SKILL.md".into(),
                fill(include_str!("templates/skill.SKILL.md.tpl")).into(),
            ));
        }
    } else {
        files.push((
            "README.md".into(),
            fill(include_str!("templates/README.guest.md.tpl")).into(),
        ));
    }
    for path in Wit::iter() {
        if let Some(file) = Wit::get(&path) {
            files.push((format!("wit/{path}"), file.data.into_owned()));
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
        #[cfg(unix)]
        if relative.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).map_err(io)?;
        }
    }
    Ok(dir)
}

/// The manifest template of a kind (the same in every language).
fn manifest(kind: Kind) -> &'static str {
    match kind {
        Kind::Tool => include_str!("templates/tool.plugin.toml.tpl"),
        Kind::Channel => include_str!("templates/channel.plugin.toml.tpl"),
        Kind::Skill => include_str!("templates/skill.plugin.toml.tpl"),
        Kind::Prompt => include_str!("templates/prompt.plugin.toml.tpl"),
        Kind::Resource => include_str!("templates/resource.plugin.toml.tpl"),
    }
}

/// The source template of a kind in a language, and where it goes.
fn source(lang: Lang, kind: Kind) -> (&'static str, &'static str) {
    match (lang, kind) {
        (Lang::Rust, Kind::Tool) => (include_str!("templates/tool.lib.rs.tpl"), "src/lib.rs"),
        (Lang::Rust, Kind::Channel) => (include_str!("templates/channel.lib.rs.tpl"), "src/lib.rs"),
        (Lang::Rust, Kind::Skill) => (include_str!("templates/skill.lib.rs.tpl"), "src/lib.rs"),
        (Lang::Rust, Kind::Prompt) => (include_str!("templates/prompt.lib.rs.tpl"), "src/lib.rs"),
        (Lang::Rust, Kind::Resource) => {
            (include_str!("templates/resource.lib.rs.tpl"), "src/lib.rs")
        }
        (Lang::Python, Kind::Tool) => (include_str!("templates/tool.app.py.tpl"), "app.py"),
        (Lang::Python, Kind::Channel) => (include_str!("templates/channel.app.py.tpl"), "app.py"),
        (Lang::Python, Kind::Skill) => (include_str!("templates/skill.app.py.tpl"), "app.py"),
        (Lang::Python, Kind::Prompt) => (include_str!("templates/prompt.app.py.tpl"), "app.py"),
        (Lang::Python, Kind::Resource) => (include_str!("templates/resource.app.py.tpl"), "app.py"),
        (Lang::Js, Kind::Tool) => (include_str!("templates/tool.app.js.tpl"), "app.js"),
        (Lang::Js, Kind::Channel) => (include_str!("templates/channel.app.js.tpl"), "app.js"),
        (Lang::Js, Kind::Skill) => (include_str!("templates/skill.app.js.tpl"), "app.js"),
        (Lang::Js, Kind::Prompt) => (include_str!("templates/prompt.app.js.tpl"), "app.js"),
        (Lang::Js, Kind::Resource) => (include_str!("templates/resource.app.js.tpl"), "app.js"),
        (Lang::C, Kind::Tool) => (include_str!("templates/tool.c.tpl"), "tool.c"),
        (Lang::C, Kind::Channel) => (include_str!("templates/channel.c.tpl"), "channel.c"),
        (Lang::C, Kind::Skill) => (include_str!("templates/skill.c.tpl"), "skill.c"),
        (Lang::C, Kind::Prompt) => (include_str!("templates/prompt.c.tpl"), "prompt.c"),
        (Lang::C, Kind::Resource) => (include_str!("templates/resource.c.tpl"), "resource.c"),
    }
}

/// What `plugin inspect` prints for the scaffold of a kind (its test.sh looks for it).
fn expect(lang: Lang, kind: Kind) -> &'static str {
    match kind {
        Kind::Tool => "tool {{name}}/greet",
        Kind::Channel if lang == Lang::C => "channel {{name}}: Plain-text webhook channel",
        Kind::Channel => "channel {{name}}: JSON webhook channel",
        Kind::Skill => "skill {{name}}: Explains what this skill does",
        Kind::Prompt => "prompt {{name}}/brief: Ask for a short brief on a topic",
        Kind::Resource => "resource {{name}}://readme: readme",
    }
}
