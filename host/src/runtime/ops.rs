//! What the host can ask of a plugin instance ([`Op`]), what comes back
//! ([`Reply`]), and the dispatch of one operation on a fresh instance.

use super::bindings::{channel, prompt, resource, skill, tool, types};
use super::{ErrorKind, HostState, LoadError, LoadedComponent, PluginError};
use wasmtime::Store;
use wasmtime::component::InstancePre;

/// The WIT names of the exports the host looks for.
pub(super) mod export_name {
    pub const TOOL: &str = "switchyard:plugin/tool@0.1.0";
    pub const CHANNEL: &str = "switchyard:plugin/channel@0.1.0";
    pub const SKILL: &str = "switchyard:plugin/skill@0.1.0";
    pub const PROMPT: &str = "switchyard:plugin/prompt@0.1.0";
    pub const RESOURCE: &str = "switchyard:plugin/resource@0.1.0";
}

/// The typed accessors of export `name`, `None` when the component does not export it.
pub(super) fn indices<T>(
    pre: &InstancePre<HostState>,
    name: &str,
    new: fn(&InstancePre<HostState>) -> wasmtime::Result<T>,
) -> Result<Option<T>, LoadError> {
    if pre.component().get_export_index(None, name).is_none() {
        return Ok(None);
    }
    new(pre).map(Some).map_err(|e| {
        LoadError::Exports(format!(
            "the export `{name}` does not match switchyard:plugin@0.1.0: {e:#}"
        ))
    })
}

/// The error for a reply of the wrong kind (a host bug, never a plugin's).
pub(super) fn mismatch() -> PluginError {
    PluginError::new(ErrorKind::Failed, "internal error: unexpected reply kind")
}

/// One operation on a plugin.
pub(super) enum Op {
    ListTools,
    CallTool(String, String, tool::CallContext),
    Describe,
    Webhook(types::HttpRequest),
    Deliver(channel::OutboundMessage),
    ListSkills,
    LoadSkill(String),
    ListPrompts,
    GetPrompt(String, Vec<(String, String)>),
    ListResources,
    ReadResource(String),
}

impl Op {
    /// The export the operation needs.
    pub(super) fn interface(&self) -> &'static str {
        match self {
            Op::ListTools | Op::CallTool(..) => "tool",
            Op::Describe | Op::Webhook(_) | Op::Deliver(_) => "channel",
            Op::ListSkills | Op::LoadSkill(_) => "skill",
            Op::ListPrompts | Op::GetPrompt(..) => "prompt",
            Op::ListResources | Op::ReadResource(_) => "resource",
        }
    }

    /// Whether `c` exports what the operation needs.
    pub(super) fn supported_by(&self, c: &LoadedComponent) -> bool {
        match self.interface() {
            "tool" => c.tool.is_some(),
            "channel" => c.channel.is_some(),
            "skill" => c.skill.is_some(),
            "prompt" => c.prompt.is_some(),
            _ => c.resource.is_some(),
        }
    }
}

/// What an operation returned.
pub(super) enum Reply {
    Tools(Vec<tool::ToolSpec>),
    Output(tool::ToolOutput),
    Channel(channel::ChannelInfo),
    Webhook(channel::WebhookOutcome),
    Unit,
    Skills(Vec<skill::SkillInfo>),
    Skill(skill::SkillContent),
    Prompts(Vec<prompt::PromptSpec>),
    Prompt(prompt::PromptResult),
    Resources(Vec<resource::ResourceSpec>, Vec<resource::ResourceTemplate>),
    Contents(Vec<types::EmbeddedResource>),
}

/// The size in bytes a content block counts against the output limit.
pub(super) fn content_size(c: &types::Content) -> usize {
    match c {
        types::Content::Text(t) | types::Content::Json(t) => t.len(),
        types::Content::Image(b) | types::Content::Bytes(b) | types::Content::Audio(b) => {
            b.data.len() + b.mime_type.len()
        }
        types::Content::Resource(r) => embedded_size(r),
    }
}

fn embedded_size(r: &types::EmbeddedResource) -> usize {
    r.uri.len()
        + match &r.body {
            types::ResourceBody::Text(t) => t.len(),
            types::ResourceBody::Blob(b) => b.len(),
        }
}

impl Reply {
    /// Bytes of payload, checked against the plugin's output limit.
    pub(super) fn size(&self) -> usize {
        match self {
            Reply::Tools(t) => t
                .iter()
                .map(|t| t.input_schema.len() + t.description.len())
                .sum(),
            Reply::Output(o) => {
                o.content.iter().map(content_size).sum::<usize>()
                    + o.structured.as_ref().map_or(0, String::len)
            }
            Reply::Channel(i) => i.description.len(),
            Reply::Webhook(w) => {
                w.response.body.len() + w.messages.iter().map(|m| m.text.len()).sum::<usize>()
            }
            Reply::Unit => 0,
            Reply::Skills(s) => s.iter().map(|s| s.description.len()).sum(),
            Reply::Skill(s) => {
                s.instructions.len() + s.files.iter().map(|f| f.content.len()).sum::<usize>()
            }
            Reply::Prompts(p) => p
                .iter()
                .map(|p| p.name.len() + p.description.as_ref().map_or(0, String::len))
                .sum(),
            Reply::Prompt(p) => p.messages.iter().map(|m| content_size(&m.content)).sum(),
            Reply::Resources(r, t) => {
                r.iter().map(|r| r.uri.len() + r.name.len()).sum::<usize>()
                    + t.iter()
                        .map(|t| t.uri_template.len() + t.name.len())
                        .sum::<usize>()
            }
            Reply::Contents(c) => c.iter().map(embedded_size).sum(),
        }
    }
}

/// Instantiate `c` in `store` and run `op` on the fresh instance.
pub(super) async fn run(
    store: &mut Store<HostState>,
    c: &LoadedComponent,
    op: Op,
) -> wasmtime::Result<Result<Reply, types::Error>> {
    let instance = c.pre.instantiate_async(&mut *store).await?;
    let missing = || wasmtime::Error::msg("export vanished");
    macro_rules! guest {
        ($field:ident) => {
            c.$field
                .as_ref()
                .ok_or_else(missing)?
                .load(&mut *store, &instance)?
        };
    }
    Ok(match op {
        Op::ListTools => Ok(Reply::Tools(
            guest!(tool).call_list_tools(&mut *store).await?,
        )),
        Op::CallTool(name, args, cx) => guest!(tool)
            .call_call_tool(&mut *store, &name, &args, &cx)
            .await?
            .map(Reply::Output),
        Op::Describe => Ok(Reply::Channel(
            guest!(channel).call_describe(&mut *store).await?,
        )),
        Op::Webhook(req) => guest!(channel)
            .call_handle_webhook(&mut *store, &req)
            .await?
            .map(Reply::Webhook),
        Op::Deliver(msg) => guest!(channel)
            .call_deliver(&mut *store, &msg)
            .await?
            .map(|()| Reply::Unit),
        Op::ListSkills => Ok(Reply::Skills(
            guest!(skill).call_list_skills(&mut *store).await?,
        )),
        Op::LoadSkill(name) => guest!(skill)
            .call_load_skill(&mut *store, &name)
            .await?
            .map(Reply::Skill),
        Op::ListPrompts => Ok(Reply::Prompts(
            guest!(prompt).call_list_prompts(&mut *store).await?,
        )),
        Op::GetPrompt(name, args) => guest!(prompt)
            .call_get_prompt(&mut *store, &name, &args)
            .await?
            .map(Reply::Prompt),
        Op::ListResources => {
            let g = guest!(resource);
            let fixed = g.call_list_resources(&mut *store).await?;
            let templates = g.call_list_resource_templates(&mut *store).await?;
            Ok(Reply::Resources(fixed, templates))
        }
        Op::ReadResource(uri) => guest!(resource)
            .call_read_resource(&mut *store, &uri)
            .await?
            .map(Reply::Contents),
    })
}
