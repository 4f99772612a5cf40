//! The `[llm]` table of `switchyard.toml`: which provider, model and key the agent uses.
//!
//! Sources, strongest first: a per-run override (a flag or a request field), the
//! `SWITCHYARD_LLM_*` environment variables ([`LlmConfig::apply_env`]), the file, the defaults.
//! [`LlmConfig::resolve`] turns the result into a [`ResolvedLlm`] or says exactly what to set.
//! The API key is held in an [`ApiKey`], whose `Debug` prints `***`: it never reaches a log line,
//! an error message or a response.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The default base URL of the OpenAI provider.
pub const OPENAI_DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// The default base URL of the Anthropic provider.
pub const ANTHROPIC_DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// Environment override of `[llm] provider`.
pub const ENV_PROVIDER: &str = "SWITCHYARD_LLM_PROVIDER";
/// Environment override of `[llm] base_url`.
pub const ENV_BASE_URL: &str = "SWITCHYARD_LLM_BASE_URL";
/// Environment override of `[llm] model`.
pub const ENV_MODEL: &str = "SWITCHYARD_LLM_MODEL";
/// The API key itself (stronger than the variable named by `[llm] api_key_env`).
pub const ENV_API_KEY: &str = "SWITCHYARD_LLM_API_KEY";

/// The wire protocol a provider speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI-compatible chat completions (OpenAI, vLLM, llama.cpp, Ollama, …).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

impl ProviderKind {
    /// The lowercase name used in the config file and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
        }
    }

    /// The base URL used when `[llm] base_url` is unset.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Self::OpenAi => OPENAI_DEFAULT_BASE_URL,
            Self::Anthropic => ANTHROPIC_DEFAULT_BASE_URL,
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProviderKind {
    type Err = LlmConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "openai" => Ok(Self::OpenAi),
            "anthropic" => Ok(Self::Anthropic),
            other => Err(LlmConfigError::UnknownProvider {
                value: other.chars().take(40).collect(),
            }),
        }
    }
}

/// An API key: only [`ApiKey::expose`] shows it; `Debug` prints `***` and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key, for the one header that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why the LLM settings cannot be used. Every message says what to set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmConfigError {
    /// No provider anywhere.
    #[error(
        "no LLM provider is configured: set [llm] provider = \"openai\" or \"anthropic\" in \
         switchyard.toml, or SWITCHYARD_LLM_PROVIDER, plus a model and an API key \
         (SWITCHYARD_LLM_API_KEY or the env var named by api_key_env)"
    )]
    NoProvider,
    /// A provider name that is not `openai` or `anthropic`.
    #[error("unknown LLM provider \"{value}\": use \"openai\" or \"anthropic\" (lowercase)")]
    UnknownProvider {
        /// What was given (at most 40 characters).
        value: String,
    },
    /// No model anywhere.
    #[error(
        "no LLM model is configured for the {provider} provider: set [llm] model = \"…\" in \
         switchyard.toml, or SWITCHYARD_LLM_MODEL"
    )]
    NoModel {
        /// The provider in use.
        provider: ProviderKind,
    },
    /// No key for the provider's official endpoint.
    #[error(
        "no API key for the {provider} provider: set SWITCHYARD_LLM_API_KEY, or \
         [llm] api_key_env = \"NAME\" in switchyard.toml naming the env var that holds the key"
    )]
    NoApiKey {
        /// The provider in use.
        provider: ProviderKind,
    },
    /// `api_key_env` names a variable that is unset or empty.
    #[error(
        "[llm] api_key_env names {name}, but that environment variable is not set or empty: \
         export {name}, or set SWITCHYARD_LLM_API_KEY"
    )]
    KeyEnvUnset {
        /// The variable's name.
        name: String,
    },
    /// `base_url` is not an http(s) URL.
    #[error(
        "invalid LLM base URL \"{url}\" ([llm] base_url or SWITCHYARD_LLM_BASE_URL): {reason}; \
         use an http:// or https:// URL such as {example}"
    )]
    InvalidBaseUrl {
        /// The URL given (at most 200 characters).
        url: String,
        /// Why it was refused.
        reason: String,
        /// The provider's default, as an example.
        example: &'static str,
    },
    /// A limit that must be positive is zero.
    #[error("[llm] {field} must be at least 1")]
    ZeroLimit {
        /// The key in the `[llm]` table.
        field: &'static str,
    },
}

/// The `[llm]` table of `switchyard.toml`. Every key is optional.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    /// `"openai"` or `"anthropic"`.
    pub provider: Option<ProviderKind>,
    /// The provider's base URL; the provider's official endpoint when unset.
    pub base_url: Option<String>,
    /// The model name sent with every request.
    pub model: Option<String>,
    /// The NAME of the environment variable that holds the API key.
    pub api_key_env: Option<String>,
    /// Most model steps one agent run may take.
    pub max_steps: u32,
    /// Most tokens the model may write per step.
    pub max_tokens: u32,
    /// Seconds to wait for the response headers and between two chunks of a stream.
    pub timeout_secs: u64,
    /// Retries of a step that failed before anything was streamed (429, 5xx, 529, network).
    pub max_retries: u32,
    /// The key from `SWITCHYARD_LLM_API_KEY` (never read from the file).
    #[serde(skip)]
    pub api_key: Option<ApiKey>,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            provider: None,
            base_url: None,
            model: None,
            api_key_env: None,
            max_steps: 25,
            max_tokens: 4096,
            timeout_secs: 120,
            max_retries: 3,
            api_key: None,
        }
    }
}

/// Everything a provider client needs, resolved and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedLlm {
    /// The wire protocol.
    pub kind: ProviderKind,
    /// The base URL without a trailing `/`.
    pub base_url: String,
    /// The model name.
    pub model: String,
    /// The key; `None` only for a custom `base_url` (a local server that needs none).
    pub api_key: Option<ApiKey>,
    /// Most model steps per run.
    pub max_steps: u32,
    /// Most tokens per step.
    pub max_tokens: u32,
    /// Deadline for the response headers and for every gap between two chunks.
    pub timeout: Duration,
    /// Retries of a failed step before anything was streamed.
    pub max_retries: u32,
}

/// Reads a variable, treating an empty or blank value as unset.
fn non_empty(env: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    env(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl LlmConfig {
    /// Applies the `SWITCHYARD_LLM_*` overrides read through `env` (empty values are ignored).
    pub fn apply_env(
        &mut self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(), LlmConfigError> {
        if let Some(provider) = non_empty(&env, ENV_PROVIDER) {
            self.provider = Some(provider.parse()?);
        }
        if let Some(url) = non_empty(&env, ENV_BASE_URL) {
            self.base_url = Some(url);
        }
        if let Some(model) = non_empty(&env, ENV_MODEL) {
            self.model = Some(model);
        }
        if let Some(key) = non_empty(&env, ENV_API_KEY) {
            self.api_key = Some(ApiKey(key));
        }
        Ok(())
    }

    /// Resolves the settings for one run: `provider_override` and `model_override` (a flag or a
    /// request field) win over the table; `env` reads the variable named by `api_key_env`.
    pub fn resolve(
        &self,
        provider_override: Option<ProviderKind>,
        model_override: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ResolvedLlm, LlmConfigError> {
        let kind = provider_override
            .or(self.provider)
            .ok_or(LlmConfigError::NoProvider)?;
        let model = model_override
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .or(self
                .model
                .as_deref()
                .map(str::trim)
                .filter(|m| !m.is_empty()))
            .ok_or(LlmConfigError::NoModel { provider: kind })?
            .to_owned();
        let custom_url = self
            .base_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty());
        let base_url = check_base_url(custom_url.unwrap_or(kind.default_base_url()), kind)?;
        let api_key = match (&self.api_key, self.api_key_env.as_deref().map(str::trim)) {
            (Some(key), _) => Some(key.clone()),
            (None, Some(name)) if !name.is_empty() => match non_empty(&env, name) {
                Some(key) => Some(ApiKey(key)),
                None => {
                    return Err(LlmConfigError::KeyEnvUnset {
                        name: name.to_owned(),
                    });
                }
            },
            _ => None,
        };
        if api_key.is_none() && custom_url.is_none() {
            return Err(LlmConfigError::NoApiKey { provider: kind });
        }
        for (field, value) in [
            ("max_steps", u64::from(self.max_steps)),
            ("max_tokens", u64::from(self.max_tokens)),
            ("timeout_secs", self.timeout_secs),
        ] {
            if value == 0 {
                return Err(LlmConfigError::ZeroLimit { field });
            }
        }
        Ok(ResolvedLlm {
            kind,
            base_url,
            model,
            api_key,
            max_steps: self.max_steps,
            max_tokens: self.max_tokens,
            timeout: Duration::from_secs(self.timeout_secs),
            max_retries: self.max_retries,
        })
    }
}

/// Checks that `url` is an http(s) URL with a host and returns it without a trailing `/`.
fn check_base_url(url: &str, kind: ProviderKind) -> Result<String, LlmConfigError> {
    let refuse = |reason: &str| LlmConfigError::InvalidBaseUrl {
        url: url.chars().take(200).collect(),
        reason: reason.to_owned(),
        example: kind.default_base_url(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| refuse(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(refuse("the scheme is not http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(refuse("there is no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(refuse("a base URL takes no query or fragment"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refuse(
            "credentials do not belong in the URL: use the API key settings",
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn parse(toml_text: &str) -> Result<LlmConfig, toml::de::Error> {
        toml::from_str(toml_text)
    }

    #[test]
    fn defaults_apply_to_an_empty_table() {
        let config = parse("").expect("empty table");
        assert_eq!(config, LlmConfig::default());
        assert_eq!(config.max_steps, 25);
        assert_eq!(config.max_tokens, 4096);
        assert_eq!(config.timeout_secs, 120);
        assert_eq!(config.max_retries, 3);
    }

    #[test]
    fn the_table_parses_and_unknown_keys_are_refused() {
        let config = parse(
            "provider = \"anthropic\"\nmodel = \"claude-x\"\napi_key_env = \"ANTHROPIC_API_KEY\"\n\
             max_steps = 5\nmax_tokens = 100\ntimeout_secs = 9\nmax_retries = 0\n",
        )
        .expect("valid table");
        assert_eq!(config.provider, Some(ProviderKind::Anthropic));
        assert_eq!(config.max_steps, 5);
        assert_eq!(config.max_retries, 0);
        assert!(parse("provider = \"openai\"\nmodle = \"x\"\n").is_err());
        assert!(parse("provider = \"OpenAI\"\n").is_err());
        assert!(parse("api_key = \"sk-in-the-file\"\n").is_err());
    }

    #[test]
    fn resolve_fills_the_default_base_url_and_reads_the_named_key_variable() {
        let config = parse("provider = \"openai\"\nmodel = \"gpt-x\"\napi_key_env = \"MY_KEY\"\n")
            .expect("valid");
        let resolved = config
            .resolve(None, None, env_of(&[("MY_KEY", "sk-secret-1")]))
            .expect("resolves");
        assert_eq!(resolved.kind, ProviderKind::OpenAi);
        assert_eq!(resolved.base_url, OPENAI_DEFAULT_BASE_URL);
        assert_eq!(resolved.model, "gpt-x");
        assert_eq!(resolved.api_key, Some(ApiKey::new("sk-secret-1")));
        assert_eq!(resolved.timeout, Duration::from_secs(120));

        let anthropic = config
            .resolve(
                Some(ProviderKind::Anthropic),
                Some("claude-y"),
                env_of(&[("MY_KEY", "k")]),
            )
            .expect("resolves");
        assert_eq!(anthropic.base_url, ANTHROPIC_DEFAULT_BASE_URL);
        assert_eq!(anthropic.model, "claude-y");
    }

    #[test]
    fn env_overrides_win_over_the_file() {
        let mut config = parse(
            "provider = \"anthropic\"\nmodel = \"m1\"\nbase_url = \"http://a.invalid\"\n\
             api_key_env = \"FILE_KEY\"\n",
        )
        .expect("valid");
        config
            .apply_env(env_of(&[
                (ENV_PROVIDER, "openai"),
                (ENV_BASE_URL, "http://127.0.0.1:8000/v1/"),
                (ENV_MODEL, "m2"),
                (ENV_API_KEY, "sk-from-env"),
                ("FILE_KEY", "sk-from-file"),
            ]))
            .expect("valid overrides");
        let resolved = config.resolve(None, None, env_of(&[("FILE_KEY", "sk-from-file")]));
        let resolved = resolved.expect("resolves");
        assert_eq!(resolved.kind, ProviderKind::OpenAi);
        assert_eq!(resolved.base_url, "http://127.0.0.1:8000/v1");
        assert_eq!(resolved.model, "m2");
        assert_eq!(resolved.api_key, Some(ApiKey::new("sk-from-env")));
    }

    #[test]
    fn empty_env_values_are_ignored_and_bad_provider_names_refused() {
        let mut config = LlmConfig::default();
        config
            .apply_env(env_of(&[(ENV_PROVIDER, " "), (ENV_MODEL, "")]))
            .expect("blank values are unset");
        assert_eq!(config, LlmConfig::default());
        let err = config
            .apply_env(env_of(&[(ENV_PROVIDER, "gemini")]))
            .expect_err("unknown provider");
        assert_eq!(
            err.to_string(),
            "unknown LLM provider \"gemini\": use \"openai\" or \"anthropic\" (lowercase)"
        );
    }

    #[test]
    fn missing_pieces_say_exactly_what_to_set() {
        let none = LlmConfig::default().resolve(None, None, env_of(&[]));
        let message = none.expect_err("no provider").to_string();
        assert!(
            message.contains("set [llm] provider = \"openai\" or \"anthropic\""),
            "{message}"
        );
        assert!(message.contains("SWITCHYARD_LLM_PROVIDER"), "{message}");
        assert!(message.contains("SWITCHYARD_LLM_API_KEY"), "{message}");

        let config = parse("provider = \"openai\"\n").expect("valid");
        let err = config
            .resolve(None, None, env_of(&[]))
            .expect_err("no model");
        assert_eq!(
            err,
            LlmConfigError::NoModel {
                provider: ProviderKind::OpenAi
            }
        );
        assert!(err.to_string().contains("SWITCHYARD_LLM_MODEL"));

        let config = parse("provider = \"anthropic\"\nmodel = \"m\"\n").expect("valid");
        let err = config.resolve(None, None, env_of(&[])).expect_err("no key");
        assert!(err.to_string().contains("SWITCHYARD_LLM_API_KEY"), "{err}");
        assert!(err.to_string().contains("api_key_env"), "{err}");

        let config = parse("provider = \"anthropic\"\nmodel = \"m\"\napi_key_env = \"K\"\n");
        let err = config
            .expect("valid")
            .resolve(None, None, env_of(&[("K", "")]));
        let err = err.expect_err("named variable unset");
        assert_eq!(err, LlmConfigError::KeyEnvUnset { name: "K".into() });
        assert!(err.to_string().contains("export K"), "{err}");
    }

    #[test]
    fn a_local_server_needs_no_key_and_bad_urls_are_refused() {
        let config = parse(
            "provider = \"openai\"\nmodel = \"llama\"\nbase_url = \"http://localhost:11434/v1\"\n",
        )
        .expect("valid");
        let resolved = config
            .resolve(None, None, env_of(&[]))
            .expect("no key needed");
        assert_eq!(resolved.api_key, None);

        for bad in [
            "localhost:8000",
            "ftp://x.invalid/v1",
            "http://u:p@x.invalid",
            "not a url",
        ] {
            let config = LlmConfig {
                provider: Some(ProviderKind::OpenAi),
                model: Some("m".into()),
                base_url: Some(bad.into()),
                ..LlmConfig::default()
            };
            let err = config.resolve(None, None, env_of(&[])).expect_err(bad);
            assert!(
                matches!(err, LlmConfigError::InvalidBaseUrl { .. }),
                "{bad}: {err}"
            );
            assert!(
                err.to_string().contains("https://api.openai.com/v1"),
                "{err}"
            );
        }
    }

    #[test]
    fn zero_limits_are_refused() {
        let config = LlmConfig {
            provider: Some(ProviderKind::OpenAi),
            model: Some("m".into()),
            api_key: Some(ApiKey::new("k")),
            timeout_secs: 0,
            ..LlmConfig::default()
        };
        let err = config
            .resolve(None, None, env_of(&[]))
            .expect_err("zero timeout");
        assert_eq!(
            err,
            LlmConfigError::ZeroLimit {
                field: "timeout_secs"
            }
        );
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let mut config = parse("provider = \"openai\"\nmodel = \"m\"\n").expect("valid");
        config
            .apply_env(env_of(&[(ENV_API_KEY, "sk-very-secret")]))
            .expect("valid");
        let resolved = config.resolve(None, None, env_of(&[])).expect("resolves");
        for text in [
            format!("{config:?}"),
            format!("{resolved:?}"),
            format!("{config:#?}"),
        ] {
            assert!(!text.contains("sk-very-secret"), "{text}");
            assert!(text.contains("***"), "{text}");
        }
        assert_eq!(
            resolved.api_key.as_ref().map(ApiKey::expose),
            Some("sk-very-secret")
        );
    }
}
