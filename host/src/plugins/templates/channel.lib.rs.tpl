//! {{name}}: a switchyard channel plugin. Webhook calls carry a JSON body
//! `{"conversation", "sender", "text"}` and an `x-webhook-token` header that
//! must equal the granted secret `webhook_token`; replies are POSTed as JSON to
//! the configured `reply_url`.

use switchyard_plugin_sdk::channel::constant_time_eq;
use switchyard_plugin_sdk::prelude::*;

#[derive(Deserialize)]
struct Incoming {
    conversation: String,
    sender: String,
    text: String,
}

struct Plugin;

impl ChannelPlugin for Plugin {
    fn describe() -> ChannelInfo {
        ChannelInfo {
            name: "{{name}}".into(),
            description: "JSON webhook channel".into(),
        }
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome> {
        let token = config::secret("webhook_token")?;
        let given = (request.headers.iter())
            .find(|(name, _)| name == "x-webhook-token")
            .map(|(_, value)| value.as_bytes())
            .unwrap_or_default();
        if !constant_time_eq(given, token.as_bytes()) {
            return Err(Error::denied("bad or missing x-webhook-token"));
        }
        let incoming: Incoming = serde_json::from_slice(&request.body)
            .map_err(|e| Error::invalid_input(format!("body: {e}")))?;
        Ok(WebhookOutcome {
            response: HttpResponse { status: 202, headers: vec![], body: vec![] },
            messages: vec![InboundMessage {
                conversation_key: incoming.conversation.clone(),
                sender: incoming.sender,
                text: incoming.text,
                reply_target: incoming.conversation,
                metadata: vec![],
            }],
        })
    }

    fn deliver(message: OutboundMessage) -> Result<()> {
        let url = config::get("reply_url").ok_or_else(|| Error::failed("reply_url is not set"))?;
        let body = json!({ "conversation": message.reply_target, "text": message.text });
        let response = http::Request::post(&url).json(&body)?.send()?;
        if response.is_success() {
            Ok(())
        } else {
            Err(Error::unavailable(format!("reply endpoint answered {}", response.status)))
        }
    }
}

export_channel!(Plugin);
