//! Channels: work that arrives from the outside world and replies that go back.
//!
//! A **channel instance** is one configured use of a channel plugin (its own
//! configuration, secrets, owner and rate limit), reached at
//! `POST /api/v1/channels/{plugin}/{instance}/webhook` (`default` also at
//! `/channels/{plugin}/webhook`). [`webhook`] hands the raw request to the
//! plugin, which verifies the signature and returns the HTTP reply plus the
//! messages it carried; each message becomes an agent task in the session of
//! its conversation, deduplicated by delivery id in the store. [`outbox`]
//! sends each task's result back through the plugin's `deliver`, recording
//! every attempt before it is made.

pub mod config;
mod instances;
pub mod outbox;
mod secrets;
pub mod webhook;

pub use config::ChannelsConfig;
pub use instances::{Channel, ChannelPatch, Delivery, NewChannel};
pub use webhook::{WebhookCall, WebhookReply};

use crate::plugins::live::PluginHost;
use crate::store::{ChannelRow, Store, StoreError};
use crate::tasks::{TaskError, Tasks};
use governor::{DefaultDirectRateLimiter, Quota};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Why a channel operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// Malformed or inconsistent input.
    #[error("{0}")]
    Invalid(String),
    /// No such instance (or not yours).
    #[error("{0}")]
    NotFound(String),
    /// Not allowed for this caller.
    #[error("{0}")]
    Forbidden(String),
    /// The name is taken, or the state does not allow it.
    #[error("{0}")]
    Conflict(String),
    /// Too many webhook calls: retry after this many seconds.
    #[error("too many webhook calls for this channel: retry in {retry_after} s")]
    RateLimited {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// The store or the plugin cannot take the request now: retry later.
    #[error("{0}")]
    Unavailable(String),
    /// The plugin failed (trapped, timed out, answered nonsense).
    #[error("{0}")]
    Plugin(String),
}

impl From<StoreError> for ChannelError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound("not found".into()),
            StoreError::Conflict(m) => Self::Conflict(m),
            other => Self::Unavailable(format!("the store cannot take it now: {other}")),
        }
    }
}

impl From<TaskError> for ChannelError {
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::Invalid(m) | TaskError::TooLarge(m) => Self::Invalid(m),
            TaskError::NotFound(m) => Self::NotFound(m),
            TaskError::Forbidden(m) => Self::Forbidden(m),
            TaskError::Conflict(m) => Self::Conflict(m),
            TaskError::TooMany { message, .. } => Self::Unavailable(message),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// The channels service.
pub struct Channels {
    store: Store,
    plugins: Arc<PluginHost>,
    tasks: Arc<Tasks>,
    config: ChannelsConfig,
    /// One limiter per instance, rebuilt when its rate changes.
    limiters: Mutex<HashMap<String, (u32, Arc<DefaultDirectRateLimiter>)>>,
    /// This process's lease-holder name for outbox attempts.
    holder: String,
    /// Poked when a reply may have become due.
    wake: Notify,
    /// Instance rows lately read for webhooks, by (plugin, name).
    recent_rows: crate::store::Recent<(String, String), ChannelRow>,
    /// Instance secrets lately opened.
    recent_secrets: Arc<crate::store::Recent<(String, String), Option<String>>>,
}

impl Channels {
    /// The service; [`Channels::start`] starts its outbox.
    pub fn new(
        store: Store,
        plugins: Arc<PluginHost>,
        tasks: Arc<Tasks>,
        config: &ChannelsConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            plugins,
            tasks,
            config: config.clone(),
            limiters: Mutex::default(),
            holder: format!("outbox-{}", uuid::Uuid::now_v7().simple()),
            wake: Notify::new(),
            recent_rows: crate::store::Recent::default(),
            recent_secrets: Arc::default(),
        })
    }

    /// Forget the remembered instance rows and secrets (after a change).
    fn forget_recent(&self) {
        self.recent_rows.clear();
        self.recent_secrets.clear();
    }

    /// Settings.
    pub fn config(&self) -> &ChannelsConfig {
        &self.config
    }

    /// Take one webhook call of `instance` from its rate allowance.
    fn admit(&self, instance: &str, per_minute: u32) -> Result<(), ChannelError> {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let limiter = {
            let mut map = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
            let entry = map.entry(instance.to_string()).or_insert_with(|| {
                (
                    per_minute.get(),
                    Arc::new(DefaultDirectRateLimiter::direct(Quota::per_minute(
                        per_minute,
                    ))),
                )
            });
            if entry.0 != per_minute.get() {
                *entry = (
                    per_minute.get(),
                    Arc::new(DefaultDirectRateLimiter::direct(Quota::per_minute(
                        per_minute,
                    ))),
                );
            }
            entry.1.clone()
        };
        limiter.check().map_err(|_| ChannelError::RateLimited {
            retry_after: (60 / u64::from(per_minute.get())).max(1),
        })
    }
}
