//! {{name}}: a switchyard resource plugin (MCP resources).

use switchyard_plugin_sdk::prelude::*;

struct Plugin;

impl ResourcePlugin for Plugin {
    fn resources() -> Resources {
        Resources::new()
            .with(
                Resource::new("{{name}}://readme", "readme", |_uri| {
                    Ok(Body::Text("# {{name}}\n\nServed by a switchyard plugin.\n".into()))
                })
                .mime_type("text/markdown"),
            )
            .with(
                Resource::template("{{name}}://notes/{id}", "note", |_uri, vars| {
                    Ok(Body::Text(format!("Note {}", vars["id"])))
                })
                .description("A note by id")
                .mime_type("text/plain"),
            )
    }
}

export_resources!(Plugin);
