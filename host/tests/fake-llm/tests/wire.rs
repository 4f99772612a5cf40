//! The fake's wire formats and scripting, seen by a plain HTTP client.

use serde_json::{Value, json};
use std::time::Duration;
use switchyard_fake_llm::{FakeLlm, Reply};

/// POSTs `body` to `url` and returns the status and the whole body text.
async fn post(url: &str, body: &Value) -> (u16, String, reqwest::header::HeaderMap) {
    let response = reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.text().await.expect("body"), headers)
}

/// The `data:` payloads of an event stream, parsed (except `[DONE]`).
fn data_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn openai_route_streams_chunks_usage_and_done() {
    let llm = FakeLlm::start().await;
    llm.push(Reply::text_then_tool_call(
        "Hello there, friend",
        "call_1",
        "read",
        r#"{"path":"a.txt"}"#,
    ));
    let url = format!("{}/chat/completions", llm.base_url_openai());
    let body = json!({"model": "m1", "stream": true, "stream_options": {"include_usage": true}});
    let (status, text, headers) = post(&url, &body).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    let data = data_lines(&text);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("JSON chunk"))
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect();
    assert_eq!(content, "Hello there, friend");
    let fragments: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c.pointer("/choices/0/delta/tool_calls/0/function/arguments"))
        .filter_map(Value::as_str)
        .collect();
    assert!(fragments.len() >= 3, "{fragments:?}");
    assert_eq!(fragments.concat(), r#"{"path":"a.txt"}"#);
    let finish: Vec<&str> = chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/finish_reason")
                .and_then(Value::as_str)
        })
        .collect();
    assert_eq!(finish, ["tool_calls"]);
    let usage = chunks.last().expect("usage chunk");
    assert_eq!(usage["choices"], json!([]));
    assert!(
        usage
            .pointer("/usage/prompt_tokens")
            .and_then(Value::as_u64)
            .is_some()
    );
    assert_eq!(chunks[0]["model"], "m1");

    llm.push(Reply::text("no usage asked"));
    let (_, text, _) = post(&url, &json!({"model": "m1", "stream": true})).await;
    assert!(!text.contains("\"usage\""), "{text}");
}

#[tokio::test]
async fn anthropic_route_streams_events_with_ping_and_message_stop() {
    let llm = FakeLlm::start().await;
    llm.push(
        Reply::tool_calls([("toolu_1", "a", r#"{"x":1}"#), ("toolu_2", "b", "{}")]).usage(7, 3),
    );
    let url = format!("{}/v1/messages", llm.base_url_anthropic());
    let (status, text, _) = post(&url, &json!({"model": "claude", "stream": true})).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert!(names.contains(&"ping"));
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "content_block_start")
            .count(),
        2
    );
    let events: Vec<Value> = data_lines(&text)
        .iter()
        .map(|d| serde_json::from_str(d).expect("JSON event"))
        .collect();
    let joined: String = events
        .iter()
        .filter(|e| e["index"] == 0)
        .filter_map(|e| e.pointer("/delta/partial_json").and_then(Value::as_str))
        .collect();
    assert_eq!(joined, r#"{"x":1}"#);
    assert_eq!(
        events[0].pointer("/message/usage/input_tokens"),
        Some(&json!(7))
    );
    let delta = events
        .iter()
        .find(|e| e["type"] == "message_delta")
        .expect("message_delta");
    assert_eq!(
        delta.pointer("/delta/stop_reason"),
        Some(&json!("tool_use"))
    );
    assert_eq!(delta.pointer("/usage/output_tokens"), Some(&json!(3)));
}

#[tokio::test]
async fn statuses_errors_recording_and_the_responder() {
    let llm = FakeLlm::start().await;
    llm.push(Reply::status(429, r#"{"error":{"message":"slow down"}}"#).retry_after("1"));
    llm.push(Reply::api_error(401, "bad key"));
    let openai = format!("{}/chat/completions", llm.base_url_openai());
    let anthropic = format!("{}/v1/messages", llm.base_url_anthropic());
    let (status, text, headers) = post(&openai, &json!({})).await;
    assert_eq!(
        (status, text.as_str()),
        (429, r#"{"error":{"message":"slow down"}}"#)
    );
    assert_eq!(headers["retry-after"], "1");
    let (status, text, _) = post(&anthropic, &json!({})).await;
    assert_eq!(status, 401);
    let error: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        error.pointer("/error/type"),
        Some(&json!("authentication_error"))
    );
    let (status, text, _) = post(&anthropic, &json!({})).await;
    assert_eq!(status, 500);
    assert!(text.contains("no reply was queued"), "{text}");

    llm.set_responder(|body, protocol| {
        let n = body["n"].as_u64().unwrap_or(0);
        Reply::text(format!("{protocol:?} {n}"))
    });
    let (_, text, _) = post(&anthropic, &json!({"n": 4})).await;
    let answer: String = data_lines(&text)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|e| {
            e.pointer("/delta/text")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(answer, "Anthropic 4");
    let (status, _, _) = post(&format!("{}/other", llm.base_url_openai()), &json!({})).await;
    assert_eq!(status, 404);

    let requests = llm.requests();
    assert_eq!(requests.len(), 5);
    assert_eq!(llm.request_count(), 5);
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[3].body, json!({"n": 4}));
    assert_eq!(requests[3].header("Content-Type"), Some("application/json"));
}

#[tokio::test]
async fn hangs_drops_and_malformed_chunks() {
    let llm = FakeLlm::start().await;
    let url = format!("{}/chat/completions", llm.base_url_openai());
    let client = reqwest::Client::new();

    llm.push(Reply::hang());
    let response = client
        .post(&url)
        .json(&json!({}))
        .send()
        .await
        .expect("headers");
    assert_eq!(response.status(), 200);
    let read = tokio::time::timeout(Duration::from_millis(300), response.text()).await;
    assert!(read.is_err(), "the body never ends");

    llm.push(Reply::hang_before_headers());
    let send = tokio::time::timeout(
        Duration::from_millis(300),
        client.post(&url).json(&json!({})).send(),
    );
    assert!(send.await.is_err(), "no headers");

    llm.push(Reply::drop_mid_stream());
    let response = client
        .post(&url)
        .json(&json!({}))
        .send()
        .await
        .expect("headers");
    assert!(
        response.text().await.is_err(),
        "the connection is dropped mid-body"
    );

    llm.push(Reply::malformed());
    let (_, text, _) = post(&url, &json!({})).await;
    let bad = data_lines(&text)
        .into_iter()
        .filter(|d| d != "[DONE]")
        .filter(|d| serde_json::from_str::<Value>(d).is_err())
        .count();
    assert_eq!(bad, 1, "{text}");

    llm.push(Reply::error_event("overloaded_error"));
    let anthropic = format!("{}/v1/messages", llm.base_url_anthropic());
    let (_, text, _) = post(&anthropic, &json!({})).await;
    assert!(text.contains("event: error\n"), "{text}");
    assert!(!text.contains("message_stop"), "{text}");

    llm.push(Reply::text("slow one").slow(Duration::from_millis(20)));
    let started = std::time::Instant::now();
    let _ = post(&url, &json!({})).await;
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
}
