//! The `[tasks]` table of `switchyard.toml`: how much runs at once, how long
//! leases last, how often infrastructure failures are retried, how long
//! events are kept.

use serde::Deserialize;

/// Queue and dispatcher settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TasksConfig {
    /// Tasks running at once in this host.
    pub max_running: usize,
    /// Tasks running at once per user.
    pub max_running_per_user: u32,
    /// Tasks queued or running per user; beyond, new ones get 429.
    pub max_queued_per_user: u32,
    /// Lease length (seconds): a task whose host stops renewing it is
    /// recovered this long after the host died.
    pub lease_secs: u64,
    /// Claims of one task before an infrastructure failure (engine down,
    /// provider unavailable, host restarts) fails it for good.
    pub max_attempts: u32,
    /// Events of tasks finished longer ago than this are pruned (0 keeps them forever).
    pub event_retention_days: u64,
    /// Largest message or task input (bytes) over REST, WebSocket and MCP.
    pub max_input_bytes: usize,
    /// A live subscriber (WebSocket, SSE) that cannot take an event for this
    /// many seconds is disconnected, with the `after` to resume from.
    pub slow_subscriber_secs: u64,
    /// Longest run of one agent task (seconds of wall clock).
    pub agent_max_secs: u64,
    /// Tokens (prompt + completion) one agent task may use.
    pub agent_token_budget: u64,
}

impl Default for TasksConfig {
    fn default() -> Self {
        Self {
            max_running: 16,
            max_running_per_user: 4,
            max_queued_per_user: 100,
            lease_secs: 15,
            max_attempts: 3,
            event_retention_days: 30,
            max_input_bytes: 256 << 10,
            slow_subscriber_secs: 10,
            agent_max_secs: 1800,
            agent_token_budget: 2_000_000,
        }
    }
}
