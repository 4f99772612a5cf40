//! The `bindgen!` output for the `switchyard:plugin@0.1.0` package (world `plugin`).
//!
//! Only the host's side of the contract lives here: the `host` import trait and
//! the export accessors for `tool`, `channel`, `skill`, `prompt` and `resource`. `wasi:*` interfaces map
//! to the wasmtime-wasi and wasmtime-wasi-http implementations.

#![allow(missing_docs, unused_qualifications)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "switchyard:plugin/plugin",
    imports: { default: async },
    exports: { default: async },
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
});

pub use self::exports::switchyard::plugin::{channel, prompt, resource, skill, tool};
pub use self::switchyard::plugin::host;
pub use self::switchyard::plugin::types;
