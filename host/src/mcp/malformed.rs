//! JSON-RPC errors for `POST /mcp` bodies that rmcp would refuse with a bare
//! HTTP status (it answers `415` to anything it cannot deserialize) or route to
//! the wrong error (a standard method whose params do not fit falls through
//! to rmcp's custom-request variant, and so to `-32601 method not found`).
//!
//! Only bodies the direct path did not take come here, so well-formed calls
//! pay for no second parse.

use rmcp::model::{ClientJsonRpcMessage, ClientRequest, ErrorCode};
use serde_json::Value;
use warp::Reply;
use warp::http::StatusCode;

/// Request methods of the MCP specification (client to server): params that
/// do not fit one of these are invalid params, not an unknown method.
const STANDARD_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "completion/complete",
    "logging/setLevel",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "tools/call",
    "tools/list",
    "tasks/get",
    "tasks/cancel",
];

/// A JSON-RPC error answer to `body`, when it is not valid JSON-RPC for MCP or
/// calls a standard method with params that do not fit it; `None` when rmcp
/// should see it.
pub fn reject(body: &[u8]) -> Option<warp::reply::Response> {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => {
            return Some(error(
                StatusCode::BAD_REQUEST,
                Value::Null,
                ErrorCode::PARSE_ERROR,
                format!("Parse error: the body is not JSON ({e})"),
            ));
        }
    };
    let Some(object) = value.as_object() else {
        return Some(error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            ErrorCode::INVALID_REQUEST,
            "Invalid Request: send one JSON-RPC 2.0 object per POST (batches are not supported)"
                .into(),
        ));
    };
    let id = object.get("id").cloned().unwrap_or(Value::Null);
    let method = object.get("method").and_then(Value::as_str);
    match serde_json::from_value::<ClientJsonRpcMessage>(value.clone()) {
        Err(e) => Some(error(
            StatusCode::BAD_REQUEST,
            if id.is_string() || id.is_number() {
                id
            } else {
                Value::Null
            },
            ErrorCode::INVALID_REQUEST,
            format!(
                "Invalid Request: expected a JSON-RPC 2.0 request, notification or response ({e})"
            ),
        )),
        Ok(ClientJsonRpcMessage::Request(request))
            if matches!(request.request, ClientRequest::CustomRequest(_))
                && method.is_some_and(|m| STANDARD_METHODS.contains(&m)) =>
        {
            let method = method.unwrap_or_default();
            Some(error(
                StatusCode::OK,
                id,
                ErrorCode::INVALID_PARAMS,
                format!("Invalid params for `{method}`: {}", params_problem(method)),
            ))
        }
        Ok(_) => None,
    }
}

/// What a standard method's params must hold, for the error message.
fn params_problem(method: &str) -> &'static str {
    match method {
        "tools/call" => "`params.name` (a string: the tool's name) is required",
        "prompts/get" => "`params.name` (a string: the prompt's name) is required",
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            "`params.uri` (a string) is required"
        }
        "logging/setLevel" => "`params.level` must be an MCP logging level",
        _ => "the params do not match the method's schema",
    }
}

fn error(status: StatusCode, id: Value, code: ErrorCode, message: String) -> warp::reply::Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": code.0, "message": message },
    });
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

#[cfg(test)]
mod tests {
    use super::reject;
    use http_body_util::BodyExt;

    async fn answer(body: &str) -> Option<(u16, serde_json::Value)> {
        let response = reject(body.as_bytes())?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.ok()?.to_bytes();
        Some((status, serde_json::from_slice(&bytes).ok()?))
    }

    #[tokio::test]
    async fn malformed_bodies_get_json_rpc_errors() {
        let (status, body) = answer("{not json").await.unwrap();
        assert_eq!(
            (status, body["error"]["code"].as_i64()),
            (400, Some(-32700))
        );
        assert!(body["id"].is_null());
        let (status, body) = answer("[1,2]").await.unwrap();
        assert_eq!(
            (status, body["error"]["code"].as_i64()),
            (400, Some(-32600))
        );
        let (_, body) = answer(r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#)
            .await
            .unwrap();
        assert_eq!(body["error"]["code"], -32600);
        assert_eq!(body["id"], 3);
    }

    #[tokio::test]
    async fn standard_methods_with_bad_params_are_invalid_params() {
        let (status, body) =
            answer(r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{}}"#)
                .await
                .unwrap();
        assert_eq!(
            (status, body["error"]["code"].as_i64()),
            (200, Some(-32602))
        );
        assert_eq!(body["id"], 9);
        assert!(body["error"]["message"].as_str().unwrap().contains("name"));
        let (_, body) = answer(r#"{"jsonrpc":"2.0","id":"a","method":"tools/call"}"#)
            .await
            .unwrap();
        assert_eq!(body["error"]["code"], -32602);
    }

    #[tokio::test]
    async fn well_formed_requests_go_to_rmcp() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"vendor/thing","params":{}}"#,
        ] {
            assert!(answer(body).await.is_none(), "{body}");
        }
    }
}
