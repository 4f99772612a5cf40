//! Process-wide settings: where data lives, where the server listens, which
//! database to use. Sources, strongest first: command-line flags, `SWITCHYARD_*`
//! environment variables, `switchyard.toml`, built-in defaults.

use crate::runtime::RuntimeOptions;
use crate::sandbox::SandboxConfig;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "switchyard-data";
/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7700";
/// The config file read from the working directory when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "switchyard.toml";

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A value is invalid.
    #[error("{0}")]
    Invalid(String),
}

/// The `switchyard.toml` file: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// Listen address, e.g. `127.0.0.1:7700`.
    pub listen: Option<String>,
    /// Database URL (`sqlite://…` or `postgres://…`); SQLite in the data dir when unset.
    pub database_url: Option<String>,
    /// The externally visible base URL (printed at start).
    pub public_url: Option<String>,
    /// Largest plugin upload, in MiB.
    pub max_upload_mb: Option<u64>,
    /// Login attempts allowed per minute per client address and user name
    /// (see also `login`: failures by user name and by address).
    pub logins_per_minute: Option<u32>,
    /// Directory of plain SKILL.md folders served next to plugin skills.
    pub skills_dir: Option<PathBuf>,
    /// Login throttling by user name and by address.
    #[serde(default)]
    pub login: crate::auth::LoginLimits,
    /// Who may scrape `/metrics`.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The MCP endpoint.
    #[serde(default)]
    pub mcp: McpConfig,
    /// Sandboxes: image, engine socket, quota, pool, limits.
    #[serde(default)]
    pub sandbox: SandboxConfig,
    /// The task queue: concurrency, leases, retries, event retention.
    #[serde(default)]
    pub tasks: crate::tasks::TasksConfig,
    /// The LLM provider agent tasks use.
    #[serde(default)]
    pub llm: crate::agent::config::LlmConfig,
    /// Webhooks and the delivery outbox.
    #[serde(default)]
    pub channels: crate::channels::ChannelsConfig,
    /// The scheduler.
    #[serde(default)]
    pub schedules: crate::schedules::SchedulesConfig,
}

/// Settings of the MCP endpoint (`[mcp]` in `switchyard.toml`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    /// `Host` values accepted at `/mcp` besides loopback names and the listen
    /// and public addresses (`name` or `name:port`; `*` accepts any host).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Browser `Origin`s accepted besides loopback origins and the public URL
    /// (`scheme://host[:port]`; `*` accepts any origin).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Answer each request on its own with a JSON body: no sessions, no
    /// server-initiated notifications (for load-balanced deployments).
    #[serde(default)]
    pub stateless: bool,
    /// Serve requests without an `Authorization` header as this user. Only
    /// allowed when listening on loopback; meant for local single-user setups
    /// and test suites that cannot send a token.
    #[serde(default)]
    pub anonymous_user: Option<String>,
}

/// Who may read `/metrics` (`[metrics]` in `switchyard.toml`). Without a
/// token only when open (see [`Config::metrics_open`]); otherwise an
/// administrator's credential or an API token with the `metrics` scope.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics` without a token (`true` only on a loopback address with
    /// no `public_url`); unset: open exactly in that case.
    #[serde(default)]
    pub public: Option<bool>,
}

impl FileConfig {
    /// Read `path`; a missing default file is an empty config.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::default());
            }
            Err(e) => {
                return Err(ConfigError::Read {
                    path,
                    reason: e.to_string(),
                });
            }
        };
        toml::from_str(&text).map_err(|e| ConfigError::Read {
            path,
            reason: e.to_string(),
        })
    }
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Root of everything switchyard stores (plugins, database, caches).
    pub data_dir: PathBuf,
    /// Where the server listens.
    pub listen: SocketAddr,
    /// Database URL, `None` for SQLite in the data dir.
    pub database_url: Option<String>,
    /// The externally visible base URL, when it differs from the listen address.
    pub public_url: Option<String>,
    /// Largest plugin upload (bytes).
    pub max_upload_bytes: u64,
    /// Login attempts allowed per minute per client address and user name
    /// (see also `login`: failures by user name and by address).
    pub logins_per_minute: u32,
    /// Directory of plain SKILL.md folders.
    pub skills_dir: PathBuf,
    /// Login throttling by user name and by address.
    pub login: crate::auth::LoginLimits,
    /// Who may scrape `/metrics`.
    pub metrics: MetricsConfig,
    /// Where precompiled plugin artifacts are cached.
    pub cache_dir: PathBuf,
    /// The MCP endpoint.
    pub mcp: McpConfig,
    /// Sandboxes.
    pub sandbox: SandboxConfig,
    /// The task queue.
    pub tasks: crate::tasks::TasksConfig,
    /// The LLM provider (with `SWITCHYARD_LLM_*` applied).
    pub llm: crate::agent::config::LlmConfig,
    /// Webhooks and the delivery outbox.
    pub channels: crate::channels::ChannelsConfig,
    /// The scheduler.
    pub schedules: crate::schedules::SchedulesConfig,
    /// Resolves the names plugins send HTTP requests to (the system's; tests set a table).
    pub resolver: crate::net::Resolver,
}

/// Values given on the command line or in the environment (they win over the file).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--data-dir` / `SWITCHYARD_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--listen` / `SWITCHYARD_LISTEN`.
    pub listen: Option<String>,
    /// `--database-url` / `SWITCHYARD_DATABASE_URL`.
    pub database_url: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Config {
    /// Settings rooted at `data_dir`, defaults elsewhere.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            skills_dir: data_dir.join("skills"),
            cache_dir: data_dir.join("cache"),
            data_dir,
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 7700))),
            database_url: None,
            public_url: None,
            max_upload_bytes: 64 << 20,
            logins_per_minute: 10,
            login: crate::auth::LoginLimits::default(),
            metrics: MetricsConfig::default(),
            mcp: McpConfig::default(),
            sandbox: SandboxConfig::default(),
            tasks: crate::tasks::TasksConfig::default(),
            llm: crate::agent::config::LlmConfig::default(),
            channels: crate::channels::ChannelsConfig::default(),
            schedules: crate::schedules::SchedulesConfig::default(),
            resolver: crate::net::Resolver::default(),
        }
    }

    /// Combine overrides, environment, file and defaults.
    pub fn resolve(overrides: Overrides, file: FileConfig) -> Result<Self, ConfigError> {
        let data_dir = overrides
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let mut config = Self::new(data_dir);
        if let Some(listen) = overrides.listen.or(file.listen) {
            config.listen = listen.parse().map_err(|_| {
                ConfigError::Invalid(format!(
                    "listen address `{listen}` is not IP:PORT (e.g. 127.0.0.1:7700)"
                ))
            })?;
        }
        config.database_url = overrides.database_url.or(file.database_url);
        config.public_url = env("SWITCHYARD_PUBLIC_URL").or(file.public_url);
        let number = |name: &str| -> Result<Option<u64>, ConfigError> {
            env(name)
                .map(|v| {
                    v.parse()
                        .map_err(|_| ConfigError::Invalid(format!("{name}=`{v}` is not a number")))
                })
                .transpose()
        };
        if let Some(mb) = number("SWITCHYARD_MAX_UPLOAD_MB")?.or(file.max_upload_mb) {
            config.max_upload_bytes = mb.clamp(1, 1024) << 20;
        }
        if let Some(n) = number("SWITCHYARD_LOGINS_PER_MINUTE")?
            .map(|n| n as u32)
            .or(file.logins_per_minute)
        {
            config.logins_per_minute = n.max(1);
        }
        if let Some(dir) = env("SWITCHYARD_SKILLS_DIR")
            .map(PathBuf::from)
            .or(file.skills_dir)
        {
            config.skills_dir = dir;
        }
        config.login = file.login;
        config.metrics = file.metrics;
        if let Some(v) = env("SWITCHYARD_METRICS_PUBLIC") {
            config.metrics.public = Some(matches!(v.as_str(), "1" | "true" | "yes"));
        }
        if config.metrics.public == Some(true) && !config.loopback_only() {
            return Err(ConfigError::Invalid(format!(
                "metrics.public serves /metrics without a token, so it is only allowed on a loopback address with no public_url (listen {})",
                config.listen
            )));
        }
        config.mcp = file.mcp;
        config.sandbox = file.sandbox;
        config.tasks = file.tasks;
        config.llm = file.llm;
        file.channels.validate().map_err(ConfigError::Invalid)?;
        config.channels = file.channels;
        file.schedules.validate().map_err(ConfigError::Invalid)?;
        config.schedules = file.schedules;
        config
            .llm
            .apply_env(env)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some(image) = env("SWITCHYARD_SANDBOX_IMAGE") {
            config.sandbox.image = image;
        }
        if let Some(socket) = env("SWITCHYARD_DOCKER_SOCKET") {
            config.sandbox.docker_socket = Some(socket);
        }
        if let Some(n) = number("SWITCHYARD_SANDBOX_WARM_POOL")? {
            config.sandbox.warm_pool = n.min(64) as u32;
        }
        let list = |v: String| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        };
        if let Some(hosts) = env("SWITCHYARD_MCP_ALLOWED_HOSTS") {
            config.mcp.allowed_hosts = list(hosts);
        }
        if let Some(origins) = env("SWITCHYARD_MCP_ALLOWED_ORIGINS") {
            config.mcp.allowed_origins = list(origins);
        }
        if let Some(v) = env("SWITCHYARD_MCP_STATELESS") {
            config.mcp.stateless = matches!(v.as_str(), "1" | "true" | "yes");
        }
        if let Some(user) = env("SWITCHYARD_MCP_ANONYMOUS_USER") {
            config.mcp.anonymous_user = Some(user);
        }
        if config.mcp.anonymous_user.is_some()
            && (!config.listen.ip().is_loopback() || config.public_url.is_some())
        {
            return Err(ConfigError::Invalid(format!(
                "mcp.anonymous_user serves requests without a token, so it is only allowed on a loopback address with no public_url (listen {})",
                config.listen
            )));
        }
        Ok(config)
    }

    /// Whether only this machine can reach the server: a loopback listen
    /// address and no public URL (no reverse proxy in front).
    pub fn loopback_only(&self) -> bool {
        self.listen.ip().is_loopback() && self.public_url.is_none()
    }

    /// Whether `/metrics` answers without a token.
    pub fn metrics_open(&self) -> bool {
        self.loopback_only() && self.metrics.public != Some(false)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The database URL: the configured one or SQLite in the data dir.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| crate::store::sqlite_url(&self.data_dir))
    }

    /// The file holding the key that seals plugin secrets.
    pub fn secret_key_file(&self) -> PathBuf {
        self.data_dir.join("secret.key")
    }

    /// The base URL people should use.
    pub fn base_url(&self) -> String {
        self.public_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// Runtime options with the precompiled-artifact cache (`<data dir>/cache` by default).
    pub fn runtime_options(&self) -> RuntimeOptions {
        RuntimeOptions {
            cache_dir: Some(self.cache_dir.clone()),
            resolver: self.resolver.clone(),
            ..RuntimeOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_mcp_needs_a_loopback_listener() {
        let file = |listen: &str| FileConfig {
            listen: Some(listen.into()),
            mcp: McpConfig {
                anonymous_user: Some("admin".into()),
                ..McpConfig::default()
            },
            ..FileConfig::default()
        };
        assert!(Config::resolve(Overrides::default(), file("127.0.0.1:7700")).is_ok());
        let e = Config::resolve(Overrides::default(), file("0.0.0.0:7700")).unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
    }

    #[test]
    fn metrics_are_open_only_on_loopback() {
        let file = |listen: &str, public: Option<bool>| FileConfig {
            listen: Some(listen.into()),
            metrics: MetricsConfig { public },
            ..FileConfig::default()
        };
        let open = |listen, public| {
            Config::resolve(Overrides::default(), file(listen, public))
                .map(|c| c.metrics_open())
                .map_err(|e| e.to_string())
        };
        assert_eq!(open("127.0.0.1:7700", None), Ok(true));
        assert_eq!(open("127.0.0.1:7700", Some(false)), Ok(false));
        assert_eq!(open("0.0.0.0:7700", None), Ok(false));
        assert!(
            open("0.0.0.0:7700", Some(true))
                .unwrap_err()
                .contains("loopback")
        );
    }
}
