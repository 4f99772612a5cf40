//! Command-line definitions (clap) and dispatch.

mod image;
mod mcp;
mod plugin;
mod schedule;
mod serve;
mod skill;
mod tool;
mod user;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use switchyard::config::{Config, FileConfig, Overrides};
use switchyard::plugins::PluginManager;

/// switchyard: a runtime for AI-agent work built on WebAssembly component plugins.
///
/// `serve` runs the server (REST API under /api/v1, MCP at /mcp, metrics at
/// /metrics); `mcp-stdio` serves MCP to clients that launch a command.
/// Plugins (tools, channels, skills) are WebAssembly components defined by the
/// `switchyard:plugin@0.1.0` WIT contract. Create one with `plugin new`, build it
/// with `plugin build`, install it with `plugin install` (a running server on the
/// same data dir picks it up at once), and run its tools with `tool call`.
/// Agent work runs in sandbox containers on a Docker engine: build their image
/// once with `image build`.
#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Where switchyard keeps plugins, the SQLite database and caches [default: switchyard-data].
    #[arg(long, global = true, env = "SWITCHYARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL: `sqlite://PATH` or `postgres://USER:PASS@HOST/DB` [default: SQLite in the data dir].
    #[arg(
        long,
        global = true,
        env = "SWITCHYARD_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Config file [default: ./switchyard.toml when present].
    #[arg(long, global = true, env = "SWITCHYARD_CONFIG")]
    config: Option<PathBuf>,
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
    /// Run the server: REST API, plugins with hot reload, metrics.
    Serve(serve::ServeArgs),
    /// Serve MCP over stdin/stdout (for clients that launch a command), acting as one user.
    McpStdio(mcp::McpStdioArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage user accounts.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Create, build, install and manage plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// List and call the tools of installed plugins, without a server.
    #[command(subcommand)]
    Tool(tool::ToolCommand),
    /// Validate, install, list and remove Agent Skills.
    #[command(subcommand)]
    Skill(skill::SkillCommand),
    /// Create, list, preview, pause, resume and delete schedules, and read their runs.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
    /// Build the sandbox worker image.
    #[command(subcommand)]
    Image(image::ImageCommand),
}

/// Set up `tracing` on stderr from `--log` / `RUST_LOG`. The text format is
/// coloured only when stderr is a terminal and `NO_COLOR` is unset, so a log
/// redirected to a file holds no escape codes.
pub fn init_logging(cli: &Cli) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cli.log))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none());
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Run the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    let file = FileConfig::load(cli.config.as_deref()).context("reading the config file")?;
    let listen = match &cli.command {
        Command::Serve(args) => args.listen.clone(),
        _ => None,
    };
    let overrides = Overrides {
        data_dir: cli.data_dir,
        listen,
        database_url: cli.database_url,
    };
    let config = Config::resolve(overrides, file)?;
    match cli.command {
        Command::Serve(args) => serve::run(args, config).await,
        Command::McpStdio(args) => mcp::run(args, config).await,
        Command::Migrate => {
            std::fs::create_dir_all(config.data_dir())
                .with_context(|| format!("creating {}", config.data_dir().display()))?;
            let url = config.database_url();
            let store = switchyard::store::Store::connect(&url).await?;
            let applied = store.migrate().await?;
            println!(
                "Database {} is up to date ({applied} migration(s) applied now)",
                switchyard::store::redact_url(&url)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::User(cmd) => user::run(cmd, &config).await,
        Command::Plugin(cmd) => plugin::run(cmd, &config).await,
        Command::Tool(cmd) => tool::run(cmd, &config).await,
        Command::Skill(cmd) => skill::run(cmd, &config).await,
        Command::Schedule(cmd) => schedule::run(cmd, &config).await,
        Command::Image(cmd) => image::run(cmd, &config).await,
    }
}

/// The plugin manager over the configured data dir and database.
async fn manager(config: &Config) -> anyhow::Result<PluginManager> {
    use anyhow::Context;
    switchyard::server::open_manager(config)
        .await
        .context("opening the data directory and database")
}
