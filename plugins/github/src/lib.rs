//! github: a switchyard channel for GitHub webhooks.
//!
//! Verifies `X-Hub-Signature-256` (HMAC-SHA256 of the raw body under the
//! granted secret `webhook_secret`), answers `ping`, and turns new issue
//! comments and pull-request review comments that mention the configured
//! `trigger` into messages (one conversation per issue or pull request,
//! deduplicated by `X-GitHub-Delivery`). Replies are posted as comments with
//! the granted `token`; each carries a hidden marker with its idempotency
//! key, and a repeat attempt first looks for that marker, so a reply whose
//! first attempt was cut off is never posted twice.

use switchyard_plugin_sdk::channel::{
    DELIVERY_ID, IDEMPOTENCY_KEY, header, meta, verify_hmac_sha256,
};
use switchyard_plugin_sdk::prelude::*;

/// Comments by accounts of these types are never tasks (no reply loops).
const IGNORED_USER_TYPES: [&str; 1] = ["Bot"];
/// How the marker of a reply starts.
const MARKER: &str = "<!-- switchyard:";

#[derive(Deserialize)]
struct User {
    login: String,
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Deserialize)]
struct Comment {
    id: u64,
    body: Option<String>,
    user: User,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Deserialize)]
struct Numbered {
    number: u64,
    #[serde(default)]
    title: String,
}

#[derive(Deserialize)]
struct Event {
    action: Option<String>,
    comment: Option<Comment>,
    issue: Option<Numbered>,
    pull_request: Option<Numbered>,
    repository: Option<Repository>,
    zen: Option<String>,
}

fn reply(status: u16, body: Value) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

/// Check the signature header against the body.
fn verify(secret: &str, headers: &[(String, String)], body: &[u8]) -> Result<()> {
    let given = header(headers, "x-hub-signature-256")
        .ok_or_else(|| Error::denied("X-Hub-Signature-256 is missing: set the webhook's secret"))?;
    let hex = given
        .strip_prefix("sha256=")
        .ok_or_else(|| Error::denied("X-Hub-Signature-256 must start with sha256="))?;
    if verify_hmac_sha256(secret.as_bytes(), body, hex) {
        Ok(())
    } else {
        Err(Error::denied("X-Hub-Signature-256 does not match the body"))
    }
}

/// The messages a verified delivery carries, and the reply to GitHub.
fn messages(
    event_name: &str,
    delivery: Option<&str>,
    body: &[u8],
    trigger: &str,
) -> Result<WebhookOutcome> {
    let event: Event = serde_json::from_slice(body)
        .map_err(|e| Error::invalid_input(format!("the body is not a GitHub event: {e}")))?;
    let ignored = |why: &str| WebhookOutcome {
        response: reply(200, json!({ "ignored": why })),
        messages: vec![],
    };
    if event_name == "ping" {
        return Ok(WebhookOutcome {
            response: reply(200, json!({ "ok": true, "zen": event.zen })),
            messages: vec![],
        });
    }
    if event.action.as_deref() != Some("created") {
        return Ok(ignored("only new comments start tasks"));
    }
    let (Some(comment), Some(repo)) = (event.comment, event.repository) else {
        return Ok(ignored("not a comment"));
    };
    let (number, title, reply_target, list_path) = match event_name {
        "issue_comment" => {
            let issue = event
                .issue
                .ok_or_else(|| Error::invalid_input("an issue_comment without its issue"))?;
            let path = format!("repos/{}/issues/{}/comments", repo.full_name, issue.number);
            (issue.number, issue.title, path.clone(), path)
        }
        "pull_request_review_comment" => {
            let pr = event.pull_request.ok_or_else(|| {
                Error::invalid_input("a pull_request_review_comment without its pull request")
            })?;
            (
                pr.number,
                pr.title,
                format!(
                    "repos/{}/pulls/{}/comments/{}/replies",
                    repo.full_name, pr.number, comment.id
                ),
                format!("repos/{}/pulls/{}/comments", repo.full_name, pr.number),
            )
        }
        _ => return Ok(ignored("this event type starts no task")),
    };
    let text = comment.body.unwrap_or_default();
    if IGNORED_USER_TYPES.contains(&comment.user.kind.as_str()) || text.contains(MARKER) {
        return Ok(ignored("comments by bots start no task"));
    }
    if trigger.is_empty() || !text.contains(trigger) {
        return Ok(ignored("the comment does not mention the trigger"));
    }
    let mut metadata = vec![
        ("event".to_string(), event_name.to_string()),
        ("repository".to_string(), repo.full_name.clone()),
        ("list-path".to_string(), list_path),
    ];
    if let Some(id) = delivery {
        metadata.push((DELIVERY_ID.to_string(), id.to_string()));
    }
    let prompt = format!(
        "{} commented on {}#{number} ({title}):\n\n{text}",
        comment.user.login, repo.full_name
    );
    Ok(WebhookOutcome {
        response: reply(202, json!({ "queued": 1 })),
        messages: vec![InboundMessage {
            conversation_key: format!("{}#{number}", repo.full_name),
            sender: comment.user.login,
            text: prompt,
            reply_target,
            metadata,
        }],
    })
}

/// Check that a path from our own metadata stays a relative API path.
fn safe_path(path: &str) -> Result<&str> {
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && !path.contains("..")
        && !path.contains("://")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b));
    if ok {
        Ok(path)
    } else {
        Err(Error::invalid_input(format!(
            "reply path `{path}` is not a GitHub API path"
        )))
    }
}

fn api(method: &str, path: &str) -> Result<http::Request> {
    let base = config::get("api_base").unwrap_or_else(|| "https://api.github.com".into());
    let token = config::secret("token")?;
    let agent = config::get("user_agent").unwrap_or_else(|| "switchyard-github".into());
    Ok(
        http::Request::new(method, &format!("{}/{}", base.trim_end_matches('/'), path))
            .header("authorization", &format!("Bearer {token}"))
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .header("user-agent", &agent),
    )
}

fn failure(status: u16, what: &str) -> Error {
    match status {
        401 | 403 => Error::denied(format!(
            "GitHub refused {what} ({status}): check the token's permissions"
        )),
        404 | 410 | 422 => Error::invalid_input(format!("GitHub refused {what} ({status})")),
        _ => Error::unavailable(format!("GitHub answered {status} to {what}")),
    }
}

/// Whether a comment with `marker` is already among the newest of `list_path`.
fn already_posted(list_path: &str, marker: &str) -> Result<bool> {
    #[derive(Deserialize)]
    struct Posted {
        body: Option<String>,
    }
    let response = api(
        "GET",
        &format!(
            "{}?per_page=100&sort=created&direction=desc",
            safe_path(list_path)?
        ),
    )?
    .send()?;
    if !response.is_success() {
        return Err(failure(response.status, "listing comments"));
    }
    let posted: Vec<Posted> = response.json()?;
    Ok(posted
        .iter()
        .any(|p| p.body.as_deref().is_some_and(|b| b.contains(marker))))
}

struct Plugin;

impl ChannelPlugin for Plugin {
    fn describe() -> ChannelInfo {
        ChannelInfo {
            name: "github".into(),
            description: "GitHub issue and pull-request comments that mention the trigger; replies as comments".into(),
        }
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome> {
        let secret = config::secret("webhook_secret")?;
        verify(&secret, &request.headers, &request.body)?;
        let event = header(&request.headers, "x-github-event")
            .ok_or_else(|| Error::invalid_input("X-GitHub-Event is missing"))?;
        let trigger = config::get("trigger").unwrap_or_default();
        messages(
            event,
            header(&request.headers, "x-github-delivery"),
            &request.body,
            &trigger,
        )
    }

    fn deliver(message: OutboundMessage) -> Result<()> {
        let key = meta(&message.metadata, IDEMPOTENCY_KEY).unwrap_or_default();
        let marker = format!("{MARKER}{key} -->");
        let first = meta(&message.metadata, "attempt") == Some("1");
        if !first
            && !key.is_empty()
            && let Some(list) = meta(&message.metadata, "list-path")
            && already_posted(list, &marker)?
        {
            return Ok(());
        }
        let body = json!({ "body": format!("{}\n\n{marker}", message.text) });
        let response = api("POST", safe_path(&message.reply_target)?)?
            .json(&body)?
            .send()?;
        if response.is_success() {
            Ok(())
        } else {
            Err(failure(response.status, "the comment"))
        }
    }
}

export_channel!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(body: &[u8]) -> Vec<(String, String)> {
        let sig = switchyard_plugin_sdk::channel::hmac_sha256_hex(b"s3cret", body);
        vec![("x-hub-signature-256".into(), format!("sha256={sig}"))]
    }

    #[test]
    fn documented_vector_and_tampering() {
        let h = vec![(
            "X-Hub-Signature-256".to_string(),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".to_string(),
        )];
        assert!(verify("It's a Secret to Everybody", &h, b"Hello, World!").is_ok());
        assert!(verify("It's a Secret to Everybody", &h, b"Hello, World?").is_err());
        assert!(verify("another secret", &h, b"Hello, World!").is_err());
        assert!(verify("It's a Secret to Everybody", &[], b"Hello, World!").is_err());
        let sha1 = vec![("x-hub-signature-256".to_string(), "sha1=abc".to_string())];
        assert!(verify("It's a Secret to Everybody", &sha1, b"Hello, World!").is_err());
        assert!(verify("s3cret", &signed(b"{}"), b"{}").is_ok());
    }

    fn comment_event(text: &str, kind: &str) -> Vec<u8> {
        json!({
            "action": "created",
            "issue": { "number": 7, "title": "Crash on start" },
            "comment": { "id": 99, "body": text, "user": { "login": "octo", "type": kind } },
            "repository": { "full_name": "acme/app" }
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_mention_becomes_one_message_keyed_by_issue() {
        let out = messages(
            "issue_comment",
            Some("d-1"),
            &comment_event("@switchyard look", "User"),
            "@switchyard",
        )
        .unwrap();
        assert_eq!(out.messages.len(), 1);
        let m = &out.messages[0];
        assert_eq!(m.conversation_key, "acme/app#7");
        assert_eq!(m.reply_target, "repos/acme/app/issues/7/comments");
        assert!(m.text.contains("@switchyard look"));
        assert_eq!(meta(&m.metadata, DELIVERY_ID), Some("d-1"));
    }

    #[test]
    fn no_mention_bots_and_other_events_start_nothing() {
        for (event, body) in [
            ("issue_comment", comment_event("just a note", "User")),
            ("issue_comment", comment_event("@switchyard hi", "Bot")),
            (
                "issue_comment",
                comment_event("@switchyard\n\n<!-- switchyard:k -->", "User"),
            ),
            ("push", comment_event("@switchyard", "User")),
        ] {
            let out = messages(event, None, &body, "@switchyard").unwrap();
            assert!(out.messages.is_empty(), "{event}");
            assert_eq!(out.response.status, 200);
        }
        let ping = messages(
            "ping",
            None,
            br#"{"zen":"Keep it logically awesome."}"#,
            "@x",
        )
        .unwrap();
        assert!(ping.messages.is_empty());
        assert!(messages("issue_comment", None, b"not json", "@x").is_err());
    }

    #[test]
    fn review_comments_reply_in_their_thread() {
        let body = json!({
            "action": "created",
            "pull_request": { "number": 3, "title": "Speed up" },
            "comment": { "id": 42, "body": "@switchyard why?", "user": { "login": "octo", "type": "User" } },
            "repository": { "full_name": "acme/app" }
        });
        let out = messages(
            "pull_request_review_comment",
            None,
            body.to_string().as_bytes(),
            "@switchyard",
        )
        .unwrap();
        assert_eq!(
            out.messages[0].reply_target,
            "repos/acme/app/pulls/3/comments/42/replies"
        );
    }

    #[test]
    fn reply_paths_stay_inside_the_api() {
        assert!(safe_path("repos/a/b/issues/1/comments").is_ok());
        for bad in ["/etc", "../x", "http://evil", "repos/a?x=1", ""] {
            assert!(safe_path(bad).is_err(), "{bad}");
        }
    }
}
