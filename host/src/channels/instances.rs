//! Channel instances as the API shows them, and their management: an
//! administrator adds, changes and removes them; their owners may read them.
//! Secret values are write-only: a view lists only the names that are set.

use super::{ChannelError, Channels};
use crate::plugins::manifest::Kind;
use crate::store::{ChannelRow, DeliveryRow, new_id, now_ms};
use crate::tasks::Caller;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The instance `POST /api/v1/channels/{plugin}/webhook` reaches.
pub const DEFAULT_INSTANCE: &str = "default";
/// Most webhook calls per minute one instance may be set to accept.
pub const MAX_RATE_PER_MINUTE: u32 = 600_000;

/// A configured channel instance.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Channel {
    /// Stable id.
    pub id: String,
    /// The channel plugin.
    pub plugin: String,
    /// The instance name, unique per plugin.
    pub name: String,
    /// Who owns the sessions and tasks the channel creates.
    pub owner_id: String,
    /// The agent profile new sessions start from (the owner's default when null).
    pub agent_id: Option<String>,
    /// Configuration over the plugin's.
    pub config: BTreeMap<String, String>,
    /// Names of the instance's own secrets that are set (values are never shown).
    pub secrets: Vec<String>,
    /// Whether webhooks are accepted.
    pub enabled: bool,
    /// Webhook calls accepted per minute.
    pub rate_per_minute: u32,
    /// The path providers post to (below the server's address).
    pub webhook_path: String,
    /// Created (ms since the epoch).
    pub created_at: i64,
    /// Last change (ms since the epoch).
    pub updated_at: i64,
}

/// What adding an instance takes.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    /// An installed plugin of kind `channel`.
    #[schema(max_length = 64)]
    pub plugin: String,
    /// The instance name (default `default`): 1-64 of `a-z`, `0-9`, `-`, `_`.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9][a-z0-9_-]*$")]
    pub name: Option<String>,
    /// The owner's user id (default: you).
    #[schema(max_length = 64)]
    pub owner_id: Option<String>,
    /// The agent profile new sessions start from.
    #[schema(max_length = 64)]
    pub agent_id: Option<String>,
    /// Values for keys the plugin's `plugin.toml` declares under `[config]`.
    pub config: Option<BTreeMap<String, String>>,
    /// Values for secrets the plugin requests; they override the plugin's own.
    pub secrets: Option<BTreeMap<String, String>>,
    /// Accept webhooks (default true).
    pub enabled: Option<bool>,
    /// Webhook calls accepted per minute (default from `[channels]`).
    #[schema(minimum = 1, maximum = 600000)]
    #[serde(default, deserialize_with = "whole")]
    pub rate_per_minute: Option<u32>,
}

/// A change to an instance (absent fields stay).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelPatch {
    /// A new owner's user id.
    #[schema(max_length = 64)]
    pub owner_id: Option<String>,
    /// A new agent profile; an empty string clears it.
    #[schema(max_length = 64)]
    pub agent_id: Option<String>,
    /// Configuration values to set; an empty string removes a key.
    pub config: Option<BTreeMap<String, String>>,
    /// Secrets to set; an empty string removes one.
    pub secrets: Option<BTreeMap<String, String>>,
    /// Accept webhooks.
    pub enabled: Option<bool>,
    /// Webhook calls accepted per minute.
    #[schema(minimum = 1, maximum = 600000)]
    #[serde(default, deserialize_with = "whole")]
    pub rate_per_minute: Option<u32>,
}

/// An optional whole number: an integer, or a float without a fraction
/// (`2.0`, which JSON Schema counts as an integer).
fn whole<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let value = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1e15)
            .map(|f| f as u64)
    });
    value
        .and_then(|v| u32::try_from(v).ok())
        .map(Some)
        .ok_or_else(|| {
            D::Error::custom(format!("{n} is not a whole number from 0 to {}", u32::MAX))
        })
}

/// One reply in the outbox.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// Stable id.
    pub id: String,
    /// The task whose result it carries.
    pub task_id: String,
    /// The channel instance.
    pub channel_id: String,
    /// The conversation it answers.
    pub conversation_key: String,
    /// `waiting` (for the task), `retry`, `sending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts started.
    pub attempts: i64,
    /// The next attempt, not before (ms since the epoch).
    pub next_attempt_at: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Sent with every attempt so the receiver can drop repeats.
    pub idempotency_key: String,
    /// Created (ms since the epoch).
    pub created_at: i64,
    /// Last change (ms since the epoch).
    pub updated_at: i64,
}

impl From<&DeliveryRow> for Delivery {
    fn from(d: &DeliveryRow) -> Self {
        Self {
            id: d.id.clone(),
            task_id: d.task_id.clone(),
            channel_id: d.instance_id.clone(),
            conversation_key: d.conversation_key.clone(),
            state: d.state.clone(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_error: d.last_error.clone(),
            idempotency_key: d.idempotency_key.clone(),
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

fn check_name(name: &str) -> Result<(), ChannelError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(ChannelError::Invalid(format!(
            "channel name `{name}`: use 1-64 of a-z, 0-9, `-` and `_`, starting with a letter or digit"
        )))
    }
}

fn check_rate(rate: u32) -> Result<u32, ChannelError> {
    if (1..=MAX_RATE_PER_MINUTE).contains(&rate) {
        Ok(rate)
    } else {
        Err(ChannelError::Invalid(format!(
            "rate_per_minute must be 1-{MAX_RATE_PER_MINUTE}"
        )))
    }
}

/// The `webhook_path` of an instance.
pub fn webhook_path(plugin: &str, name: &str) -> String {
    if name == DEFAULT_INSTANCE {
        format!("/api/v1/channels/{plugin}/webhook")
    } else {
        format!("/api/v1/channels/{plugin}/{name}/webhook")
    }
}

impl Channels {
    fn view(&self, row: &ChannelRow, secrets: Vec<String>) -> Channel {
        Channel {
            id: row.id.clone(),
            plugin: row.plugin.clone(),
            name: row.name.clone(),
            owner_id: row.owner_id.clone(),
            agent_id: row.agent_id.clone(),
            config: serde_json::from_str(&row.config).unwrap_or_default(),
            secrets,
            enabled: row.enabled,
            rate_per_minute: u32::try_from(row.rate_per_minute).unwrap_or(u32::MAX),
            webhook_path: webhook_path(&row.plugin, &row.name),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }

    async fn view_of(&self, row: &ChannelRow) -> Result<Channel, ChannelError> {
        let secrets = self.store.channel_secret_names(&row.id).await?;
        Ok(self.view(row, secrets))
    }

    /// Check config keys and secret names against the plugin's manifest.
    fn check_against_plugin(
        &self,
        plugin: &str,
        config: &BTreeMap<String, String>,
        secrets: &BTreeMap<String, String>,
    ) -> Result<(), ChannelError> {
        let live = self
            .plugins
            .get(plugin)
            .ok_or_else(|| ChannelError::NotFound(format!("no plugin `{plugin}` is installed")))?;
        let manifest = &live.installed.manifest;
        if !manifest.has(Kind::Channel) {
            return Err(ChannelError::Invalid(format!(
                "plugin `{plugin}` is not a channel plugin (its kinds: {})",
                manifest
                    .kinds
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        for key in config.keys() {
            if !manifest.config.contains_key(key) {
                return Err(ChannelError::Invalid(format!(
                    "plugin `{plugin}` declares no config key `{key}` (it declares: {})",
                    manifest
                        .config
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        for name in secrets.keys() {
            if !manifest.capabilities.secrets.contains(name) {
                return Err(ChannelError::Invalid(format!(
                    "plugin `{plugin}` requests no secret `{name}` (it requests: {})",
                    manifest.capabilities.secrets.join(", ")
                )));
            }
        }
        Ok(())
    }

    async fn check_owner(&self, owner_id: &str) -> Result<(), ChannelError> {
        match self.store.user(owner_id).await {
            Ok(_) => Ok(()),
            Err(crate::store::StoreError::NotFound) => Err(ChannelError::NotFound(format!(
                "no user `{owner_id}` to own the channel's sessions"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// The agent profile new sessions start from must be one the owner may use.
    async fn check_agent(
        &self,
        owner_id: &str,
        agent_id: Option<&str>,
    ) -> Result<(), ChannelError> {
        let Some(id) = agent_id else {
            return Ok(());
        };
        match self.store.agent(id).await? {
            Some(a) if a.owner_id == owner_id || a.shared => Ok(()),
            _ => Err(ChannelError::NotFound(format!(
                "no agent profile `{id}` that the channel's owner may use"
            ))),
        }
    }

    fn require_admin(caller: &Caller) -> Result<(), ChannelError> {
        if caller.admin {
            Ok(())
        } else {
            Err(ChannelError::Forbidden(
                "managing channels needs the admin role".into(),
            ))
        }
    }

    /// Add an instance (administrators only).
    pub async fn create(&self, caller: &Caller, req: NewChannel) -> Result<Channel, ChannelError> {
        Self::require_admin(caller)?;
        let name = req.name.unwrap_or_else(|| DEFAULT_INSTANCE.to_string());
        check_name(&name)?;
        let config = req.config.unwrap_or_default();
        let secrets = req.secrets.unwrap_or_default();
        self.check_against_plugin(&req.plugin, &config, &secrets)?;
        let owner_id = req.owner_id.unwrap_or_else(|| caller.user_id.clone());
        self.check_owner(&owner_id).await?;
        let agent_id = req.agent_id.filter(|a| !a.is_empty());
        self.check_agent(&owner_id, agent_id.as_deref()).await?;
        let rate = check_rate(
            req.rate_per_minute
                .unwrap_or(self.config.default_rate_per_minute),
        )?;
        let now = now_ms();
        let row = ChannelRow {
            id: new_id(),
            plugin: req.plugin,
            name,
            owner_id,
            agent_id,
            config: serde_json::to_string(&config).unwrap_or_else(|_| "{}".into()),
            enabled: req.enabled.unwrap_or(true),
            rate_per_minute: i64::from(rate),
            created_at: now,
            updated_at: now,
        };
        self.store.insert_channel(&row).await?;
        let sealer = self.plugins.manager().secrets();
        for (name, value) in &secrets {
            sealer
                .set_channel(
                    &row.id,
                    name,
                    Some(value).filter(|v| !v.is_empty()).map(String::as_str),
                )
                .await?;
        }
        self.forget_recent();
        self.view_of(&row).await
    }

    async fn row(&self, caller: &Caller, id: &str) -> Result<ChannelRow, ChannelError> {
        let not_found = || ChannelError::NotFound(format!("no channel `{id}`"));
        let row = self.store.channel(id).await?.ok_or_else(not_found)?;
        if row.owner_id != caller.user_id && !caller.admin {
            return Err(not_found());
        }
        Ok(row)
    }

    /// One instance (its owner or an administrator).
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<Channel, ChannelError> {
        let row = self.row(caller, id).await?;
        self.view_of(&row).await
    }

    /// The instances `caller` may see (administrators: all).
    pub async fn list(&self, caller: &Caller) -> Result<Vec<Channel>, ChannelError> {
        let owner = (!caller.admin).then_some(caller.user_id.as_str());
        let mut out = Vec::new();
        for row in self.store.channels(owner).await? {
            out.push(self.view_of(&row).await?);
        }
        Ok(out)
    }

    /// Change an instance (administrators only).
    pub async fn update(
        &self,
        caller: &Caller,
        id: &str,
        patch: ChannelPatch,
    ) -> Result<Channel, ChannelError> {
        Self::require_admin(caller)?;
        let mut row = self.row(caller, id).await?;
        let mut config: BTreeMap<String, String> =
            serde_json::from_str(&row.config).unwrap_or_default();
        let changes = patch.config.unwrap_or_default();
        let secrets = patch.secrets.unwrap_or_default();
        self.check_against_plugin(&row.plugin, &changes, &secrets)?;
        for (key, value) in changes {
            if value.is_empty() {
                config.remove(&key);
            } else {
                config.insert(key, value);
            }
        }
        row.config = serde_json::to_string(&config).unwrap_or_else(|_| "{}".into());
        let recheck_agent = patch.owner_id.is_some() || patch.agent_id.is_some();
        if let Some(owner) = patch.owner_id {
            self.check_owner(&owner).await?;
            row.owner_id = owner;
        }
        if let Some(agent) = patch.agent_id {
            row.agent_id = Some(agent).filter(|a| !a.is_empty());
        }
        if let Some(enabled) = patch.enabled {
            row.enabled = enabled;
        }
        if let Some(rate) = patch.rate_per_minute {
            row.rate_per_minute = i64::from(check_rate(rate)?);
        }
        if recheck_agent {
            self.check_agent(&row.owner_id, row.agent_id.as_deref())
                .await?;
        }
        self.store.update_channel(&row).await?;
        let sealer = self.plugins.manager().secrets();
        for (name, value) in &secrets {
            sealer
                .set_channel(
                    &row.id,
                    name,
                    Some(value).filter(|v| !v.is_empty()).map(String::as_str),
                )
                .await?;
        }
        self.forget_recent();
        let row = self.row(caller, id).await?;
        self.view_of(&row).await
    }

    /// Remove an instance with its secrets, conversation map, dedupe records
    /// and outbox (administrators only). Its sessions and tasks stay.
    pub async fn delete(&self, caller: &Caller, id: &str) -> Result<(), ChannelError> {
        Self::require_admin(caller)?;
        self.row(caller, id).await?;
        self.store.delete_channel(id).await?;
        self.forget_recent();
        self.limiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        Ok(())
    }

    /// An instance's newest replies (its owner or an administrator).
    pub async fn deliveries(
        &self,
        caller: &Caller,
        id: &str,
        limit: usize,
    ) -> Result<Vec<Delivery>, ChannelError> {
        self.row(caller, id).await?;
        let rows = self
            .store
            .channel_deliveries(id, limit.clamp(1, 500) as i64)
            .await?;
        Ok(rows.iter().map(Delivery::from).collect())
    }

    /// Send a `failed` reply again (administrators only).
    pub async fn retry(
        &self,
        caller: &Caller,
        id: &str,
        delivery_id: &str,
    ) -> Result<Delivery, ChannelError> {
        Self::require_admin(caller)?;
        self.row(caller, id).await?;
        let not_found = || ChannelError::NotFound(format!("no delivery `{delivery_id}`"));
        let d = self
            .store
            .delivery(delivery_id)
            .await?
            .filter(|d| d.instance_id == id)
            .ok_or_else(not_found)?;
        if !self.store.retry_delivery(&d.id).await? {
            return Err(ChannelError::Conflict(format!(
                "delivery `{delivery_id}` is `{}`: only a failed one can be retried",
                d.state
            )));
        }
        self.wake.notify_one();
        let d = self
            .store
            .delivery(delivery_id)
            .await?
            .ok_or_else(not_found)?;
        Ok(Delivery::from(&d))
    }
}
