//! `switchyard schedule …`: create, list, show, preview, pause, resume and
//! delete schedules and read their runs, on the configured database. A
//! running server picks up changes within `[schedules] poll_secs`.

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use std::process::ExitCode;
use std::sync::Arc;
use switchyard::config::Config;
use switchyard::schedules::{
    Catchup, NewSchedule, Overlap, ScheduledTask, Schedules, Trigger, system_clock,
};
use switchyard::store::{Role, Store, TaskKind};
use switchyard::tasks::Caller;

/// Schedule commands.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Create a schedule that starts an agent or exec task on its trigger.
    Create(CreateArgs),
    /// List every schedule with its next run.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a schedule (id or name) with its next runs.
    Show {
        /// The schedule's id, or its name (of `--owner`).
        schedule: String,
        /// Whose schedule a name refers to [default: the first administrator].
        #[arg(long)]
        owner: Option<String>,
    },
    /// Print a trigger's next run times without saving anything.
    Preview {
        #[command(flatten)]
        trigger: TriggerArgs,
        /// How many runs.
        #[arg(long, default_value_t = 10)]
        count: usize,
    },
    /// Pause a schedule: nothing starts until it is resumed.
    Pause {
        /// Id or name.
        schedule: String,
        /// Whose schedule a name refers to.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Resume a paused schedule from its next slot after now.
    Resume {
        /// Id or name.
        schedule: String,
        /// Whose schedule a name refers to.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Delete a schedule and its history (its tasks stay).
    Delete {
        /// Id or name.
        schedule: String,
        /// Whose schedule a name refers to.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Print a schedule's runs, newest first: started (with the task), buffered, skipped, missed, failed.
    Runs {
        /// Id or name.
        schedule: String,
        /// Whose schedule a name refers to.
        #[arg(long)]
        owner: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// When runs start: exactly one of `--cron`, `--every`, `--at`.
#[derive(Debug, Args)]
#[group(skip)]
#[command(group(clap::ArgGroup::new("when").required(true).multiple(false).args(["cron", "every", "at"])))]
pub struct TriggerArgs {
    /// A five-field cron expression (`0 9 * * MON-FRI`, `@hourly`); needs `--timezone`.
    #[arg(long, requires = "timezone")]
    cron: Option<String>,
    /// An interval: seconds, or with a unit (`90s`, `15m`, `2h`, `1d`).
    #[arg(long)]
    every: Option<String>,
    /// Once, at an RFC 3339 time with its offset (`2026-12-24T18:00:00+01:00`).
    #[arg(long)]
    at: Option<String>,
    /// The IANA time zone of `--cron` (`Europe/Berlin`, `UTC`).
    #[arg(long)]
    timezone: Option<String>,
    /// The first run of `--every` (RFC 3339) [default: one interval from now].
    #[arg(long, requires = "every")]
    start_at: Option<String>,
}

/// `schedule create` options.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Unique among the owner's schedules.
    name: String,
    #[command(flatten)]
    trigger: TriggerArgs,
    /// Each run is an agent task with this message.
    #[arg(long, conflicts_with = "exec", required_unless_present = "exec")]
    prompt: Option<String>,
    /// Each run is an exec task running this shell command in the session's sandbox.
    #[arg(long)]
    exec: Option<String>,
    /// Every run goes to this session [default: a fresh session per run].
    #[arg(long)]
    session: Option<String>,
    /// Fresh sessions start from this agent profile (id).
    #[arg(long, conflicts_with = "session")]
    agent: Option<String>,
    /// What a run does while the previous one still runs.
    #[arg(long, value_enum, default_value_t = OverlapArg::Skip)]
    overlap: OverlapArg,
    /// Which runs missed while no server ran start afterwards.
    #[arg(long, value_enum, default_value_t = CatchupArg::Latest)]
    catchup: CatchupArg,
    /// Start each run up to this many seconds after its slot.
    #[arg(long, default_value_t = 0)]
    jitter: i64,
    /// Create it paused.
    #[arg(long)]
    paused: bool,
    /// The user who owns it [default: the first administrator].
    #[arg(long)]
    owner: Option<String>,
}

/// Overlap policies.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OverlapArg {
    /// Do not start it.
    Skip,
    /// Start it after the previous run; further ones meanwhile are skipped.
    BufferOne,
    /// Start each in turn.
    BufferAll,
    /// Cancel the previous run.
    CancelOther,
    /// Start it anyway.
    AllowAll,
}

/// Catch-up policies.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CatchupArg {
    /// Skip what was missed.
    None,
    /// Run the most recent missed run.
    Latest,
    /// Run every missed run within the window.
    All,
}

fn seconds(text: &str) -> anyhow::Result<i64> {
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: i64 = digits
        .parse()
        .with_context(|| format!("`{text}` is not an interval such as 90s, 15m, 2h or 1d"))?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => bail!("unknown unit `{other}` in `{text}`: use s, m, h or d"),
    };
    Ok(n.saturating_mul(unit))
}

impl TriggerArgs {
    fn trigger(&self) -> anyhow::Result<Trigger> {
        Ok(match (&self.cron, &self.every, &self.at) {
            (Some(expression), _, _) => Trigger::Cron {
                expression: expression.clone(),
                timezone: self.timezone.clone().unwrap_or_default(),
            },
            (_, Some(every), _) => Trigger::Interval {
                every_secs: seconds(every)?,
                start_at: self.start_at.clone(),
            },
            (_, _, Some(at)) => Trigger::Once { at: at.clone() },
            _ => bail!("give --cron (with --timezone), --every or --at"),
        })
    }
}

/// The user `name` (or the first administrator), acting as themselves.
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
                admin: u.role == Role::Admin,
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

async fn open(config: &Config) -> anyhow::Result<(Store, Arc<Schedules>)> {
    std::fs::create_dir_all(config.data_dir())
        .with_context(|| format!("creating {}", config.data_dir().display()))?;
    let store = Store::open(&config.database_url())
        .await
        .context("opening the database")?;
    let schedules = Schedules::new(store.clone(), None, config, system_clock());
    Ok((store, schedules))
}

/// The id of `schedule` (an id, or a name of `owner`'s).
async fn resolve(store: &Store, who: &Caller, schedule: &str) -> anyhow::Result<String> {
    if store.schedule(schedule).await?.is_some() {
        return Ok(schedule.to_string());
    }
    match store.schedule_named(&who.user_id, schedule).await? {
        Some(row) => Ok(row.id),
        None => bail!("no schedule `{schedule}` (see `switchyard schedule list`)"),
    }
}

fn print(s: &switchyard::schedules::Schedule) {
    println!("{}\t{}\t{}\t{}", s.id, s.name, s.state, s.description);
    for run in &s.next_runs {
        println!("  next: {run}");
    }
}

async fn set_paused(
    config: &Config,
    schedule: &str,
    owner: Option<&str>,
    paused: bool,
) -> anyhow::Result<()> {
    let (store, schedules) = open(config).await?;
    let who = acting(&store, owner).await?;
    let id = resolve(&store, &who, schedule).await?;
    let s = schedules
        .set_paused(&Caller { admin: true, ..who }, &id, paused)
        .await?;
    println!(
        "Schedule `{}` is {}",
        s.name,
        if paused { "paused" } else { "active" }
    );
    print(&s);
    Ok(())
}

pub async fn run(cmd: ScheduleCommand, config: &Config) -> anyhow::Result<ExitCode> {
    match cmd {
        ScheduleCommand::Create(a) => {
            let (store, schedules) = open(config).await?;
            let who = acting(&store, a.owner.as_deref()).await?;
            let task = match (&a.prompt, &a.exec) {
                (Some(content), _) => ScheduledTask {
                    kind: TaskKind::Agent,
                    input: serde_json::json!({ "content": content }),
                },
                (_, Some(command)) => ScheduledTask {
                    kind: TaskKind::Exec,
                    input: serde_json::json!({ "command": command }),
                },
                _ => bail!("give --prompt (an agent task) or --exec (a command)"),
            };
            let overlap = match a.overlap {
                OverlapArg::Skip => Overlap::Skip,
                OverlapArg::BufferOne => Overlap::BufferOne,
                OverlapArg::BufferAll => Overlap::BufferAll,
                OverlapArg::CancelOther => Overlap::CancelOther,
                OverlapArg::AllowAll => Overlap::AllowAll,
            };
            let catchup = match a.catchup {
                CatchupArg::None => Catchup::None,
                CatchupArg::Latest => Catchup::Latest,
                CatchupArg::All => Catchup::All,
            };
            let created = schedules
                .create(
                    &who,
                    NewSchedule {
                        name: a.name,
                        trigger: a.trigger.trigger()?,
                        task,
                        session_id: a.session,
                        agent_id: a.agent,
                        overlap: Some(overlap),
                        catchup: Some(catchup),
                        catchup_window_secs: None,
                        catchup_max: None,
                        jitter_secs: Some(a.jitter),
                        paused: Some(a.paused),
                    },
                )
                .await?;
            println!("Created schedule `{}` ({})", created.name, created.id);
            print(&created);
        }
        ScheduleCommand::List { json } => {
            let (store, schedules) = open(config).await?;
            let admin = Caller {
                user_id: String::new(),
                admin: true,
            };
            let mut items = Vec::new();
            let mut after = None;
            loop {
                let page = schedules.list(&admin, true, after.as_deref(), 500).await?;
                items.extend(page.items);
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            drop(store);
            if json {
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else if items.is_empty() {
                println!(
                    "No schedules yet: create one with `switchyard schedule create NAME --cron '0 9 * * *' --timezone UTC --prompt '…'`"
                );
            } else {
                for s in &items {
                    let next = s.next_runs.first().map_or("-", String::as_str);
                    println!(
                        "{}\t{}\t{}\tnext {next}\t{}",
                        s.id, s.name, s.state, s.description
                    );
                }
            }
        }
        ScheduleCommand::Show { schedule, owner } => {
            let (store, schedules) = open(config).await?;
            let who = acting(&store, owner.as_deref()).await?;
            let id = resolve(&store, &who, &schedule).await?;
            let admin = Caller { admin: true, ..who };
            println!(
                "{}",
                serde_json::to_string_pretty(&schedules.get(&admin, &id).await?)?
            );
        }
        ScheduleCommand::Preview { trigger, count } => {
            let (_, schedules) = open(config).await?;
            for at in schedules.preview(&trigger.trigger()?, count.clamp(1, 100))? {
                println!("{at}");
            }
        }
        ScheduleCommand::Pause { schedule, owner } => {
            set_paused(config, &schedule, owner.as_deref(), true).await?;
        }
        ScheduleCommand::Resume { schedule, owner } => {
            set_paused(config, &schedule, owner.as_deref(), false).await?;
        }
        ScheduleCommand::Delete { schedule, owner } => {
            let (store, schedules) = open(config).await?;
            let who = acting(&store, owner.as_deref()).await?;
            let id = resolve(&store, &who, &schedule).await?;
            schedules
                .delete(&Caller { admin: true, ..who }, &id)
                .await?;
            println!("Deleted schedule {id}");
        }
        ScheduleCommand::Runs {
            schedule,
            owner,
            limit,
            json,
        } => {
            let (store, schedules) = open(config).await?;
            let who = acting(&store, owner.as_deref()).await?;
            let id = resolve(&store, &who, &schedule).await?;
            let runs = schedules
                .runs(
                    &Caller { admin: true, ..who },
                    &id,
                    None,
                    limit.clamp(1, 500),
                )
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else if runs.is_empty() {
                println!("No runs yet");
            } else {
                for r in &runs {
                    let task = r.task_id.as_deref().unwrap_or("-");
                    let status = r.task_status.map_or("", |s| s.as_str());
                    let reason = r.reason.as_deref().unwrap_or("");
                    println!("{}\t{}\t{task} {status}\t{reason}", r.slot, r.state);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
