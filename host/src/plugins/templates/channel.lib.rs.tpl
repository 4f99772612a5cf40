//! {{name}}: a switchyard channel plugin. Webhook calls carry a JSON body
//! `{"conversation", "sender", "text", "id"}` signed in `x-signature:
//! sha256=<hex HMAC-SHA256 of the body>` with the granted secret
//! `webhook_token`; `id` deduplicates redeliveries. Replies are POSTed as JSON
//! to the configured `reply_url`.

use switchyard_plugin_sdk::channel::{DELIVERY_ID, header, verify_hmac_sha256};
use switchyard_plugin_sdk::prelude::*;

#[derive(Deserialize)]
struct Incoming {
    conversation: String,
    sender: String,
    text: String,
    id: Option<String>,
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
        let signature = header(&request.headers, "x-signature")
            .and_then(|v| v.strip_prefix("sha256="))
            .ok_or_else(|| Error::denied("missing x-signature: sha256=<hex>"))?;
        if !verify_hmac_sha256(token.as_bytes(), &request.body, signature) {
            return Err(Error::denied("x-signature does not match the body"));
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
                metadata: incoming
                    .id
                    .map(|id| vec![(DELIVERY_ID.to_string(), id)])
                    .unwrap_or_default(),
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
