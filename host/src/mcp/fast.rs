//! The direct path for `tools/call` in an established HTTP session.
//!
//! Through rmcp a call crosses four tasks (the session worker, the service,
//! the spawned handler and back) before its SSE answer is written. The common
//! case needs none of that: a single `tools/call` without a progress token, in a
//! session whose client is attached. That is answered here on the request's
//! own task, with an `application/json` body (which every streamable-HTTP
//! client accepts). Log lines still reach the session's client, and
//! `notifications/cancelled` still stops the call: the request id is tracked
//! in the hub. Anything else, including anything malformed, goes to rmcp,
//! which answers it with the proper protocol error.

use super::call::ToolCall;
use super::hub::Hub;
use crate::auth::Identity;
use crate::server::Services;
use rmcp::model::{CallToolRequestParams, LoggingLevel, ProtocolVersion, RequestId};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use warp::Reply;
use warp::http::HeaderMap;

#[derive(Deserialize)]
struct Call<'a> {
    #[serde(borrow)]
    jsonrpc: &'a str,
    id: RequestId,
    #[serde(borrow)]
    method: &'a str,
    params: CallToolRequestParams,
}

/// Whether the client accepts a JSON answer and speaks a revision we serve.
fn headers_fit(headers: &HeaderMap) -> bool {
    let accepts_json = headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json"));
    let version_known = headers
        .get("mcp-protocol-version")
        .map(|v| {
            let known = ProtocolVersion::known_up_to(&ProtocolVersion::V_2025_11_25);
            v.to_str()
                .is_ok_and(|v| known.iter().any(|k| k.as_str() == v))
        })
        .unwrap_or(true);
    accepts_json && version_known
}

/// Answer `body` directly when it is a plain `tools/call` in attached session
/// `session`; `None` hands the request to rmcp.
pub async fn answer(
    s: &Services,
    hub: &Hub,
    session: &str,
    who: &Identity,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<warp::reply::Response> {
    if !body.starts_with(b"{") || !headers_fit(headers) {
        return None;
    }
    let call: Call<'_> = serde_json::from_slice(body).ok()?;
    if call.jsonrpc != "2.0" || call.method != "tools/call" {
        return None;
    }
    let meta = call.params.meta.as_ref();
    if meta.is_some_and(|m| m.get_progress_token().is_some()) {
        return None;
    }
    let attached = hub.attached(session).filter(|a| a.fresh())?;
    let cancel = CancellationToken::new();
    let _tracked = hub.track(session, &call.id, cancel.clone());
    let level = attached
        .level
        .lock()
        .map(|l| *l)
        .unwrap_or(LoggingLevel::Info);
    let run = ToolCall {
        s,
        who,
        peer: attached.peer,
        progress_token: None,
        level,
        cancel,
    }
    .run(&call.params)
    .await;
    let message = match run {
        Ok(mut result) => {
            // Results of the handshake-era revisions carry no `resultType`.
            result.result_type = None;
            serde_json::json!({ "jsonrpc": "2.0", "id": call.id, "result": result })
        }
        Err(error) => serde_json::json!({ "jsonrpc": "2.0", "id": call.id, "error": error }),
    };
    Some(warp::reply::json(&message).into_response())
}
