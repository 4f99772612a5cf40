//! External MCP servers as tool sources. A user registers a remote MCP server
//! (a streamable-HTTP URL with request headers kept sealed; an administrator
//! may also register a stdio server command, run inside a sandbox). The host
//! stays connected to each enabled one as an MCP client (rmcp) and offers its
//! tools as `NAME__TOOL` to the owner's agent tasks and `/mcp` sessions — to
//! everyone's when an administrator shares it. Tool-list changes are followed
//! and passed on; an outage shows on the server's status and as tool errors,
//! never as a failure of the host; every call has a timeout.
//!
//! Servers registered by non-administrators reach only public addresses (the
//! rule of [`crate::net`], as for URL installs).

mod link;
mod service;
pub mod spec;
mod stdio;
pub mod transport;

pub use link::{State, Status};
pub use service::{NewServer, Remotes, Server, ServerPatch};

use crate::store::StoreError;

/// Most servers one user may register.
pub const MAX_PER_USER: usize = 50;
/// Longest tool-call timeout a server may have (seconds).
pub const MAX_TIMEOUT_SECS: i64 = 600;
/// The tool-call timeout when none is given (seconds).
pub const DEFAULT_TIMEOUT_SECS: i64 = 60;

/// Why an operation on external MCP servers failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// No such server (or not the caller's).
    #[error("{0}")]
    NotFound(String),
    /// Bad settings.
    #[error("{0}")]
    Invalid(String),
    /// The caller may not do this (stdio servers, sharing, private addresses).
    #[error("{0}")]
    Forbidden(String),
    /// The name is taken.
    #[error("{0} already exists")]
    Conflict(String),
    /// The caller has too many servers.
    #[error("{0}")]
    TooMany(String),
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(String),
}

impl From<StoreError> for RemoteError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(what),
            other => Self::Store(other.to_string()),
        }
    }
}

/// Why a call to an external server's tool did not give a result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No such server or tool for this caller.
    #[error("{0}")]
    Unknown(String),
    /// The arguments do not match the tool's schema.
    #[error("{0}")]
    InvalidArguments(String),
    /// The server is down or the connection broke.
    #[error("{0}")]
    Unavailable(String),
    /// The call took longer than the server's timeout.
    #[error("{0}")]
    Timeout(String),
    /// The server answered with a protocol error.
    #[error("{0}")]
    Failed(String),
    /// The caller cancelled the call.
    #[error("the call was cancelled")]
    Cancelled,
}
