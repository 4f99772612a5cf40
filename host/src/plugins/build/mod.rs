//! `switchyard plugin build`: compile a plugin in Rust, Python, JavaScript or C
//! to a WASI 0.2 component with that language's tool, check the component
//! against its manifest, and assemble the package directory (and optionally a
//! `.tar.gz`).

mod guest;
mod rust;

pub use guest::{COMPONENTIZE_PY, JCO, WIT_BINDGEN};

use super::manifest::{Kind, Manifest};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// The compilation target of Rust plugins.
pub const TARGET: &str = "wasm32-wasip2";

/// What to build and where to put it.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The plugin folder (holds `plugin.toml` and the sources).
    pub dir: PathBuf,
    /// The package directory to write (default `<dir>/dist/<name>`).
    pub out: Option<PathBuf>,
    /// Also write `<name>-<version>.tar.gz` next to the package directory.
    pub archive: bool,
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// The package directory.
    pub package: PathBuf,
    /// The archive, if requested.
    pub archive: Option<PathBuf>,
    /// Size of the component in bytes.
    pub component_bytes: u64,
    /// The manifest.
    pub manifest: Manifest,
    /// The language it was written in.
    pub lang: Lang,
}

/// Progress of a build.
#[derive(Debug, Clone)]
pub enum BuildEvent {
    /// Cargo finished one crate (`fresh` when it was up to date).
    Crate {
        /// Crate name.
        name: String,
        /// Whether it was already built.
        fresh: bool,
    },
    /// A tool started, e.g. `componentize-py app`.
    Step(String),
    /// The package is being assembled.
    Packaging,
}

/// A guest language `plugin build` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// cargo, `wasm32-wasip2`.
    Rust,
    /// componentize-py.
    Python,
    /// jco (componentize-js).
    Js,
    /// clang + `wit-bindgen c`.
    C,
}

impl Lang {
    /// Every language.
    pub const ALL: [Lang; 4] = [Lang::Rust, Lang::Python, Lang::Js, Lang::C];

    /// Its name in `[build] lang` and `--lang`.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
            Lang::C => "c",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.name() == text)
    }

    /// The language of the plugin in `dir`: `[build] lang`, else `Cargo.toml`
    /// → Rust, `app.py` → Python, `app.js` → JavaScript, `*.c` → C.
    fn detect(dir: &Path, manifest: &Manifest) -> Result<Self, BuildError> {
        if let Some(lang) = manifest.build.as_ref().and_then(|b| b.lang.as_deref()) {
            return Self::parse(lang).ok_or_else(|| {
                BuildError::Io(format!(
                    "[build] lang = \"{lang}\" is not one of rust, python, js, c"
                ))
            });
        }
        let has_c = |d: &Path| {
            fs::read_dir(d).is_ok_and(|mut e| {
                e.any(|f| f.is_ok_and(|f| f.path().extension().is_some_and(|x| x == "c")))
            })
        };
        Ok(if dir.join("Cargo.toml").is_file() {
            Lang::Rust
        } else if dir.join("app.py").is_file() {
            Lang::Python
        } else if dir.join("app.js").is_file() {
            Lang::Js
        } else if has_c(dir) || has_c(&dir.join("src")) {
            Lang::C
        } else {
            return Err(BuildError::UnknownLanguage(dir.to_path_buf()));
        })
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
            Lang::C => "C",
        })
    }
}

/// One non-Rust build: where the sources, the WIT and the output are.
pub(crate) struct Job {
    /// The plugin folder.
    dir: PathBuf,
    /// The WIT folder.
    wit: PathBuf,
    /// The world, e.g. `switchyard:plugin/tool-plugin`.
    world: String,
    /// `[build] sources`.
    sources: Vec<String>,
    /// The component to write.
    out: PathBuf,
}

/// Why a build failed; each says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// No plugin.toml.
    #[error(
        "`{0}` is not a plugin folder: it needs plugin.toml (create one with `switchyard plugin new NAME --lang rust|python|js|c`)"
    )]
    NotAPlugin(PathBuf),
    /// plugin.toml is invalid.
    #[error(transparent)]
    Manifest(#[from] super::manifest::ManifestError),
    /// A tool the language needs is not installed.
    #[error("`{tool}` was not found: {install}")]
    Missing {
        /// What is missing.
        tool: String,
        /// How to install it.
        install: String,
    },
    /// The language cannot be told from the files.
    #[error(
        "cannot tell the language of `{0}`: add Cargo.toml, app.py, app.js or .c files, or set [build] lang in plugin.toml"
    )]
    UnknownLanguage(PathBuf),
    /// No world of the contract exports exactly the manifest's kinds.
    #[error(
        "no world exports exactly kinds = [{0}]: set [build] world in plugin.toml (tool-plugin, channel-plugin, skill-plugin, prompt-plugin, resource-plugin, mcp-plugin or plugin)"
    )]
    NoWorld(String),
    /// A tool failed.
    #[error("{tool} failed:\n{output}{}", if hint.is_empty() { String::new() } else { format!("\nhint: {hint}") })]
    Failed {
        /// The step.
        tool: String,
        /// The end of its output.
        output: String,
        /// Advice for a known failure.
        hint: String,
    },
    /// cargo succeeded but produced no component.
    #[error(
        "cargo produced no .wasm for this crate: is `crate-type = [\"cdylib\"]` set under [lib] in Cargo.toml?"
    )]
    NoArtifact,
    /// plugin.toml names no component.
    #[error(
        "plugin.toml names no `component`: a package of skills/ folders needs no build (install the folder as it is)"
    )]
    NothingToBuild,
    /// Reading or writing files failed.
    #[error("{0}")]
    Io(String),
}

impl BuildError {
    fn missing(tool: &str, install: &str) -> Self {
        Self::Missing {
            tool: tool.to_string(),
            install: install.to_string(),
        }
    }
}

/// The last 60 lines of a tool's output.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.trim_end().lines().rev().take(60).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// The world that exports exactly `kinds`.
pub fn world_for(kinds: &[Kind]) -> Option<&'static str> {
    let mut sorted = kinds.to_vec();
    sorted.sort();
    Some(match sorted.as_slice() {
        [Kind::Tool] => "tool-plugin",
        [Kind::Channel] => "channel-plugin",
        [Kind::Skill] => "skill-plugin",
        [Kind::Prompt] => "prompt-plugin",
        [Kind::Resource] => "resource-plugin",
        [Kind::Tool, Kind::Prompt, Kind::Resource] => "mcp-plugin",
        [
            Kind::Tool,
            Kind::Channel,
            Kind::Skill,
            Kind::Prompt,
            Kind::Resource,
        ] => "plugin",
        _ => return None,
    })
}

/// Build the plugin in `options.dir`, reporting progress to `progress`.
pub fn build(
    options: &BuildOptions,
    progress: &mut dyn FnMut(BuildEvent),
) -> Result<BuildReport, BuildError> {
    let dir = &options.dir;
    let manifest_path = dir.join("plugin.toml");
    if !manifest_path.is_file() {
        return Err(BuildError::NotAPlugin(dir.clone()));
    }
    let io = |e: std::io::Error| BuildError::Io(e.to_string());
    let manifest_text = fs::read_to_string(&manifest_path).map_err(io)?;
    let manifest = Manifest::parse(&manifest_text)?;
    let Some(component_path) = manifest.component.clone() else {
        return Err(BuildError::NothingToBuild);
    };
    let lang = Lang::detect(dir, &manifest)?;
    let scratch = tempfile::tempdir().map_err(io)?;
    let wasm = match lang {
        Lang::Rust => rust::build(&dir.join("Cargo.toml"), progress)?,
        _ => {
            let job = job(dir, &manifest, scratch.path())?;
            match lang {
                Lang::Python => guest::python(&job, progress)?,
                Lang::Js => guest::js(&job, progress)?,
                _ => guest::c(&job, scratch.path(), progress)?,
            }
            job.out
        }
    };
    progress(BuildEvent::Packaging);
    let out = options
        .out
        .clone()
        .unwrap_or_else(|| dir.join("dist").join(&manifest.name));
    let io =
        |e: std::io::Error| BuildError::Io(format!("writing the package {}: {e}", out.display()));
    if out.exists() {
        fs::remove_dir_all(&out).map_err(io)?;
    }
    let component = out.join(&component_path);
    fs::create_dir_all(component.parent().unwrap_or(&out)).map_err(io)?;
    let component_bytes = fs::copy(&wasm, &component).map_err(io)?;
    // The package keeps the author's plugin.toml; only a [build] table (which
    // hosts before 0.2 do not know) is dropped, by writing the manifest anew.
    let text = if manifest.build.is_some() {
        let mut shipped = manifest.clone();
        shipped.build = None;
        toml::to_string_pretty(&shipped).map_err(|e| BuildError::Io(e.to_string()))?
    } else {
        manifest_text
    };
    fs::write(out.join("plugin.toml"), text).map_err(io)?;
    if dir.join("skills").is_dir() {
        super::registry::copy_tree(&dir.join("skills"), &out.join("skills")).map_err(io)?;
    }
    let archive = if options.archive {
        let path = out.with_file_name(format!("{}-{}.tar.gz", manifest.name, manifest.version));
        write_archive(&out, &manifest.name, &path).map_err(io)?;
        Some(path)
    } else {
        None
    };
    Ok(BuildReport {
        package: out,
        archive,
        component_bytes,
        manifest,
        lang,
    })
}

/// Where a non-Rust build reads its WIT and writes its component.
fn job(dir: &Path, manifest: &Manifest, scratch: &Path) -> Result<Job, BuildError> {
    let settings = manifest.build.clone().unwrap_or_default();
    let world = match settings.world {
        Some(w) if w.contains(':') => w,
        Some(w) => format!("switchyard:plugin/{w}"),
        None => match world_for(&manifest.kinds) {
            Some(w) => format!("switchyard:plugin/{w}"),
            None => {
                let kinds: Vec<String> =
                    manifest.kinds.iter().map(|k| format!("\"{k}\"")).collect();
                return Err(BuildError::NoWorld(kinds.join(", ")));
            }
        },
    };
    let wit = match settings.wit {
        Some(w) => dir.join(w),
        None if dir.join("wit").is_dir() => dir.join("wit"),
        None => {
            let wit = scratch.join("wit");
            super::scaffold::write_wit(&wit).map_err(|e| BuildError::Io(e.to_string()))?;
            wit
        }
    };
    if !wit.join("plugin.wit").is_file() {
        return Err(BuildError::Io(format!(
            "{} holds no plugin.wit: point [build] wit at a copy of switchyard's wit/ folder",
            wit.display()
        )));
    }
    Ok(Job {
        dir: dir.to_path_buf(),
        wit,
        world,
        sources: settings.sources,
        out: scratch.join("component.wasm"),
    })
}

fn write_archive(dir: &Path, name: &str, path: &Path) -> std::io::Result<()> {
    let file = fs::File::create(path)?;
    let encoder = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(encoder);
    tar.follow_symlinks(false);
    tar.append_dir_all(name, dir)?;
    tar.into_inner()?.finish()?;
    Ok(())
}
