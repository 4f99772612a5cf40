//! One webhook call: find the instance, take it from the rate allowance, hand
//! the raw request to the plugin, queue the messages it returns, answer.
//!
//! The plugin's reply goes out only after every message it carried is durably
//! queued (or found to be a redelivery). When the store cannot take a task the
//! caller gets 503, so the provider retries; messages queued before that are
//! recognized by their delivery id on the retry.

use super::instances::DEFAULT_INSTANCE;
use super::secrets::InstanceSecrets;
use super::{ChannelError, Channels};
use crate::runtime::{CallHooks, ErrorKind, KvNamespace, PluginError, channel, types};
use crate::store::{ChannelRow, NewAudit};
use crate::tasks::{Accepted, Inbound, Origin};
use std::sync::Arc;

/// Most messages one webhook call may carry.
pub const MAX_MESSAGES: usize = 100;
/// Longest conversation key (bytes).
pub const MAX_CONVERSATION_KEY: usize = 512;
/// Longest reply target or delivery id (bytes).
pub const MAX_TARGET: usize = 4096;
/// The metadata key a plugin sets to the provider's delivery id.
pub const DELIVERY_ID: &str = "delivery-id";

/// A webhook request as received.
#[derive(Debug, Clone)]
pub struct WebhookCall {
    /// The channel plugin named in the path.
    pub plugin: String,
    /// The instance named in the path (`default` when absent).
    pub instance: Option<String>,
    /// The method, upper case.
    pub method: String,
    /// The raw query string.
    pub query: String,
    /// The header fields (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The exact body bytes.
    pub body: Vec<u8>,
}

/// What to answer the provider.
#[derive(Debug, Clone)]
pub struct WebhookReply {
    /// The status code.
    pub status: u16,
    /// The header fields.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Tasks queued by this call.
    pub queued: Vec<String>,
    /// Messages recognized as redeliveries.
    pub duplicates: usize,
}

/// The HTTP status for a failure the plugin reported or the runtime saw.
fn status_of(e: &PluginError) -> u16 {
    match e.kind {
        ErrorKind::InvalidInput => 400,
        ErrorKind::Denied => 401,
        ErrorKind::NotFound => 404,
        ErrorKind::Unavailable | ErrorKind::Busy => 503,
        ErrorKind::Failed => 500,
        _ => 502,
    }
}

/// Whether the runtime (not the plugin's own answer) ended the call.
fn broke(e: &PluginError) -> bool {
    !matches!(
        e.kind,
        ErrorKind::InvalidInput
            | ErrorKind::Denied
            | ErrorKind::NotFound
            | ErrorKind::Unavailable
            | ErrorKind::Failed
    )
}

impl Channels {
    /// The instance a webhook path names, ready to take a call.
    async fn instance_for(&self, call: &WebhookCall) -> Result<ChannelRow, ChannelError> {
        let name = call.instance.as_deref().unwrap_or(DEFAULT_INSTANCE);
        let not_found = || {
            ChannelError::NotFound(format!(
                "no channel `{name}` of plugin `{}` is configured",
                call.plugin
            ))
        };
        let key = (call.plugin.clone(), name.to_string());
        let row = match self.recent_rows.get(&key) {
            Some(row) => row,
            None => {
                let row = self
                    .store
                    .channel_named(&call.plugin, name)
                    .await?
                    .ok_or_else(not_found)?;
                self.recent_rows.put(key, row.clone());
                row
            }
        };
        if !row.enabled {
            return Err(not_found());
        }
        Ok(row)
    }

    /// The plugin component with `row`'s configuration and secrets.
    pub(crate) fn component_for(
        &self,
        row: &ChannelRow,
    ) -> Result<crate::runtime::LoadedComponent, ChannelError> {
        let live = self.plugins.get(&row.plugin).ok_or_else(|| {
            ChannelError::Unavailable(format!("plugin `{}` is not installed", row.plugin))
        })?;
        let component = live.component.as_ref().ok_or_else(|| {
            ChannelError::Unavailable(format!(
                "plugin `{}` cannot run: {}",
                row.plugin,
                live.problem.as_deref().unwrap_or("it is disabled")
            ))
        })?;
        let mut env = component.env().clone();
        let overrides: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&row.config).unwrap_or_default();
        env.config.extend(overrides);
        env.secret_source = Some(Arc::new(InstanceSecrets {
            secrets: self.plugins.manager().secrets().clone(),
            instance_id: row.id.clone(),
            recent: self.recent_secrets.clone(),
        }));
        Ok(component.with_env(env))
    }

    async fn audit_failure(&self, row: &ChannelRow, outcome: &str, message: &str) {
        let actor = format!("channel:{}/{}", row.plugin, row.name);
        let entry = NewAudit {
            actor_id: None,
            actor: &actor,
            action: "channel.webhook",
            target: &row.id,
            outcome,
            details: serde_json::json!({ "reason": message }),
            request_id: None,
        };
        if let Err(e) = self.store.audit(entry).await {
            tracing::error!(error = %e, "cannot write the audit log");
        }
    }

    /// Handle one webhook call end to end.
    pub async fn webhook(&self, call: WebhookCall) -> Result<WebhookReply, ChannelError> {
        let row = self.instance_for(&call).await?;
        self.admit(
            &row.id,
            u32::try_from(row.rate_per_minute).unwrap_or(u32::MAX),
        )?;
        let component = self.component_for(&row)?;
        let request = types::HttpRequest {
            method: call.method,
            path: "/".into(),
            query: call.query,
            headers: call.headers,
            body: call.body,
        };
        let hooks = CallHooks {
            kv: Some(KvNamespace::Channel(row.id.clone())),
            ..CallHooks::default()
        };
        let runtime = self.plugins.manager().runtime();
        let outcome = match runtime.handle_webhook(&component, request, hooks).await {
            Ok(o) => o,
            Err(e) => {
                let status = status_of(&e);
                if broke(&e) {
                    tracing::warn!(channel = %row.id, plugin = %row.plugin, error = %e, "channel plugin failed on a webhook");
                    self.audit_failure(&row, "failed", &e.to_string()).await;
                    return Err(ChannelError::Plugin(format!(
                        "the channel plugin failed: {e}"
                    )));
                }
                if e.kind == ErrorKind::Denied {
                    self.audit_failure(&row, "denied", &e.message).await;
                }
                return Ok(WebhookReply {
                    status,
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: serde_json::json!({ "error": e.kind.as_str(), "message": e.message })
                        .to_string()
                        .into_bytes(),
                    queued: Vec::new(),
                    duplicates: 0,
                });
            }
        };
        self.queue_messages(&row, outcome).await
    }

    async fn queue_messages(
        &self,
        row: &ChannelRow,
        outcome: channel::WebhookOutcome,
    ) -> Result<WebhookReply, ChannelError> {
        let response = outcome.response;
        if !(100..=599).contains(&response.status) {
            self.audit_failure(row, "failed", "reply status out of range")
                .await;
            return Err(ChannelError::Plugin(format!(
                "the channel plugin answered with status {}",
                response.status
            )));
        }
        if outcome.messages.len() > MAX_MESSAGES {
            self.audit_failure(row, "failed", "too many messages").await;
            return Err(ChannelError::Plugin(format!(
                "the channel plugin returned {} messages; at most {MAX_MESSAGES} are taken from one call",
                outcome.messages.len()
            )));
        }
        let mut queued = Vec::new();
        let mut duplicates = 0;
        for m in &outcome.messages {
            let delivery_key = m
                .metadata
                .iter()
                .find(|(k, _)| k == DELIVERY_ID)
                .map(|(_, v)| v.as_str());
            if m.conversation_key.is_empty()
                || m.conversation_key.len() > MAX_CONVERSATION_KEY
                || m.reply_target.len() > MAX_TARGET
                || delivery_key
                    .is_some_and(|k| k.is_empty() || k.len() > MAX_TARGET || k.contains('\0'))
                || m.conversation_key.contains('\0')
                || m.reply_target.contains('\0')
            {
                tracing::warn!(channel = %row.id, "a channel message with an empty, oversized or NUL-holding key was dropped");
                continue;
            }
            let inbound = Inbound {
                instance_id: &row.id,
                owner_id: &row.owner_id,
                agent_id: row.agent_id.as_deref(),
                conversation_key: &m.conversation_key,
                delivery_key,
                text: &m.text,
                reply_target: &m.reply_target,
                metadata: serde_json::to_string(&m.metadata).unwrap_or_else(|_| "[]".into()),
            };
            match self.tasks.accept_inbound(&inbound, Origin::Webhook).await {
                Ok(Accepted::Queued(task)) => queued.push(task.id.clone()),
                Ok(Accepted::Duplicate(_)) => duplicates += 1,
                Err(crate::tasks::TaskError::Invalid(reason))
                | Err(crate::tasks::TaskError::TooLarge(reason)) => {
                    tracing::warn!(channel = %row.id, %reason, "a channel message was dropped");
                }
                Err(e) => return Err(e.into()),
            }
        }
        metrics::counter!("switchyard_channel_messages_total", "outcome" => "queued")
            .increment(queued.len() as u64);
        metrics::counter!("switchyard_channel_messages_total", "outcome" => "duplicate")
            .increment(duplicates as u64);
        Ok(WebhookReply {
            status: response.status,
            headers: response.headers,
            body: response.body,
            queued,
            duplicates,
        })
    }
}
