//! The host's task tools for MCP clients: hand work to switchyard
//! (`task_run`: an exec command or an agent turn, optionally waiting for it),
//! follow it (`task_status`, `task_events`), stop it (`task_cancel`), and list
//! sessions and agent profiles. The same service as REST and the WebSocket.

use super::sandbox_tools::{failed, json_result, number_arg, required, text_arg};
use crate::auth::Identity;
use crate::server::Services;
use crate::store::TaskKind;
use crate::tasks::{Caller, NewTask, Origin, TaskError};
use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResult, Tool};
use serde_json::{Map, Value, json};
use std::time::Duration;

/// The names of the task tools (reserved: no plugin tool takes them bare).
pub const NAMES: &[&str] = &[
    "task_run",
    "task_status",
    "task_events",
    "task_cancel",
    "session_list",
    "agent_list",
];

/// Longest `wait_secs` of `task_run`.
const MAX_WAIT: u64 = 600;

fn task_id_schema() -> Value {
    json!({ "type": "string", "description": "The task id (from task_run)", "maxLength": 64 })
}

/// The tool descriptors.
pub fn tools() -> Vec<Tool> {
    let descriptors = [
        (
            "task_run",
            "Queue a task in a switchyard session: `exec` runs a shell command in the session's sandbox (no LLM needed); `agent` gives the message in `content` to the session's agent, which may use tools and the sandbox. Returns the task (id, status); with `wait_secs` it waits that long for the task to finish and includes its result. Supports MCP tasks: call it with `task` to get a task handle at once and fetch the result with tasks/result.",
            json!({ "type": "object", "additionalProperties": false, "required": ["kind"], "properties": {
                "kind": { "type": "string", "enum": ["exec", "agent"] },
                "session_id": { "type": "string", "description": "The session (a new one when absent)", "maxLength": 64 },
                "command": { "type": "string", "description": "exec: the shell command line", "maxLength": 65536 },
                "stdin": { "type": "string", "description": "exec: text on standard input", "maxLength": 1048576 },
                "timeout_secs": { "type": "integer", "minimum": 1, "description": "exec: deadline" },
                "content": { "type": "string", "description": "agent: the message", "maxLength": 262144 },
                "wait_secs": { "type": "integer", "minimum": 0, "maximum": MAX_WAIT, "description": "Wait up to this long for the task to finish (default 0: return at once)" }
            }}),
            (false, true),
        ),
        (
            "task_status",
            "A task's status, result or error, and the seq of its last event.",
            json!({ "type": "object", "additionalProperties": false, "required": ["task_id"], "properties": { "task_id": task_id_schema() } }),
            (true, false),
        ),
        (
            "task_events",
            "A task's events after seq `after` (output chunks, text, tool calls, status changes, done).",
            json!({ "type": "object", "additionalProperties": false, "required": ["task_id"], "properties": {
                "task_id": task_id_schema(),
                "after": { "type": "integer", "minimum": 0, "description": "Events after this seq (default 0)" },
                "limit": { "type": "integer", "minimum": 1, "maximum": 1000, "description": "At most this many (default 200)" }
            }}),
            (true, false),
        ),
        (
            "task_cancel",
            "Cancel a task that has not finished (a running command or model step is interrupted).",
            json!({ "type": "object", "additionalProperties": false, "required": ["task_id"], "properties": { "task_id": task_id_schema() } }),
            (false, true),
        ),
        (
            "session_list",
            "Your switchyard sessions, newest first.",
            json!({ "type": "object", "additionalProperties": false, "properties": {
                "archived": { "type": "boolean", "description": "Archived sessions instead of active ones" }
            }}),
            (true, false),
        ),
        (
            "agent_list",
            "The agent profiles you may start sessions from (yours and shared ones).",
            json!({ "type": "object", "additionalProperties": false, "properties": {} }),
            (true, false),
        ),
    ];
    descriptors
        .into_iter()
        .filter_map(|(name, description, schema, (read_only, destructive))| {
            super::convert::from_json(json!({
                "name": name,
                "description": description,
                "inputSchema": schema,
                "annotations": { "readOnlyHint": read_only, "destructiveHint": destructive, "openWorldHint": false },
            }))
            .ok()
        })
        .collect()
}

/// Run task tool `name`; `None` when `name` is not one.
pub async fn call(
    s: &Services,
    who: &Identity,
    name: &str,
    args: &Map<String, Value>,
) -> Option<Result<CallToolResult, McpError>> {
    if !NAMES.contains(&name) {
        return None;
    }
    let scope = match name {
        "task_run" | "task_cancel" => "tasks",
        _ => "read",
    };
    if !who.allows(scope) {
        return Some(Err(McpError::invalid_request(
            format!("this API token lacks the `{scope}` scope"),
            None,
        )));
    }
    let caller = Caller {
        user_id: who.user.id.clone(),
        admin: who.is_admin(),
    };
    let result = run(s, who, &caller, name, args).await;
    Some(Ok(result.unwrap_or_else(failed)))
}

fn err(e: TaskError) -> String {
    e.to_string()
}

async fn run(
    s: &Services,
    who: &Identity,
    caller: &Caller,
    name: &str,
    args: &Map<String, Value>,
) -> Result<CallToolResult, String> {
    let tasks = &s.tasks;
    match name {
        "task_run" => {
            let req = new_task(args)?;
            let wait = number_arg(args, "wait_secs")?.unwrap_or(0).min(MAX_WAIT);
            let created = tasks.create(caller, req, Origin::Mcp).await;
            audit(s, who, "task.create", &created).await;
            let task = created.map_err(err)?;
            let task = if wait > 0 {
                wait_for(tasks, caller, &task.id, Duration::from_secs(wait)).await?
            } else {
                task
            };
            Ok(task_result(task))
        }
        "task_status" => {
            let task = tasks
                .get(caller, required(args, "task_id")?)
                .await
                .map_err(err)?;
            Ok(json_result(serde_json::to_value(task).unwrap_or_default()))
        }
        "task_events" => {
            let id = required(args, "task_id")?;
            let after = number_arg(args, "after")?.unwrap_or(0) as i64;
            let limit = number_arg(args, "limit")?.unwrap_or(200).clamp(1, 1000) as usize;
            let items = tasks.events(caller, id, after, limit).await.map_err(err)?;
            let next_after = items.last().map_or(after, |e| e.seq);
            Ok(json_result(
                json!({ "events": items, "next_after": next_after }),
            ))
        }
        "task_cancel" => {
            let id = required(args, "task_id")?;
            let result = tasks.cancel(caller, id).await;
            audit(s, who, "task.cancel", &result).await;
            Ok(json_result(
                serde_json::to_value(result.map_err(err)?).unwrap_or_default(),
            ))
        }
        "session_list" => {
            let archived = args
                .get("archived")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let page = tasks
                .sessions(caller, false, archived, None, None, 200)
                .await
                .map_err(err)?;
            Ok(json_result(json!({ "sessions": page.items })))
        }
        "agent_list" => {
            let items = tasks.agents(caller).await.map_err(err)?;
            Ok(json_result(json!({ "agents": items })))
        }
        _ => Err(format!("unknown task tool `{name}`")),
    }
}

/// The task `task_run` queues for `args`.
pub(super) fn new_task(args: &Map<String, Value>) -> Result<NewTask, String> {
    let kind = match required(args, "kind")? {
        "exec" => TaskKind::Exec,
        "agent" => TaskKind::Agent,
        other => return Err(format!("`kind` is `exec` or `agent`, not `{other}`")),
    };
    let input = match kind {
        TaskKind::Exec => {
            let mut input = json!({ "command": required(args, "command")? });
            if let Some(stdin) = text_arg(args, "stdin")? {
                input["stdin"] = stdin.into();
            }
            if let Some(t) = number_arg(args, "timeout_secs")? {
                input["timeout_secs"] = t.into();
            }
            input
        }
        TaskKind::Agent => json!({ "content": required(args, "content")? }),
    };
    Ok(NewTask {
        kind,
        session_id: text_arg(args, "session_id")?.map(str::to_string),
        input,
    })
}

/// A task as a tool result: an error result when it failed.
pub(super) fn task_result(task: crate::tasks::Task) -> CallToolResult {
    let failed = matches!(
        task.status,
        crate::store::TaskStatus::Failed | crate::store::TaskStatus::Canceled
    );
    let mut result = json_result(serde_json::to_value(task).unwrap_or_default());
    if failed {
        result.is_error = Some(true);
    }
    result
}

/// Follow a task until it finishes, waits for input, or `limit` passes.
async fn wait_for(
    tasks: &crate::tasks::Tasks,
    caller: &Caller,
    id: &str,
    limit: Duration,
) -> Result<crate::tasks::Task, String> {
    let mut follow = tasks.follow(caller, id, 0).await.map_err(err)?;
    let _ = tokio::time::timeout(limit, async {
        while let Ok(Some(event)) = follow.next().await {
            let waiting = event.kind == "status" && event.data["status"] == "input_required";
            if event.is_done() || waiting {
                break;
            }
        }
    })
    .await;
    tasks.get(caller, id).await.map_err(err)
}

/// Record a task action of an MCP caller in the audit log.
pub(super) async fn audit<T>(
    s: &Services,
    who: &Identity,
    action: &str,
    result: &Result<T, TaskError>,
) {
    let entry = crate::store::NewAudit {
        actor_id: Some(&who.user.id),
        actor: &who.user.username,
        action,
        target: "task",
        outcome: if result.is_ok() { "ok" } else { "error" },
        details: json!({ "origin": "mcp" }),
        request_id: None,
    };
    if let Err(e) = s.store.audit(entry).await {
        tracing::error!(error = %e, action, "cannot write the audit log");
    }
}
