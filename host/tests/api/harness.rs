//! A real server on loopback for each test: fresh data dir, SQLite or a fresh
//! Postgres database, an admin, and an HTTP client.

use reqwest::header::HeaderMap;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use switchyard::config::Config;
use switchyard::server::Services;
use switchyard::store::Role;
use tempfile::TempDir;

/// Which database the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const ADMIN_PASSWORD: &str = "admin-password-1";

pub use crate::common::fresh_postgres;

/// The server's settings for `backend` in `dir`.
pub async fn config(backend: Backend, dir: &std::path::Path) -> Config {
    let mut config = Config::new(dir);
    config.cache_dir = crate::common::target_dir().join("test-artifact-cache");
    config.logins_per_minute = 1000;
    config.sandbox.warm_pool = 0;
    if backend == Backend::Postgres {
        config.database_url = Some(fresh_postgres().await);
    }
    config
}

/// A running server.
pub struct Server {
    pub base: String,
    pub services: Arc<Services>,
    pub admin: Client,
    pub data: TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, edit: impl FnOnce(&mut Config)) -> Self {
        let data = TempDir::new().expect("temp dir");
        let mut config = config(backend, data.path()).await;
        edit(&mut config);
        Self::launch(data, config, true).await
    }

    /// Start again on the data and database of a server stopped with [`Self::into_data`].
    pub async fn resume(data: TempDir, config: Config) -> Self {
        Self::launch(data, config, false).await
    }

    /// Start with no user at all (first-run setup); `admin` stays anonymous.
    pub async fn start_without_users(backend: Backend) -> Self {
        let data = TempDir::new().expect("temp dir");
        let config = config(backend, data.path()).await;
        Self::launch(data, config, false).await
    }

    async fn launch(data: TempDir, config: Config, first: bool) -> Self {
        let services = Services::open(config).await.expect("services");
        if first {
            let hash = switchyard::auth::password::hash(ADMIN_PASSWORD).unwrap();
            services
                .store
                .create_user("admin", &hash, Role::Admin)
                .await
                .unwrap();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let routes = switchyard::api::routes(services.clone());
        let task = tokio::spawn(switchyard::api::serve::serve(
            listener,
            routes,
            async move {
                let _ = rx.await;
            },
            Duration::from_secs(5),
        ));
        let mut server = Self {
            admin: Client::anonymous(&base),
            base,
            services,
            data,
            shutdown: Some(tx),
            task: Some(task),
        };
        if server.services.store.user_count().await.unwrap() > 0 {
            server.admin = server.login("admin", ADMIN_PASSWORD).await;
        }
        server
    }

    /// A client without a token.
    pub fn anon(&self) -> Client {
        Client::anonymous(&self.base)
    }

    /// Stop like a crashed host (sandbox containers stay), keeping the data
    /// directory and settings for [`Self::resume`].
    pub async fn into_data(mut self) -> (TempDir, Config) {
        let config = self.services.config.clone();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.services.store.close().await;
        let data = std::mem::replace(&mut self.data, TempDir::new().expect("temp dir"));
        (data, config)
    }

    /// Log in and return a client carrying the access token.
    pub async fn login(&self, user: &str, password: &str) -> Client {
        let anon = Client::anonymous(&self.base);
        let r = anon
            .post(
                "/api/v1/auth/login",
                serde_json::json!({ "username": user, "password": password }),
            )
            .await;
        assert_eq!(r.status, 200, "login as {user}: {}", r.body);
        anon.with_token(r.body["access_token"].as_str().unwrap())
    }

    /// Create a user with `role` through the API and log in as them.
    pub async fn user(&self, name: &str, role: &str) -> (Client, String) {
        let r = self
            .admin
            .post("/api/v1/users", serde_json::json!({ "username": name, "password": "password-of-user", "role": role }))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.body["id"].as_str().unwrap().to_string();
        (self.login(name, "password-of-user").await, id)
    }

    /// Stop accepting and wait for requests in flight.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.services.store.close().await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A response: status, JSON body (or `Null`), headers.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: HeaderMap,
}

impl Resp {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// An HTTP client for one caller.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
}

impl Client {
    pub fn anonymous(base: &str) -> Self {
        Self {
            base: base.to_string(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            token: None,
        }
    }

    pub fn with_token(&self, token: &str) -> Self {
        Self {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            body,
            text,
            headers,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(self.request(reqwest::Method::POST, path).json(&body))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(self.request(reqwest::Method::PATCH, path).json(&body))
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(self.request(reqwest::Method::PUT, path).json(&body))
            .await
    }

    /// Upload a `.tar.gz` package, waiting for its compile (unless `query`
    /// sets `wait`).
    pub async fn upload(&self, query: &str, bytes: Vec<u8>) -> Resp {
        let query = match query {
            q if q.contains("wait=") => q.to_string(),
            "" => "?wait=600".to_string(),
            q => format!("{q}&wait=600"),
        };
        self.send(
            self.request(reqwest::Method::POST, &format!("/api/v1/plugins{query}"))
                .header("content-type", "application/gzip")
                .body(bytes),
        )
        .await
    }

    /// Call a tool.
    pub async fn call(&self, plugin: &str, tool: &str, arguments: Value) -> Resp {
        self.post(
            &format!("/api/v1/tools/{plugin}/{tool}:call"),
            serde_json::json!({ "arguments": arguments }),
        )
        .await
    }
}

/// The bytes of a built test package (see scripts/build-plugins).
pub fn package_bytes(name: &str) -> Vec<u8> {
    std::fs::read(crate::common::archive(name)).expect("package archive")
}

/// Generate one test per scenario per backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::harness::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::harness::Backend::Postgres).await
                }
            )*
        }
    };
}
