//! Rust guests: `cargo build --release --target wasm32-wasip2`, following
//! cargo's JSON messages for progress and the component's path.

use super::{BuildError, BuildEvent, TARGET};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Build the crate at `cargo_toml`; the path of its `.wasm`.
pub fn build(
    cargo_toml: &Path,
    progress: &mut dyn FnMut(BuildEvent),
) -> Result<PathBuf, BuildError> {
    check_target(cargo_toml.parent().unwrap_or(Path::new(".")))?;
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
        .map_err(|_| BuildError::missing("cargo", RUSTUP))?;
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
        return Err(BuildError::Failed {
            tool: "cargo build".into(),
            output: super::tail(&stderr),
            hint: String::new(),
        });
    }
    artifact.ok_or(BuildError::NoArtifact)
}

const RUSTUP: &str =
    "install the Rust toolchain with rustup, then run `rustup target add wasm32-wasip2`";

fn check_target(dir: &Path) -> Result<(), BuildError> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .current_dir(dir)
        .stderr(Stdio::null())
        .output()
        .map_err(|_| BuildError::missing("rustc", RUSTUP))?;
    let libdir = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() || libdir.is_empty() || !Path::new(&libdir).is_dir() {
        return Err(BuildError::missing(
            "wasm32-wasip2",
            "run `rustup target add wasm32-wasip2`",
        ));
    }
    Ok(())
}

/// The `wasm-component-ld` linker that ships with the Rust toolchain (it turns
/// a wasm32-wasi module into a component), or one on `PATH`.
pub fn component_linker() -> Option<PathBuf> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let run = |args: &[&str]| {
        Command::new(&rustc)
            .args(args)
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
    };
    let shipped = run(&["--print", "sysroot"])
        .zip(run(&["-vV"]))
        .and_then(|(root, info)| {
            let host = info
                .lines()
                .find_map(|l| l.strip_prefix("host: "))?
                .trim()
                .to_string();
            let path =
                Path::new(root.trim()).join(format!("lib/rustlib/{host}/bin/wasm-component-ld"));
            path.is_file().then_some(path)
        });
    shipped.or_else(|| super::guest::on_path("wasm-component-ld"))
}
