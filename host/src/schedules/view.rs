//! Schedules and runs as the API shows them.

use super::trigger::{self, Compiled, Trigger};
use super::{Catchup, Overlap, ScheduleError, ScheduledTask, parse, scheduler};
use crate::store::{RunRow, ScheduleRow, TaskKind, TaskStatus};
use serde::Serialize;

/// How many upcoming runs a schedule shows.
const SHOWN_RUNS: usize = 5;

/// A schedule.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Schedule {
    /// Stable id.
    pub id: String,
    /// Unique among the owner's schedules.
    pub name: String,
    /// Who owns it and the tasks it starts.
    pub owner_id: String,
    /// When runs start.
    pub trigger: Trigger,
    /// The trigger in words, e.g. `At 09:00, Monday through Friday`.
    pub description: String,
    /// What each run does.
    pub task: ScheduledTask,
    /// The session every run goes to (`null`: a fresh session per run).
    pub session_id: Option<String>,
    /// The agent profile fresh sessions start from.
    pub agent_id: Option<String>,
    /// What a run does while the previous one still runs.
    pub overlap: Overlap,
    /// Which missed runs start after downtime.
    pub catchup: Catchup,
    /// How far back missed runs are caught up (seconds).
    pub catchup_window_secs: i64,
    /// At most this many missed runs start under `all`.
    pub catchup_max: i64,
    /// Runs start up to this many seconds after their slot.
    pub jitter_secs: i64,
    /// `active`, `paused`, or `done` (a once trigger that ran).
    pub state: String,
    /// The next runs (RFC 3339, in the trigger's time zone; empty unless active).
    pub next_runs: Vec<String>,
    /// When the next run starts, jitter included (ms since the Unix epoch).
    pub next_due_at: Option<i64>,
    /// The task of the latest started run.
    pub last_task_id: Option<String>,
    /// Created (ms since the Unix epoch).
    pub created_at: i64,
    /// Last change (ms since the Unix epoch).
    pub updated_at: i64,
}

/// What the scheduler decided about one slot.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Run {
    /// The fire id: schedule and slot, the same on every host.
    pub fire_id: String,
    /// The slot (RFC 3339 in the trigger's time zone).
    pub slot: String,
    /// The slot (ms since the Unix epoch).
    pub slot_ms: i64,
    /// The slot plus its jitter (ms since the Unix epoch).
    pub due_at: i64,
    /// `started`, `buffered` (waits for the previous run), `skipped`, `missed` or `failed`.
    pub state: String,
    /// Why it did not start.
    pub reason: Option<String>,
    /// The task it started.
    pub task_id: Option<String>,
    /// That task's status now.
    pub task_status: Option<TaskStatus>,
    /// When the scheduler decided (ms since the Unix epoch).
    pub decided_at: i64,
}

fn describe(trigger: &Trigger, compiled: &Compiled) -> String {
    match (trigger, compiled) {
        (Trigger::Once { at }, _) => format!("Once, at {at}"),
        (Trigger::Interval { every_secs, .. }, _) => match every_secs {
            s if s % 86_400 == 0 => format!("Every {} day(s)", s / 86_400),
            s if s % 3600 == 0 => format!("Every {} hour(s)", s / 3600),
            s if s % 60 == 0 => format!("Every {} minute(s)", s / 60),
            s => format!("Every {s} seconds"),
        },
        (Trigger::Cron { timezone, .. }, Compiled::Cron(cron, _)) => {
            format!("{} ({timezone})", cron.describe())
        }
        (
            Trigger::Cron {
                expression,
                timezone,
            },
            _,
        ) => format!("{expression} ({timezone})"),
    }
}

/// The API view of a stored schedule.
pub(super) fn schedule(row: &ScheduleRow) -> Result<Schedule, ScheduleError> {
    let corrupt =
        |e: String| ScheduleError::Failed(format!("schedule `{}` is damaged: {e}", row.id));
    let trigger: Trigger =
        serde_json::from_str(&row.trigger_spec).map_err(|e| corrupt(e.to_string()))?;
    let compiled = scheduler::compile_stored(&trigger, row)?;
    let zone = trigger.display_zone();
    let next_runs = match (row.state.as_str(), row.next_slot) {
        ("active", Some(slot)) => std::iter::once(slot)
            .chain(compiled.upcoming(slot, SHOWN_RUNS - 1))
            .map(|t| trigger::show(t, &zone))
            .collect(),
        _ => Vec::new(),
    };
    let input = serde_json::from_str(&row.input).map_err(|e| corrupt(e.to_string()))?;
    let kind = TaskKind::parse(&row.task_kind)?;
    Ok(Schedule {
        id: row.id.clone(),
        name: row.name.clone(),
        owner_id: row.owner_id.clone(),
        description: describe(&trigger, &compiled),
        trigger,
        task: ScheduledTask { kind, input },
        session_id: row.session_id.clone(),
        agent_id: row.agent_id.clone(),
        overlap: parse(&row.overlap)?,
        catchup: parse(&row.catchup)?,
        catchup_window_secs: row.catchup_window_secs,
        catchup_max: row.catchup_max,
        jitter_secs: row.jitter_secs,
        state: row.state.clone(),
        next_runs,
        next_due_at: row.next_due_at,
        last_task_id: row.last_task_id.clone(),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// The API view of a run.
pub(super) fn run(r: &RunRow, status: Option<&str>, zone: &jiff::tz::TimeZone) -> Run {
    Run {
        fire_id: scheduler::fire_id(&r.schedule_id, r.slot),
        slot: trigger::show(r.slot, zone),
        slot_ms: r.slot,
        due_at: r.due_at,
        state: r.state.clone(),
        reason: r.reason.clone(),
        task_id: r.task_id.clone(),
        task_status: status.and_then(TaskStatus::parse),
        decided_at: r.decided_at,
    }
}
