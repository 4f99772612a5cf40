//! Guests in other languages, each driven by its own tested tool:
//! Python with componentize-py, JavaScript with jco (componentize-js), C with
//! `wit-bindgen c` and clang linked by `wasm-component-ld`. A missing tool is
//! a [`BuildError::Missing`] that says how to install the tested version.

use super::{BuildError, BuildEvent, Job};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The componentize-py release the fixtures are built with.
pub const COMPONENTIZE_PY: &str = "0.25.1";
/// The jco release the fixtures are built with (1.35.0 cannot read `--wit` paths).
pub const JCO: &str = "1.34.0";
/// The wit-bindgen-cli release the C fixture is built with.
pub const WIT_BINDGEN: &str = "0.63.0";

/// `name` on `PATH`, or in `$SWITCHYARD_GUEST_TOOLS/{bin,venv/bin,node_modules/.bin}`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(tools) = std::env::var_os("SWITCHYARD_GUEST_TOOLS") {
        let tools = PathBuf::from(tools);
        dirs.extend(["bin", "venv/bin", "node_modules/.bin"].map(|d| tools.join(d)));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

fn tool(name: &str, install: &str) -> Result<PathBuf, BuildError> {
    on_path(name).ok_or_else(|| BuildError::missing(name, install))
}

/// Run `command`, naming it `label` in progress and errors; `hints` maps a
/// text in its output to advice.
fn run(
    label: &str,
    command: &mut Command,
    hints: &[(&str, &str)],
    progress: &mut dyn FnMut(BuildEvent),
) -> Result<(), BuildError> {
    progress(BuildEvent::Step(label.to_string()));
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BuildError::Io(format!("{label}: {e}")))?;
    if output.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let hint = hints
        .iter()
        .find(|(needle, _)| text.contains(needle))
        .map(|(_, advice)| advice.to_string())
        .unwrap_or_default();
    Err(BuildError::Failed {
        tool: label.to_string(),
        output: super::tail(&text),
        hint,
    })
}

/// Python: `componentize-py -d WIT -w WORLD componentize -p DIR MODULE -o OUT`.
pub fn python(job: &Job, progress: &mut dyn FnMut(BuildEvent)) -> Result<(), BuildError> {
    let exe = tool(
        "componentize-py",
        &format!("pip install componentize-py=={COMPONENTIZE_PY} (the tested release)"),
    )?;
    let source = job
        .sources
        .first()
        .cloned()
        .unwrap_or_else(|| "app.py".into());
    let module = source.trim_end_matches(".py").replace('/', ".");
    run(
        &format!("componentize-py {module}"),
        Command::new(exe)
            .arg("-d")
            .arg(&job.wit)
            .arg("-w")
            .arg(&job.world)
            .arg("componentize")
            .arg("-p")
            .arg(&job.dir)
            .arg(&module)
            .arg("-o")
            .arg(&job.out),
        &[
            (
                "ModuleNotFoundError",
                "the module is looked up in the plugin folder: name it in [build] sources, e.g. sources = [\"app.py\"]",
            ),
            (
                "must export",
                "the world's exports are a class per interface in the module, e.g. `class Tool(exports.Tool)` in app.py",
            ),
        ],
        progress,
    )
}

/// JavaScript: `jco componentize ENTRY --wit WIT --world-name WORLD -o OUT`.
pub fn js(job: &Job, progress: &mut dyn FnMut(BuildEvent)) -> Result<(), BuildError> {
    let exe = tool(
        "jco",
        &format!(
            "npm install -g @bytecodealliance/jco@{JCO} (the tested release: 1.35.0 fails on every --wit path)"
        ),
    )?;
    let entry = job
        .sources
        .first()
        .cloned()
        .unwrap_or_else(|| "app.js".into());
    run(
        &format!("jco componentize {entry}"),
        Command::new(exe)
            .arg("componentize")
            .arg(job.dir.join(&entry))
            .arg("--wit")
            .arg(&job.wit)
            .arg("--world-name")
            .arg(&job.world)
            .arg("-o")
            .arg(&job.out),
        &[
            (
                "failed to get path metadata",
                "this is the jco 1.35.0 bug: install @bytecodealliance/jco@1.34.0",
            ),
            (
                "os error 44",
                "this is the jco 1.35.0 bug: install @bytecodealliance/jco@1.34.0",
            ),
            (
                "is not exported",
                "export each interface as an object named after it, e.g. `export const tool = { listTools, callTool }`",
            ),
        ],
        progress,
    )
}

/// C: `wit-bindgen c` writes the bindings, clang compiles them with the
/// sources for wasm32-wasi, and `wasm-component-ld` links a component
/// (the WASI reactor adapter maps the libc's WASI 0.1 calls to 0.2).
pub fn c(
    job: &Job,
    scratch: &Path,
    progress: &mut dyn FnMut(BuildEvent),
) -> Result<(), BuildError> {
    const CLANG: &str = "apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32 (Debian/Ubuntu), or use the wasi-sdk";
    let bindgen = tool(
        "wit-bindgen",
        &format!("cargo install --locked wit-bindgen-cli@{WIT_BINDGEN}"),
    )?;
    let clang = tool("clang", CLANG)?;
    tool("wasm-ld", CLANG)?;
    let linker = super::rust::component_linker().ok_or_else(|| {
        BuildError::missing(
            "wasm-component-ld",
            "it ships with Rust (rustup target add wasm32-wasip2), or cargo install --locked wasm-component-ld",
        )
    })?;
    let bindings = scratch.join("bindings");
    run(
        "wit-bindgen c",
        Command::new(bindgen)
            .arg("c")
            .arg(&job.wit)
            .arg("--world")
            .arg(&job.world)
            .arg("--out-dir")
            .arg(&bindings),
        &[],
        progress,
    )?;
    let mut sources: Vec<PathBuf> = if job.sources.is_empty() {
        let mut found = c_files(&job.dir);
        found.extend(c_files(&job.dir.join("src")));
        found
    } else {
        job.sources.iter().map(|s| job.dir.join(s)).collect()
    };
    if sources.is_empty() {
        return Err(BuildError::Io(
            "no .c files in the plugin folder or src/: name them in [build] sources".into(),
        ));
    }
    sources.extend(c_files(&bindings));
    let hints: &[(&str, &str)] = &[
        (
            "stdio.h' file not found",
            "wasi-libc is missing: apt-get install wasi-libc",
        ),
        (
            "libclang_rt.builtins-wasm32.a",
            "the wasm32 compiler runtime is missing: apt-get install libclang-rt-14-dev-wasm32",
        ),
        (
            "undefined symbol: exports_",
            "implement every export the world declares, e.g. exports_switchyard_plugin_tool_list_tools and _call_tool",
        ),
    ];
    // Compile and link apart: an optimizing link would run a `wasm-opt` found on
    // PATH over the finished component, which it cannot read.
    let objects_dir = scratch.join("objects");
    std::fs::create_dir_all(&objects_dir).map_err(|e| BuildError::Io(e.to_string()))?;
    let sources: Vec<PathBuf> = sources
        .into_iter()
        .map(|p| p.canonicalize().unwrap_or(p))
        .collect();
    run(
        "clang --target=wasm32-wasi -c",
        Command::new(&clang)
            .args(["--target=wasm32-wasi", "-O2", "-c"])
            .arg("-I")
            .arg(&bindings)
            .args(&sources)
            .current_dir(&objects_dir),
        hints,
        progress,
    )?;
    let objects = [&objects_dir, &bindings].into_iter().flat_map(|d| {
        std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "o"))
    });
    run(
        "wasm-component-ld",
        Command::new(&clang)
            .args(["--target=wasm32-wasi", "-mexec-model=reactor"])
            .arg(format!("-fuse-ld={}", linker.display()))
            .arg("-Wl,--wasi-adapter=reactor")
            .args(objects)
            .arg("-o")
            .arg(&job.out),
        hints,
        progress,
    )
}

fn c_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "c"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
