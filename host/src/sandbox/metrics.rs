//! Sandbox metrics for `/metrics`: commands by how they started and ended,
//! their start latency and duration, creates by source, and (at each scrape)
//! sandboxes by state, warm containers and standby shells ready.

use super::Sandboxes;
use super::exec::ExecOutcome;
use crate::store::SandboxState;
use std::time::Duration;

/// How a command was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// Written to a standby shell.
    Standby,
    /// Started with an engine exec.
    Exec,
}

impl Start {
    fn label(self) -> &'static str {
        match self {
            Self::Standby => "standby",
            Self::Exec => "exec",
        }
    }
}

/// The `outcome` label of a finished command.
fn outcome(o: &ExecOutcome) -> &'static str {
    if o.oom_killed {
        "oom_killed"
    } else if o.timed_out {
        "timed_out"
    } else if o.truncated {
        "truncated"
    } else {
        match o.exit_code {
            Some(0) => "ok",
            Some(_) => "nonzero",
            None => "lost",
        }
    }
}

/// Record a command that started (`start_latency` from request to running).
pub(super) fn command_started(start: Start, start_latency: Duration) {
    metrics::histogram!("switchyard_sandbox_command_start_seconds", "start" => start.label())
        .record(start_latency.as_secs_f64());
}

/// Record a finished command.
pub(super) fn command_finished(start: Start, o: &ExecOutcome) {
    metrics::counter!("switchyard_sandbox_commands_total",
        "start" => start.label(), "outcome" => outcome(o))
    .increment(1);
    metrics::histogram!("switchyard_sandbox_command_duration_seconds")
        .record(o.duration_ms as f64 / 1000.0);
}

/// Record a created sandbox (`from`: `pool` or `cold`).
pub(super) fn created(from: &'static str) {
    metrics::counter!("switchyard_sandbox_creates_total", "from" => from).increment(1);
}

impl Sandboxes {
    /// Set the gauges read at a scrape: sandboxes by state, warm containers,
    /// standby shells ready.
    pub async fn observe(&self) {
        let counts = match self.store.sandbox_state_counts().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "sandboxes: cannot count states");
                return;
            }
        };
        let busy = self.busy_count();
        let count = |s: SandboxState| -> i64 {
            counts
                .iter()
                .find(|(state, _)| *state == s)
                .map_or(0, |(_, n)| *n)
        };
        for state in [
            SandboxState::Starting,
            SandboxState::Idle,
            SandboxState::Busy,
            SandboxState::Stopped,
            SandboxState::Failed,
        ] {
            let n = match state {
                SandboxState::Idle => (count(state) - busy).max(0),
                SandboxState::Busy => count(state) + busy.min(count(SandboxState::Idle)),
                _ => count(state),
            };
            metrics::gauge!("switchyard_sandboxes", "state" => state.as_str()).set(n as f64);
        }
        metrics::gauge!("switchyard_sandbox_warm_pool_ready").set(self.pool_size() as f64);
        metrics::gauge!("switchyard_sandbox_standby_ready").set(self.standbys.ready() as f64);
    }
}
