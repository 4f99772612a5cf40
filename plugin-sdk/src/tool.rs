//! Typed tools: a tool is a function over an argument type whose JSON Schema is
//! generated with `schemars`; the SDK parses and checks the arguments before the
//! function runs and reports bad input as `invalid-input`.

use crate::bindings::switchyard::plugin::types::{Blob, Content, EmbeddedResource, ResourceBody};
use crate::error::{Error, Result};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Who is calling a tool.
#[derive(Debug, Clone)]
pub struct Context {
    /// A unique id for this call.
    pub request_id: String,
    /// The authenticated caller, if any.
    pub caller: Option<String>,
}

/// What a tool returns: content blocks and optional structured JSON.
#[derive(Debug, Clone, Default)]
pub struct Output {
    content: Vec<Content>,
    structured: Option<Value>,
}

impl Output {
    /// One text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self::default().with(Content::Text(text.into()))
    }
    /// Structured JSON: a JSON block plus `structured` for clients that read it.
    pub fn json<T: Serialize>(value: &T) -> Result<Self> {
        let value = serde_json::to_value(value)?;
        Ok(Self {
            content: vec![Content::Json(value.to_string())],
            structured: Some(value),
        })
    }
    /// One image block.
    pub fn image(mime_type: &str, data: Vec<u8>) -> Self {
        Self::default().with(Content::Image(Blob {
            mime_type: mime_type.to_string(),
            data,
        }))
    }
    /// One audio block (e.g. `audio/wav`).
    pub fn audio(mime_type: &str, data: Vec<u8>) -> Self {
        Self::default().with(Content::Audio(Blob {
            mime_type: mime_type.to_string(),
            data,
        }))
    }
    /// One embedded text resource at `uri` (shown by MCP clients as a document).
    pub fn resource_text(uri: &str, mime_type: &str, text: impl Into<String>) -> Self {
        Self::default().with(Content::Resource(EmbeddedResource {
            uri: uri.to_string(),
            mime_type: Some(mime_type.to_string()),
            body: ResourceBody::Text(text.into()),
        }))
    }
    /// Append a content block.
    pub fn with(mut self, block: Content) -> Self {
        self.content.push(block);
        self
    }
}

type Handler = Box<dyn Fn(Value, &Context) -> Result<Output>>;

/// One tool: its description, schemas, hints and handler.
pub struct Tool {
    name: String,
    title: Option<String>,
    description: String,
    input_schema: fn() -> Value,
    output_schema: Option<fn() -> Value>,
    annotations: [Option<bool>; 4],
    handler: Handler,
}

/// The JSON Schema of `T`, generated only when the tools are listed (not per call).
fn schema_of<T: JsonSchema>() -> Value {
    schemars::schema_for!(T).to_value()
}

impl Tool {
    /// A tool named `name` that runs `handler` on arguments of type `A`.
    pub fn new<A, F>(name: &str, description: &str, handler: F) -> Self
    where
        A: DeserializeOwned + JsonSchema,
        F: Fn(A, &Context) -> Result<Output> + 'static,
    {
        let tool = name.to_string();
        Self {
            name: name.to_string(),
            title: None,
            description: description.to_string(),
            input_schema: schema_of::<A>,
            output_schema: None,
            annotations: [None; 4],
            handler: Box::new(move |value, cx| {
                let args = serde_json::from_value::<A>(value).map_err(|e| {
                    Error::invalid_input(format!("invalid arguments for `{tool}`: {e}"))
                })?;
                handler(args, cx)
            }),
        }
    }
    /// A human-readable title.
    pub fn title(mut self, title: &str) -> Self {
        self.title = Some(title.to_string());
        self
    }
    /// Declare the schema of the structured output.
    pub fn output<T: JsonSchema>(mut self) -> Self {
        self.output_schema = Some(schema_of::<T>);
        self
    }
    /// The tool changes nothing.
    pub fn read_only(mut self) -> Self {
        self.annotations[0] = Some(true);
        self
    }
    /// The tool may destroy or overwrite data.
    pub fn destructive(mut self) -> Self {
        self.annotations[1] = Some(true);
        self
    }
    /// Repeating a call has no further effect.
    pub fn idempotent(mut self) -> Self {
        self.annotations[2] = Some(true);
        self
    }
    /// The tool reaches systems outside the host.
    pub fn open_world(mut self) -> Self {
        self.annotations[3] = Some(true);
        self
    }
}

/// The set of tools a plugin offers.
#[derive(Default)]
pub struct Tools(Vec<Tool>);

impl Tools {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }
    /// Add a tool from a name, a description and a typed handler.
    pub fn tool<A, F>(self, name: &str, description: &str, handler: F) -> Self
    where
        A: DeserializeOwned + JsonSchema,
        F: Fn(A, &Context) -> Result<Output> + 'static,
    {
        self.with(Tool::new(name, description, handler))
    }
    /// Add a fully configured [`Tool`].
    pub fn with(mut self, tool: Tool) -> Self {
        self.0.push(tool);
        self
    }
}

/// Implement this and call [`export_tools!`](crate::export_tools) to make a tool plugin.
pub trait ToolPlugin {
    /// The plugin's tools. Called once per call: keep it cheap.
    fn tools() -> Tools;
}

mod export {
    use super::{Context, ToolPlugin, Value};
    use crate::error::{Error, Result};
    use crate::tool_world::exports::switchyard::plugin::tool::{
        CallContext, ToolAnnotations, ToolOutput, ToolSpec,
    };

    /// The specs of `P`'s tools (used by [`export_tools!`](crate::export_tools)).
    pub fn list<P: ToolPlugin>() -> Vec<ToolSpec> {
        P::tools()
            .0
            .into_iter()
            .map(|t| ToolSpec {
                name: t.name,
                title: t.title,
                description: t.description,
                input_schema: (t.input_schema)().to_string(),
                output_schema: t.output_schema.map(|s| s().to_string()),
                annotations: ToolAnnotations {
                    read_only: t.annotations[0],
                    destructive: t.annotations[1],
                    idempotent: t.annotations[2],
                    open_world: t.annotations[3],
                },
            })
            .collect()
    }

    /// Run one of `P`'s tools (used by [`export_tools!`](crate::export_tools)).
    pub fn call<P: ToolPlugin>(name: &str, arguments: &str, cx: CallContext) -> Result<ToolOutput> {
        let tools = P::tools();
        let tool =
            tools.0.iter().find(|t| t.name == name).ok_or_else(|| {
                Error::not_found(format!("this plugin has no tool named `{name}`"))
            })?;
        let args: Value = serde_json::from_str(arguments)
            .map_err(|e| Error::invalid_input(format!("the arguments are not valid JSON: {e}")))?;
        let cx = Context {
            request_id: cx.request_id,
            caller: cx.caller,
        };
        let out = (tool.handler)(args, &cx)?;
        Ok(ToolOutput {
            content: out.content,
            structured: out.structured.map(|v| v.to_string()),
        })
    }
}

#[doc(hidden)]
pub use export::{call as __call, list as __list};

/// Export a [`ToolPlugin`] as the component's `tool` interface.
#[macro_export]
macro_rules! export_tools {
    ($plugin:ty) => {
        struct __SwitchyardToolExport;
        impl $crate::tool_world::exports::switchyard::plugin::tool::Guest
            for __SwitchyardToolExport
        {
            fn list_tools()
            -> ::std::vec::Vec<$crate::tool_world::exports::switchyard::plugin::tool::ToolSpec>
            {
                $crate::tool::__list::<$plugin>()
            }
            fn call_tool(
                name: ::std::string::String,
                arguments: ::std::string::String,
                context: $crate::tool_world::exports::switchyard::plugin::tool::CallContext,
            ) -> ::std::result::Result<
                $crate::tool_world::exports::switchyard::plugin::tool::ToolOutput,
                $crate::Error,
            > {
                $crate::tool::__call::<$plugin>(&name, &arguments, context)
            }
        }
        $crate::tool_world::export_tool_world!(__SwitchyardToolExport with_types_in $crate::tool_world);
    };
}
