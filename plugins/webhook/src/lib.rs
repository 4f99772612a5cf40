//! webhook: a generic switchyard channel.
//!
//! In: `POST` a JSON body `{"conversation", "text", "sender"?, "id"?, "reply_to"?}`
//! with `X-Signature: sha256=<hex HMAC-SHA256 of the raw body>` under the granted
//! secret `signing_secret`. `id` (or the `X-Delivery-Id` header) is the delivery
//! id: a request sent again with the same id makes no second task.
//!
//! Out: the result is POSTed to `callback_url` as JSON `{"conversation",
//! "reply_to", "text", "task_id", "status", "idempotency_key"}`, signed the same
//! way in `X-Signature`, with an `Idempotency-Key` header that stays the same
//! on every attempt to send one result.

use switchyard_plugin_sdk::channel::{
    DELIVERY_ID, IDEMPOTENCY_KEY, header, hmac_sha256_hex, meta, verify_hmac_sha256,
};
use switchyard_plugin_sdk::prelude::*;

/// Longest `text` accepted (bytes).
const MAX_TEXT: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Incoming {
    conversation: String,
    text: String,
    sender: Option<String>,
    id: Option<String>,
    reply_to: Option<String>,
}

fn answer(status: u16, body: Value) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

fn verify(secret: &str, headers: &[(String, String)], body: &[u8]) -> Result<()> {
    let given = header(headers, "x-signature")
        .ok_or_else(|| Error::denied("X-Signature is missing: sign the body with HMAC-SHA256"))?;
    let hex = given
        .strip_prefix("sha256=")
        .ok_or_else(|| Error::denied("X-Signature must be sha256=<hex>"))?;
    if verify_hmac_sha256(secret.as_bytes(), body, hex) {
        Ok(())
    } else {
        Err(Error::denied("X-Signature does not match the body"))
    }
}

fn parse(headers: &[(String, String)], body: &[u8]) -> Result<WebhookOutcome> {
    let incoming: Incoming = serde_json::from_slice(body).map_err(|e| {
        Error::invalid_input(format!(
            "the body must be JSON {{\"conversation\", \"text\", \"sender\"?, \"id\"?, \"reply_to\"?}}: {e}"
        ))
    })?;
    if incoming.conversation.trim().is_empty() || incoming.text.trim().is_empty() {
        return Err(Error::invalid_input(
            "`conversation` and `text` must not be empty",
        ));
    }
    if incoming.text.len() > MAX_TEXT {
        return Err(Error::invalid_input(format!(
            "`text` is longer than {MAX_TEXT} bytes"
        )));
    }
    let mut metadata = Vec::new();
    if let Some(id) = incoming
        .id
        .as_deref()
        .or_else(|| header(headers, "x-delivery-id"))
    {
        metadata.push((DELIVERY_ID.to_string(), id.to_string()));
    }
    Ok(WebhookOutcome {
        response: answer(202, json!({ "accepted": true })),
        messages: vec![InboundMessage {
            reply_target: incoming
                .reply_to
                .unwrap_or_else(|| incoming.conversation.clone()),
            conversation_key: incoming.conversation,
            sender: incoming.sender.unwrap_or_else(|| "webhook".into()),
            text: incoming.text,
            metadata,
        }],
    })
}

struct Plugin;

impl ChannelPlugin for Plugin {
    fn describe() -> ChannelInfo {
        ChannelInfo {
            name: "webhook".into(),
            description:
                "HMAC-signed JSON in; results POSTed to a callback URL, signed the same way".into(),
        }
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome> {
        let secret = config::secret("signing_secret")?;
        verify(&secret, &request.headers, &request.body)?;
        parse(&request.headers, &request.body)
    }

    fn deliver(message: OutboundMessage) -> Result<()> {
        let url = config::get("callback_url").unwrap_or_default();
        if url.is_empty() {
            return Ok(());
        }
        let secret = config::secret("signing_secret")?;
        let key = meta(&message.metadata, IDEMPOTENCY_KEY).unwrap_or_default();
        let body = json!({
            "conversation": message.conversation_key,
            "reply_to": message.reply_target,
            "text": message.text,
            "task_id": meta(&message.metadata, "task-id"),
            "status": meta(&message.metadata, "task-status"),
            "idempotency_key": key,
        })
        .to_string();
        let signature = hmac_sha256_hex(secret.as_bytes(), body.as_bytes());
        let response = http::Request::post(&url)
            .header("content-type", "application/json")
            .header("x-signature", &format!("sha256={signature}"))
            .header("idempotency-key", key)
            .body(body)
            .send()?;
        match response.status {
            200..=299 => Ok(()),
            408 | 429 | 500..=599 => Err(Error::unavailable(format!(
                "the callback answered {}",
                response.status
            ))),
            s => Err(Error::invalid_input(format!(
                "the callback refused the result ({s})"
            ))),
        }
    }
}

export_channel!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(body: &[u8]) -> Vec<(String, String)> {
        vec![(
            "x-signature".into(),
            format!("sha256={}", hmac_sha256_hex(b"k", body)),
        )]
    }

    #[test]
    fn signed_bodies_only() {
        let body = br#"{"conversation":"c","text":"hi"}"#;
        assert!(verify("k", &sig(body), body).is_ok());
        assert!(verify("k", &sig(body), br#"{"conversation":"c","text":"ho"}"#).is_err());
        assert!(verify("other", &sig(body), body).is_err());
        assert!(verify("k", &[], body).is_err());
    }

    #[test]
    fn parse_takes_the_delivery_id_from_the_body_or_the_header() {
        let out = parse(&[], br#"{"conversation":"c","text":"hi","id":"d1"}"#).unwrap();
        assert_eq!(meta(&out.messages[0].metadata, DELIVERY_ID), Some("d1"));
        let h = vec![("x-delivery-id".to_string(), "d2".to_string())];
        let out = parse(&h, br#"{"conversation":"c","text":"hi"}"#).unwrap();
        assert_eq!(meta(&out.messages[0].metadata, DELIVERY_ID), Some("d2"));
        assert_eq!(out.messages[0].reply_target, "c");
        for bad in [
            &b"nope"[..],
            br#"{"conversation":"","text":"x"}"#,
            br#"{"conversation":"c","text":"x","extra":1}"#,
        ] {
            assert!(parse(&[], bad).is_err());
        }
    }
}
