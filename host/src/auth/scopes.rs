//! The one list of API-token scopes: the type the API accepts, the names stored
//! with tokens, the OpenAPI enum and the checks all come from [`Scope`].

use serde::{Deserialize, Serialize};

/// What an API token may do. A token with no scopes may do everything its
/// owner may; one with scopes only what they name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Scope {
    /// Read anything the owner can see (lists, details, audit entries).
    #[serde(rename = "read")]
    Read,
    /// Call tools (REST and MCP `tools/call`).
    #[serde(rename = "tools:call")]
    ToolsCall,
    /// Create, use and remove sandboxes (REST, WebSockets, MCP `sandbox_*`).
    #[serde(rename = "sandboxes")]
    Sandboxes,
    /// Create, follow and cancel tasks; create and change sessions and agent profiles.
    #[serde(rename = "tasks")]
    Tasks,
    /// Install and change plugins.
    #[serde(rename = "plugins:write")]
    PluginsWrite,
    /// Create and revoke API tokens (only with a subset of the token's own scopes).
    #[serde(rename = "tokens:write")]
    TokensWrite,
    /// Create and change users (administrators), change one's own password.
    #[serde(rename = "users:write")]
    UsersWrite,
    /// Scrape `GET /metrics`.
    #[serde(rename = "metrics")]
    Metrics,
}

impl Scope {
    /// Every scope, in documentation order.
    pub const ALL: [Scope; 8] = [
        Self::Read,
        Self::ToolsCall,
        Self::Sandboxes,
        Self::Tasks,
        Self::PluginsWrite,
        Self::TokensWrite,
        Self::UsersWrite,
        Self::Metrics,
    ];

    /// The scope's name, as stored and as checked.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::ToolsCall => "tools:call",
            Self::Sandboxes => "sandboxes",
            Self::Tasks => "tasks",
            Self::PluginsWrite => "plugins:write",
            Self::TokensWrite => "tokens:write",
            Self::UsersWrite => "users:write",
            Self::Metrics => "metrics",
        }
    }

    /// The scope called `name`, if there is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Every scope's name, comma-separated (for error messages).
    pub fn names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::Scope;

    #[test]
    fn names_round_trip_through_serde_and_parse() {
        for scope in Scope::ALL {
            let json = serde_json::to_string(&scope).unwrap();
            assert_eq!(json, format!("\"{}\"", scope.as_str()));
            assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), scope);
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
        assert_eq!(Scope::parse("admin"), None);
    }
}
