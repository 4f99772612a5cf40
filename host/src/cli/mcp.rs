//! `switchyard mcp-stdio`: serve MCP over stdin/stdout for clients that launch a
//! command (Claude Desktop, Claude Code, Cursor...), against the data dir.

use anyhow::Context;
use std::process::ExitCode;
use switchyard::auth::Identity;
use switchyard::config::Config;
use switchyard::server::Services;

/// Options of `mcp-stdio`.
#[derive(Debug, clap::Args)]
pub struct McpStdioArgs {
    /// The user the session acts as (what they may see and call) [default: the
    /// only user, when there is exactly one].
    #[arg(long, env = "SWITCHYARD_MCP_USER")]
    pub user: Option<String>,
}

pub async fn run(args: McpStdioArgs, config: Config) -> anyhow::Result<ExitCode> {
    let services = Services::open_beside_server(config)
        .await
        .context("opening the data directory and database")?;
    let name = match args.user {
        Some(name) => name,
        None => {
            let users = services.store.users(None, 2).await?.items;
            match users.as_slice() {
                [only] => only.username.clone(),
                [] => anyhow::bail!(
                    "there are no users yet: create one with `switchyard user create NAME --admin`"
                ),
                _ => anyhow::bail!(
                    "there are several users: say which one the session acts as with --user NAME (or SWITCHYARD_MCP_USER)"
                ),
            }
        }
    };
    let (user, _) = services
        .store
        .user_for_login(&name)
        .await
        .with_context(|| format!("no user `{name}`: list them with the REST API or create one"))?;
    anyhow::ensure!(!user.disabled, "user `{name}` is disabled");
    tracing::info!(user = %name, "serving MCP on stdio");
    let who = Identity {
        user,
        session: None,
        token_id: None,
        scopes: None,
    };
    switchyard::mcp::serve_stdio(services.clone(), who)
        .await
        .map_err(anyhow::Error::msg)?;
    services.store.close().await;
    Ok(ExitCode::SUCCESS)
}
