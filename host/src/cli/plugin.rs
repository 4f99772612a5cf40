//! `switchyard plugin …`: scaffold, build, install and manage plugins.

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use switchyard::config::Config;
use switchyard::plugins::build::{BuildEvent, BuildOptions, Lang};
use switchyard::plugins::manifest::{Capabilities, Kind, KvAccess};
use switchyard::plugins::package::Package;
use switchyard::plugins::{Contents, PluginManager, build, scaffold};

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Scaffold a new plugin in ./NAME with a test.sh (the WIT, and for Rust the SDK, are vendored in).
    New {
        /// Plugin name: a-z, 0-9 and single hyphens, starting with a letter.
        name: String,
        /// What the plugin exports.
        #[arg(long, value_enum, default_value_t = KindArg::Tool)]
        kind: KindArg,
        /// The language: rust (the SDK), python (componentize-py), js (jco) or c (wit-bindgen c).
        #[arg(long, value_enum, default_value_t = LangArg::Rust)]
        lang: LangArg,
        /// Directory to create the crate in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Build a plugin to a component and assemble its package: Rust with cargo
    /// (wasm32-wasip2), Python with componentize-py, JavaScript with jco, C with
    /// wit-bindgen c + clang. The language comes from [build] lang in plugin.toml,
    /// else from the files (Cargo.toml, app.py, app.js, *.c).
    Build {
        /// The plugin folder (holds plugin.toml and the sources).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Package directory to write [default: DIR/dist/NAME].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also write NAME-VERSION.tar.gz next to the package directory.
        #[arg(long)]
        archive: bool,
    },
    /// Verify and install (or upgrade) a package: a directory or a .tar.gz.
    Install {
        /// The package.
        path: PathBuf,
        /// Grant every capability the plugin requests without asking.
        #[arg(long)]
        grant: bool,
    },
    /// List installed plugins.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a plugin's kinds, tools with schemas, skills, capabilities and limits.
    Inspect {
        /// The plugin.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a plugin with its key-value data and secrets.
    Remove {
        /// The plugin.
        name: String,
    },
    /// Allow calls to a plugin.
    Enable {
        /// The plugin.
        name: String,
    },
    /// Refuse calls to a plugin (it stays installed).
    Disable {
        /// The plugin.
        name: String,
    },
    /// Grant requested capabilities: all of them, or only the ones named.
    Grant(GrantArgs),
    /// Revoke every capability granted to a plugin.
    Revoke {
        /// The plugin.
        name: String,
    },
    /// Set, show or unset a plugin configuration value.
    Config {
        /// The plugin.
        name: String,
        /// The key (see `plugin inspect`).
        key: String,
        /// The new value; omit it to show the current one.
        value: Option<String>,
        /// Remove the value (the manifest default applies again).
        #[arg(long, conflicts_with = "value")]
        unset: bool,
    },
    /// Set a plugin secret from standard input (never echoed or logged).
    Secret {
        /// The plugin.
        name: String,
        /// The secret's name (declared under capabilities.secrets).
        key: String,
        /// Delete the secret instead.
        #[arg(long)]
        unset: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    /// Exports tools.
    Tool,
    /// Connects a messaging channel.
    Channel,
    /// Serves skills.
    Skill,
    /// Offers MCP prompts.
    Prompt,
    /// Offers MCP resources.
    Resource,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LangArg {
    /// Rust with the plugin SDK (cargo, wasm32-wasip2).
    Rust,
    /// Python (componentize-py).
    Python,
    /// JavaScript (jco componentize).
    Js,
    /// C (wit-bindgen c + clang).
    C,
}

#[derive(Debug, Args)]
pub struct GrantArgs {
    /// The plugin.
    name: String,
    /// Grant only this HTTP host pattern (repeatable).
    #[arg(long = "http")]
    http: Vec<String>,
    /// Grant only key-value storage (a space per user).
    #[arg(long)]
    kv: bool,
    /// Grant only the shared key-value space (for `kv = "shared"` in the manifest).
    #[arg(long)]
    kv_shared: bool,
    /// Grant only this secret (repeatable).
    #[arg(long = "secret")]
    secrets: Vec<String>,
}

pub async fn run(cmd: PluginCommand, config: &Config) -> anyhow::Result<ExitCode> {
    match cmd {
        PluginCommand::New {
            name,
            kind,
            lang,
            dir,
        } => {
            let kind = match kind {
                KindArg::Tool => Kind::Tool,
                KindArg::Channel => Kind::Channel,
                KindArg::Skill => Kind::Skill,
                KindArg::Prompt => Kind::Prompt,
                KindArg::Resource => Kind::Resource,
            };
            let lang = match lang {
                LangArg::Rust => Lang::Rust,
                LangArg::Python => Lang::Python,
                LangArg::Js => Lang::Js,
                LangArg::C => Lang::C,
            };
            let path = scaffold::new(&dir, &name, kind, lang)?;
            println!(
                "Created {lang} {kind} plugin `{name}` in {}",
                path.display()
            );
            println!("Next: switchyard plugin build {}", path.display());
            if kind == Kind::Tool {
                println!("Test:  {}/test.sh", path.display());
            }
        }
        PluginCommand::Build { dir, out, archive } => build_cmd(config, dir, out, archive).await?,
        PluginCommand::Install { path, grant } => install(config, path, grant).await?,
        PluginCommand::List { json } => list(config, json).await?,
        PluginCommand::Inspect { name, json } => inspect(config, &name, json).await?,
        PluginCommand::Remove { name } => {
            super::manager(config).await?.remove(&name).await?;
            println!("Removed `{name}`");
        }
        PluginCommand::Enable { name } => {
            super::manager(config)
                .await?
                .set_enabled(&name, true)
                .await?;
            println!("Enabled `{name}`");
        }
        PluginCommand::Disable { name } => {
            super::manager(config)
                .await?
                .set_enabled(&name, false)
                .await?;
            println!("Disabled `{name}`");
        }
        PluginCommand::Grant(args) => {
            let only = Capabilities {
                http: args.http,
                kv: if args.kv_shared {
                    KvAccess::Shared
                } else if args.kv {
                    KvAccess::User
                } else {
                    KvAccess::None
                },
                secrets: args.secrets,
            };
            let what = (!only.is_empty()).then_some(&only);
            let installed = super::manager(config)
                .await?
                .grant(&args.name, what)
                .await?;
            println!("Granted `{}`: {}", args.name, installed.state.granted);
        }
        PluginCommand::Revoke { name } => {
            super::manager(config).await?.revoke(&name).await?;
            println!("Revoked every capability of `{name}`");
        }
        PluginCommand::Config {
            name,
            key,
            value,
            unset,
        } => {
            let manager = super::manager(config).await?;
            if value.is_some() || unset {
                manager.set_config(&name, &key, value.as_deref()).await?;
            }
            let installed = manager.get(&name).await?;
            match installed.state.config.get(&key) {
                Some(v) => println!("{key} = {v}"),
                None => println!("{key} is not set (the manifest default applies)"),
            }
        }
        PluginCommand::Secret { name, key, unset } => {
            let manager = super::manager(config).await?;
            if unset {
                manager.set_secret(&name, &key, None).await?;
                println!("Deleted secret `{key}` of `{name}`");
            } else {
                if std::io::stdin().is_terminal() {
                    eprint!("Value for secret `{key}` (then Enter): ");
                }
                let mut value = String::new();
                std::io::stdin()
                    .read_to_string(&mut value)
                    .context("reading the secret from stdin")?;
                let value = value.trim_end_matches(['\r', '\n']);
                if value.is_empty() {
                    bail!(
                        "the secret on stdin is empty; pipe it in, e.g. `printf %s \"$TOKEN\" | switchyard plugin secret {name} {key}`"
                    );
                }
                manager.set_secret(&name, &key, Some(value)).await?;
                println!("Stored secret `{key}` of `{name}`");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn build_cmd(
    config: &Config,
    dir: PathBuf,
    out: Option<PathBuf>,
    archive: bool,
) -> anyhow::Result<()> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message(format!("Building {}", dir.display()));
    let options = BuildOptions { dir, out, archive };
    let mut crates = 0usize;
    let report = tokio::task::block_in_place(|| {
        build::build(&options, &mut |event| match event {
            BuildEvent::Crate { name, fresh } => {
                crates += 1;
                let verb = if fresh { "Fresh" } else { "Compiled" };
                bar.set_message(format!("{verb} {name} ({crates} crates)"));
            }
            BuildEvent::Step(step) => bar.set_message(format!("Running {step}")),
            BuildEvent::Packaging => bar.set_message("Assembling the package"),
        })
    });
    bar.finish_and_clear();
    let report = report?;
    let manager = super::manager(config).await?;
    let package = Package::open(&report.package, &config.data_dir().join("tmp"))?;
    let contents = manager
        .verify(&package)
        .await
        .context("the built component does not match plugin.toml")?;
    println!(
        "Built {} {} ({}, {} KiB) at {}",
        report.manifest.name,
        report.manifest.version,
        report.lang,
        report.component_bytes.div_ceil(1024),
        report.package.display()
    );
    print_offer(&contents);
    if let Some(archive) = &report.archive {
        println!("Archive: {}", archive.display());
    }
    println!(
        "Install it with: switchyard plugin install {}",
        report.package.display()
    );
    Ok(())
}

async fn install(config: &Config, path: PathBuf, grant: bool) -> anyhow::Result<()> {
    let manager = super::manager(config).await?;
    let mut grant_all = grant;
    let package = Package::open(&path, &config.data_dir().join("tmp"))?;
    if !grant {
        let requested = &package.manifest.capabilities;
        if !requested.is_empty() && std::io::stdin().is_terminal() {
            eprint!(
                "`{}` requests: {requested}. Grant? [y/N] ",
                package.manifest.name
            );
            std::io::stderr().flush().ok();
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer).ok();
            grant_all = matches!(answer.trim(), "y" | "Y" | "yes");
        }
    }
    let options = switchyard::plugins::InstallOptions {
        grant_all,
        owner_id: None,
    };
    let what = match (&package.manifest.component, &package.component) {
        (Some(file), Some(bytes)) => format!(
            "Compiling {file} ({:.1} MB; cached after the first time)",
            bytes.len() as f64 / 1e6
        ),
        _ => "Reading the skill folders".to_string(),
    };
    drop(package);
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message(what);
    let report = manager.install(&path, &options).await;
    bar.finish_and_clear();
    let report = report?;
    let m = &report.installed.manifest;
    match &report.replaced {
        Some(old) => println!("Upgraded {} {old} -> {}", m.name, m.version),
        None => println!("Installed {} {}", m.name, m.version),
    }
    print_offer(&report.contents);
    if !report.pending.is_empty() {
        println!(
            "Not granted: {} (grant with `switchyard plugin grant {}`)",
            report.pending, m.name
        );
    }
    Ok(())
}

fn print_offer(contents: &Contents) {
    for t in &contents.tools {
        println!("  tool   {}/{}: {}", t.plugin, t.name, t.description);
    }
    for s in &contents.skills {
        println!("  skill  {}: {}", s.name, s.description);
    }
    if let Some(c) = &contents.channel {
        println!("  channel {}: {}", c.name, c.description);
    }
    for line in mcp_offer(contents) {
        println!("  {line}");
    }
}

/// One line per prompt, resource and resource template.
fn mcp_offer(contents: &Contents) -> Vec<String> {
    let prompts = contents.prompts.iter().map(|p| {
        let description = p.description.as_deref().unwrap_or("");
        format!("prompt {}/{}: {description}", p.plugin, p.name)
    });
    let resources = (contents.resources.iter()).map(|r| format!("resource {}: {}", r.uri, r.name));
    let templates = (contents.templates.iter())
        .map(|t| format!("resource template {}: {}", t.uri_template, t.name));
    prompts.chain(resources).chain(templates).collect()
}

async fn list(config: &Config, json: bool) -> anyhow::Result<()> {
    let plugins = super::manager(config).await?.list().await?;
    if json {
        let rows: Vec<_> = plugins
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.manifest.name, "version": p.manifest.version.to_string(),
                    "kinds": p.manifest.kinds, "enabled": p.state.enabled,
                    "description": p.manifest.description,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if plugins.is_empty() {
        println!(
            "No plugins installed in {} (install one with `switchyard plugin install PATH`)",
            config.data_dir().display()
        );
    }
    for p in plugins {
        let kinds: Vec<String> = p.manifest.kinds.iter().map(ToString::to_string).collect();
        let status = if p.state.enabled { "" } else { " (disabled)" };
        println!(
            "{:<20} {:<10} {:<16} {}{status}",
            p.manifest.name,
            p.manifest.version,
            kinds.join(","),
            p.manifest.description
        );
    }
    Ok(())
}

async fn inspect(config: &Config, name: &str, json: bool) -> anyhow::Result<()> {
    let manager: PluginManager = super::manager(config).await?;
    let installed = manager.get(name).await?;
    let contents = match manager.load(name).await {
        Ok(loaded) => Some(manager.contents_of(&loaded).await?),
        Err(e) => {
            eprintln!("note: {e}");
            None
        }
    };
    let m = &installed.manifest;
    let secrets_set = manager.secret_names(name).await?;
    if json {
        let value = serde_json::json!({
            "manifest": m, "enabled": installed.state.enabled,
            "granted": installed.state.granted, "pending": installed.pending(),
            "config": installed.state.config, "secrets_set": secrets_set,
            "tools": contents.as_ref().map(|c| &c.tools), "skills": contents.as_ref().map(|c| &c.skills),
            "channel": contents.as_ref().and_then(|c| c.channel.as_ref()).map(|c| serde_json::json!({"name": c.name, "description": c.description})),
            "prompts": contents.as_ref().map(|c| &c.prompts), "resources": contents.as_ref().map(|c| &c.resources),
            "resource_templates": contents.as_ref().map(|c| &c.templates),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let kinds: Vec<String> = m.kinds.iter().map(ToString::to_string).collect();
    println!("{} {} — {}", m.name, m.version, m.description);
    println!("kinds:        {}", kinds.join(", "));
    println!("enabled:      {}", installed.state.enabled);
    println!("requested:    {}", m.capabilities);
    println!("granted:      {}", installed.state.granted);
    println!(
        "limits:       {} MiB memory, {} ms per call{}",
        m.limits.memory_mb,
        m.limits.timeout_ms,
        m.limits
            .fuel
            .map(|f| format!(", {f} fuel"))
            .unwrap_or_default()
    );
    if !m.capabilities.secrets.is_empty() {
        println!(
            "secrets set:  {}",
            if secrets_set.is_empty() {
                "none".into()
            } else {
                secrets_set.join(", ")
            }
        );
    }
    for (key, spec) in &m.config {
        let value = installed
            .state
            .config
            .get(key)
            .cloned()
            .or_else(|| spec.default.as_ref().map(|d| format!("{d} (default)")));
        println!(
            "config {key} ({:?}): {} — {}",
            spec.kind,
            value.unwrap_or_else(|| "unset".into()),
            spec.description
        );
    }
    if let Some(contents) = contents {
        for t in &contents.tools {
            println!("\ntool {}/{}: {}", t.plugin, t.name, t.description);
            println!("{}", serde_json::to_string_pretty(&t.input_schema)?);
        }
        for s in &contents.skills {
            println!("\nskill {}: {}", s.name, s.description);
        }
        if let Some(c) = &contents.channel {
            println!("\nchannel {}: {}", c.name, c.description);
        }
        for line in mcp_offer(&contents) {
            println!("\n{line}");
        }
    }
    Ok(())
}
