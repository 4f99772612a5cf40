//! Commands in a sandbox: streamed output with a cap, a deadline enforced both
//! inside the container (`timeout`) and by the host, out-of-memory kills told
//! apart from other deaths, and the whole process tree ending with the
//! command unless it detaches ([`super::tree`]).

use super::driver::{Chunk, ExecSession, ExecSpec};
use super::metrics::{self, Start};
use super::{Caller, Limits, SandboxError, Sandboxes};
use crate::store::SandboxRow;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Largest inline standard input.
pub const MAX_STDIN: usize = 1 << 20;

/// A command to run.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    /// A shell command line, run with `/bin/sh -c` (give this or `argv`).
    #[schema(min_length = 1, max_length = 65536)]
    pub command: Option<String>,
    /// Program and arguments, run without a shell.
    #[schema(min_items = 1, max_items = 4096)]
    pub argv: Option<Vec<String>>,
    /// Deadline in seconds (default and maximum: the sandbox's `exec_timeout_secs`).
    #[schema(minimum = 1, maximum = 86400)]
    pub timeout_secs: Option<u64>,
    /// Working directory inside the workspace (default `/workspace`).
    pub workdir: Option<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Text given on standard input (at most 1 MiB).
    #[schema(max_length = 1048576)]
    pub stdin: Option<String>,
    /// Keep what the command leaves running in the background after it exits
    /// (by default every process it started is killed when it ends). Detached
    /// processes count against the sandbox's `pids` limit, and a command that
    /// is killed (deadline, output cap, client gone) still takes them along.
    #[serde(default)]
    pub detach: bool,
}

/// How a command ended.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ExecOutcome {
    /// Its exit code (`None` when the host gave up waiting).
    pub exit_code: Option<i64>,
    /// Killed at its deadline.
    pub timed_out: bool,
    /// Killed by the kernel for exceeding the sandbox's memory limit.
    pub oom_killed: bool,
    /// Its output passed the cap and was cut (the rest was discarded).
    pub truncated: bool,
    /// Wall time (ms).
    pub duration_ms: u64,
}

/// One event of a running command.
#[derive(Debug, Clone)]
pub enum ExecEvent {
    /// Output, in order.
    Output(Chunk),
    /// The output cap was reached; nothing more will be forwarded.
    Truncated {
        /// The cap (bytes).
        limit: u64,
    },
    /// The end.
    Exit(ExecOutcome),
}

/// A finished command, collected.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExecResult {
    /// How it ended.
    #[serde(flatten)]
    pub outcome: ExecOutcome,
    /// Standard output (text, or base64 when `encoding` says so).
    pub stdout: String,
    /// Standard error (same encoding).
    pub stderr: String,
    /// `utf-8` when both streams are text, else `base64`.
    pub encoding: &'static str,
}

/// The marker appended to output cut at the cap.
pub fn truncation_marker(limit: u64) -> String {
    format!("\n[switchyard: output truncated after {limit} bytes]\n")
}

impl ExecRequest {
    /// Check the request's shape (command or argv, environment, stdin size)
    /// before it is queued; limits that depend on the sandbox are checked when it runs.
    pub fn validate(&self) -> Result<(), SandboxError> {
        self.argv()?;
        check_env(&self.env)?;
        if self.stdin.as_ref().is_some_and(|s| s.len() > MAX_STDIN) {
            return Err(SandboxError::TooLarge("stdin is at most 1 MiB".into()));
        }
        if let Some(w) = &self.workdir {
            super::files::workspace_path(w)?;
        }
        if self.timeout_secs == Some(0) {
            return Err(SandboxError::Invalid(
                "timeout_secs must be at least 1".into(),
            ));
        }
        Ok(())
    }

    fn argv(&self) -> Result<Vec<String>, SandboxError> {
        let nul = self
            .command
            .iter()
            .chain(self.argv.iter().flatten())
            .any(|a| a.contains('\0'));
        if nul {
            return Err(SandboxError::Invalid(
                "commands and arguments cannot contain NUL".into(),
            ));
        }
        match (&self.command, &self.argv) {
            (Some(c), None) if !c.is_empty() && c.len() <= 65536 => {
                Ok(vec!["sh".into(), "-c".into(), c.clone()])
            }
            (None, Some(a)) if !a.is_empty() && a.len() <= 4096 => Ok(a.clone()),
            (Some(_), Some(_)) => Err(SandboxError::Invalid(
                "give either `command` or `argv`, not both".into(),
            )),
            _ => Err(SandboxError::Invalid(
                "give `command` (a shell line, at most 64 KiB) or `argv` (1-4096 items)".into(),
            )),
        }
    }
}

fn check_env(env: &BTreeMap<String, String>) -> Result<Vec<String>, SandboxError> {
    if env.len() > 256 {
        return Err(SandboxError::Invalid(
            "at most 256 environment variables".into(),
        ));
    }
    env.iter()
        .map(|(k, v)| {
            let ok = !k.is_empty()
                && k.len() <= 256
                && v.len() <= 65536
                && !k.contains(['=', '\0'])
                && !v.contains('\0')
                && k != "SY_EXEC"
                && k != super::tree::DETACH_VAR;
            if ok {
                Ok(format!("{k}={v}"))
            } else {
                Err(SandboxError::Invalid(format!(
                    "environment variable `{}` is not allowed (names have no `=` or NUL, values no NUL)",
                    k.chars().take(64).collect::<String>()
                )))
            }
        })
        .collect()
}

impl Sandboxes {
    /// Start a command; its events arrive on the returned channel. Dropping the
    /// receiver kills the command.
    pub async fn exec(
        self: &Arc<Self>,
        caller: &Caller,
        id: &str,
        req: ExecRequest,
    ) -> Result<mpsc::Receiver<ExecEvent>, SandboxError> {
        let argv = req.argv()?;
        let env = check_env(&req.env)?;
        let row = self.row(caller, id).await?;
        let limits: Limits = serde_json::from_str(&row.limits).unwrap_or(self.config.defaults);
        let timeout = req.timeout_secs.unwrap_or(limits.exec_timeout_secs);
        if timeout == 0 || timeout > limits.exec_timeout_secs {
            return Err(SandboxError::Invalid(format!(
                "timeout_secs must be between 1 and this sandbox's exec_timeout_secs ({})",
                limits.exec_timeout_secs
            )));
        }
        let stdin = req.stdin.map(String::into_bytes);
        if stdin.as_ref().is_some_and(|s| s.len() > MAX_STDIN) {
            return Err(SandboxError::TooLarge("stdin is at most 1 MiB".into()));
        }
        let workdir = match &req.workdir {
            Some(w) => super::files::workspace_path(w)?,
            None => super::files::WORKSPACE.to_string(),
        };
        let tag = self.new_tag();
        let full = super::tree::wrap(timeout, req.detach, argv);
        let mut env = env;
        env.push(format!("SY_EXEC={tag}"));
        if req.detach {
            env.push(format!("{}=1", super::tree::DETACH_VAR));
        }
        let spec = ExecSpec {
            argv: full,
            env,
            workdir,
            tty: false,
            stdin: stdin.is_some(),
        };
        self.watch_ooms();
        let started = Instant::now();
        let (container, session, tag, start) = self.start_command(&row, &spec, tag).await?;
        metrics::command_started(start, started.elapsed());
        self.busy(&row.id);
        let (tx, rx) = mpsc::channel(16);
        let this = self.clone();
        let run = Run {
            sandbox: row.id,
            container,
            tag,
            timeout: Duration::from_secs(timeout),
            cap: self.config.max_output_bytes,
            started,
            started_ms: crate::store::now_ms() - 20,
        };
        tokio::spawn(async move {
            let outcome = this.drive(&run, session, stdin, &tx).await;
            metrics::command_finished(start, &outcome);
            // Prepared only now: starting a process in the container while
            // the command runs would delay the engine's news of its exit.
            this.spawn_standby(&run.container);
            let _ = tx.send(ExecEvent::Exit(outcome)).await;
            this.done(&run.sandbox).await;
        });
        Ok(rx)
    }

    /// Run a command to its end and collect its output (capped).
    pub async fn exec_collect(
        self: &Arc<Self>,
        caller: &Caller,
        id: &str,
        req: ExecRequest,
    ) -> Result<ExecResult, SandboxError> {
        let mut rx = self.exec(caller, id, req).await?;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut outcome = ExecOutcome::default();
        while let Some(event) = rx.recv().await {
            match event {
                ExecEvent::Output(Chunk::Stdout(b)) => out.extend_from_slice(&b),
                ExecEvent::Output(Chunk::Stderr(b)) => err.extend_from_slice(&b),
                ExecEvent::Truncated { limit } => {
                    err.extend_from_slice(truncation_marker(limit).as_bytes())
                }
                ExecEvent::Exit(o) => outcome = o,
            }
        }
        Ok(encode(outcome, out, err))
    }

    async fn drive(
        self: &Arc<Self>,
        run: &Run,
        mut session: ExecSession,
        stdin: Option<Vec<u8>>,
        tx: &mpsc::Sender<ExecEvent>,
    ) -> ExecOutcome {
        if let Some(mut input) = session.input.take() {
            if let Some(data) = stdin {
                let _ = input.write_all(&data).await;
            }
            let _ = input.shutdown().await;
        }
        let mut deadline =
            tokio::time::Instant::from_std(run.started) + run.timeout + Duration::from_secs(5);
        let (mut sent, mut truncated, mut killed) = (0u64, false, false);
        let mut listening = true;
        // Killing runs on its own task while the output keeps being drained:
        // the engine stalls other calls while a command's output is unread.
        let kill = |killed: &mut bool, deadline: &mut tokio::time::Instant| {
            if !*killed {
                *killed = true;
                *deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                let (this, container, tag) = (self.clone(), run.container.clone(), run.tag.clone());
                tokio::spawn(async move { this.kill(&container, &tag).await });
            }
        };
        loop {
            tokio::select! {
                chunk = session.output.next() => match chunk {
                    Some(Ok(chunk)) => {
                        if truncated || !listening {
                            continue;
                        }
                        let data = match &chunk { Chunk::Stdout(b) | Chunk::Stderr(b) => b.clone() };
                        let room = run.cap.saturating_sub(sent);
                        if data.len() as u64 > room {
                            let part = data.slice(..room as usize);
                            let cut = match chunk { Chunk::Stdout(_) => Chunk::Stdout(part), Chunk::Stderr(_) => Chunk::Stderr(part) };
                            let _ = tx.send(ExecEvent::Output(cut)).await;
                            let _ = tx.send(ExecEvent::Truncated { limit: run.cap }).await;
                            truncated = true;
                            kill(&mut killed, &mut deadline);
                            continue;
                        }
                        sent += data.len() as u64;
                        if tx.send(ExecEvent::Output(chunk)).await.is_err() {
                            listening = false;
                            kill(&mut killed, &mut deadline);
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, sandbox = %run.sandbox, "command output failed");
                        break;
                    }
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => {
                    if killed {
                        tracing::warn!(sandbox = %run.sandbox, "a killed command's output did not end; leaving it");
                        break;
                    }
                    kill(&mut killed, &mut deadline);
                }
                () = tx.closed(), if listening => {
                    listening = false;
                    kill(&mut killed, &mut deadline);
                }
            }
        }
        let exit_code = self.exit_code(&session.id).await;
        let elapsed = run.started.elapsed();
        let timed_out = elapsed >= run.timeout && matches!(exit_code, Some(124 | 137) | None);
        let oom_killed = exit_code == Some(137)
            && !timed_out
            && !killed
            && self.ooms.wait_for(&run.container, run.started_ms).await;
        ExecOutcome {
            exit_code,
            timed_out,
            oom_killed,
            truncated,
            duration_ms: elapsed.as_millis() as u64,
        }
    }

    /// Start a command on the sandbox's standby shell, or with an engine exec
    /// when it has none (the next standby is prepared when the command ends).
    /// Returns the container, the session, the command's kill tag and how it started.
    async fn start_command(
        self: &Arc<Self>,
        row: &SandboxRow,
        spec: &ExecSpec,
        tag: String,
    ) -> Result<(String, ExecSession, String, Start), SandboxError> {
        let on_standby = match (row.state.is_live(), &row.container_id) {
            (true, Some(container)) => self
                .run_on_standby(container, spec)
                .await
                .map(|(tag, session)| (container.clone(), session, tag, Start::Standby)),
            _ => None,
        };
        let started = match on_standby {
            Some(started) => started,
            None => {
                let (container, session) = self.start_exec(row, spec).await?;
                (container, session, tag, Start::Exec)
            }
        };
        Ok(started)
    }

    /// A finished command's exit code (`None` when the engine does not know it within a second).
    pub(super) async fn exit_code(&self, exec_id: &str) -> Option<i64> {
        for _ in 0..100 {
            match self.driver.exec_exit(exec_id).await {
                Ok(Some(code)) => return Some(code),
                Ok(None) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(_) => return None,
            }
        }
        None
    }
}

struct Run {
    sandbox: String,
    container: String,
    tag: String,
    timeout: Duration,
    cap: u64,
    started: Instant,
    started_ms: i64,
}

fn encode(outcome: ExecOutcome, out: Vec<u8>, err: Vec<u8>) -> ExecResult {
    use base64::Engine;
    match (String::from_utf8(out), String::from_utf8(err)) {
        (Ok(stdout), Ok(stderr)) => ExecResult {
            outcome,
            stdout,
            stderr,
            encoding: "utf-8",
        },
        (out, err) => {
            let bytes = |r: Result<String, std::string::FromUtf8Error>| match r {
                Ok(s) => s.into_bytes(),
                Err(e) => e.into_bytes(),
            };
            let b64 = base64::engine::general_purpose::STANDARD;
            ExecResult {
                outcome,
                stdout: b64.encode(bytes(out)),
                stderr: b64.encode(bytes(err)),
                encoding: "base64",
            }
        }
    }
}
