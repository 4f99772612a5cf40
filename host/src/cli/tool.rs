//! `switchyard tool …`: list and call plugin tools locally, without a server.

use anyhow::{Context, bail};
use clap::Subcommand;
use std::io::Read;
use std::process::ExitCode;
use switchyard::config::Config;
use switchyard::runtime::types::Content;
use switchyard::tools::{self, CallError};

#[derive(Debug, Subcommand)]
pub enum ToolCommand {
    /// List the tools of every enabled plugin.
    List {
        /// Print JSON (with input schemas).
        #[arg(long)]
        json: bool,
    },
    /// Call PLUGIN/TOOL with JSON arguments and print its output. Exits 1 when the tool fails.
    Call {
        /// The tool, as PLUGIN/TOOL.
        tool: String,
        /// Arguments as a JSON object; `-` reads them from stdin.
        #[arg(default_value = "{}")]
        arguments: String,
        /// Print the whole result as JSON.
        #[arg(long)]
        json: bool,
        /// Call as this user: their name in the call context, their key-value data.
        /// Without it the call runs as the local operator, with its own data.
        #[arg(long)]
        user: Option<String>,
    },
}

pub async fn run(cmd: ToolCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let manager = super::manager(config).await?;
    match cmd {
        ToolCommand::List { json } => {
            let mut all = Vec::new();
            for installed in manager
                .list()
                .await?
                .into_iter()
                .filter(|p| p.state.enabled)
            {
                let name = installed.manifest.name.clone();
                if !installed
                    .manifest
                    .has(switchyard::plugins::manifest::Kind::Tool)
                {
                    continue;
                }
                match manager.load(&name).await {
                    Ok(loaded) => match manager.tools_of(&loaded).await {
                        Ok(tools) => all.extend(tools),
                        Err(e) => eprintln!("warning: {name}: {e}"),
                    },
                    Err(e) => eprintln!("warning: {name}: {e}"),
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for t in all {
                    println!(
                        "{:<32} {}",
                        format!("{}/{}", t.plugin, t.name),
                        t.description
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ToolCommand::Call {
            tool,
            arguments,
            json,
            user,
        } => {
            let Some((plugin, name)) = tool.split_once('/') else {
                bail!(
                    "name the tool as PLUGIN/TOOL, e.g. `data/json_query` (see `switchyard tool list`)"
                );
            };
            let arguments = if arguments == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("reading arguments from stdin")?;
                text
            } else {
                arguments
            };
            let caller = match user {
                Some(name) => {
                    let (user, _) = (manager.store().user_for_login(&name).await)
                        .with_context(|| format!("no user `{name}`"))?;
                    Some(tools::Caller {
                        admin: user.role == switchyard::store::Role::Admin,
                        user_id: user.id,
                        username: user.username,
                    })
                }
                None => None,
            };
            match tools::call(&manager, plugin, name, &arguments, caller.as_ref()).await {
                Ok(output) => {
                    print_output(&output, json)?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(CallError::Tool(e)) => {
                    if json {
                        let body = serde_json::json!({"error": {"kind": e.kind, "message": e.message, "denied": e.denied}});
                        println!("{}", serde_json::to_string_pretty(&body)?);
                    }
                    eprintln!("error ({}): {}", e.kind, e.message);
                    Ok(ExitCode::FAILURE)
                }
                Err(CallError::Plugin(e)) => Err(e.into()),
            }
        }
    }
}

fn print_output(output: &switchyard::runtime::tool::ToolOutput, json: bool) -> anyhow::Result<()> {
    if json {
        let content: Vec<serde_json::Value> =
            output.content.iter().map(tools::content_json).collect();
        let structured = output
            .structured
            .as_deref()
            .map(serde_json::from_str::<serde_json::Value>)
            .transpose()?;
        let body = serde_json::json!({"content": content, "structured": structured});
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    for block in &output.content {
        match block {
            Content::Text(t) => println!("{t}"),
            Content::Json(j) => match serde_json::from_str::<serde_json::Value>(j) {
                Ok(v) => println!("{}", serde_json::to_string_pretty(&v)?),
                Err(_) => println!("{j}"),
            },
            Content::Image(b) | Content::Bytes(b) | Content::Audio(b) => {
                println!("[{}: {} bytes]", b.mime_type, b.data.len())
            }
            Content::Resource(r) => println!("[resource {}]", r.uri),
        }
    }
    Ok(())
}
