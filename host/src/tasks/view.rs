//! Tasks as callers see them.

use crate::store::{TaskKind, TaskRow, TaskStatus};
use serde::Serialize;

/// Why a task failed or was canceled.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorInfo {
    /// A stable code: `canceled`, `host_restarted`, `llm_not_configured`,
    /// `exit_nonzero`, `timed_out`, `oom_killed`, `sandbox_quota`, …
    pub code: String,
    /// What happened and what to do.
    pub message: String,
}

/// Model tokens a task used.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
}

/// A task.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Task {
    /// Stable id.
    pub id: String,
    /// The session it runs in.
    pub session_id: String,
    /// `exec` or `agent`.
    pub kind: TaskKind,
    /// Where it is.
    pub status: TaskStatus,
    /// What it was asked to do.
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
    /// Its result (exec: exit code, timed_out, oom_killed, truncated, duration_ms;
    /// agent: the final text and usage).
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// Why it failed or was canceled.
    pub error: Option<ErrorInfo>,
    /// What it waits for while `input_required` (a question or an approval request).
    #[schema(value_type = Option<Object>)]
    pub waiting_for: Option<serde_json::Value>,
    /// How many times it was claimed (retries and resumptions count).
    pub attempt: i64,
    /// `rest`, `ws` or `mcp`.
    pub origin: String,
    /// Queued (ms since the epoch).
    pub queued_at: i64,
    /// First started.
    pub started_at: Option<i64>,
    /// Finished.
    pub finished_at: Option<i64>,
    /// The seq of its last event (follow with `after`).
    pub last_seq: i64,
    /// Model tokens used.
    pub usage: Usage,
}

/// The view of a stored task.
pub fn task(row: &TaskRow) -> Task {
    let state: serde_json::Value = serde_json::from_str(&row.state).unwrap_or_default();
    Task {
        id: row.id.clone(),
        session_id: row.session_id.clone(),
        kind: row.kind,
        status: row.status,
        input: serde_json::from_str(&row.input).unwrap_or_default(),
        result: row
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok()),
        error: row.error_code.as_ref().map(|code| ErrorInfo {
            code: code.clone(),
            message: row.error_message.clone().unwrap_or_default(),
        }),
        waiting_for: (row.status == TaskStatus::InputRequired)
            .then(|| state.get("waiting_for").cloned())
            .flatten(),
        attempt: row.attempt,
        origin: row.origin.clone(),
        queued_at: row.queued_at,
        started_at: row.started_at,
        finished_at: row.finished_at,
        last_seq: row.last_seq,
        usage: Usage {
            input_tokens: row.input_tokens,
            output_tokens: row.output_tokens,
        },
    }
}
