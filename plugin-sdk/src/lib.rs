//! Write switchyard plugins in Rust.
//!
//! A plugin is a WebAssembly component built for `wasm32-wasip2` that exports the
//! `tool`, `channel`, `skill`, `prompt` and/or `resource` interfaces of the WIT
//! package `switchyard:plugin@0.1.0`: implement [`ToolPlugin`],
//! [`channel::ChannelPlugin`], [`SkillPlugin`], [`PromptPlugin`] or
//! [`ResourcePlugin`] and export your type with [`export_tools!`],
//! [`export_channel!`], [`export_skills!`], [`export_prompts!`] or
//! [`export_resources!`] (several in one crate combine). Only what you export
//! ends up in the component.
//!
//! ```ignore
//! use switchyard_plugin_sdk::prelude::*;
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct Greet { /// Who to greet.
//!     name: String }
//!
//! struct Demo;
//! impl ToolPlugin for Demo {
//!     fn tools() -> Tools {
//!         Tools::new().tool("greet", "Say hello", |a: Greet, _cx| Ok(Output::text(format!("Hello, {}!", a.name))))
//!     }
//! }
//! export_tools!(Demo);
//! ```
//!
//! Helpers for what the host offers: [`http`] (outbound HTTP to granted hosts),
//! [`kv`] (the plugin's own key-value space), [`config`] (configuration and
//! granted secrets), [`log`], [`progress`] and [`now_ms`].

#![allow(missing_docs, unsafe_code)]

/// Raw bindings to the imports every plugin may use (`world imports`).
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "switchyard:plugin/imports",
        generate_all,
    });
}

/// Bindings for one exporting world: its imports map onto [`bindings`], and its
/// export macro is public so the `export_*!` macros can expand in the plugin crate
/// (which is where the component-type section naming the export is emitted).
macro_rules! export_world {
    ($module:ident, $world:literal, $export_macro:literal, $bindings_module:literal) => {
        #[doc(hidden)]
        pub mod $module {
            wit_bindgen::generate!({
                path: "../wit",
                world: $world,
                with: {
                    "switchyard:plugin/types@0.1.0": crate::bindings::switchyard::plugin::types,
                    "switchyard:plugin/host@0.1.0": crate::bindings::switchyard::plugin::host,
                    "wasi:http/types@0.2.12": crate::bindings::wasi::http::types,
                    "wasi:http/outgoing-handler@0.2.12": crate::bindings::wasi::http::outgoing_handler,
                    "wasi:io/poll@0.2.12": crate::bindings::wasi::io::poll,
                    "wasi:io/error@0.2.12": crate::bindings::wasi::io::error,
                    "wasi:io/streams@0.2.12": crate::bindings::wasi::io::streams,
                    "wasi:clocks/monotonic-clock@0.2.12": crate::bindings::wasi::clocks::monotonic_clock,
                },
                pub_export_macro: true,
                export_macro_name: $export_macro,
                default_bindings_module: $bindings_module,
            });
        }
    };
}

export_world!(
    tool_world,
    "switchyard:plugin/tool-plugin",
    "export_tool_world",
    "switchyard_plugin_sdk::tool_world"
);
export_world!(
    channel_world,
    "switchyard:plugin/channel-plugin",
    "export_channel_world",
    "switchyard_plugin_sdk::channel_world"
);
export_world!(
    prompt_world,
    "switchyard:plugin/prompt-plugin",
    "export_prompt_world",
    "switchyard_plugin_sdk::prompt_world"
);
export_world!(
    resource_world,
    "switchyard:plugin/resource-plugin",
    "export_resource_world",
    "switchyard_plugin_sdk::resource_world"
);
export_world!(
    skill_world,
    "switchyard:plugin/skill-plugin",
    "export_skill_world",
    "switchyard_plugin_sdk::skill_world"
);

pub mod channel;
mod error;
mod host_api;
pub mod http;
pub mod prompt;
pub mod resource;
pub mod skill;
pub mod tool;

pub use bindings::switchyard::plugin::types::{Blob, Content, HttpRequest, HttpResponse};
pub use error::{Error, Result};
pub use host_api::{config, kv, log, now_ms, progress};
pub use prompt::{Message, Prompt, PromptPlugin, Prompts};
pub use resource::{Body, Resource, ResourcePlugin, Resources};
pub use schemars::{self, JsonSchema};
pub use serde::{self, Deserialize, Serialize};
pub use serde_json::{self, Value, json};
pub use skill::{Skill, SkillPlugin};
pub use tool::{Context, Output, Tool, ToolPlugin, Tools};

/// Everything a plugin usually needs: `use switchyard_plugin_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Body, Content, Context, Deserialize, Error, JsonSchema, Message, Output, Prompt,
        PromptPlugin, Prompts, Resource, ResourcePlugin, Resources, Result, Serialize, Skill,
        SkillPlugin, Tool, ToolPlugin, Tools, Value, config, export_prompts, export_resources,
        export_skills, export_tools, http, json, kv, log, progress, serde_json,
    };
    pub use crate::{
        HttpRequest, HttpResponse,
        channel::{ChannelInfo, ChannelPlugin, InboundMessage, OutboundMessage, WebhookOutcome},
        export_channel,
    };
}
