//! Forwarding a tool call's plugin log lines and progress reports to the MCP
//! client, in order, before the call's result.
//!
//! The plugin reports synchronously from inside the guest; reports go through a
//! bounded queue (extra ones are dropped, so a chatty plugin cannot grow host
//! memory) to a task that sends them to the client. The call's result is sent
//! only after that task has drained the queue.

use crate::runtime::{CallObserver, types};
use rmcp::model::{
    LoggingLevel, LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken,
};
use rmcp::{Peer, RoleServer};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Reports queued per call before further ones are dropped.
const QUEUE: usize = 256;

enum Event {
    Log(LoggingLevel, String),
    Progress(f64, Option<f64>, Option<String>),
}

/// The severity rank of an MCP level (higher is more severe).
pub fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

fn level_of(level: types::LogLevel) -> LoggingLevel {
    match level {
        types::LogLevel::Trace | types::LogLevel::Debug => LoggingLevel::Debug,
        types::LogLevel::Info => LoggingLevel::Info,
        types::LogLevel::Warn => LoggingLevel::Warning,
        types::LogLevel::Error => LoggingLevel::Error,
    }
}

struct Queue {
    tx: Mutex<Option<mpsc::Sender<Event>>>,
    minimum: u8,
    wants_progress: bool,
}

impl Queue {
    fn push(&self, event: Event) {
        if let Ok(tx) = self.tx.lock()
            && let Some(tx) = tx.as_ref()
        {
            let _ = tx.try_send(event);
        }
    }
}

impl CallObserver for Queue {
    fn log(&self, level: types::LogLevel, message: &str) {
        let level = level_of(level);
        if rank(level) >= self.minimum {
            self.push(Event::Log(level, message.to_string()));
        }
    }

    fn progress(&self, progress: f64, total: Option<f64>, message: Option<String>) {
        if self.wants_progress {
            self.push(Event::Progress(progress, total, message));
        }
    }
}

/// Forwards one call's reports to its client.
pub struct Forwarder {
    queue: Arc<Queue>,
    task: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    /// Start forwarding to `peer`: log lines at `minimum` or above (tagged with
    /// `plugin`), progress only when the client sent a `progress_token`.
    pub fn start(
        peer: Peer<RoleServer>,
        progress_token: Option<ProgressToken>,
        minimum: LoggingLevel,
        plugin: String,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let queue = Arc::new(Queue {
            tx: Mutex::new(Some(tx)),
            minimum: rank(minimum),
            wants_progress: progress_token.is_some(),
        });
        let task = tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                let sent = match event {
                    Event::Log(level, message) => {
                        let param = LoggingMessageNotificationParam::new(level, message.into())
                            .with_logger(plugin.clone());
                        peer.notify_logging_message(param).await
                    }
                    Event::Progress(progress, total, message) => {
                        let Some(token) = progress_token.clone() else {
                            continue;
                        };
                        let mut param = ProgressNotificationParam::new(token, progress);
                        param.total = total;
                        param.message = message;
                        peer.notify_progress(param).await
                    }
                };
                if sent.is_err() {
                    break;
                }
            }
        });
        Self { queue, task }
    }

    /// The observer to hand to the runtime for the call.
    pub fn observer(&self) -> Arc<dyn CallObserver> {
        self.queue.clone()
    }

    /// Stop accepting reports and wait until the queued ones are sent.
    pub async fn finish(self) {
        if let Ok(mut tx) = self.queue.tx.lock() {
            tx.take();
        }
        let _ = self.task.await;
    }
}
