//! Forwarding a tool call's plugin log lines and progress reports to the MCP
//! client, in order, before the call's result.
//!
//! The plugin reports synchronously from inside the guest; reports go through a
//! bounded queue (extra ones are dropped, so a chatty plugin cannot grow host
//! memory) to a task, started by the first report, that sends them to the
//! client. The call's result is sent only after that task has drained the queue.

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

/// Where reports go: a sending task, started by the first report (most calls
/// report nothing and pay for no task).
struct Queue {
    sink: Mutex<Sink>,
    /// The least severe level forwarded; `None` forwards no log lines.
    minimum: Option<u8>,
    wants_progress: bool,
}

struct Sink {
    peer: Peer<RoleServer>,
    progress_token: Option<ProgressToken>,
    plugin: String,
    running: Option<(mpsc::Sender<Event>, tokio::task::JoinHandle<()>)>,
    closed: bool,
}

impl Sink {
    fn start(&mut self) -> Option<&mpsc::Sender<Event>> {
        if self.closed {
            return None;
        }
        if self.running.is_none() {
            let (tx, rx) = mpsc::channel(QUEUE);
            let task = tokio::spawn(send_all(
                rx,
                self.peer.clone(),
                self.progress_token.clone(),
                self.plugin.clone(),
            ));
            self.running = Some((tx, task));
        }
        self.running.as_ref().map(|(tx, _)| tx)
    }
}

async fn send_all(
    mut rx: mpsc::Receiver<Event>,
    peer: Peer<RoleServer>,
    progress_token: Option<ProgressToken>,
    plugin: String,
) {
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
}

impl Queue {
    fn push(&self, event: Event) {
        if let Ok(mut sink) = self.sink.lock()
            && let Some(tx) = sink.start()
        {
            let _ = tx.try_send(event);
        }
    }
}

impl CallObserver for Queue {
    fn log(&self, level: types::LogLevel, message: &str) {
        if level == types::LogLevel::Trace {
            return;
        }
        let level = level_of(level);
        if self.minimum.is_some_and(|m| rank(level) >= m) {
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
}

impl Forwarder {
    /// Forward to `peer`: log lines at `minimum` or above (tagged with `plugin`;
    /// none when `minimum` is `None`), progress only when the client sent a
    /// `progress_token`.
    pub fn start(
        peer: Peer<RoleServer>,
        progress_token: Option<ProgressToken>,
        minimum: Option<LoggingLevel>,
        plugin: String,
    ) -> Self {
        let wants_progress = progress_token.is_some();
        let sink = Sink {
            peer,
            progress_token,
            plugin,
            running: None,
            closed: false,
        };
        Self {
            queue: Arc::new(Queue {
                sink: Mutex::new(sink),
                minimum: minimum.map(rank),
                wants_progress,
            }),
        }
    }

    /// The observer to hand to the runtime for the call.
    pub fn observer(&self) -> Arc<dyn CallObserver> {
        self.queue.clone()
    }

    /// Stop accepting reports and wait until the queued ones are sent (at most
    /// [`SEND_TIMEOUT`](super::hub::SEND_TIMEOUT): a client that stopped reading
    /// its stream does not hold the call's result back for ever).
    pub async fn finish(self) {
        let running = self.queue.sink.lock().ok().and_then(|mut sink| {
            sink.closed = true;
            sink.running.take()
        });
        if let Some((tx, mut task)) = running {
            drop(tx);
            if tokio::time::timeout(super::hub::SEND_TIMEOUT, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}
