//! switchyard: a runtime for AI-agent work.
//!
//! The host loads WebAssembly component plugins (channels, skills and tools,
//! defined in `wit/`) and runs them fast and contained. Modules follow the
//! concepts: [`runtime`] runs components, [`plugins`] owns packages, manifests and
//! the installed-plugin registry, [`tools`] and [`skills`] are the typed faces of
//! what plugins export, and [`config`] says where data lives.

pub mod api;
pub mod auth;
pub mod config;
pub mod plugins;
pub mod runtime;
pub mod server;
pub mod skills;
pub mod store;
pub mod tools;
