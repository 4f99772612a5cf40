//! Schedules: work that starts on its own.
//!
//! A schedule owns a [`Trigger`] (once, interval, or cron in an IANA time
//! zone), the task it starts (agent or exec, in a given session or a fresh
//! one per run) and its policies: **overlap** (what a run does while the
//! previous one still runs: `skip`, `buffer_one`, `buffer_all`,
//! `cancel_other`, `allow_all`), **catch-up** (which runs missed while no
//! scheduler ran start afterwards: `none`, `latest`, `all`, within a window
//! and a count) and **jitter**. The [`scheduler`] pass decides each due slot
//! once, in the store, keyed by (schedule, slot); this module owns the CRUD,
//! the next-runs preview and the history.

pub mod config;
mod scheduler;
pub mod trigger;
mod view;

pub use config::SchedulesConfig;
pub use scheduler::Pass;
pub use trigger::{Trigger, TriggerError};
pub use view::{Run, Schedule};

use crate::sandbox::Caller;
use crate::store::{ScheduleRow, Store, StoreError, TaskKind, new_id};
use crate::tasks::{TaskError, Tasks, check_task_input};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::Notify;

/// Milliseconds since the Unix epoch: the scheduler's clock (tests set their own).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(crate::store::now_ms)
}

/// What a run does while the schedule's previous run still runs (Temporal's names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Do not start it (recorded as `skipped`).
    #[default]
    Skip,
    /// Start it when the previous run ends; further runs meanwhile are skipped.
    BufferOne,
    /// Start every one in turn as the previous ends.
    BufferAll,
    /// Cancel the previous run and start this one.
    CancelOther,
    /// Start it anyway.
    AllowAll,
}

impl Overlap {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::BufferOne => "buffer_one",
            Self::BufferAll => "buffer_all",
            Self::CancelOther => "cancel_other",
            Self::AllowAll => "allow_all",
        }
    }
}

/// Which runs missed while no scheduler ran start afterwards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Catchup {
    /// None: the next run is the next slot.
    None,
    /// Only the most recent missed run.
    #[default]
    Latest,
    /// Every missed run within the window, at most `catchup_max`, oldest first.
    All,
}

impl Catchup {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Latest => "latest",
            Self::All => "all",
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|e| StoreError::Corrupt(format!("schedule policy `{text}`: {e}")))
}

/// The task every run starts.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduledTask {
    /// `agent` (a model turn) or `exec` (a command in the session's sandbox).
    pub kind: TaskKind,
    /// As for `POST /tasks`: `{"content": "…"}` or `{"command": "…"}`.
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
}

/// What `create` takes.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSchedule {
    /// Unique among the owner's schedules (1-100 characters).
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// When runs start.
    pub trigger: Trigger,
    /// What each run does.
    pub task: ScheduledTask,
    /// Every run goes to this session (yours); absent: each run gets a fresh session.
    #[schema(max_length = 64)]
    #[serde(default)]
    pub session_id: Option<String>,
    /// The agent profile fresh sessions start from (not with `session_id`).
    #[schema(max_length = 64)]
    #[serde(default)]
    pub agent_id: Option<String>,
    /// Default `skip`.
    #[serde(default)]
    pub overlap: Option<Overlap>,
    /// Default `latest`.
    #[serde(default)]
    pub catchup: Option<Catchup>,
    /// How far back missed runs are caught up (seconds, default one day, at most 366 days).
    #[serde(default, deserialize_with = "crate::api::whole_number")]
    #[schema(value_type = Option<i64>, minimum = 60, maximum = 31_622_400)]
    pub catchup_window_secs: Option<i64>,
    /// At most this many missed runs start under `all` (default 10, at most 1000).
    #[serde(default, deserialize_with = "crate::api::whole_number")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    pub catchup_max: Option<i64>,
    /// Each run starts up to this many seconds after its slot (default 0, at most 3600).
    #[serde(default, deserialize_with = "crate::api::whole_number")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 3600)]
    pub jitter_secs: Option<i64>,
    /// Create it paused.
    #[serde(default)]
    pub paused: Option<bool>,
}

/// What `update` takes: the fields to change.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchedulePatch {
    /// A new name.
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// A new trigger (the next run is computed from now).
    pub trigger: Option<Trigger>,
    /// A new task.
    pub task: Option<ScheduledTask>,
    /// Policies, as for create.
    pub overlap: Option<Overlap>,
    /// Catch-up policy.
    pub catchup: Option<Catchup>,
    /// Catch-up window (seconds).
    #[serde(default, deserialize_with = "crate::api::whole_number")]
    #[schema(value_type = Option<i64>, minimum = 60, maximum = 31_622_400)]
    pub catchup_window_secs: Option<i64>,
    /// Catch-up count.
    #[serde(default, deserialize_with = "crate::api::whole_number")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    pub catchup_max: Option<i64>,
    /// Jitter (seconds).
    #[serde(default, deserialize_with = "crate::api::whole_number")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 3600)]
    pub jitter_secs: Option<i64>,
}

/// Why a schedule operation failed (each maps to one HTTP status).
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// No such schedule for this caller (404).
    #[error("{0}")]
    NotFound(String),
    /// Malformed input: a bad trigger, task or policy (422).
    #[error("{0}")]
    Invalid(String),
    /// The name is taken, or the state does not allow it (409).
    #[error("{0}")]
    Conflict(String),
    /// Too many schedules (429).
    #[error("{0}")]
    TooMany(String),
    /// A task-side refusal (its own status).
    #[error(transparent)]
    Task(#[from] TaskError),
    /// The store failed (500).
    #[error("{0}")]
    Failed(String),
}

impl From<StoreError> for ScheduleError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound("no such schedule".into()),
            StoreError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            other => Self::Failed(other.to_string()),
        }
    }
}

impl From<TriggerError> for ScheduleError {
    fn from(e: TriggerError) -> Self {
        Self::Invalid(e.0)
    }
}

/// The schedules service and its scheduler.
pub struct Schedules {
    store: Store,
    /// What starts the runs; `None` in a process that only manages schedules (the CLI).
    tasks: Option<Arc<Tasks>>,
    /// The largest task input (`[tasks] max_input_bytes`).
    max_input_bytes: usize,
    config: SchedulesConfig,
    clock: Clock,
    /// Poked when a schedule changes, so the scheduler looks again.
    changed: Notify,
}

fn check_range(
    what: &str,
    v: Option<i64>,
    lo: i64,
    hi: i64,
    default: i64,
) -> Result<i64, ScheduleError> {
    let v = v.unwrap_or(default);
    if !(lo..=hi).contains(&v) {
        return Err(ScheduleError::Invalid(format!(
            "{what} must be between {lo} and {hi} (got {v})"
        )));
    }
    Ok(v)
}

fn check_name(name: &str) -> Result<String, ScheduleError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ScheduleError::Invalid(
            "name must be 1-100 characters without control characters".into(),
        ));
    }
    Ok(name.to_string())
}

impl Schedules {
    /// The service on `store`, starting runs through `tasks` (none: manage
    /// schedules only); [`Schedules::start`] runs the scheduler.
    pub fn new(
        store: Store,
        tasks: Option<Arc<Tasks>>,
        config: &crate::config::Config,
        clock: Clock,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            tasks,
            max_input_bytes: config.tasks.max_input_bytes,
            config: config.schedules.clone(),
            clock,
            changed: Notify::new(),
        })
    }

    /// Settings.
    pub fn config(&self) -> &SchedulesConfig {
        &self.config
    }

    fn now(&self) -> i64 {
        (self.clock)()
    }

    async fn row(&self, caller: &Caller, id: &str) -> Result<ScheduleRow, ScheduleError> {
        let not_found = || ScheduleError::NotFound(format!("no schedule `{id}`"));
        let row = self.store.schedule(id).await?.ok_or_else(not_found)?;
        if row.owner_id != caller.user_id && !caller.admin {
            return Err(not_found());
        }
        Ok(row)
    }

    /// Check where runs go: a session of the caller's, or an agent profile it may use.
    async fn check_target(
        &self,
        caller: &Caller,
        session_id: Option<&str>,
        agent_id: Option<&str>,
    ) -> Result<(), ScheduleError> {
        if session_id.is_some() && agent_id.is_some() {
            return Err(ScheduleError::Invalid(
                "give session_id (every run in that session) or agent_id (a fresh session per run from that profile), not both".into(),
            ));
        }
        if let Some(id) = session_id {
            let session = self.store.session(id).await?;
            if session.is_none_or(|s| s.owner_id != caller.user_id) {
                return Err(ScheduleError::NotFound(format!(
                    "no session `{id}` of yours: runs go to a session of the schedule's owner"
                )));
            }
        }
        if let Some(id) = agent_id {
            let agent = self.store.agent(id).await?;
            if agent.is_none_or(|a| a.owner_id != caller.user_id && !a.shared && !caller.admin) {
                return Err(ScheduleError::NotFound(format!("no agent `{id}`")));
            }
        }
        Ok(())
    }

    /// Create a schedule owned by the caller.
    pub async fn create(
        &self,
        caller: &Caller,
        req: NewSchedule,
    ) -> Result<Schedule, ScheduleError> {
        let name = check_name(&req.name)?;
        let now = self.now();
        let compiled = req
            .trigger
            .compile(now, now, self.config.min_interval_secs)?;
        check_task_input(self.max_input_bytes, req.task.kind, &req.task.input)?;
        self.check_target(caller, req.session_id.as_deref(), req.agent_id.as_deref())
            .await?;
        let count = self.store.schedule_count(&caller.user_id).await?;
        if count >= i64::from(self.config.max_per_user) {
            return Err(ScheduleError::TooMany(format!(
                "you have {count} schedules; the limit is {} ([schedules] max_per_user): delete some first",
                self.config.max_per_user
            )));
        }
        let jitter = check_range("jitter_secs", req.jitter_secs, 0, 3600, 0)?;
        let id = new_id();
        let paused = req.paused.unwrap_or(false);
        let next_slot = compiled.next_after(now - 1);
        let mut row = ScheduleRow {
            id: id.clone(),
            owner_id: caller.user_id.clone(),
            name,
            trigger_spec: serde_json::to_string(&req.trigger)
                .map_err(|e| ScheduleError::Failed(e.to_string()))?,
            task_kind: req.task.kind.as_str().into(),
            input: req.task.input.to_string(),
            session_id: req.session_id,
            agent_id: req.agent_id,
            overlap: req.overlap.unwrap_or_default().as_str().into(),
            catchup: req.catchup.unwrap_or_default().as_str().into(),
            catchup_window_secs: check_range(
                "catchup_window_secs",
                req.catchup_window_secs,
                60,
                31_622_400,
                86_400,
            )?,
            catchup_max: check_range("catchup_max", req.catchup_max, 1, 1000, 10)?,
            jitter_secs: jitter,
            state: if paused { "paused" } else { "active" }.into(),
            next_slot,
            next_due_at: None,
            last_task_id: None,
            created_at: now,
            updated_at: now,
        };
        row.next_due_at = due_at(&row);
        self.store.insert_schedule(&row).await?;
        self.changed.notify_one();
        tracing::info!(schedule = %row.id, owner = %row.owner_id, name = %row.name, "schedule created");
        view::schedule(&row)
    }

    /// One schedule.
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<Schedule, ScheduleError> {
        view::schedule(&self.row(caller, id).await?)
    }

    /// A page of the caller's schedules (everyone's for an admin with `all`), by id.
    pub async fn list(
        &self,
        caller: &Caller,
        all: bool,
        after: Option<&str>,
        limit: usize,
    ) -> Result<crate::store::Page<Schedule>, ScheduleError> {
        let owner = (!(all && caller.admin)).then_some(caller.user_id.as_str());
        let page = self.store.schedules(owner, after, limit).await?;
        Ok(crate::store::Page {
            items: page
                .items
                .iter()
                .map(view::schedule)
                .collect::<Result<_, _>>()?,
            next: page.next,
        })
    }

    /// Change a schedule's fields; a new trigger or policy counts from now.
    pub async fn update(
        &self,
        caller: &Caller,
        id: &str,
        patch: SchedulePatch,
    ) -> Result<Schedule, ScheduleError> {
        for _ in 0..5 {
            let old = self.row(caller, id).await?;
            let mut row = old.clone();
            if let Some(name) = &patch.name {
                row.name = check_name(name)?;
            }
            let now = self.now();
            if let Some(trigger) = &patch.trigger {
                let compiled = trigger.compile(now, now, self.config.min_interval_secs)?;
                row.trigger_spec = serde_json::to_string(trigger)
                    .map_err(|e| ScheduleError::Failed(e.to_string()))?;
                row.next_slot = compiled.next_after(now - 1);
                if row.state == "done" {
                    row.state = "active".into();
                }
            }
            if let Some(task) = &patch.task {
                check_task_input(self.max_input_bytes, task.kind, &task.input)?;
                row.task_kind = task.kind.as_str().into();
                row.input = task.input.to_string();
            }
            if let Some(o) = patch.overlap {
                row.overlap = o.as_str().into();
            }
            if let Some(c) = patch.catchup {
                row.catchup = c.as_str().into();
            }
            if patch.catchup_window_secs.is_some() {
                row.catchup_window_secs = check_range(
                    "catchup_window_secs",
                    patch.catchup_window_secs,
                    60,
                    31_622_400,
                    0,
                )?;
            }
            if patch.catchup_max.is_some() {
                row.catchup_max = check_range("catchup_max", patch.catchup_max, 1, 1000, 0)?;
            }
            if patch.jitter_secs.is_some() {
                row.jitter_secs = check_range("jitter_secs", patch.jitter_secs, 0, 3600, 0)?;
            }
            row.next_due_at = due_at(&row);
            row.updated_at = now.max(old.updated_at + 1);
            if self.store.update_schedule(&row, old.updated_at).await? {
                self.changed.notify_one();
                return view::schedule(&row);
            }
        }
        Err(ScheduleError::Conflict(
            "the schedule kept changing; try again".into(),
        ))
    }

    /// Pause (`true`) or resume a schedule; a resumed one runs from its next
    /// slot after now (what fell due while paused is not caught up).
    pub async fn set_paused(
        &self,
        caller: &Caller,
        id: &str,
        paused: bool,
    ) -> Result<Schedule, ScheduleError> {
        for _ in 0..5 {
            let old = self.row(caller, id).await?;
            if old.state == "done" {
                return Err(ScheduleError::Conflict(format!(
                    "schedule `{}` has run its once trigger: give it a new trigger to use it again",
                    old.name
                )));
            }
            let mut row = old.clone();
            let now = self.now();
            if paused {
                row.state = "paused".into();
            } else if old.state == "paused" {
                let trigger: Trigger = serde_json::from_str(&row.trigger_spec)
                    .map_err(|e| ScheduleError::Failed(format!("stored trigger: {e}")))?;
                row.next_slot = scheduler::compile_stored(&trigger, &row)?.next_after(now - 1);
                row.state = if row.next_slot.is_some() {
                    "active"
                } else {
                    "done"
                }
                .into();
            }
            row.next_due_at = due_at(&row);
            row.updated_at = now.max(old.updated_at + 1);
            if self.store.update_schedule(&row, old.updated_at).await? {
                self.changed.notify_one();
                return view::schedule(&row);
            }
        }
        Err(ScheduleError::Conflict(
            "the schedule kept changing; try again".into(),
        ))
    }

    /// Delete a schedule and its history; tasks it started keep running.
    pub async fn delete(&self, caller: &Caller, id: &str) -> Result<(), ScheduleError> {
        let row = self.row(caller, id).await?;
        self.store.delete_schedule(&row.id).await?;
        tracing::info!(schedule = %row.id, name = %row.name, "schedule deleted");
        Ok(())
    }

    /// A schedule's runs, newest first (before slot `before`, ms).
    pub async fn runs(
        &self,
        caller: &Caller,
        id: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Run>, ScheduleError> {
        let row = self.row(caller, id).await?;
        let runs = self.store.schedule_runs(&row.id, before, limit).await?;
        let trigger: Trigger = serde_json::from_str(&row.trigger_spec)
            .map_err(|e| ScheduleError::Failed(format!("stored trigger: {e}")))?;
        let zone = trigger.display_zone();
        Ok(runs
            .iter()
            .map(|(r, status)| view::run(r, status.as_deref(), &zone))
            .collect())
    }

    /// The next `count` run times of a trigger not yet saved (RFC 3339 in its zone).
    pub fn preview(&self, trigger: &Trigger, count: usize) -> Result<Vec<String>, ScheduleError> {
        let now = self.now();
        let compiled = trigger.compile(now, now, self.config.min_interval_secs)?;
        let zone = trigger.display_zone();
        Ok(compiled
            .upcoming(now - 1, count)
            .into_iter()
            .map(|t| trigger::show(t, &zone))
            .collect())
    }
}

/// The due time of `row`'s next slot (slot plus jitter), while active.
fn due_at(row: &ScheduleRow) -> Option<i64> {
    if row.state != "active" {
        return None;
    }
    row.next_slot
        .map(|slot| slot + trigger::jitter_ms(&row.id, slot, row.jitter_secs))
}
