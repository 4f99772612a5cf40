//! slack: a switchyard channel for the Slack Events API.
//!
//! Verifies Slack's v0 signature (`X-Slack-Signature: v0=<hex HMAC-SHA256 of
//! "v0:{X-Slack-Request-Timestamp}:{raw body}">` under the granted secret
//! `signing_secret`), refuses requests older than `max_age_secs` (by the host's
//! clock, which tests can pin), answers the `url_verification` challenge, and
//! turns `app_mention` events and direct messages into messages — one
//! conversation per thread, deduplicated by `event_id` (Slack's retries, marked
//! `X-Slack-Retry-Num`, carry the same one). Replies go into the thread with
//! `chat.postMessage` and the granted `bot_token`.

use switchyard_plugin_sdk::channel::{DELIVERY_ID, header, meta, verify_hmac_sha256};
use switchyard_plugin_sdk::now_ms;
use switchyard_plugin_sdk::prelude::*;

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    challenge: Option<String>,
    team_id: Option<String>,
    event_id: Option<String>,
    event: Option<SlackEvent>,
}

#[derive(Deserialize)]
struct SlackEvent {
    #[serde(rename = "type")]
    kind: String,
    channel: Option<String>,
    channel_type: Option<String>,
    user: Option<String>,
    text: Option<String>,
    ts: Option<String>,
    thread_ts: Option<String>,
    bot_id: Option<String>,
    subtype: Option<String>,
}

fn answer(status: u16, content_type: &str, body: Vec<u8>) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("content-type".into(), content_type.into())],
        body,
    }
}

/// Check a v0 signature made at `timestamp` (seconds) against `now_secs`.
fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_secs: u64,
    max_age_secs: u64,
) -> Result<()> {
    let timestamp =
        timestamp.ok_or_else(|| Error::denied("X-Slack-Request-Timestamp is missing"))?;
    let signature = signature.ok_or_else(|| Error::denied("X-Slack-Signature is missing"))?;
    let at: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Error::denied("X-Slack-Request-Timestamp is not a number"))?;
    if now_secs.abs_diff(at) > max_age_secs {
        return Err(Error::denied(format!(
            "the request was signed {} s from now; at most {max_age_secs} s are accepted (replay?)",
            now_secs.abs_diff(at)
        )));
    }
    let hex = signature
        .strip_prefix("v0=")
        .ok_or_else(|| Error::denied("X-Slack-Signature must start with v0="))?;
    let mut base = format!("v0:{timestamp}:").into_bytes();
    base.extend_from_slice(body);
    if verify_hmac_sha256(secret.as_bytes(), &base, hex) {
        Ok(())
    } else {
        Err(Error::denied(
            "X-Slack-Signature does not match the request",
        ))
    }
}

fn parse(body: &[u8]) -> Result<WebhookOutcome> {
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|e| Error::invalid_input(format!("the body is not a Slack event: {e}")))?;
    let ok = WebhookOutcome {
        response: answer(200, "text/plain", Vec::new()),
        messages: vec![],
    };
    match envelope.kind.as_str() {
        "url_verification" => {
            let challenge = envelope
                .challenge
                .ok_or_else(|| Error::invalid_input("url_verification without a challenge"))?;
            return Ok(WebhookOutcome {
                response: answer(200, "text/plain", challenge.into_bytes()),
                messages: vec![],
            });
        }
        "event_callback" => {}
        _ => return Ok(ok),
    }
    let Some(event) = envelope.event else {
        return Ok(ok);
    };
    let direct = event.kind == "message" && event.channel_type.as_deref() == Some("im");
    if (event.kind != "app_mention" && !direct) || event.bot_id.is_some() || event.subtype.is_some()
    {
        return Ok(ok);
    }
    let (Some(channel), Some(ts)) = (event.channel, event.ts) else {
        return Ok(ok);
    };
    let thread = event.thread_ts.unwrap_or(ts);
    let text = event.text.unwrap_or_default();
    if text.trim().is_empty() {
        return Ok(ok);
    }
    let mut metadata = vec![("event".to_string(), event.kind.clone())];
    if let Some(id) = envelope.event_id {
        metadata.push((DELIVERY_ID.to_string(), id));
    }
    Ok(WebhookOutcome {
        response: ok.response,
        messages: vec![InboundMessage {
            conversation_key: format!(
                "{}:{channel}:{thread}",
                envelope.team_id.unwrap_or_default()
            ),
            sender: event.user.unwrap_or_default(),
            text,
            reply_target: format!("{channel}|{thread}"),
            metadata,
        }],
    })
}

fn slack_error(code: &str) -> Error {
    match code {
        "ratelimited"
        | "service_unavailable"
        | "fatal_error"
        | "internal_error"
        | "request_timeout" => Error::unavailable(format!("Slack: {code}")),
        "invalid_auth" | "not_authed" | "account_inactive" | "token_revoked" | "missing_scope"
        | "not_in_channel" => Error::denied(format!("Slack refused the reply: {code}")),
        _ => Error::invalid_input(format!("Slack refused the reply: {code}")),
    }
}

struct Plugin;

impl ChannelPlugin for Plugin {
    fn describe() -> ChannelInfo {
        ChannelInfo {
            name: "slack".into(),
            description: "Slack app mentions and direct messages; replies in the thread".into(),
        }
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome> {
        let secret = config::secret("signing_secret")?;
        let max_age = config::get("max_age_secs")
            .and_then(|v| v.parse().ok())
            .unwrap_or(300);
        verify(
            &secret,
            header(&request.headers, "x-slack-request-timestamp"),
            header(&request.headers, "x-slack-signature"),
            &request.body,
            now_ms() / 1000,
            max_age,
        )?;
        parse(&request.body)
    }

    fn deliver(message: OutboundMessage) -> Result<()> {
        #[derive(Deserialize)]
        struct Answer {
            ok: bool,
            error: Option<String>,
        }
        let (channel, thread) = message
            .reply_target
            .split_once('|')
            .ok_or_else(|| Error::invalid_input("the reply target is not CHANNEL|THREAD"))?;
        let base = config::get("api_base").unwrap_or_else(|| "https://slack.com/api".into());
        let token = config::secret("bot_token")?;
        let mut body = json!({ "channel": channel, "thread_ts": thread, "text": message.text });
        if let Some(key) = meta(&message.metadata, "idempotency-key") {
            body["metadata"] = json!({ "event_type": "switchyard_reply", "event_payload": { "idempotency_key": key } });
        }
        let response =
            http::Request::post(&format!("{}/chat.postMessage", base.trim_end_matches('/')))
                .header("authorization", &format!("Bearer {token}"))
                .json(&body)?
                .send()?;
        if response.status == 429 || response.status >= 500 {
            return Err(Error::unavailable(format!(
                "Slack answered {}",
                response.status
            )));
        }
        let answer: Answer = response.json()?;
        if answer.ok {
            Ok(())
        } else {
            Err(slack_error(
                answer.error.as_deref().unwrap_or("unknown_error"),
            ))
        }
    }
}

export_channel!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    // The example from Slack's "Verifying requests from Slack" guide.
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slacks_documented_example_verifies_at_its_time() {
        let now = 1_531_420_618 + 10;
        assert!(verify(SECRET, Some(TS), Some(SIG), BODY.as_bytes(), now, 300).is_ok());
    }

    #[test]
    fn tampered_stale_and_missing_are_refused() {
        let now = 1_531_420_618;
        let mut tampered = BODY.as_bytes().to_vec();
        tampered.push(b'x');
        assert!(verify(SECRET, Some(TS), Some(SIG), &tampered, now, 300).is_err());
        assert!(verify("wrong", Some(TS), Some(SIG), BODY.as_bytes(), now, 300).is_err());
        assert!(
            verify(SECRET, Some(TS), Some(SIG), BODY.as_bytes(), now + 301, 300).is_err(),
            "stale"
        );
        assert!(
            verify(SECRET, Some(TS), Some(SIG), BODY.as_bytes(), now - 301, 300).is_err(),
            "future"
        );
        assert!(verify(SECRET, None, Some(SIG), BODY.as_bytes(), now, 300).is_err());
        assert!(verify(SECRET, Some(TS), None, BODY.as_bytes(), now, 300).is_err());
        assert!(verify(SECRET, Some("soon"), Some(SIG), BODY.as_bytes(), now, 300).is_err());
    }

    #[test]
    fn challenge_mentions_and_dms() {
        let c = parse(br#"{"type":"url_verification","challenge":"3eZbrw1aB"}"#).unwrap();
        assert_eq!(c.response.body, b"3eZbrw1aB");
        let mention = br#"{"type":"event_callback","team_id":"T1","event_id":"Ev1","event":{"type":"app_mention","channel":"C1","user":"U1","text":"<@B> hi","ts":"1.2"}}"#;
        let out = parse(mention).unwrap();
        let m = &out.messages[0];
        assert_eq!(m.conversation_key, "T1:C1:1.2");
        assert_eq!(m.reply_target, "C1|1.2");
        assert_eq!(meta(&m.metadata, DELIVERY_ID), Some("Ev1"));
        let threaded = br#"{"type":"event_callback","event":{"type":"message","channel_type":"im","channel":"D1","text":"yo","ts":"5.6","thread_ts":"5.0"}}"#;
        assert_eq!(parse(threaded).unwrap().messages[0].reply_target, "D1|5.0");
        for ignored in [
            &br#"{"type":"event_callback","event":{"type":"message","channel":"C1","text":"x","ts":"1"}}"#[..],
            br#"{"type":"event_callback","event":{"type":"app_mention","channel":"C1","text":"x","ts":"1","bot_id":"B"}}"#,
            br#"{"type":"app_rate_limited"}"#,
        ] {
            assert!(parse(ignored).unwrap().messages.is_empty());
        }
        assert!(parse(b"nope").is_err());
    }
}
