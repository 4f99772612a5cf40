//! Interactive terminals (a login shell on a TTY) and attached programs (a
//! command with its standard input and output as a byte pipe, as stdio MCP
//! servers need) in a sandbox, each ended with everything it started when it
//! closes.

use super::driver::{Chunk, ExecSession, ExecSpec};
use super::{Caller, SandboxError, Sandboxes};
use bytes::Bytes;
use futures_util::StreamExt;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::AsyncWrite;

impl Sandboxes {
    /// Open an interactive terminal (a login shell on a TTY).
    pub async fn terminal(
        self: &Arc<Self>,
        caller: &Caller,
        id: &str,
        rows: u16,
        cols: u16,
    ) -> Result<Terminal, SandboxError> {
        let argv = vec![
            "sh".into(),
            "-c".into(),
            "echo 1000 > /proc/self/oom_score_adj; exec bash -l".into(),
        ];
        let (session, input, closer) = self
            .start_attached(caller, id, argv, Some("TERM=xterm-256color"))
            .await?;
        let terminal = Terminal {
            exec_id: session.id.clone(),
            output: session
                .output
                .map(|c| match c {
                    Ok(Chunk::Stdout(b) | Chunk::Stderr(b)) => Ok(b),
                    Err(e) => Err(e.to_string()),
                })
                .boxed(),
            input,
            closer: Some(closer),
        };
        if rows > 0 && cols > 0 {
            let _ = self.driver.resize(&terminal.exec_id, rows, cols).await;
        }
        Ok(terminal)
    }

    /// Start `argv` without a terminal, its standard input attached: the
    /// returned [`Terminal`]'s output is the program's standard output alone;
    /// each line it writes to standard error goes to the log, tagged `label`.
    pub async fn attach(
        self: &Arc<Self>,
        caller: &Caller,
        id: &str,
        argv: Vec<String>,
        label: &str,
    ) -> Result<Terminal, SandboxError> {
        let (session, input, closer) = self.start_attached(caller, id, argv, None).await?;
        let label = label.to_string();
        let output = session
            .output
            .filter_map(move |c| {
                let item = match c {
                    Ok(Chunk::Stdout(b)) => Some(Ok(b)),
                    Ok(Chunk::Stderr(b)) => {
                        for line in String::from_utf8_lossy(&b)
                            .lines()
                            .filter(|l| !l.trim().is_empty())
                        {
                            let line: String = line.chars().take(2000).collect();
                            tracing::info!(program = %label, stderr = %line, "sandboxed program");
                        }
                        None
                    }
                    Err(e) => Some(Err(e.to_string())),
                };
                std::future::ready(item)
            })
            .boxed();
        Ok(Terminal {
            exec_id: session.id.clone(),
            output,
            input,
            closer: Some(closer),
        })
    }

    /// Start `argv` with standard input attached, on a TTY when `term` names
    /// the terminal type; the sandbox counts as busy until the closer runs.
    async fn start_attached(
        self: &Arc<Self>,
        caller: &Caller,
        id: &str,
        argv: Vec<String>,
        term: Option<&str>,
    ) -> Result<(ExecSession, Pin<Box<dyn AsyncWrite + Send>>, Closer), SandboxError> {
        let row = self.row(caller, id).await?;
        let tag = self.new_tag();
        let mut env = vec![format!("SY_EXEC={tag}")];
        env.extend(term.map(str::to_string));
        let spec = ExecSpec {
            argv,
            env,
            workdir: super::files::WORKSPACE.into(),
            tty: term.is_some(),
            stdin: true,
        };
        let (container, mut session) = self.start_exec(&row, &spec).await?;
        self.busy(&row.id);
        let closer = Closer {
            service: self.clone(),
            sandbox: row.id,
            container,
            tag,
        };
        let Some(input) = session.input.take() else {
            closer.close();
            return Err(SandboxError::Failed("the program has no input".into()));
        };
        Ok((session, input, closer))
    }

    /// Resize a terminal.
    pub async fn resize(&self, exec_id: &str, rows: u16, cols: u16) -> Result<(), SandboxError> {
        Ok(self.driver.resize(exec_id, rows, cols).await?)
    }
}

/// An open terminal or attached program; dropping it ends the program and
/// everything it started.
pub struct Terminal {
    /// Engine exec id (for [`Sandboxes::resize`]).
    pub exec_id: String,
    /// What the terminal shows.
    pub output: futures_util::stream::BoxStream<'static, Result<Bytes, String>>,
    /// What is typed.
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
    closer: Option<Closer>,
}

struct Closer {
    service: Arc<Sandboxes>,
    sandbox: String,
    container: String,
    tag: String,
}

impl Closer {
    /// End the program and everything it started, and release the sandbox.
    fn close(self) {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                self.service.kill(&self.container, &self.tag).await;
                self.service.done(&self.sandbox).await;
            });
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(c) = self.closer.take() {
            c.close();
        }
    }
}
