//! stdio MCP servers, which only administrators may register: the command runs
//! inside a sandbox of its owner's (`mcp-NAME`, created on first use with the
//! default limits, so it is as confined as any agent work), without a
//! terminal; its standard input and output carry MCP, its standard error goes
//! to the log. Closing the connection ends the program.

use crate::sandbox::terminal::Terminal;
use crate::sandbox::{Caller, CreateSandbox, Sandboxes};
use crate::store::McpServerRow;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::io::StreamReader;

/// The name of the sandbox a stdio server of `server` runs in.
pub fn sandbox_name(server: &str) -> String {
    format!("mcp-{server}")
}

/// The program's standard output; holds the program, which ends when this is dropped.
pub struct Stdout {
    reader: StreamReader<futures_util::stream::BoxStream<'static, std::io::Result<Bytes>>, Bytes>,
    _program: Terminal,
}

impl AsyncRead for Stdout {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

/// Start `command` of server `row` in its sandbox: the pipe to speak MCP over.
pub async fn start(
    sandboxes: &Arc<Sandboxes>,
    row: &McpServerRow,
    command: &[String],
) -> Result<(Stdout, Pin<Box<dyn AsyncWrite + Send>>), String> {
    let caller = Caller {
        user_id: row.owner_id.clone(),
        admin: true,
    };
    let name = sandbox_name(&row.name);
    let (mine, _) = sandboxes
        .list(&caller, false, None, 1000)
        .await
        .map_err(|e| format!("cannot list the sandboxes: {e}"))?;
    let id = match mine.into_iter().find(|s| s.name == name) {
        Some(s) => s.id,
        None => {
            let request = CreateSandbox {
                name: Some(name.clone()),
                limits: Default::default(),
            };
            sandboxes
                .create(&caller, request)
                .await
                .map_err(|e| format!("cannot create its sandbox `{name}`: {e}"))?
                .id
        }
    };
    let mut program = sandboxes
        .attach(
            &caller,
            &id,
            command.to_vec(),
            &format!("mcp-server:{}", row.name),
        )
        .await
        .map_err(|e| format!("cannot start `{}` in sandbox `{name}`: {e}", command[0]))?;
    let output = std::mem::replace(&mut program.output, futures_util::stream::empty().boxed());
    let input = std::mem::replace(&mut program.input, Box::pin(tokio::io::sink()));
    let output = output.map_err(std::io::Error::other).boxed();
    Ok((
        Stdout {
            reader: StreamReader::new(output),
            _program: program,
        },
        input,
    ))
}

/// Remove the sandbox of stdio server `row` (its program has ended or is ending).
pub async fn remove_sandbox(sandboxes: &Arc<Sandboxes>, row: &McpServerRow) {
    let caller = Caller {
        user_id: row.owner_id.clone(),
        admin: true,
    };
    let name = sandbox_name(&row.name);
    let Ok((mine, _)) = sandboxes.list(&caller, false, None, 1000).await else {
        return;
    };
    if let Some(s) = mine.into_iter().find(|s| s.name == name)
        && let Err(e) = sandboxes.delete(&caller, &s.id, true).await
    {
        tracing::warn!(sandbox = %s.id, error = %e, "cannot remove a stdio MCP server's sandbox");
    }
}
