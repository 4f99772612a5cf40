//! The host's schedule tools for MCP clients: create a schedule
//! (`schedule_create`: a once, interval or cron trigger and the task each run
//! starts), list them with their next runs (`schedule_list`), and delete one
//! (`schedule_delete`). The same service as `/api/v1/schedules`.

use super::sandbox_tools::{failed, json_result, required};
use crate::auth::Identity;
use crate::schedules::{NewSchedule, ScheduleError};
use crate::server::Services;
use crate::tasks::Caller;
use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResult, Tool};
use serde_json::{Map, Value, json};

/// The names of the schedule tools (reserved: no plugin tool takes them bare).
pub const NAMES: &[&str] = &["schedule_create", "schedule_list", "schedule_delete"];

fn create_schema() -> Value {
    json!({ "type": "object", "additionalProperties": false, "required": ["name", "trigger", "task"], "properties": {
        "name": { "type": "string", "minLength": 1, "maxLength": 100, "description": "Unique among your schedules" },
        "trigger": { "oneOf": [
            { "type": "object", "additionalProperties": false, "required": ["type", "expression", "timezone"], "properties": {
                "type": { "const": "cron" },
                "expression": { "type": "string", "maxLength": 200, "description": "Five fields (minute hour day-of-month month day-of-week) or @hourly/@daily/@weekly/@monthly/@yearly" },
                "timezone": { "type": "string", "maxLength": 64, "description": "IANA time zone, e.g. Europe/Berlin" } } },
            { "type": "object", "additionalProperties": false, "required": ["type", "every_secs"], "properties": {
                "type": { "const": "interval" },
                "every_secs": { "type": "integer", "minimum": 60, "description": "Seconds between runs" },
                "start_at": { "type": "string", "maxLength": 64, "description": "RFC 3339 time of the first run" } } },
            { "type": "object", "additionalProperties": false, "required": ["type", "at"], "properties": {
                "type": { "const": "once" },
                "at": { "type": "string", "maxLength": 64, "description": "RFC 3339 time with its offset, in the future" } } }
        ]},
        "task": { "type": "object", "additionalProperties": false, "required": ["kind", "input"], "properties": {
            "kind": { "type": "string", "enum": ["agent", "exec"] },
            "input": { "type": "object", "description": "agent: {\"content\": \"…\"}; exec: {\"command\": \"…\"}" } } },
        "session_id": { "type": "string", "maxLength": 64, "description": "Every run in this session of yours (default: a fresh session per run)" },
        "agent_id": { "type": "string", "maxLength": 64, "description": "The agent profile fresh sessions start from" },
        "overlap": { "type": "string", "enum": ["skip", "buffer_one", "buffer_all", "cancel_other", "allow_all"], "description": "While the previous run still runs (default skip)" },
        "catchup": { "type": "string", "enum": ["none", "latest", "all"], "description": "Runs missed while the host was down (default latest)" },
        "catchup_window_secs": { "type": "integer", "minimum": 60, "maximum": 31_622_400 },
        "catchup_max": { "type": "integer", "minimum": 1, "maximum": 1000 },
        "jitter_secs": { "type": "integer", "minimum": 0, "maximum": 3600 },
        "paused": { "type": "boolean" }
    }})
}

/// The tool descriptors.
pub fn tools() -> Vec<Tool> {
    let descriptors = [
        (
            "schedule_create",
            "Create a switchyard schedule: a trigger (cron with an IANA time zone, an interval of at least a minute, or once at a future time) and the task each run starts (an agent message or an exec command), with overlap and catch-up policies. Returns the schedule with its next runs.",
            create_schema(),
            (false, false),
        ),
        (
            "schedule_list",
            "Your schedules with their state, description and next runs.",
            json!({ "type": "object", "additionalProperties": false, "properties": {} }),
            (true, false),
        ),
        (
            "schedule_delete",
            "Delete one of your schedules and its history (tasks it started keep running).",
            json!({ "type": "object", "additionalProperties": false, "required": ["schedule_id"], "properties": {
                "schedule_id": { "type": "string", "maxLength": 64, "description": "The schedule id (from schedule_list)" } } }),
            (false, true),
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

/// Run schedule tool `name`; `None` when `name` is not one.
pub async fn call(
    s: &Services,
    who: &Identity,
    name: &str,
    args: &Map<String, Value>,
) -> Option<Result<CallToolResult, McpError>> {
    if !NAMES.contains(&name) {
        return None;
    }
    let scope = if name == "schedule_list" {
        "read"
    } else {
        "tasks"
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

async fn run(
    s: &Services,
    who: &Identity,
    caller: &Caller,
    name: &str,
    args: &Map<String, Value>,
) -> Result<CallToolResult, String> {
    let schedules = &s.schedules;
    match name {
        "schedule_create" => {
            let req: NewSchedule = serde_json::from_value(Value::Object(args.clone()))
                .map_err(|e| format!("invalid arguments: {e}"))?;
            let created = schedules.create(caller, req).await;
            audit(s, who, "schedule.create", &created).await;
            let schedule = created.map_err(|e| e.to_string())?;
            Ok(json_result(
                serde_json::to_value(schedule).unwrap_or_default(),
            ))
        }
        "schedule_list" => {
            let mut items = Vec::new();
            let mut after = None;
            loop {
                let page = schedules
                    .list(caller, false, after.as_deref(), 500)
                    .await
                    .map_err(|e| e.to_string())?;
                items.extend(page.items);
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            Ok(json_result(json!({ "schedules": items })))
        }
        "schedule_delete" => {
            let id = required(args, "schedule_id")?;
            let deleted = schedules.delete(caller, id).await;
            audit(s, who, "schedule.delete", &deleted).await;
            deleted.map_err(|e| e.to_string())?;
            Ok(json_result(json!({ "deleted": id })))
        }
        _ => Err(format!("unknown schedule tool `{name}`")),
    }
}

async fn audit<T>(s: &Services, who: &Identity, action: &str, result: &Result<T, ScheduleError>) {
    let entry = crate::store::NewAudit {
        actor_id: Some(&who.user.id),
        actor: &who.user.username,
        action,
        target: "schedule",
        outcome: if result.is_ok() { "ok" } else { "error" },
        details: json!({ "origin": "mcp" }),
        request_id: None,
    };
    if let Err(e) = s.store.audit(entry).await {
        tracing::error!(error = %e, action, "cannot write the audit log");
    }
}
