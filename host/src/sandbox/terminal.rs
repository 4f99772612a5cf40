//! Interactive terminals: a login shell on a TTY in a sandbox, ended with
//! everything it started when it closes.

use super::driver::{Chunk, ExecSpec};
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
        let row = self.row(caller, id).await?;
        let tag = self.new_tag();
        let spec = ExecSpec {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "echo 1000 > /proc/self/oom_score_adj; exec bash -l".into(),
            ],
            env: vec![format!("SY_EXEC={tag}"), "TERM=xterm-256color".into()],
            workdir: super::files::WORKSPACE.into(),
            tty: true,
            stdin: true,
        };
        let (container, mut session) = self.start_exec(&row, &spec).await?;
        self.busy(&row.id);
        let input = session
            .input
            .take()
            .ok_or_else(|| SandboxError::Failed("the terminal has no input".into()))?;
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
            closer: Some(Closer {
                service: self.clone(),
                sandbox: row.id,
                container,
                tag,
            }),
        };
        if rows > 0 && cols > 0 {
            let _ = self.driver.resize(&terminal.exec_id, rows, cols).await;
        }
        Ok(terminal)
    }

    /// Resize a terminal.
    pub async fn resize(&self, exec_id: &str, rows: u16, cols: u16) -> Result<(), SandboxError> {
        Ok(self.driver.resize(exec_id, rows, cols).await?)
    }
}

/// An open terminal; dropping it ends the shell and everything it started.
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

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(c) = self.closer.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(async move {
                c.service.kill(&c.container, &c.tag).await;
                c.service.done(&c.sandbox).await;
            });
        }
    }
}
