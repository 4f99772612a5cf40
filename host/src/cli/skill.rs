//! `switchyard skill …`: validate, install, list, show, share and remove
//! skills without a running server.

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use switchyard::config::Config;
use switchyard::skills::installed::Visibility;
use switchyard::skills::{Skills, archive};
use switchyard::store::{Role, Store};
use switchyard::tools::Caller;

/// Skill commands.
#[derive(Debug, Subcommand)]
pub enum SkillCommand {
    /// Check a skill folder or archive against the Agent Skills rules, as an install would.
    Validate {
        /// A folder holding SKILL.md, or a .tar.gz / .zip of one.
        path: PathBuf,
    },
    /// Install a skill (a folder holding SKILL.md, or a .tar.gz / .zip of one) as `@OWNER/NAME`.
    Install {
        /// The skill folder or archive.
        path: PathBuf,
        /// The user who owns it [default: the first administrator].
        #[arg(long)]
        owner: Option<String>,
        /// Share it with every user, or make it private [default: private for a
        /// new skill; a replaced one keeps its own].
        #[arg(long, value_enum)]
        visibility: Option<VisibilityArg>,
        /// Replace the owner's skill of the same name.
        #[arg(long)]
        replace: bool,
    },
    /// List the installed skills and those of the skills directory.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a skill's instructions and the names of its files.
    Show {
        /// `@USER/NAME`, or `_local/NAME` for the skills directory.
        skill: String,
    },
    /// Make an installed skill shared with every user, or private.
    Visibility {
        /// `@USER/NAME`.
        skill: String,
        /// Who may see it.
        #[arg(value_enum)]
        visibility: VisibilityArg,
    },
    /// Remove an installed skill with its files.
    Remove {
        /// `@USER/NAME`.
        skill: String,
    },
}

/// Who may see an installed skill.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum VisibilityArg {
    /// Only its owner and administrators.
    Private,
    /// Every user.
    Shared,
}

impl From<VisibilityArg> for Visibility {
    fn from(v: VisibilityArg) -> Self {
        match v {
            VisibilityArg::Private => Self::Private,
            VisibilityArg::Shared => Self::Shared,
        }
    }
}

/// The archive bytes of a folder or archive file.
fn read_skill(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path.is_dir() {
        archive::pack_folder(path).map_err(anyhow::Error::msg)
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    }
}

/// `SOURCE/NAME` split in two.
fn split(skill: &str) -> anyhow::Result<(&str, &str)> {
    skill
        .split_once('/')
        .with_context(|| format!("name the skill as @USER/NAME (got `{skill}`)"))
}

/// The user `name`, or the first administrator; acting with administrator rights.
async fn acting(store: &Store, name: Option<&str>) -> anyhow::Result<Caller> {
    let mut after = None;
    loop {
        let page = store.users(after.as_deref(), 500).await?;
        if let Some(u) = page.items.iter().find(|u| match name {
            Some(n) => u.username == n,
            None => u.role == Role::Admin,
        }) {
            return Ok(Caller {
                user_id: u.id.clone(),
                username: u.username.clone(),
                admin: true,
            });
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    match name {
        Some(n) => bail!("no user named `{n}` (see `switchyard user list`)"),
        None => bail!(
            "no administrator yet: create one with `switchyard user create NAME --admin`, or pass --owner"
        ),
    }
}

/// The store and the skills service of the configured data directory.
async fn open(config: &Config) -> anyhow::Result<(Store, Arc<Skills>)> {
    std::fs::create_dir_all(config.data_dir())
        .with_context(|| format!("creating {}", config.data_dir().display()))?;
    let store = Store::open(&config.database_url())
        .await
        .context("opening the database")?;
    let skills = Skills::open(store.clone(), None, config.skills_dir.clone()).await?;
    Ok((store, skills))
}

pub async fn run(cmd: SkillCommand, config: &Config) -> anyhow::Result<ExitCode> {
    match cmd {
        SkillCommand::Validate { path } => {
            let bundle = archive::open(&read_skill(&path)?).map_err(anyhow::Error::msg)?;
            println!(
                "`{}` is a valid skill ({} file(s), {} bytes)",
                bundle.front.name,
                bundle.files.len(),
                bundle.size()
            );
        }
        SkillCommand::Install {
            path,
            owner,
            visibility,
            replace,
        } => {
            let (store, skills) = open(config).await?;
            let who = acting(&store, owner.as_deref()).await?;
            let bytes = read_skill(&path)?;
            let (skill, replaced) = skills
                .install(&who, &bytes, visibility.map(Visibility::from), replace)
                .await?;
            println!(
                "{} {}/{} ({})",
                if replaced { "Replaced" } else { "Installed" },
                skill.plugin,
                skill.name,
                skill.visibility.as_deref().unwrap_or("private")
            );
        }
        SkillCommand::List { json } => {
            let (_, skills) = open(config).await?;
            let admin = Caller {
                user_id: String::new(),
                username: String::new(),
                admin: true,
            };
            let items = skills.visible(&admin);
            if json {
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else if items.is_empty() {
                println!("No skills yet: install one with `switchyard skill install PATH`");
            } else {
                for s in items {
                    let visibility = s.visibility.as_deref().unwrap_or("folder");
                    println!(
                        "{}/{}\t{visibility}\t{}",
                        s.plugin,
                        s.name,
                        s.description.trim()
                    );
                }
            }
        }
        SkillCommand::Show { skill } => {
            let (source, name) = split(&skill)?;
            let (store, skills) = open(config).await?;
            let who = acting(&store, None).await?;
            let found = skills.find(&who, source, name).await?;
            let content = skills.load(&found).await?;
            println!(
                "# {}/{}: {}\n",
                found.plugin,
                found.name,
                found.description.trim()
            );
            println!("{}", content.instructions.trim_end());
            if !content.files.is_empty() {
                println!("\nFiles:");
                for f in content.files {
                    println!("  {} ({} bytes)", f.path, f.content.len());
                }
            }
        }
        SkillCommand::Visibility { skill, visibility } => {
            let (source, name) = split(&skill)?;
            let (store, skills) = open(config).await?;
            let who = acting(&store, None).await?;
            let v = Visibility::from(visibility);
            skills.set_visibility(&who, source, name, v).await?;
            println!("{skill} is now {}", v.as_str());
        }
        SkillCommand::Remove { skill } => {
            let (source, name) = split(&skill)?;
            let (store, skills) = open(config).await?;
            let who = acting(&store, None).await?;
            skills.remove(&who, source, name).await?;
            println!("Removed {skill}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
