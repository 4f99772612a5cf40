//! Exec tasks: a command in the session's sandbox, its output streamed as
//! `output` events (each a batch of what arrived while the previous one was
//! being committed), its exit in the result.

use super::output::Decoder;
use super::{Outcome, TaskError, Tasks};
use crate::sandbox::driver::Chunk;
use crate::sandbox::exec::{ExecEvent, ExecRequest};
use crate::sandbox::{Caller, SandboxError};
use crate::store::TaskRow;
use tokio_util::sync::CancellationToken;

/// Check an exec input before it is queued.
pub(super) fn check(req: &ExecRequest) -> Result<(), TaskError> {
    req.validate().map_err(|e| match e {
        SandboxError::TooLarge(m) => TaskError::TooLarge(m),
        other => TaskError::Invalid(other.to_string()),
    })
}

/// How a sandbox failure ends a run: the engine being down is worth a retry,
/// a full quota or bad input is not.
fn sandbox_outcome(e: SandboxError) -> Outcome {
    match e {
        SandboxError::Unavailable(m) | SandboxError::Failed(m) => Outcome::Retry {
            code: "sandbox_unavailable".into(),
            message: m,
        },
        SandboxError::Conflict(m) => Outcome::Failed {
            code: "sandbox_quota".into(),
            message: m,
            result: None,
        },
        other => Outcome::Failed {
            code: "invalid_input".into(),
            message: other.to_string(),
            result: None,
        },
    }
}

/// Most text in one `output` event (bytes): larger pieces are split.
const MAX_EVENT_TEXT: usize = 64 << 10;

/// Output pieces waiting to be committed, merged per stream up to
/// [`MAX_EVENT_TEXT`] per event.
#[derive(Default)]
struct Batch {
    events: Vec<(&'static str, serde_json::Value)>,
}

/// `text` cut into pieces of at most `max` bytes, at character boundaries.
fn pieces(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut end = max;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    out.push(rest);
    out
}

impl Batch {
    fn push(&mut self, stream: &'static str, (text, encoding): (String, &'static str)) {
        for piece in pieces(&text, MAX_EVENT_TEXT) {
            if let Some((_, last)) = self.events.last_mut()
                && last["stream"] == stream
                && last["encoding"] == encoding
                && encoding == "utf-8"
                && let Some(prev) = last["text"].as_str()
                && prev.len() + piece.len() <= MAX_EVENT_TEXT
            {
                last["text"] = serde_json::Value::String(format!("{prev}{piece}"));
                continue;
            }
            self.events.push((
                "output",
                serde_json::json!({ "stream": stream, "text": piece, "encoding": encoding }),
            ));
        }
    }
}

impl Tasks {
    /// Run an exec task to its end (or until `cancel`).
    pub(super) async fn run_exec(&self, task: &TaskRow, cancel: &CancellationToken) -> Outcome {
        let req: ExecRequest = match serde_json::from_str(&task.input) {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Failed {
                    code: "invalid_input".into(),
                    message: format!("invalid exec input: {e}"),
                    result: None,
                };
            }
        };
        let session = match self.store.session(&task.session_id).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                return Outcome::Failed {
                    code: "session_gone".into(),
                    message: "the session was deleted".into(),
                    result: None,
                };
            }
            Err(e) => {
                return Outcome::Retry {
                    code: "store_unavailable".into(),
                    message: e.to_string(),
                };
            }
        };
        let sandbox = tokio::select! {
            r = self.ensure_sandbox(&session) => match r {
                Ok(id) => id,
                Err(e) => return sandbox_outcome(e),
            },
            () = cancel.cancelled() => return Outcome::Canceled("canceled by its owner".into()),
        };
        let skills = self.session_skills(&session).await;
        self.put_skills(task, &sandbox, &skills).await;
        let owner = Caller {
            user_id: task.owner_id.clone(),
            admin: false,
        };
        let mut rx = match self.sandboxes.exec(&owner, &sandbox, req).await {
            Ok(rx) => rx,
            Err(e) => return sandbox_outcome(e),
        };
        let _ = self
            .emit(
                &task.id,
                &[(
                    "log",
                    serde_json::json!({ "message": "command started", "sandbox_id": sandbox }),
                )],
            )
            .await;
        let (mut out, mut err) = (Decoder::default(), Decoder::default());
        loop {
            let first = tokio::select! {
                e = rx.recv() => e,
                () = cancel.cancelled() => {
                    // Dropping the receiver kills the command's process tree.
                    drop(rx);
                    return Outcome::Canceled("canceled by its owner".into());
                }
            };
            let Some(first) = first else {
                // It ran (maybe to its end): never run it a second time.
                return Outcome::Failed {
                    code: "exit_unknown".into(),
                    message: "the command's output ended without an exit status".into(),
                    result: None,
                };
            };
            let mut batch = Batch::default();
            let mut exit = None;
            let mut next = Some(first);
            while let Some(event) = next.take() {
                match event {
                    ExecEvent::Output(Chunk::Stdout(b)) => {
                        if let Some(piece) = out.push(&b) {
                            batch.push("stdout", piece);
                        }
                    }
                    ExecEvent::Output(Chunk::Stderr(b)) => {
                        if let Some(piece) = err.push(&b) {
                            batch.push("stderr", piece);
                        }
                    }
                    ExecEvent::Truncated { limit } => batch.events.push((
                        "log",
                        serde_json::json!({ "message": format!("output truncated after {limit} bytes") }),
                    )),
                    ExecEvent::Exit(o) => exit = Some(o),
                }
                if exit.is_none() {
                    next = rx.try_recv().ok();
                }
            }
            if exit.is_some() {
                for (stream, d) in [("stdout", &mut out), ("stderr", &mut err)] {
                    if let Some(piece) = d.finish() {
                        batch.push(stream, piece);
                    }
                }
            }
            if !batch.events.is_empty()
                && let Err(e) = self.emit(&task.id, &batch.events).await
            {
                tracing::warn!(task = %task.id, error = %e, "cannot record command output");
            }
            if let Some(o) = exit {
                let result = serde_json::to_value(&o).unwrap_or_default();
                return match (o.exit_code, o.timed_out, o.oom_killed) {
                    (_, true, _) => Outcome::Failed {
                        code: "timed_out".into(),
                        message: format!(
                            "the command ran past its {}-second deadline and was killed",
                            o.duration_ms / 1000
                        ),
                        result: Some(result),
                    },
                    (_, _, true) => Outcome::Failed {
                        code: "oom_killed".into(),
                        message: "the command ran out of the sandbox's memory and was killed"
                            .into(),
                        result: Some(result),
                    },
                    (Some(0), _, _) => Outcome::Completed(result),
                    (Some(code), _, _) => Outcome::Failed {
                        code: "exit_nonzero".into(),
                        message: format!("the command exited with status {code}"),
                        result: Some(result),
                    },
                    (None, _, _) => Outcome::Failed {
                        code: "exit_unknown".into(),
                        message: "the command's exit status could not be read".into(),
                        result: Some(result),
                    },
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Batch, pieces};

    #[test]
    fn output_events_stay_small_and_split_at_characters() {
        assert_eq!(pieces("aé€b", 3), ["aé", "€", "b"]);
        let mut b = Batch::default();
        b.push("stdout", ("x".repeat(100_000), "utf-8"));
        b.push("stdout", ("y".repeat(10), "utf-8"));
        b.push("stderr", ("z".into(), "utf-8"));
        let sizes: Vec<usize> = b
            .events
            .iter()
            .map(|(_, e)| e["text"].as_str().unwrap().len())
            .collect();
        assert_eq!(sizes, [65536, 100_000 - 65536 + 10, 1]);
    }
}
