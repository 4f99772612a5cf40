//! WebSocket faces of sandboxes: a command's output as it happens
//! (`/sandboxes/{id}/exec/ws`) and an interactive terminal
//! (`/sandboxes/{id}/terminal`).
//!
//! Both authenticate and check `Host`/`Origin` as [`super::ws_auth`] says
//! (Bearer header, single-use `?ticket=`, or a JWT `?access_token=`). Output travels in binary frames whose first byte names the stream
//! (1 stdout, 2 stderr; the terminal sends raw bytes); control messages are JSON
//! text frames.

use super::error::ApiError;
use super::ws_auth::ws_ctx;
use super::{Ctx, Segment};
use crate::sandbox::driver::Chunk;
use crate::sandbox::exec::{ExecEvent, ExecRequest};
use crate::server::Services;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use warp::filters::ws::{Message, Ws};
use warp::{Filter, Rejection, Reply};

/// Largest message a client may send (a command or a burst of keystrokes).
const MAX_MESSAGE: usize = 2 << 20;

/// A client's terminal control message.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum Control {
    /// The window changed size.
    Resize {
        /// Rows.
        rows: u16,
        /// Columns.
        cols: u16,
    },
}

/// Terminal size from the query (`rows`, `cols`).
#[derive(Debug, Default, Deserialize)]
struct Size {
    #[serde(default, deserialize_with = "super::query_number")]
    rows: Option<i64>,
    #[serde(default, deserialize_with = "super::query_number")]
    cols: Option<i64>,
}

pub(super) fn routes(
    s: Arc<Services>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let exec = warp::path!("sandboxes" / Segment / "exec" / "ws")
        .and(warp::get())
        .and(ws_ctx(s.clone()))
        .and(warp::ws())
        .and_then(|id: Segment, c: Ctx, ws: Ws| async move {
            super::respond(open_exec(c, id.0, ws).await)
        });
    let terminal = warp::path!("sandboxes" / Segment / "terminal")
        .and(warp::get())
        .and(ws_ctx(s))
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::ws())
        .and_then(|id: Segment, c: Ctx, raw: String, ws: Ws| async move {
            super::respond(open_terminal(c, id.0, raw, ws).await)
        });
    exec.or(terminal).unify()
}

async fn open_exec(c: Ctx, id: String, ws: Ws) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("sandboxes")?;
    let caller = c.sandbox_caller();
    c.s.sandboxes.get(&caller, &id).await?;
    let sandboxes = c.s.sandboxes.clone();
    Ok(ws
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            let (mut tx, mut rx) = socket.split();
            let request = match rx.next().await {
                Some(Ok(m)) if m.is_text() => {
                    serde_json::from_slice::<ExecRequest>(m.as_bytes()).map_err(|e| e.to_string())
                }
                _ => Err("send the command first, as a JSON text message".into()),
            };
            let events = match request {
                Ok(req) => sandboxes.exec(&caller, &id, req).await.map_err(|e| e.to_string()),
                Err(e) => Err(format!("invalid command: {e}")),
            };
            let mut events = match events {
                Ok(events) => events,
                Err(message) => {
                    let _ = tx.send(control(serde_json::json!({ "type": "error", "message": message }))).await;
                    let _ = tx.close().await;
                    return;
                }
            };
            loop {
                tokio::select! {
                    event = events.recv() => {
                        let Some(event) = event else { break };
                        let message = match event {
                            ExecEvent::Output(Chunk::Stdout(b)) => framed(1, &b),
                            ExecEvent::Output(Chunk::Stderr(b)) => framed(2, &b),
                            ExecEvent::Truncated { limit } => control(serde_json::json!({ "type": "truncated", "limit": limit })),
                            ExecEvent::Exit(outcome) => {
                                let mut v = serde_json::to_value(outcome).unwrap_or_default();
                                v["type"] = "exit".into();
                                control(v)
                            }
                        };
                        if tx.send(message).await.is_err() {
                            break;
                        }
                    }
                    incoming = rx.next() => match incoming {
                        Some(Ok(m)) if m.is_close() => break,
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                }
            }
            let _ = tx.close().await;
        })
        .into_response())
}

async fn open_terminal(
    c: Ctx,
    id: String,
    raw: String,
    ws: Ws,
) -> Result<warp::reply::Response, ApiError> {
    c.require_scope("sandboxes")?;
    let size: Size = serde_urlencoded::from_str(&raw)
        .map_err(|_| ApiError::bad_request("rows and cols are whole numbers"))?;
    let dim = |v: Option<i64>, default: u16| -> Result<u16, ApiError> {
        match v {
            None => Ok(default),
            Some(n @ 1..=1000) => Ok(n as u16),
            Some(_) => Err(ApiError::bad_request(
                "rows and cols are between 1 and 1000",
            )),
        }
    };
    let (rows, cols) = (dim(size.rows, 24)?, dim(size.cols, 80)?);
    let caller = c.sandbox_caller();
    let sandboxes = c.s.sandboxes.clone();
    let mut terminal = sandboxes.terminal(&caller, &id, rows, cols).await?;
    Ok(ws
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            let (mut tx, mut rx) = socket.split();
            loop {
                tokio::select! {
                    out = terminal.output.next() => match out {
                        Some(Ok(bytes)) => {
                            if tx.send(Message::binary(bytes.to_vec())).await.is_err() {
                                break;
                            }
                        }
                        _ => {
                            let _ = tx.send(control(serde_json::json!({ "type": "exit" }))).await;
                            break;
                        }
                    },
                    incoming = rx.next() => match incoming {
                        Some(Ok(m)) if m.is_binary() => {
                            if terminal.input.write_all(m.as_bytes()).await.is_err() {
                                break;
                            }
                        }
                        Some(Ok(m)) if m.is_text() => {
                            match serde_json::from_slice::<Control>(m.as_bytes()) {
                                Ok(Control::Resize { rows, cols }) if rows > 0 && cols > 0 => {
                                    let _ = sandboxes.resize(&terminal.exec_id, rows, cols).await;
                                }
                                _ => {
                                    let note = serde_json::json!({ "type": "error", "message": "text messages are controls: {\"type\":\"resize\",\"rows\":R,\"cols\":C}; send keystrokes as binary" });
                                    let _ = tx.send(control(note)).await;
                                }
                            }
                        }
                        Some(Ok(m)) if m.is_close() => break,
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                }
            }
            let _ = tx.close().await;
            drop(terminal);
        })
        .into_response())
}

fn framed(stream: u8, data: &[u8]) -> Message {
    let mut frame = Vec::with_capacity(data.len() + 1);
    frame.push(stream);
    frame.extend_from_slice(data);
    Message::binary(frame)
}

fn control(value: serde_json::Value) -> Message {
    Message::text(value.to_string())
}
