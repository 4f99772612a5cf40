//! Triggers: when a schedule's slots fall. A slot is an instant (ms since the
//! Unix epoch); a once trigger has one, an interval trigger one every N
//! seconds from its anchor, a cron trigger one at every match of its pattern
//! in its IANA time zone (DST as Vixie cron: a fixed time inside a spring-
//! forward gap runs right after the gap, and once in a fall-back overlap).

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The longest cron expression accepted.
const MAX_EXPRESSION: usize = 200;

/// When a schedule starts its runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// Once, at `at`.
    Once {
        /// An RFC 3339 time with its offset (`2026-12-24T18:00:00+01:00`); not in the past.
        #[schema(max_length = 64)]
        at: String,
    },
    /// Every `every_secs` seconds (at least the configured floor, one minute by default).
    Interval {
        /// Seconds between runs.
        #[serde(deserialize_with = "required_number")]
        #[schema(value_type = i64, minimum = 1)]
        every_secs: i64,
        /// The first run (RFC 3339); default: one interval after creation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(max_length = 64)]
        start_at: Option<String>,
    },
    /// A cron expression (five fields: minute hour day-of-month month
    /// day-of-week, or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`)
    /// evaluated in `timezone`.
    Cron {
        /// The pattern, e.g. `0 9 * * MON-FRI`.
        #[schema(max_length = 200)]
        expression: String,
        /// An IANA time zone name, e.g. `Europe/Berlin` (required).
        #[schema(max_length = 64)]
        timezone: String,
    },
}

fn required_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    use serde::de::Error;
    crate::api::whole_number(d)?.ok_or_else(|| D::Error::custom("a number is required"))
}

/// A trigger checked and ready to compute slots.
#[derive(Debug, Clone)]
pub enum Compiled {
    /// One slot.
    Once(i64),
    /// Slots `anchor + k * every` for k ≥ 0.
    Interval {
        /// The first slot.
        anchor: i64,
        /// Milliseconds between slots.
        every: i64,
    },
    /// The pattern's matches in the zone.
    Cron(Box<Cron>, TimeZone),
}

/// Why a trigger is refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TriggerError(pub String);

fn timestamp(what: &str, text: &str) -> Result<i64, TriggerError> {
    text.parse::<Timestamp>()
        .map(Timestamp::as_millisecond)
        .map_err(|e| {
            TriggerError(format!(
                "{what} `{text}` is not an RFC 3339 time with an offset (e.g. 2026-12-24T18:00:00+01:00): {e}"
            ))
        })
}

/// The time zone called `name` (IANA names only).
pub fn zone(name: &str) -> Result<TimeZone, TriggerError> {
    if name.is_empty() || name.len() > 64 {
        return Err(TriggerError(
            "give an IANA time zone name such as `Europe/Berlin` or `UTC`".into(),
        ));
    }
    TimeZone::get(name).map_err(|_| {
        TriggerError(format!(
            "`{name}` is not an IANA time zone name (e.g. `Europe/Berlin`, `America/New_York`, `UTC`)"
        ))
    })
}

impl Trigger {
    /// Check the trigger at `now` (ms): cron patterns parse and fire, zones
    /// exist, intervals are at least `min_interval_secs`, a once time is not
    /// past. `created_at` anchors an interval without `start_at`.
    pub fn compile(
        &self,
        now: i64,
        created_at: i64,
        min_interval_secs: u64,
    ) -> Result<Compiled, TriggerError> {
        match self {
            Self::Once { at } => {
                let at = timestamp("`at`", at)?;
                if at < now {
                    return Err(TriggerError(
                        "`at` is in the past: give a future time, or use an interval or cron trigger"
                            .into(),
                    ));
                }
                Ok(Compiled::Once(at))
            }
            Self::Interval {
                every_secs,
                start_at,
            } => {
                let floor = i64::try_from(min_interval_secs).unwrap_or(i64::MAX);
                if *every_secs < floor {
                    return Err(TriggerError(format!(
                        "every_secs is {every_secs}; intervals below {floor} s are refused ([schedules] min_interval_secs)"
                    )));
                }
                if *every_secs > 366 * 86_400 {
                    return Err(TriggerError(
                        "every_secs is more than a year: use a cron or once trigger".into(),
                    ));
                }
                let every = every_secs * 1000;
                let anchor = match start_at {
                    Some(text) => timestamp("`start_at`", text)?,
                    None => created_at + every,
                };
                Ok(Compiled::Interval { anchor, every })
            }
            Self::Cron {
                expression,
                timezone,
            } => {
                if expression.len() > MAX_EXPRESSION {
                    return Err(TriggerError(format!(
                        "the cron expression is longer than {MAX_EXPRESSION} characters"
                    )));
                }
                let tz = zone(timezone)?;
                let cron = CronParser::builder()
                    .seconds(Seconds::Disallowed)
                    .year(Year::Disallowed)
                    .build()
                    .parse(expression)
                    .map_err(|e| {
                        TriggerError(format!(
                            "`{expression}` is not a cron expression ({e}): give five fields, minute hour day-of-month month day-of-week, e.g. `0 9 * * MON-FRI`"
                        ))
                    })?;
                let compiled = Compiled::Cron(Box::new(cron), tz);
                if compiled.next_after(now).is_none() {
                    return Err(TriggerError(format!(
                        "`{expression}` never matches a real date"
                    )));
                }
                Ok(compiled)
            }
        }
    }

    /// The trigger of a stored schedule, without the checks a new one gets
    /// (its once time may have passed; the floor may have changed since).
    pub fn compile_stored(&self, created_at: i64) -> Result<Compiled, TriggerError> {
        match self {
            Self::Once { at } => Ok(Compiled::Once(timestamp("`at`", at)?)),
            Self::Interval { .. } => self.compile(i64::MIN, created_at, 1),
            Self::Cron { .. } => self.compile(created_at, created_at, 1),
        }
    }

    /// The time zone slots are shown in (UTC unless the trigger names one).
    pub fn display_zone(&self) -> TimeZone {
        match self {
            Self::Cron { timezone, .. } => zone(timezone).unwrap_or(TimeZone::UTC),
            _ => TimeZone::UTC,
        }
    }
}

impl Compiled {
    /// The first slot strictly after `t` (ms), if any.
    pub fn next_after(&self, t: i64) -> Option<i64> {
        match self {
            Self::Once(at) => (*at > t).then_some(*at),
            Self::Interval { anchor, every } => {
                if t < *anchor {
                    return Some(*anchor);
                }
                let k = (t - anchor) / every + 1;
                anchor.checked_add(k.checked_mul(*every)?)
            }
            Self::Cron(cron, tz) => {
                // Cron works in whole seconds: start from the second holding `t`.
                let from = Timestamp::from_millisecond(t.div_euclid(1000) * 1000).ok()?;
                let next = cron
                    .find_next_occurrence(&from.to_zoned(tz.clone()), false)
                    .ok()?;
                let ms = next.timestamp().as_millisecond();
                if ms > t {
                    Some(ms)
                } else {
                    self.next_after(ms)
                }
            }
        }
    }

    /// The first `count` slots after `t`.
    pub fn upcoming(&self, t: i64, count: usize) -> Vec<i64> {
        let mut out = Vec::with_capacity(count);
        let mut at = t;
        while out.len() < count {
            let Some(next) = self.next_after(at) else {
                break;
            };
            out.push(next);
            at = next;
        }
        out
    }

    /// The slots in `(after, until]`: how many there are, and the last `keep` of them.
    pub fn between(&self, after: i64, until: i64, keep: usize) -> (u64, Vec<i64>) {
        if let Self::Interval { anchor, every } = self {
            // Arithmetic, so a long downtime on a short interval costs nothing.
            let Some(first) = self.next_after(after) else {
                return (0, Vec::new());
            };
            if first > until {
                return (0, Vec::new());
            }
            let count = (until - first) / every + 1;
            let last_k = (until - anchor) / every;
            let kept = (0..count.min(keep as i64))
                .rev()
                .map(|i| anchor + (last_k - i) * every)
                .collect();
            return (count as u64, kept);
        }
        let mut count = 0u64;
        let mut kept = std::collections::VecDeque::with_capacity(keep + 1);
        let mut at = after;
        while let Some(next) = self.next_after(at) {
            if next > until {
                break;
            }
            count += 1;
            kept.push_back(next);
            if kept.len() > keep {
                kept.pop_front();
            }
            at = next;
        }
        (count, kept.into())
    }
}

/// A slot's jitter: a fixed offset in `[0, jitter_secs)` seconds drawn from
/// the schedule id and the slot, so every host and every restart agrees.
pub fn jitter_ms(schedule_id: &str, slot: i64, jitter_secs: i64) -> i64 {
    if jitter_secs <= 0 {
        return 0;
    }
    let digest = Sha256::digest(format!("{schedule_id}:{slot}"));
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(bytes) % (jitter_secs as u64 * 1000)) as i64
}

/// `ms` as RFC 3339 with `tz`'s offset at that instant, e.g. `2026-03-29T03:00:00+02:00`.
pub fn show(ms: i64, tz: &TimeZone) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(t) => t.display_with_offset(tz.to_offset(t)).to_string(),
        Err(_) => ms.to_string(),
    }
}

#[cfg(test)]
mod tests;
