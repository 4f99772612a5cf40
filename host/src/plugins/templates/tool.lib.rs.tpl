//! {{name}}: a switchyard tool plugin.

use switchyard_plugin_sdk::prelude::*;

/// Arguments of `greet`; the doc comments become the JSON Schema descriptions.
#[derive(Deserialize, JsonSchema)]
struct GreetArgs {
    /// Who to greet.
    name: String,
}

struct Plugin;

impl ToolPlugin for Plugin {
    fn tools() -> Tools {
        Tools::new().with(
            Tool::new("greet", "Greet someone by name", |args: GreetArgs, _cx| {
                Ok(Output::text(format!("Hello, {}!", args.name)))
            })
            .read_only(),
        )
    }
}

export_tools!(Plugin);
