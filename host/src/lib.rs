//! switchyard: a runtime for AI-agent work.
//!
//! The host loads WebAssembly component plugins (channels, skills, tools,
//! prompts and resources, defined in `wit/`) and runs them fast and contained.
//! Modules follow the concepts: [`runtime`] runs components, [`plugins`] owns
//! packages, manifests and the installed-plugin registry; [`tools`], [`skills`],
//! [`prompts`] and [`resources`] are the typed faces of what plugins export;
//! [`api`] (REST) and [`mcp`] (Model Context Protocol) are thin faces over the
//! same [`server::Services`]; [`config`] says where data lives; [`net`] is the
//! outbound address rule; [`agent`] talks to the LLM providers; [`remote`] is
//! the MCP client that lends the agent external MCP servers' tools.

pub mod agent;
pub mod api;
pub mod auth;
pub mod channels;
pub mod config;
pub mod datadir;
pub mod mcp;
pub mod net;
pub mod plugins;
pub mod prompts;
pub mod remote;
pub mod resources;
pub mod runtime;
pub mod sandbox;
pub mod schedules;
pub mod server;
pub mod skills;
pub mod store;
pub mod tasks;
pub mod tools;
