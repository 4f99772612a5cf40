//! Prompts: message templates a person picks in an MCP client, filled in with
//! arguments (MCP `prompts/list` and `prompts/get`).

use crate::Content;
use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// Who says a message of a filled-in prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The person using the client.
    User,
    /// The model.
    Assistant,
}

/// One message of a filled-in prompt.
#[derive(Debug, Clone)]
pub struct Message {
    /// Who says it.
    pub role: Role,
    /// What is said.
    pub content: Content,
}

impl Message {
    /// A text message from the user.
    pub fn user(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: Content::Text(text.into()),
        }
    }
    /// A text message from the assistant.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: Content::Text(text.into()),
        }
    }
}

/// The arguments a prompt was filled in with (the host checked that every
/// required one is present).
#[derive(Debug, Clone, Default)]
pub struct Arguments(BTreeMap<String, String>);

impl Arguments {
    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
    /// The value of `name`, or `invalid-input` naming it.
    pub fn require(&self, name: &str) -> Result<&str> {
        self.get(name)
            .ok_or_else(|| Error::invalid_input(format!("argument `{name}` is required")))
    }
}

type Render = Box<dyn Fn(&Arguments) -> Result<Vec<Message>>>;

/// One prompt: its name, description, arguments and how to fill it in.
pub struct Prompt {
    name: String,
    title: Option<String>,
    description: Option<String>,
    arguments: Vec<(String, Option<String>, bool)>,
    render: Render,
}

impl Prompt {
    /// A prompt named `name` (1-64 chars of `a-z 0-9 _ -`) that `render` fills in.
    pub fn new(
        name: &str,
        description: &str,
        render: impl Fn(&Arguments) -> Result<Vec<Message>> + 'static,
    ) -> Self {
        Self {
            name: name.to_string(),
            title: None,
            description: Some(description.to_string()),
            arguments: Vec::new(),
            render: Box::new(render),
        }
    }
    /// A human-readable title.
    pub fn title(mut self, title: &str) -> Self {
        self.title = Some(title.to_string());
        self
    }
    /// An argument the prompt needs.
    pub fn required(mut self, name: &str, description: &str) -> Self {
        self.arguments
            .push((name.to_string(), Some(description.to_string()), true));
        self
    }
    /// An argument the prompt may take.
    pub fn optional(mut self, name: &str, description: &str) -> Self {
        self.arguments
            .push((name.to_string(), Some(description.to_string()), false));
        self
    }
}

/// The prompts of a plugin.
#[derive(Default)]
pub struct Prompts(Vec<Prompt>);

impl Prompts {
    /// No prompts yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Add a prompt.
    pub fn with(mut self, prompt: Prompt) -> Self {
        self.0.push(prompt);
        self
    }
}

/// Implement this and call [`export_prompts!`](crate::export_prompts) to make a prompt plugin.
pub trait PromptPlugin {
    /// The prompts this plugin offers.
    fn prompts() -> Prompts;
}

mod export {
    use super::{Arguments, PromptPlugin, Role};
    use crate::error::{Error, Result};
    use crate::prompt_world::exports::switchyard::plugin::prompt::{
        PromptArgument, PromptMessage, PromptResult, PromptSpec, Role as WitRole,
    };

    /// The prompts of `P` (used by [`export_prompts!`](crate::export_prompts)).
    pub fn list<P: PromptPlugin>() -> Vec<PromptSpec> {
        P::prompts()
            .0
            .into_iter()
            .map(|p| PromptSpec {
                name: p.name,
                title: p.title,
                description: p.description,
                arguments: p
                    .arguments
                    .into_iter()
                    .map(|(name, description, required)| PromptArgument {
                        name,
                        description,
                        required,
                    })
                    .collect(),
            })
            .collect()
    }

    /// Fill in prompt `name` of `P` (used by [`export_prompts!`](crate::export_prompts)).
    pub fn get<P: PromptPlugin>(
        name: &str,
        arguments: Vec<(String, String)>,
    ) -> Result<PromptResult> {
        let prompts = P::prompts();
        let prompt =
            prompts.0.iter().find(|p| p.name == name).ok_or_else(|| {
                Error::not_found(format!("this plugin has no prompt named `{name}`"))
            })?;
        let messages = (prompt.render)(&Arguments(arguments.into_iter().collect()))?;
        Ok(PromptResult {
            description: None,
            messages: messages
                .into_iter()
                .map(|m| PromptMessage {
                    role: match m.role {
                        Role::User => WitRole::User,
                        Role::Assistant => WitRole::Assistant,
                    },
                    content: m.content,
                })
                .collect(),
        })
    }
}

#[doc(hidden)]
pub use export::{get as __get, list as __list};

/// Export a [`PromptPlugin`] as the component's `prompt` interface.
#[macro_export]
macro_rules! export_prompts {
    ($plugin:ty) => {
        struct __SwitchyardPromptExport;
        impl $crate::prompt_world::exports::switchyard::plugin::prompt::Guest
            for __SwitchyardPromptExport
        {
            fn list_prompts() -> ::std::vec::Vec<
                $crate::prompt_world::exports::switchyard::plugin::prompt::PromptSpec,
            > {
                $crate::prompt::__list::<$plugin>()
            }
            fn get_prompt(
                name: ::std::string::String,
                arguments: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
            ) -> ::std::result::Result<
                $crate::prompt_world::exports::switchyard::plugin::prompt::PromptResult,
                $crate::Error,
            > {
                $crate::prompt::__get::<$plugin>(&name, arguments)
            }
        }
        $crate::prompt_world::export_prompt_world!(__SwitchyardPromptExport with_types_in $crate::prompt_world);
    };
}
