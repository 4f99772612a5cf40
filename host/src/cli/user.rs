//! `switchyard user`: create and list accounts without a running server.

use anyhow::{Context, bail};
use std::io::{IsTerminal, Read};
use std::process::ExitCode;
use switchyard::auth::password;
use switchyard::config::Config;
use switchyard::store::{Role, Store, StoreError};

/// User commands.
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from stdin.
    Create {
        /// Login name (a-z, 0-9, `.`, `_`, `-`).
        name: String,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// List users.
    List,
}

pub async fn run(cmd: UserCommand, config: &Config) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(config.data_dir())
        .with_context(|| format!("creating {}", config.data_dir().display()))?;
    let store = Store::open(&config.database_url())
        .await
        .context("opening the database")?;
    match cmd {
        UserCommand::Create { name, admin } => {
            switchyard::api::check_username(&name).map_err(anyhow::Error::msg)?;
            if std::io::stdin().is_terminal() {
                eprint!("Password for `{name}` (then Enter; input is visible): ");
            }
            let mut pass = String::new();
            std::io::stdin()
                .read_to_string(&mut pass)
                .context("reading the password from stdin")?;
            let pass = pass.trim_end_matches(['\r', '\n']).to_string();
            password::check_new(&pass).map_err(anyhow::Error::msg)?;
            let hash = password::hash(&pass).map_err(anyhow::Error::msg)?;
            let role = if admin { Role::Admin } else { Role::User };
            match store.create_user(&name, &hash, role).await {
                Ok(user) => println!(
                    "Created {} `{}` ({})",
                    role.as_str(),
                    user.username,
                    user.id
                ),
                Err(StoreError::Conflict(_)) => bail!("a user named `{name}` already exists"),
                Err(e) => return Err(e.into()),
            }
        }
        UserCommand::List => {
            let mut after = None;
            loop {
                let page = store.users(after.as_deref(), 500).await?;
                for u in &page.items {
                    let disabled = if u.disabled { " (disabled)" } else { "" };
                    println!(
                        "{:<24} {:<6} {}{disabled}",
                        u.username,
                        u.role.as_str(),
                        u.id
                    );
                }
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
