//! Agent profiles: named, reusable session templates — instructions,
//! provider and model, the tools the agent may use, enabled skills, which tool
//! calls need approval, sandbox limits within the owner's maxima — owned by a
//! user and optionally shared with everyone.

use super::{Caller, TaskError, Tasks};
use crate::sandbox::LimitsRequest;
use crate::store::{AgentRow, new_id, now_ms};
use serde::{Deserialize, Serialize};

/// Which tool calls wait for a person's yes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    /// None.
    #[default]
    Never,
    /// Tools annotated destructive and every `sandbox_exec`.
    Destructive,
    /// Every tool call.
    Always,
}

impl Approval {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::Destructive => "destructive",
            Self::Always => "always",
        }
    }

    /// The policy called `s` (`never` for anything else).
    pub fn parse(s: &str) -> Self {
        match s {
            "destructive" => Self::Destructive,
            "always" => Self::Always,
            _ => Self::Never,
        }
    }
}

/// An agent profile.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Agent {
    /// Stable id.
    pub id: String,
    /// The owner's user id.
    pub owner_id: String,
    /// Name, unique per owner.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Its system prompt.
    pub instructions: String,
    /// Provider (`openai` or `anthropic`; the server's when absent).
    pub provider: Option<String>,
    /// Model (the server's when absent).
    pub model: Option<String>,
    /// Tools it may use: `PLUGIN__TOOL`, `PLUGIN__*`, `sandbox_*` names, or `*` for all.
    pub tools: Vec<String>,
    /// Skills enabled in its sessions.
    pub skills: Vec<String>,
    /// Which tool calls need approval.
    pub approval: Approval,
    /// Sandbox limits for its sessions (within the owner's maxima).
    pub sandbox_limits: LimitsRequest,
    /// Visible to every user.
    pub shared: bool,
    /// The owner's default for new sessions.
    pub is_default: bool,
    /// Created (ms since the epoch).
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// What creating or changing a profile takes (absent fields: defaults on
/// create, unchanged on update).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// Name: 1-64 of `a-z 0-9 - _` (required on create).
    #[schema(max_length = 64, pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")]
    pub name: Option<String>,
    /// What it is for.
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    /// System prompt.
    #[schema(max_length = 65536)]
    pub instructions: Option<String>,
    /// Provider.
    pub provider: Option<super::sessions::ProviderName>,
    /// Model.
    #[schema(min_length = 1, max_length = 200, pattern = "^[^\\x00-\\x1f\\x7f]+$")]
    pub model: Option<String>,
    /// Tools it may use (default `["*"]`).
    #[schema(schema_with = tool_patterns_schema)]
    pub tools: Option<Vec<String>>,
    /// Skills.
    #[schema(schema_with = super::sessions::skill_names_schema)]
    pub skills: Option<Vec<String>>,
    /// Which tool calls need approval (default `never`).
    pub approval: Option<Approval>,
    /// Sandbox limits.
    pub sandbox_limits: Option<LimitsRequest>,
    /// Share with every user.
    pub shared: Option<bool>,
    /// Make it your default for new sessions.
    pub is_default: Option<bool>,
}

fn view(row: &AgentRow) -> Agent {
    Agent {
        id: row.id.clone(),
        owner_id: row.owner_id.clone(),
        name: row.name.clone(),
        description: row.description.clone(),
        instructions: row.instructions.clone(),
        provider: row.provider.clone(),
        model: row.model.clone(),
        tools: serde_json::from_str(&row.tools).unwrap_or_default(),
        skills: serde_json::from_str(&row.skills).unwrap_or_default(),
        approval: Approval::parse(&row.approval),
        sandbox_limits: serde_json::from_str(&row.sandbox_limits).unwrap_or_default(),
        shared: row.shared,
        is_default: row.is_default,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

fn check_name(name: &str) -> Result<(), TaskError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !name.starts_with(['-', '_']);
    if ok {
        Ok(())
    } else {
        Err(TaskError::Invalid(
            "an agent name is 1-64 characters of a-z, 0-9, - and _, starting with a letter or digit".into(),
        ))
    }
}

/// The OpenAPI schema of a list of tool patterns (what [`check_tools`] accepts).
fn tool_patterns_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[A-Za-z0-9_*-]{1,130}$")),
        )
        .max_items(Some(500))
        .build()
}

fn check_tools(tools: &[String]) -> Result<String, TaskError> {
    if tools.len() > 500 {
        return Err(TaskError::Invalid("at most 500 tool patterns".into()));
    }
    for t in tools {
        let ok = (1..=130).contains(&t.len())
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'*');
        if !ok {
            return Err(TaskError::Invalid(format!(
                "`{}` is not a tool name or pattern (letters, digits, _ - and *)",
                t.chars().take(64).collect::<String>()
            )));
        }
    }
    Ok(serde_json::to_string(tools).unwrap_or_else(|_| "[\"*\"]".into()))
}

impl Tasks {
    /// A profile the caller may use: their own or a shared one (404 otherwise).
    pub(crate) async fn agent_row(&self, caller: &Caller, id: &str) -> Result<AgentRow, TaskError> {
        let not_found = || TaskError::NotFound(format!("no agent `{id}`"));
        let row = self.store.agent(id).await?.ok_or_else(not_found)?;
        if row.owner_id != caller.user_id && !row.shared && !caller.admin {
            return Err(not_found());
        }
        Ok(row)
    }

    async fn owned_agent(&self, caller: &Caller, id: &str) -> Result<AgentRow, TaskError> {
        let row = self.agent_row(caller, id).await?;
        if row.owner_id != caller.user_id && !caller.admin {
            return Err(TaskError::NotFound(format!(
                "no agent `{id}` of yours (shared profiles can be used, not changed)"
            )));
        }
        Ok(row)
    }

    async fn apply(&self, row: &mut AgentRow, spec: AgentSpec) -> Result<(), TaskError> {
        if let Some(n) = spec.name {
            check_name(&n)?;
            row.name = n;
        }
        if let Some(d) = spec.description {
            if !crate::api::max_chars(&d, 1000) {
                return Err(TaskError::Invalid(
                    "description is at most 1000 characters".into(),
                ));
            }
            row.description = d;
        }
        if let Some(i) = spec.instructions {
            if !crate::api::max_chars(&i, 65536) {
                return Err(TaskError::Invalid(
                    "instructions are at most 65536 characters".into(),
                ));
            }
            row.instructions = i;
        }
        if let Some(p) = spec.provider {
            row.provider = Some(p.as_str().into());
        }
        if let Some(m) = spec.model {
            let model = Some(m);
            super::sessions::check_model(&model)?;
            row.model = model;
        }
        if let Some(t) = spec.tools {
            row.tools = check_tools(&t)?;
        }
        if let Some(s) = spec.skills {
            row.skills = super::sessions::check_skills(&s)?;
        }
        if let Some(a) = spec.approval {
            row.approval = a.as_str().into();
        }
        if let Some(limits) = spec.sandbox_limits {
            let user = self
                .sandboxes
                .user_limits(&row.owner_id)
                .await
                .map_err(|e| TaskError::Failed(e.to_string()))?;
            let config = self.sandboxes.config();
            let maxima = config.user_maxima(&user, false);
            config.resolve(&limits, &maxima).map_err(|e| match e {
                crate::sandbox::LimitsError::AboveMaximum(m) => {
                    TaskError::Forbidden(format!("sandbox_limits: {m}"))
                }
                crate::sandbox::LimitsError::Invalid(m) => {
                    TaskError::Invalid(format!("sandbox_limits: {m}"))
                }
            })?;
            row.sandbox_limits = serde_json::to_string(&limits).unwrap_or_else(|_| "{}".into());
        }
        if let Some(s) = spec.shared {
            row.shared = s;
        }
        if let Some(d) = spec.is_default {
            row.is_default = d;
        }
        Ok(())
    }

    /// Create a profile owned by the caller.
    pub async fn create_agent(&self, caller: &Caller, spec: AgentSpec) -> Result<Agent, TaskError> {
        if spec.name.is_none() {
            return Err(TaskError::Invalid("an agent needs a `name`".into()));
        }
        let now = now_ms();
        let mut row = AgentRow {
            id: new_id(),
            owner_id: caller.user_id.clone(),
            name: String::new(),
            description: String::new(),
            instructions: String::new(),
            provider: None,
            model: None,
            tools: "[\"*\"]".into(),
            skills: "[]".into(),
            approval: "never".into(),
            sandbox_limits: "{}".into(),
            shared: false,
            is_default: false,
            created_at: now,
            updated_at: now,
        };
        let make_default = spec.is_default == Some(true);
        self.apply(&mut row, spec).await?;
        row.is_default = false;
        self.store.insert_agent(&row).await?;
        if make_default {
            row.is_default = true;
            self.store.update_agent(&row).await?;
        }
        Ok(view(&row))
    }

    /// The profiles the caller may use: their own and the shared ones.
    pub async fn agents(&self, caller: &Caller) -> Result<Vec<Agent>, TaskError> {
        Ok(self
            .store
            .agents(Some(&caller.user_id))
            .await?
            .iter()
            .map(view)
            .collect())
    }

    /// One profile.
    pub async fn agent(&self, caller: &Caller, id: &str) -> Result<Agent, TaskError> {
        Ok(view(&self.agent_row(caller, id).await?))
    }

    /// Change one of the caller's profiles.
    pub async fn update_agent(
        &self,
        caller: &Caller,
        id: &str,
        spec: AgentSpec,
    ) -> Result<Agent, TaskError> {
        let mut row = self.owned_agent(caller, id).await?;
        self.apply(&mut row, spec).await?;
        self.store.update_agent(&row).await?;
        self.agent(caller, id).await
    }

    /// Delete one of the caller's profiles (its sessions keep their settings).
    pub async fn delete_agent(&self, caller: &Caller, id: &str) -> Result<(), TaskError> {
        self.owned_agent(caller, id).await?;
        self.store.delete_agent(id).await?;
        Ok(())
    }
}
