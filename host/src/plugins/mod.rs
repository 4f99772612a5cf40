//! Plugins: manifests, packages, the installed-plugin registry in the data dir.

pub mod manifest;
