//! The scheduler: one loop per host that wakes at the earliest due time (or
//! every `poll_secs`, or when a schedule or task changes) and runs a pass.
//!
//! A pass takes the active schedules whose due time passed and, for each,
//! works out the slots that fell due since its `next_slot`: those due within
//! `misfire_secs` are on time; older ones were missed while no scheduler ran
//! and the catch-up policy picks which start (`none`, `latest`, or `all`
//! within the window, at most `catchup_max`). The overlap policy then decides
//! against the previous run, and everything — the runs keyed by (schedule,
//! slot), their sessions and tasks, the next slot — is written in one
//! transaction guarded by the slot the pass read ([`Store::fire_schedule`]).
//! Buffered runs start when the run before them ends.
//!
//! [`Store::fire_schedule`]: crate::store::Store::fire_schedule

use super::trigger::{self, Compiled, Trigger};
use super::{Catchup, Overlap, ScheduleError, Schedules, parse};
use crate::sandbox::Caller;
use crate::store::{Firing, RunRow, ScheduleRow, SessionRow, StartedTask, TaskKind};
use crate::tasks::sessions::NewSession;
use crate::tasks::{Origin, TaskError, Tasks, new_task_row};
use std::sync::Arc;
use std::time::Duration;

/// Due schedules handled per query.
const BATCH: i64 = 200;
/// At most this many batches per pass (the rest wait for the next pass).
const MAX_BATCHES: usize = 50;

/// The fire id of a schedule's slot: the same on every host and every restart.
pub(super) fn fire_id(schedule_id: &str, slot: i64) -> String {
    format!("{schedule_id}:{slot}")
}

/// A stored schedule's trigger, compiled.
pub(super) fn compile_stored(
    trigger: &Trigger,
    row: &ScheduleRow,
) -> Result<Compiled, ScheduleError> {
    trigger.compile_stored(row.created_at).map_err(|e| {
        ScheduleError::Failed(format!("schedule `{}` has a damaged trigger: {e}", row.id))
    })
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Runs started (tasks queued).
    pub started: usize,
    /// Runs recorded without a task (buffered, skipped, missed, failed).
    pub other: usize,
}

/// A run ready to start: what to write and what to announce after.
struct Ready {
    started: StartedTask,
    session: SessionRow,
    title: String,
}

impl Schedules {
    /// Run the scheduler in the background (a service without tasks runs nothing).
    pub fn start(self: &Arc<Self>) {
        let Some(tasks) = &self.tasks else {
            return;
        };
        let finished = tasks.finished();
        let this = self.clone();
        tokio::spawn(async move { this.run_loop(finished).await });
    }

    fn runner(&self) -> Result<&Arc<Tasks>, ScheduleError> {
        self.tasks
            .as_ref()
            .ok_or_else(|| ScheduleError::Failed("this process does not run tasks".into()))
    }

    async fn run_loop(self: Arc<Self>, mut finished: tokio::sync::watch::Receiver<u64>) {
        let poll = Duration::from_secs(self.config.poll_secs.max(1));
        loop {
            let idle = match self.tick().await {
                Ok(pass) => pass == Pass::default(),
                Err(e) => {
                    tracing::warn!(error = %e, "the scheduler pass failed; retrying");
                    true
                }
            };
            let wait = match self.store.next_schedule_due().await {
                // Still due after a pass that did nothing: a schedule that
                // cannot fire now (logged); look again after a poll.
                Ok(Some(due)) if due <= self.now() && idle => poll,
                Ok(Some(due)) => {
                    Duration::from_millis(u64::try_from(due - self.now()).unwrap_or(0)).min(poll)
                }
                Ok(None) => poll,
                Err(e) => {
                    tracing::warn!(error = %e, "the scheduler cannot read the next due time");
                    poll
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.changed.notified() => {}
                _ = finished.changed() => {}
            }
        }
    }

    /// One pass: fire every due schedule and start buffered runs whose
    /// previous run ended. Errors of one schedule are logged and skipped.
    pub async fn tick(&self) -> Result<Pass, ScheduleError> {
        self.runner()?;
        let now = self.now();
        let mut pass = Pass::default();
        for _ in 0..MAX_BATCHES {
            let due = self.store.due_schedules(now, BATCH).await?;
            let mut progressed = false;
            for row in &due {
                match self.fire(row, now).await {
                    Ok(Some(p)) => {
                        progressed = true;
                        pass.started += p.started;
                        pass.other += p.other;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(schedule = %row.id, error = %e, "cannot fire a schedule")
                    }
                }
            }
            if (due.len() as i64) < BATCH || !progressed {
                break;
            }
        }
        pass.started += self.drain().await?;
        Ok(pass)
    }

    /// Decide `row`'s due slots; `None` when another pass got there first.
    async fn fire(&self, row: &ScheduleRow, now: i64) -> Result<Option<Pass>, ScheduleError> {
        let Some(expected) = row.next_slot else {
            return Ok(None);
        };
        let trigger: Trigger = serde_json::from_str(&row.trigger_spec)
            .map_err(|e| ScheduleError::Failed(format!("stored trigger: {e}")))?;
        let compiled = compile_stored(&trigger, row)?;
        let catchup: Catchup = parse(&row.catchup)?;
        let overlap: Overlap = parse(&row.overlap)?;
        let due = |slot: i64| slot + trigger::jitter_ms(&row.id, slot, row.jitter_secs);
        let keep = usize::try_from(row.catchup_max).unwrap_or(1).max(1) + 1;
        let (count, mut slots) = compiled.between(expected - 1, now, keep);
        // The latest slot may have passed while its jitter has not.
        let mut next_slot = None;
        if let Some(&last) = slots.last()
            && due(last) > now
        {
            next_slot = Some(last);
            slots.pop();
        }
        let due_count = count.saturating_sub(u64::from(next_slot.is_some()));
        let next_slot = next_slot.or_else(|| compiled.next_after(now));
        let misfire =
            i64::try_from(self.config.misfire_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let (on_time, missed): (Vec<i64>, Vec<i64>) =
            slots.iter().partition(|&&s| due(s) >= now - misfire);
        let window_start = now - row.catchup_window_secs * 1000;
        let catchable: Vec<i64> = missed
            .iter()
            .copied()
            .filter(|&s| s >= window_start)
            .collect();
        let chosen: Vec<i64> = match catchup {
            Catchup::None => on_time.clone(),
            Catchup::Latest => catchable
                .iter()
                .chain(&on_time)
                .copied()
                .last()
                .into_iter()
                .collect(),
            Catchup::All => {
                let max = usize::try_from(row.catchup_max).unwrap_or(1);
                let skip = catchable.len().saturating_sub(max);
                catchable[skip..].iter().chain(&on_time).copied().collect()
            }
        };
        let decided = crate::store::now_ms();
        let record =
            |slot: i64, state: &str, reason: Option<String>, task_id: Option<String>| RunRow {
                schedule_id: row.id.clone(),
                slot,
                state: state.into(),
                reason,
                task_id,
                due_at: due(slot),
                decided_at: decided,
            };
        let mut runs = Vec::new();
        let not_run = due_count.saturating_sub(chosen.len() as u64);
        if not_run > 0
            && let Some(&latest) = slots.iter().rev().find(|s| !chosen.contains(s))
        {
            let reason = format!(
                "{not_run} run(s) fell due while no scheduler ran and were not caught up (catchup `{}`, window {} s, at most {})",
                catchup.as_str(),
                row.catchup_window_secs,
                row.catchup_max
            );
            runs.push(record(latest, "missed", Some(reason), None));
        }
        let previous = self.previous_running(row).await?;
        let mut to_start = Vec::new();
        for slot in chosen {
            // Runs of one pass (a catch-up) never overlap each other: only
            // the run before them counts.
            let decision = match (overlap, previous.is_some()) {
                (_, false) | (Overlap::AllowAll | Overlap::CancelOther, true) => "start",
                (Overlap::Skip, true) => "skip",
                (Overlap::BufferAll, true) => "buffer",
                (Overlap::BufferOne, true) => {
                    if self.store.buffered_count(&row.id).await? > 0
                        || runs.iter().any(|r: &RunRow| r.state == "buffered")
                    {
                        "skip"
                    } else {
                        "buffer"
                    }
                }
            };
            match decision {
                "start" => to_start.push(slot),
                "buffer" => runs.push(record(
                    slot,
                    "buffered",
                    Some("waits for the previous run to end".into()),
                    None,
                )),
                _ => runs.push(record(
                    slot,
                    "skipped",
                    Some(format!(
                        "the previous run (task {}) was still running (overlap `{}`)",
                        previous.as_deref().unwrap_or("?"),
                        overlap.as_str()
                    )),
                    None,
                )),
            }
        }
        let mut ready = Vec::new();
        for slot in to_start {
            match self.prepare(row, slot).await {
                Ok(r) => {
                    runs.push(record(
                        slot,
                        "started",
                        None,
                        Some(r.started.task.id.clone()),
                    ));
                    ready.push(r);
                }
                Err((state, reason)) => runs.push(record(slot, state, Some(reason), None)),
            }
        }
        runs.sort_by_key(|r| r.slot);
        let firing = Firing {
            schedule_id: row.id.clone(),
            expected_slot: expected,
            next_slot,
            next_due_at: next_slot.map(due),
            runs,
            started: ready.iter().map(|r| r.started.clone()).collect(),
        };
        let Some(events) = self.store.fire_schedule(&firing).await? else {
            return Ok(None);
        };
        let started = ready.len();
        self.announce(ready, &events).await;
        if started > 0
            && overlap == Overlap::CancelOther
            && let Some(previous) = previous
            && let Err(e) = self
                .runner()?
                .cancel_for(
                    &previous,
                    &format!("canceled by a newer run of schedule `{}`", row.name),
                )
                .await
        {
            tracing::warn!(task = %previous, error = %e, "cannot cancel the previous run");
        }
        if next_slot.is_none() {
            tracing::info!(schedule = %row.id, "schedule done: its once trigger ran");
        }
        Ok(Some(Pass {
            started,
            other: firing.runs.len() - started,
        }))
    }

    /// The previous run's task while it is unfinished (or a run is buffered).
    async fn previous_running(&self, row: &ScheduleRow) -> Result<Option<String>, ScheduleError> {
        if let Some(id) = &row.last_task_id
            && let Some(task) = self.store.task(id).await?
            && !task.status.is_final()
        {
            return Ok(Some(id.clone()));
        }
        if self.store.buffered_count(&row.id).await? > 0 {
            return Ok(Some(row.last_task_id.clone().unwrap_or_default()));
        }
        Ok(None)
    }

    /// Build the session (when fresh) and task of a run, or say why it cannot
    /// start (`skipped` or `failed`, and the reason).
    async fn prepare(&self, row: &ScheduleRow, slot: i64) -> Result<Ready, (&'static str, String)> {
        let owner = Caller {
            user_id: row.owner_id.clone(),
            admin: false,
        };
        let failed = |e: TaskError| ("failed", e.to_string());
        let tasks = self.runner().map_err(|e| ("failed", e.to_string()))?;
        match tasks.check_queue(&row.owner_id).await {
            Ok(()) => {}
            Err(e @ TaskError::TooMany { .. }) => return Err(("skipped", e.to_string())),
            Err(e) => return Err(failed(e)),
        }
        let kind = TaskKind::parse(&row.task_kind).map_err(|e| ("failed", e.to_string()))?;
        let input: serde_json::Value =
            serde_json::from_str(&row.input).map_err(|e| ("failed", e.to_string()))?;
        let title = tasks.check_task(kind, &input).map_err(failed)?;
        let (session, fresh) = match &row.session_id {
            Some(id) => {
                let session = match self.store.session(id).await {
                    Ok(Some(s)) if s.owner_id == row.owner_id => s,
                    Ok(_) => {
                        return Err((
                            "failed",
                            format!(
                                "the schedule's session `{id}` no longer exists: give the schedule another session"
                            ),
                        ));
                    }
                    Err(e) => return Err(("failed", e.to_string())),
                };
                if session.busy_policy == "reject"
                    && self.store.session_open_tasks(id).await.unwrap_or(0) > 0
                {
                    return Err((
                        "skipped",
                        "the session is busy and its busy_policy is `reject`".into(),
                    ));
                }
                (session, false)
            }
            None => {
                let zone = serde_json::from_str::<Trigger>(&row.trigger_spec)
                    .map(|t| t.display_zone())
                    .unwrap_or(jiff::tz::TimeZone::UTC);
                let req = NewSession {
                    agent_id: row.agent_id.clone(),
                    title: Some(format!("{} · {}", row.name, trigger::show(slot, &zone))),
                    ..NewSession::default()
                };
                (
                    tasks.build_session(&owner, req).await.map_err(failed)?,
                    true,
                )
            }
        };
        let task = new_task_row(&session, kind, input, Origin::Schedule);
        let pending = serde_json::json!({
            "status": "pending",
            "session_id": session.id,
            "schedule_id": row.id,
            "fire_id": fire_id(&row.id, slot),
        });
        Ok(Ready {
            started: StartedTask {
                session: fresh.then(|| session.clone()),
                task,
                events: vec![("status", pending.to_string())],
            },
            session,
            title,
        })
    }

    /// Publish the committed tasks and wake the dispatcher.
    async fn announce(&self, ready: Vec<Ready>, events: &[crate::store::EventRow]) {
        let Ok(tasks) = self.runner() else {
            return;
        };
        for r in ready {
            let rows: Vec<_> = events
                .iter()
                .filter(|e| e.task_id == r.started.task.id)
                .cloned()
                .collect();
            if let Err(e) = tasks
                .queued(&r.session, r.started.task, &rows, &r.title)
                .await
            {
                tracing::warn!(error = %e, "cannot announce a scheduled task");
            }
        }
    }

    /// Start each schedule's oldest buffered run whose previous run ended; how many started.
    async fn drain(&self) -> Result<usize, ScheduleError> {
        let mut started = 0;
        for run in self.store.buffered_runs().await? {
            let Some(row) = self.store.schedule(&run.schedule_id).await? else {
                continue;
            };
            if row.state == "paused" {
                continue;
            }
            if let Some(id) = &row.last_task_id
                && let Some(task) = self.store.task(id).await?
                && !task.status.is_final()
            {
                continue;
            }
            match self.prepare(&row, run.slot).await {
                Ok(ready) => {
                    if let Some(events) = self
                        .store
                        .start_buffered(&row.id, run.slot, &ready.started)
                        .await?
                    {
                        started += 1;
                        self.announce(vec![ready], &events).await;
                    }
                }
                Err((state, reason)) => {
                    self.store
                        .drop_buffered(&row.id, run.slot, state, &reason)
                        .await?;
                }
            }
        }
        Ok(started)
    }
}
