//! `switchyard plugin build`: compile a Rust plugin crate to a `wasm32-wasip2`
//! component with cargo and assemble the package directory (and optionally a
//! `.tar.gz`).

use super::manifest::Manifest;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The compilation target of plugins.
pub const TARGET: &str = "wasm32-wasip2";

/// What to build and where to put it.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The plugin crate (holds `Cargo.toml` and `plugin.toml`).
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
    /// The package is being assembled.
    Packaging,
}

/// Why a build failed; each says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// No plugin.toml / Cargo.toml.
    #[error(
        "`{0}` is not a plugin crate: it needs Cargo.toml and plugin.toml (create one with `switchyard plugin new NAME`)"
    )]
    NotAPlugin(PathBuf),
    /// plugin.toml is invalid.
    #[error(transparent)]
    Manifest(#[from] super::manifest::ManifestError),
    /// cargo or rustc is not installed.
    #[error(
        "`{0}` was not found: install the Rust toolchain with rustup, then run `rustup target add wasm32-wasip2`"
    )]
    ToolchainMissing(&'static str),
    /// The wasm32-wasip2 target is missing.
    #[error(
        "the wasm32-wasip2 target is not installed for this toolchain: run `rustup target add wasm32-wasip2`"
    )]
    TargetMissing,
    /// cargo failed.
    #[error("cargo build failed:\n{0}")]
    Cargo(String),
    /// cargo succeeded but produced no component.
    #[error(
        "cargo produced no .wasm for this crate: is `crate-type = [\"cdylib\"]` set under [lib] in Cargo.toml?"
    )]
    NoArtifact,
    /// Writing the package failed.
    #[error("writing the package: {0}")]
    Io(String),
    /// plugin.toml names no component.
    #[error(
        "plugin.toml names no `component`: a package of skills/ folders needs no build (install the folder as it is)"
    )]
    NothingToBuild,
}

/// Build the plugin in `options.dir`, reporting progress to `progress`.
pub fn build(
    options: &BuildOptions,
    progress: &mut dyn FnMut(BuildEvent),
) -> Result<BuildReport, BuildError> {
    let dir = &options.dir;
    let manifest_path = dir.join("plugin.toml");
    let cargo_toml = dir.join("Cargo.toml");
    if !manifest_path.is_file() || !cargo_toml.is_file() {
        return Err(BuildError::NotAPlugin(dir.clone()));
    }
    let manifest_text =
        fs::read_to_string(&manifest_path).map_err(|e| BuildError::Io(e.to_string()))?;
    let manifest = Manifest::parse(&manifest_text)?;
    let Some(component_path) = manifest.component.clone() else {
        return Err(BuildError::NothingToBuild);
    };
    check_target(dir)?;
    let wasm = cargo_build(&cargo_toml, progress)?;
    progress(BuildEvent::Packaging);
    let out = options
        .out
        .clone()
        .unwrap_or_else(|| dir.join("dist").join(&manifest.name));
    let io = |e: std::io::Error| BuildError::Io(format!("{}: {e}", out.display()));
    if out.exists() {
        fs::remove_dir_all(&out).map_err(io)?;
    }
    let component = out.join(&component_path);
    fs::create_dir_all(component.parent().unwrap_or(&out)).map_err(io)?;
    let component_bytes = fs::copy(&wasm, &component).map_err(io)?;
    fs::write(out.join("plugin.toml"), &manifest_text).map_err(io)?;
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
    })
}

fn check_target(dir: &Path) -> Result<(), BuildError> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .current_dir(dir)
        .stderr(Stdio::null())
        .output()
        .map_err(|_| BuildError::ToolchainMissing("rustc"))?;
    let libdir = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() || libdir.is_empty() || !Path::new(&libdir).is_dir() {
        return Err(BuildError::TargetMissing);
    }
    Ok(())
}

fn cargo_build(
    cargo_toml: &Path,
    progress: &mut dyn FnMut(BuildEvent),
) -> Result<PathBuf, BuildError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "--message-format",
            "json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(cargo_toml)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|_| BuildError::ToolchainMissing("cargo"))?;
    let mut stderr = child.stderr.take().ok_or(BuildError::NoArtifact)?;
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let wanted = cargo_toml
        .canonicalize()
        .map_err(|e| BuildError::Io(e.to_string()))?;
    let mut artifact = None;
    let stdout = child.stdout.take().ok_or(BuildError::NoArtifact)?;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let name = msg["target"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        progress(BuildEvent::Crate {
            name,
            fresh: msg["fresh"].as_bool().unwrap_or(false),
        });
        let ours = msg["manifest_path"]
            .as_str()
            .and_then(|p| Path::new(p).canonicalize().ok())
            == Some(wanted.clone());
        if ours {
            let files = msg["filenames"].as_array().cloned().unwrap_or_default();
            artifact = files
                .iter()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"))
                .map(PathBuf::from);
        }
    }
    let status = child.wait().map_err(|e| BuildError::Io(e.to_string()))?;
    let stderr = errors.join().unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(60).collect();
        return Err(BuildError::Cargo(
            tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        ));
    }
    artifact.ok_or(BuildError::NoArtifact)
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
