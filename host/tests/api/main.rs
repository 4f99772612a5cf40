//! The REST API driven over HTTP on loopback, against SQLite and a real Postgres.

#[path = "../common/mod.rs"]
mod common;
mod harness;

mod agent_tasks;
mod auth;
mod authz;
mod bad_input;
mod boundaries;
mod channels;
mod contract;
mod flow;
mod guests;
mod mcp;
mod mcp_servers;
mod mcp_tasks;
mod plugin_http;
mod plugin_isolation;
mod receiver;
mod reload;
mod sandbox_disk;
mod sandbox_files;
mod sandbox_procs;
mod sandboxes;
mod schedules;
mod sessions;
mod setup;
mod skills;
mod standby;
mod store;
mod store_intake;
mod store_tasks;
mod tasks;
mod tasks_streams;
