//! {{name}}: a switchyard prompt plugin (MCP prompts).

use switchyard_plugin_sdk::prelude::*;

struct Plugin;

impl PromptPlugin for Plugin {
    fn prompts() -> Prompts {
        Prompts::new().with(
            Prompt::new("brief", "Ask for a short brief on a topic", |args| {
                Ok(vec![Message::user(format!(
                    "Write a brief on {} for {}.",
                    args.require("topic")?,
                    args.get("audience").unwrap_or("engineers")
                ))])
            })
            .required("topic", "What the brief is about")
            .optional("audience", "Who reads it (default: engineers)"),
        )
    }
}

export_prompts!(Plugin);
