//! The OpenAPI 3.1 document (utoipa, generated from the handlers' annotations)
//! at `/api/v1/openapi.json`, and a human-readable page of it at `/api/v1/docs`.

use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use warp::http::HeaderValue;
use warp::http::header::CONTENT_TYPE;
use warp::{Filter, Rejection};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "switchyard API", description = "REST API of switchyard: plugins, tools, skills, users, tokens, audit. Authenticate with `Authorization: Bearer <access token or API token>`; get an access token from POST /api/v1/auth/login."),
    paths(
        super::health,
        super::auth::login, super::auth::refresh, super::auth::logout, super::auth::me,
        super::setup::state, super::setup::set_up, super::limits::limits,
        super::ws_auth::create_ticket,
        super::users::list, super::users::create, super::users::get, super::users::update, super::users::delete,
        super::tokens::list, super::tokens::create, super::tokens::delete,
        super::plugins::list, super::plugins::get,
        super::plugins::install::upload, super::plugins::install::from_url, super::plugins::install::from_path, super::plugins::job::status,
        super::plugins::manage::update, super::plugins::manage::delete,
        super::plugins::manage::grant, super::plugins::manage::revoke,
        super::plugins::manage::config, super::plugins::manage::unset_config,
        super::plugins::manage::secret, super::plugins::manage::unset_secret,
        super::tools::list, super::tools::call, super::skills::list_skills, super::skills::install, super::skills::read_skill, super::skills::update_skill, super::skills::delete_skill,
        super::audit::list,
        super::sandboxes::list, super::sandboxes::create, super::sandboxes::get, super::sandboxes::delete,
        super::sandboxes::stop, super::sandboxes::exec, super::sandboxes::stats,
        super::sandboxes::list_files, super::sandboxes::download, super::sandboxes::upload,
        super::sandboxes::get_limits, super::sandboxes::put_limits,
        super::sandboxes::storage, super::sandboxes::resize,
        super::tasks::create, super::tasks::list, super::tasks::get, super::tasks::cancel, super::tasks::events,
        super::sessions::list, super::sessions::create, super::sessions::get, super::sessions::update,
        super::sessions::delete, super::sessions::history, super::sessions::post,
        super::agents::list, super::agents::create, super::agents::get, super::agents::update, super::agents::delete,
        super::channels::list, super::channels::create, super::channels::get, super::channels::update,
        super::channels::delete, super::channels::deliveries, super::channels::retry,
        super::channels::webhook_default, super::channels::webhook_named,
        super::schedules::list, super::schedules::create, super::schedules::preview, super::schedules::get,
        super::schedules::update, super::schedules::delete, super::schedules::pause, super::schedules::resume,
        super::schedules::runs,
        super::mcp_servers::list, super::mcp_servers::create, super::mcp_servers::get,
        super::mcp_servers::update, super::mcp_servers::delete, super::mcp_servers::reconnect,
        super::mcp_servers::tools,
    ),
    modifiers(&Security),
    tags(
        (name = "meta", description = "Health and API description"),
        (name = "auth", description = "Log in, refresh, log out"),
        (name = "users", description = "Accounts (administrators manage them)"),
        (name = "tokens", description = "API tokens for machines"),
        (name = "plugins", description = "Install and manage WebAssembly plugins"),
        (name = "tools", description = "List and call plugin tools"),
        (name = "skills", description = "Agent skills: installed by users, shipped by plugins, or in the skills directory"),
        (name = "audit", description = "Who did what"),
        (name = "sandboxes", description = "Containers where agent work runs: commands, files, limits"),
        (name = "tasks", description = "Work queued in a session: exec commands and agent turns, their events, cancel"),
        (name = "sessions", description = "Conversations: settings, history, messages"),
        (name = "agents", description = "Agent profiles: reusable session templates"),
        (name = "channels", description = "Channel instances, their webhooks and the replies sent back"),
        (name = "schedules", description = "Work that starts on its own: once, interval or cron, with overlap and catch-up policies"),
        (name = "mcp-servers", description = "External MCP servers whose tools join your tool set as SERVER__TOOL"),
    )
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT or sy_ API token")
                    .build(),
            ),
        );
    }
}

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "options", "trace"];

/// The document as JSON. Operation ids are `TAG_FUNCTION` (unique across modules).
pub fn document() -> serde_json::Value {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let mut json = serde_json::to_value(doc).unwrap_or_default();
    if let Some(paths) = json["paths"].as_object_mut() {
        for operation in paths
            .values_mut()
            .filter_map(serde_json::Value::as_object_mut)
            .flat_map(|item| item.iter_mut())
            .filter(|(method, _)| METHODS.contains(&method.as_str()))
            .map(|(_, operation)| operation)
        {
            if operation["requestBody"]["content"]
                .get("application/json")
                .is_some()
                && let Some(responses) = operation["responses"].as_object_mut()
            {
                responses.insert("415".into(), unsupported_media_type());
            }
            let tag = operation["tags"][0].as_str().unwrap_or("api").to_string();
            let function = operation["operationId"].as_str().unwrap_or("").to_string();
            operation["operationId"] = if function.starts_with(&tag) {
                function.into()
            } else {
                format!("{tag}_{function}").into()
            };
        }
    }
    json
}

/// The response JSON-body routes give to a body of another media type.
fn unsupported_media_type() -> serde_json::Value {
    serde_json::json!({
        "description": "The body is not JSON: send `Content-Type: application/json` (or a `+json` type)",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } }
    })
}

/// The methods of each route template, as listed in an `Allow` header.
pub fn allowed_methods() -> &'static std::collections::HashMap<String, String> {
    static ALLOWED: std::sync::OnceLock<std::collections::HashMap<String, String>> =
        std::sync::OnceLock::new();
    ALLOWED.get_or_init(|| {
        let doc = document();
        let mut map: std::collections::HashMap<String, String> = doc["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(path, item)| {
                let methods: Vec<String> = item
                    .as_object()
                    .into_iter()
                    .flat_map(|ops| ops.keys())
                    .filter(|m| METHODS.contains(&m.as_str()))
                    .map(|m| m.to_ascii_uppercase())
                    .collect();
                (path.clone(), methods.join(", "))
            })
            .collect();
        for path in [
            "/api/v1/docs",
            "/metrics",
            "/api/v1/sandboxes/{id}/exec/ws",
            "/api/v1/sandboxes/{id}/terminal",
        ] {
            map.insert(path.to_string(), "GET".to_string());
        }
        map.insert(
            super::serve::CONSOLE_ROUTE.to_string(),
            "GET, HEAD".to_string(),
        );
        map
    })
}

pub(super) fn routes() -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone
{
    let json = document();
    let page = bytes::Bytes::from(docs_page(&json));
    let spec = bytes::Bytes::from(serde_json::to_vec(&json).unwrap_or_default());
    let spec = warp::path!("openapi.json")
        .and(warp::get())
        .map(move || cached(&spec, "application/json"));
    let docs = warp::path!("docs")
        .and(warp::get())
        .map(move || cached(&page, "text/html; charset=utf-8"));
    spec.or(docs).unify()
}

/// A response over shared bytes (a reference-count bump, not a copy, per request).
fn cached(body: &bytes::Bytes, content_type: &'static str) -> warp::reply::Response {
    let mut response = warp::reply::Response::new(body.clone().into());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A self-contained HTML page listing every operation (no scripts, no CDN).
fn docs_page(doc: &serde_json::Value) -> String {
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>switchyard API</title>\
         <style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}\
         code,pre{background:#f4f4f4;padding:.1rem .3rem;border-radius:3px}h2{border-bottom:1px solid #ddd;margin-top:2rem}\
         .op{margin:1rem 0}.m{display:inline-block;min-width:4.5rem;font-weight:bold;text-transform:uppercase}</style></head><body>",
    );
    let info = &doc["info"];
    html.push_str(&format!(
        "<h1>{} <small>{}</small></h1><p>{}</p><p>Machine-readable: <a href=\"openapi.json\">openapi.json</a> (OpenAPI 3.1).</p>",
        escape(info["title"].as_str().unwrap_or("")),
        escape(info["version"].as_str().unwrap_or("")),
        escape(info["description"].as_str().unwrap_or(""))
    ));
    let empty = serde_json::Map::new();
    let paths = doc["paths"].as_object().unwrap_or(&empty);
    for tag in doc["tags"].as_array().into_iter().flatten() {
        let name = tag["name"].as_str().unwrap_or("");
        html.push_str(&format!(
            "<h2>{}</h2><p>{}</p>",
            escape(name),
            escape(tag["description"].as_str().unwrap_or(""))
        ));
        for (path, ops) in paths {
            for (method, op) in ops.as_object().unwrap_or(&empty) {
                if !op["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|x| x == name))
                {
                    continue;
                }
                let statuses: Vec<&String> = op["responses"]
                    .as_object()
                    .map(|r| r.keys().collect())
                    .unwrap_or_default();
                html.push_str(&format!(
                    "<div class=\"op\"><span class=\"m\">{}</span> <code>{}</code><br>{}<br><small>responses: {}</small></div>",
                    escape(method),
                    escape(path),
                    escape(op["description"].as_str().or(op["summary"].as_str()).unwrap_or("")),
                    statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    html.push_str("</body></html>");
    html
}
