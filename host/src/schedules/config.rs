//! The `[schedules]` table of `switchyard.toml`: the interval floor, how late a
//! run may start and still count as on time, and how many schedules a user may have.

use serde::Deserialize;

/// Scheduler settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulesConfig {
    /// The shortest interval accepted (seconds; cron patterns fire at most once a minute).
    pub min_interval_secs: u64,
    /// A run found this many seconds after its due time or later counts as
    /// missed (the schedule's catch-up policy decides); earlier, it just starts.
    pub misfire_secs: u64,
    /// How often the scheduler looks at the store when nothing is due (seconds):
    /// the most another host's new schedule waits.
    pub poll_secs: u64,
    /// Schedules one user may have.
    pub max_per_user: u32,
}

impl Default for SchedulesConfig {
    fn default() -> Self {
        Self {
            min_interval_secs: 60,
            misfire_secs: 60,
            poll_secs: 5,
            max_per_user: 1000,
        }
    }
}

impl SchedulesConfig {
    /// Check the values a typo could make dangerous.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_interval_secs == 0 {
            return Err("schedules.min_interval_secs must be at least 1".into());
        }
        if self.poll_secs == 0 || self.poll_secs > 300 {
            return Err("schedules.poll_secs must be between 1 and 300".into());
        }
        Ok(())
    }
}
