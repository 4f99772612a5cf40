//! Behaviours both protocols share, each run once per protocol (`openai::…`, `anthropic::…`).

use super::{KEY, provider, request, resolved, run, text_of};
use crate::agent::config::ProviderKind;
use crate::agent::provider::{Delta, Provider, ProviderError, StopReason, ToolCall, Usage};
use std::time::{Duration, Instant};
use switchyard_fake_llm::{FakeLlm, Reply};
use tokio::sync::mpsc;

async fn text_streams_in_order(kind: ProviderKind) {
    let llm = FakeLlm::start().await;
    let answer = "Hello there, this answer arrives in several pieces \u{1f980}.";
    llm.push(Reply::text(answer).usage(11, 7));
    let (result, deltas) = run(&provider(&llm, kind), &request()).await;
    let output = result.expect("step succeeds");
    assert!(deltas.len() >= 3, "{deltas:?}");
    assert!(
        deltas.iter().all(|d| matches!(d, Delta::Text(_))),
        "{deltas:?}"
    );
    assert_eq!(text_of(&deltas), answer);
    assert_eq!(output.text, answer);
    assert_eq!(output.stop, StopReason::EndTurn);
    assert!(output.tool_calls.is_empty());
    assert_eq!(
        output.usage,
        Usage {
            input_tokens: 11,
            output_tokens: 7
        }
    );
}

async fn tool_call_fragments_are_joined(kind: ProviderKind) {
    let llm = FakeLlm::start().await;
    let args = r#"{"path":"src/main.rs","lines":[1,20],"note":"caf\u00e9"}"#;
    llm.push(Reply::text_then_tool_call(
        "Reading.",
        "call_abc",
        "read_file",
        args,
    ));
    let (result, deltas) = run(&provider(&llm, kind), &request()).await;
    let output = result.expect("step succeeds");
    assert_eq!(output.text, "Reading.");
    assert_eq!(
        output.tool_calls,
        vec![ToolCall {
            id: "call_abc".into(),
            name: "read_file".into(),
            arguments: args.into()
        }]
    );
    let parsed: serde_json::Value = serde_json::from_str(&output.tool_calls[0].arguments)
        .expect("the joined fragments are JSON");
    assert_eq!(parsed["lines"][1], 20);
    assert_eq!(output.stop, StopReason::ToolUse);
    let start = Delta::ToolCallStart {
        index: 0,
        id: "call_abc".into(),
        name: "read_file".into(),
    };
    assert_eq!(deltas.last(), Some(&start), "text first, then the call");
    assert!(output.usage.input_tokens > 0 && output.usage.output_tokens > 0);
}

async fn two_parallel_tool_calls(kind: ProviderKind) {
    let llm = FakeLlm::start().await;
    llm.push(Reply::tool_calls([
        ("call_1", "list_dir", r#"{"path":"."}"#),
        ("call_2", "read_file", r#"{"path":"README.md"}"#),
    ]));
    let (result, deltas) = run(&provider(&llm, kind), &request()).await;
    let output = result.expect("step succeeds");
    let names: Vec<(&str, &str, &str)> = output
        .tool_calls
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("call_1", "list_dir", r#"{"path":"."}"#),
            ("call_2", "read_file", r#"{"path":"README.md"}"#)
        ]
    );
    let starts: Vec<usize> = deltas
        .iter()
        .filter_map(|d| match d {
            Delta::ToolCallStart { index, .. } => Some(*index),
            Delta::Text(_) => None,
        })
        .collect();
    assert_eq!(starts, [0, 1]);
    assert_eq!(output.stop, StopReason::ToolUse);
}

async fn max_tokens_is_reported(kind: ProviderKind) {
    let llm = FakeLlm::start().await;
    llm.push(Reply::text("cut sh").truncated());
    let (result, _) = run(&provider(&llm, kind), &request()).await;
    assert_eq!(result.expect("step succeeds").stop, StopReason::MaxTokens);
}

async fn server_error_then_success_is_retried(kind: ProviderKind) {
    let llm = FakeLlm::start().await;
    llm.push(Reply::api_error(500, "internal trouble"));
    llm.push(Reply::text("second time lucky"));
    let (result, _) = run(&provider(&llm, kind), &request()).await;
    assert_eq!(result.expect("retried").text, "second time lucky");
    assert_eq!(llm.request_count(), 2);
}

async fn rate_limit_honours_retry_after(kind: ProviderKind) {
    let llm = FakeLlm::start().await;
    llm.push(Reply::api_error(429, "slow down").retry_after("1"));
    llm.push(Reply::text("ok"));
    let started = Instant::now();
    let (result, _) = run(&provider(&llm, kind), &request()).await;
    let waited = started.elapsed();
    assert_eq!(result.expect("retried").text, "ok");
    assert_eq!(llm.request_count(), 2);
    assert!(waited >= Duration::from_millis(950), "waited {waited:?}");
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
}

async fn unauthorized_is_fatal_and_not_retried(kind: ProviderKind) {
    let llm = FakeLlm::start().await;
    llm.push(Reply::api_error(
        401,
        format!("Incorrect API key provided: {KEY}"),
    ));
    let (result, deltas) = run(&provider(&llm, kind), &request()).await;
    let err = result.expect_err("fatal");
    assert_eq!(err.code(), "llm_auth");
    assert!(!err.is_retryable());
    let message = err.to_string();
    assert!(message.contains("Incorrect API key provided"), "{message}");
    assert!(message.contains("401"), "{message}");
    assert!(!message.contains(KEY), "{message}");
    assert!(!format!("{err:?}").contains(KEY));
    assert_eq!(llm.request_count(), 1);
    assert!(deltas.is_empty());

    for (status, code) in [
        (400, "llm_bad_request"),
        (403, "llm_auth"),
        (404, "llm_not_found"),
    ] {
        llm.push(Reply::api_error(status, "nope"));
        let (result, _) = run(&provider(&llm, kind), &request()).await;
        assert_eq!(result.expect_err("fatal").code(), code, "{status}");
    }
    assert_eq!(llm.request_count(), 4, "none retried");
}

async fn hang_after_headers_times_out(kind: ProviderKind) {
    let llm = FakeLlm::start().await;
    let mut settings = resolved(&llm, kind);
    settings.timeout = Duration::from_millis(300);
    settings.max_retries = 0;
    let client = Provider::new(&settings).expect("client");
    llm.push(Reply::hang());
    let started = Instant::now();
    let (result, _) = run(&client, &request()).await;
    assert_eq!(result.expect_err("times out"), ProviderError::Timeout);
    assert!(started.elapsed() < Duration::from_secs(3));
    llm.push(Reply::hang_before_headers());
    let (result, _) = run(&client, &request()).await;
    let err = result.expect_err("times out");
    assert_eq!(err, ProviderError::Timeout);
    assert!(err.is_retryable());
}

async fn hang_is_retried_while_nothing_was_streamed(kind: ProviderKind) {
    let llm = FakeLlm::start().await;
    let mut settings = resolved(&llm, kind);
    settings.timeout = Duration::from_millis(300);
    let client = Provider::new(&settings).expect("client");
    llm.push(Reply::hang());
    llm.push(Reply::text("after the hang"));
    let (result, _) = run(&client, &request()).await;
    assert_eq!(result.expect("retried").text, "after the hang");
    assert_eq!(llm.request_count(), 2);
}

async fn drop_mid_stream_after_text_is_returned(kind: ProviderKind) {
    let llm = FakeLlm::start().await;
    llm.push(Reply::drop_mid_stream());
    llm.push(Reply::text("must not be fetched"));
    let (result, deltas) = run(&provider(&llm, kind), &request()).await;
    let err = result.expect_err("cut off");
    assert!(matches!(err, ProviderError::Retryable { .. }), "{err:?}");
    assert!(!deltas.is_empty(), "text went out first");
    assert_eq!(llm.request_count(), 1, "not retried once text was streamed");
}

async fn cut_before_any_delta_is_retried(kind: ProviderKind) {
    let llm = FakeLlm::start().await;
    llm.push(Reply::tool_calls(Vec::<(&str, &str, &str)>::new()).then_drop());
    llm.push(Reply::text("whole"));
    let (result, deltas) = run(&provider(&llm, kind), &request()).await;
    assert_eq!(result.expect("retried").text, "whole");
    assert_eq!(text_of(&deltas), "whole");
    assert_eq!(llm.request_count(), 2);
}

async fn malformed_chunk_is_a_protocol_error(kind: ProviderKind) {
    let llm = FakeLlm::start().await;
    llm.push(Reply::malformed());
    let (result, _) = run(&provider(&llm, kind), &request()).await;
    let err = result.expect_err("malformed");
    assert_eq!(err.code(), "llm_protocol", "{err}");
    assert!(err.to_string().contains("not JSON"), "{err}");
    assert_eq!(llm.request_count(), 1);
}

async fn error_event_in_a_200_stream(kind: ProviderKind) {
    let llm = FakeLlm::start().await;
    llm.push(Reply::error_event("overloaded_error"));
    llm.push(Reply::text("recovered"));
    let (result, _) = run(&provider(&llm, kind), &request()).await;
    assert_eq!(result.expect("retried").text, "recovered");
    assert_eq!(llm.request_count(), 2);

    let mut settings = resolved(&llm, kind);
    settings.max_retries = 0;
    let once = Provider::new(&settings).expect("client");
    llm.push(Reply::error_event("overloaded_error"));
    let (result, _) = run(&once, &request()).await;
    let err = result.expect_err("overloaded");
    assert!(err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("overloaded_error"), "{err}");
}

async fn unreachable_base_url_is_retryable(kind: ProviderKind) {
    let llm = FakeLlm::start().await;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let mut settings = resolved(&llm, kind);
    settings.base_url = format!("http://127.0.0.1:{port}");
    settings.max_retries = 2;
    let client = Provider::new(&settings).expect("client");
    let started = Instant::now();
    let (result, _) = run(&client, &request()).await;
    let err = result.expect_err("refused");
    assert!(err.is_retryable(), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&format!("http://127.0.0.1:{port}")),
        "{message}"
    );
    assert!(message.contains(kind.as_str()), "{message}");
    assert!(message.contains("gave up after 2 retries"), "{message}");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "backed off"
    );
}

async fn dropping_the_step_mid_stream_is_clean(kind: ProviderKind) {
    let llm = FakeLlm::start().await;
    llm.push(
        Reply::text("a slow answer that will not be waited for").slow(Duration::from_millis(40)),
    );
    llm.push(Reply::text("next"));
    let client = provider(&llm, kind);
    let req = request();
    let (tx, mut rx) = mpsc::channel(64);
    let step = client.step(&req, &tx);
    tokio::select! {
        _ = step => panic!("the slow step cannot finish first"),
        first = rx.recv() => assert!(matches!(first, Some(Delta::Text(_)))),
    }
    let (result, _) = run(&client, &request()).await;
    assert_eq!(result.expect("the client still works").text, "next");
}

async fn a_closed_delta_receiver_does_not_stop_the_step(kind: ProviderKind) {
    let llm = FakeLlm::start().await;
    llm.push(Reply::text("nobody listens"));
    let (tx, rx) = mpsc::channel(1);
    drop(rx);
    let output = provider(&llm, kind).step(&request(), &tx).await;
    assert_eq!(output.expect("completes").text, "nobody listens");
}

/// Runs each case once per protocol, as `openai::case` and `anthropic::case`.
macro_rules! per_protocol {
    ($($case:ident),* $(,)?) => {
        mod openai {
            $(#[tokio::test]
            async fn $case() {
                super::$case(crate::agent::config::ProviderKind::OpenAi).await;
            })*
        }
        mod anthropic {
            $(#[tokio::test]
            async fn $case() {
                super::$case(crate::agent::config::ProviderKind::Anthropic).await;
            })*
        }
    };
}

per_protocol!(
    text_streams_in_order,
    tool_call_fragments_are_joined,
    two_parallel_tool_calls,
    max_tokens_is_reported,
    server_error_then_success_is_retried,
    rate_limit_honours_retry_after,
    unauthorized_is_fatal_and_not_retried,
    hang_after_headers_times_out,
    hang_is_retried_while_nothing_was_streamed,
    drop_mid_stream_after_text_is_returned,
    cut_before_any_delta_is_retried,
    malformed_chunk_is_a_protocol_error,
    error_event_in_a_200_stream,
    unreachable_base_url_is_retryable,
    dropping_the_step_mid_stream_is_clean,
    a_closed_delta_receiver_does_not_stop_the_step,
);
