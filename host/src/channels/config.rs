//! The `[channels]` table of `switchyard.toml`: how large a webhook body may
//! be, how long dedupe records are kept, how replies are retried.

use serde::Deserialize;

/// Webhook and delivery settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelsConfig {
    /// Largest webhook body (bytes); larger ones get 413 before a plugin sees them.
    pub max_body_bytes: u64,
    /// Days a received delivery id is remembered, so a redelivery never makes
    /// a second task (at least 30).
    pub dedupe_days: u64,
    /// Attempts to send one reply before it is marked `failed`.
    pub delivery_attempts: u32,
    /// The first retry's delay (seconds); each further one doubles, up to an hour.
    pub delivery_backoff_secs: u64,
    /// How long one attempt may take before another host may assume it died (seconds).
    pub delivery_lease_secs: u64,
    /// Webhook calls per minute a new channel instance accepts.
    pub default_rate_per_minute: u32,
}

/// The shortest dedupe retention accepted (days).
pub const MIN_DEDUPE_DAYS: u64 = 30;

impl Default for ChannelsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            dedupe_days: MIN_DEDUPE_DAYS,
            delivery_attempts: 8,
            delivery_backoff_secs: 2,
            delivery_lease_secs: 60,
            default_rate_per_minute: 6000,
        }
    }
}

impl ChannelsConfig {
    /// Check the values a typo could make dangerous.
    pub fn validate(&self) -> Result<(), String> {
        if self.dedupe_days < MIN_DEDUPE_DAYS {
            return Err(format!(
                "channels.dedupe_days is {}: keep delivery ids at least {MIN_DEDUPE_DAYS} days, or redeliveries make second tasks",
                self.dedupe_days
            ));
        }
        if self.delivery_attempts == 0 {
            return Err("channels.delivery_attempts must be at least 1".into());
        }
        if self.max_body_bytes == 0 {
            return Err("channels.max_body_bytes must be at least 1".into());
        }
        Ok(())
    }
}
