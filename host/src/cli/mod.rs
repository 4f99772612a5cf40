//! Command-line definitions (clap) and dispatch.

mod plugin;
mod tool;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use switchyard::config::{Config, DEFAULT_DATA_DIR};
use switchyard::plugins::PluginManager;
use switchyard::runtime::Runtime;

/// switchyard: a runtime for AI-agent work built on WebAssembly component plugins.
///
/// Plugins (tools, channels, skills) are WebAssembly components defined by the
/// `switchyard:plugin@0.1.0` WIT contract. Create one with `plugin new`, build it
/// with `plugin build`, install it with `plugin install`, and run its tools with
/// `tool call`.
#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Where switchyard keeps plugins, their data and caches.
    #[arg(long, global = true, env = "SWITCHYARD_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Log filter, e.g. `info` or `switchyard=debug` (overridden by RUST_LOG).
    #[arg(long, global = true, env = "SWITCHYARD_LOG", default_value = "warn")]
    log: String,
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, build, install and manage plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// List and call the tools of installed plugins, without a server.
    #[command(subcommand)]
    Tool(tool::ToolCommand),
}

/// Set up `tracing` on stderr from `--log` / `RUST_LOG`.
pub fn init_logging(cli: &Cli) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cli.log))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Run the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::new(cli.data_dir);
    match cli.command {
        Command::Plugin(cmd) => plugin::run(cmd, &config).await,
        Command::Tool(cmd) => tool::run(cmd, &config).await,
    }
}

/// The plugin manager over the configured data dir.
fn manager(config: &Config) -> anyhow::Result<PluginManager> {
    use anyhow::Context;
    let runtime =
        Runtime::new(config.runtime_options()).context("starting the WebAssembly runtime")?;
    Ok(PluginManager::new(config.data_dir(), Arc::new(runtime)))
}
