//! The Model Context Protocol face of the server (rmcp): every enabled plugin
//! tool a user may call, skills and plugin prompts as prompts, skill files and
//! plugin resources as resources, with live `list_changed` notifications,
//! plugin log lines as `notifications/message`, progress and cancellation.
//!
//! Two transports serve the same [`handler::Handler`]: streamable HTTP at
//! `/mcp` inside the warp server ([`http`]) and stdio for clients that launch a
//! command ([`serve_stdio`]). Like the REST API, this module is a thin face:
//! tools, skills, prompts and resources live in their own modules.

#![allow(deprecated)] // MCP logging: deprecated in the draft protocol, current in 2025-11-25.

pub mod access;
mod call;
pub mod catalog;
mod convert;
mod fast;
pub mod handler;
pub mod http;
pub mod hub;
mod malformed;
mod observer;
mod read;
pub mod sandbox_tools;
pub mod schedule_tools;
pub mod task_tools;
pub mod tasks;

use crate::auth::Identity;
use crate::server::Services;
use std::sync::Arc;

pub use http::{Endpoint, route};

/// Serve one MCP session over stdin/stdout as `who` until the client closes it.
pub async fn serve_stdio(s: Arc<Services>, who: Identity) -> Result<(), String> {
    use rmcp::ServiceExt;
    let hub = hub::Hub::start(&s);
    let handler = handler::Handler::new(s, hub, Some(who));
    let running = handler
        .serve(rmcp::transport::io::stdio())
        .await
        .map_err(|e| format!("starting the MCP session: {e}"))?;
    running
        .waiting()
        .await
        .map_err(|e| format!("the MCP session failed: {e}"))?;
    Ok(())
}
