//! The server process: opening every service from a [`Config`] (store, auth,
//! plugins with hot reload, sandboxes, metrics, the first admin). The HTTP side lives in
//! [`crate::api`].

use crate::auth::{Auth, password};
use crate::config::Config;
use crate::plugins::PluginManager;
use crate::plugins::live::PluginHost;
use crate::runtime::Runtime;
use crate::sandbox::Sandboxes;
use crate::sandbox::docker::DockerDriver;
use crate::store::{Role, SecretCipher, Store};
use crate::tasks::Tasks;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory or a key file is unusable.
    #[error("{0}")]
    Io(String),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The runtime or plugins failed to start.
    #[error("{0}")]
    Plugins(String),
    /// A setting is invalid.
    #[error("{0}")]
    Config(String),
}

/// Everything the API serves from, shared by all requests.
pub struct Services {
    /// Settings.
    pub config: Config,
    /// The database.
    pub store: Store,
    /// Authentication.
    pub auth: Auth,
    /// The live plugins.
    pub plugins: Arc<PluginHost>,
    /// The Prometheus exposition.
    pub metrics: PrometheusHandle,
    /// Sandbox containers.
    pub sandboxes: Arc<Sandboxes>,
    /// Sessions, tasks and their events.
    pub tasks: Arc<Tasks>,
    /// Channel instances, webhooks and the delivery outbox.
    pub channels: Arc<crate::channels::Channels>,
    /// Installed, plugin and folder skills.
    pub skills: Arc<crate::skills::Skills>,
    /// Schedules and the scheduler.
    pub schedules: Arc<crate::schedules::Schedules>,
    /// External MCP servers and their connections.
    pub remotes: Arc<crate::remote::Remotes>,
    /// When the services were opened.
    pub started: Instant,
}

/// How often histogram samples are folded into their buckets.
const METRICS_UPKEEP: Duration = Duration::from_secs(1);

/// The process-wide metrics recorder (installed once; every server in the
/// process shares it).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0,
            ];
            // Sandbox commands run for seconds to an hour.
            let long = [
                0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets(&buckets)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("switchyard_sandbox_command_duration_seconds".into()),
                        &long,
                    )
                })
                .map(PrometheusBuilder::build_recorder)
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            // Histogram samples are held until upkeep folds them into their
            // buckets: without it every recorded duration stays in memory
            // until the next scrape, so an unscraped server grows per request.
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(METRICS_UPKEEP);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
            }
            handle
        })
        .clone()
}

/// The cipher that seals plugin secrets: `SWITCHYARD_SECRET_KEY` (64 hex chars)
/// or the key file in the data dir, created on first use.
pub fn secret_cipher(config: &Config) -> Result<SecretCipher, StartError> {
    if let Ok(hex_key) = std::env::var("SWITCHYARD_SECRET_KEY") {
        let key = hex::decode(hex_key.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| {
                StartError::Config("SWITCHYARD_SECRET_KEY must be 64 hex characters".into())
            })?;
        return Ok(SecretCipher::new(key));
    }
    let path = config.secret_key_file();
    SecretCipher::from_key_file(&path)
        .map_err(|e| StartError::Io(format!("secret key {}: {e}", path.display())))
}

/// Open the store (migrating it) and the plugin manager for `config`.
pub async fn open_manager(config: &Config) -> Result<PluginManager, StartError> {
    crate::datadir::create(config.data_dir())
        .map_err(|e| StartError::Io(format!("cannot create the data directory {e}")))?;
    let store = Store::open(&config.database_url()).await?;
    let cipher = secret_cipher(config)?;
    let runtime = Runtime::new(config.runtime_options())
        .map_err(|e| StartError::Plugins(format!("starting the WebAssembly runtime: {e}")))?;
    Ok(PluginManager::new(
        config.data_dir(),
        Arc::new(runtime),
        store,
        cipher,
    ))
}

impl Services {
    /// Open everything: store, plugins (loaded and watched), auth, metrics, and
    /// the first admin from `SWITCHYARD_ADMIN_PASSWORD` when there are no users.
    /// Leftovers of installs cut short by a crash are removed first (see
    /// [`crate::datadir`]); every mode in the data dir is tightened.
    pub async fn open(config: Config) -> Result<Arc<Self>, StartError> {
        crate::datadir::remove_leftovers(config.data_dir());
        Self::open_beside_server(config).await
    }

    /// [`Self::open`] for a process that may run beside a server on the same
    /// data dir (`mcp-stdio`): it leaves install leftovers alone, since they
    /// may be the server's installs in flight.
    pub async fn open_beside_server(config: Config) -> Result<Arc<Self>, StartError> {
        crate::datadir::secure(config.data_dir())
            .map_err(|e| StartError::Io(format!("cannot secure the data directory {e}")))?;
        let manager = open_manager(&config).await?;
        let store = manager.store().clone();
        bootstrap_admin(&store).await?;
        let plugins = PluginHost::start(manager)
            .await
            .map_err(|e| StartError::Plugins(e.to_string()))?;
        plugins.watch(Duration::from_secs(10));
        let pruning = plugins.clone();
        tokio::spawn(async move {
            if let Err(e) = pruning.manager().prune_cache().await {
                tracing::warn!(error = %e, "cannot prune the precompiled artifacts");
            }
        });
        let secret = match std::env::var("SWITCHYARD_JWT_SECRET") {
            Ok(s) if s.len() >= 32 => s.into_bytes(),
            Ok(_) => {
                return Err(StartError::Config(
                    "SWITCHYARD_JWT_SECRET must be at least 32 characters".into(),
                ));
            }
            Err(_) => Auth::stored_secret(&store, &secret_cipher(&config)?).await?,
        };
        let instance = store
            .setting_or_insert(
                "sandbox_instance",
                &uuid::Uuid::now_v7().simple().to_string(),
            )
            .await?;
        let driver = Arc::new(DockerDriver::new(config.sandbox.docker_socket.as_deref()));
        let mut sandbox_config = config.sandbox.clone();
        sandbox_config
            .workspace_dir
            .get_or_insert_with(|| config.data_dir.join("workspaces"));
        let sandboxes = Sandboxes::new(driver, store.clone(), sandbox_config, instance);
        let skills = crate::skills::Skills::open(
            store.clone(),
            Some(plugins.clone()),
            config.skills_dir.clone(),
        )
        .await?;
        let remotes = crate::remote::Remotes::new(
            store.clone(),
            plugins.manager().secrets().cipher().clone(),
            plugins.clone(),
            Some(sandboxes.clone()),
        );
        if let Err(e) = remotes.start().await {
            tracing::warn!(error = %e, "cannot read the external MCP servers");
        }
        let tasks = Tasks::new(
            store.clone(),
            sandboxes.clone(),
            plugins.clone(),
            skills.clone(),
            remotes.clone(),
            &config,
        );
        tasks.start();
        let channels = crate::channels::Channels::new(
            store.clone(),
            plugins.clone(),
            tasks.clone(),
            &config.channels,
        );
        channels.start();
        let schedules = crate::schedules::Schedules::new(
            store.clone(),
            Some(tasks.clone()),
            &config,
            crate::schedules::system_clock(),
        );
        schedules.start();
        Ok(Arc::new(Self {
            schedules,
            remotes,
            tasks,
            channels,
            skills,
            auth: Auth::new(
                store.clone(),
                &secret,
                config.logins_per_minute,
                config.login.clone(),
            ),
            sandboxes,
            config,
            store,
            plugins,
            metrics: metrics_handle(),
            started: Instant::now(),
        }))
    }
}

async fn bootstrap_admin(store: &Store) -> Result<(), StartError> {
    let Ok(pass) = std::env::var("SWITCHYARD_ADMIN_PASSWORD") else {
        return Ok(());
    };
    if store.user_count().await? > 0 {
        return Ok(());
    }
    let name = std::env::var("SWITCHYARD_ADMIN_USER").unwrap_or_else(|_| "admin".into());
    password::check_new(&pass)
        .map_err(|e| StartError::Config(format!("SWITCHYARD_ADMIN_PASSWORD: {e}")))?;
    let hash = tokio::task::spawn_blocking(move || password::hash(&pass))
        .await
        .map_err(|e| StartError::Config(e.to_string()))?
        .map_err(StartError::Config)?;
    match store.create_user(&name, &hash, Role::Admin).await {
        Ok(_) => tracing::info!(user = %name, "created the first admin"),
        Err(crate::store::StoreError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
