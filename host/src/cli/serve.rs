//! `switchyard serve`: run the server until SIGINT or SIGTERM.

use anyhow::Context;
use std::process::ExitCode;
use std::time::Duration;
use switchyard::config::Config;
use switchyard::server::Services;

/// Options of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:7700].
    #[arg(long, env = "SWITCHYARD_LISTEN")]
    pub listen: Option<String>,
    /// How long requests in flight may run after a shutdown signal, in seconds.
    #[arg(long, default_value_t = 30)]
    pub shutdown_grace: u64,
}

pub async fn run(args: ServeArgs, config: Config) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is another server running? pick another with --listen)",
                config.listen
            )
        })?;
    let mut config = config;
    config.listen = listener
        .local_addr()
        .context("reading the listen address")?;
    let services = Services::open(config)
        .await
        .context("starting the server")?;
    let base = services.config.base_url();
    let users = services.store.user_count().await?;
    println!(
        "switchyard {} listening on {base}",
        env!("CARGO_PKG_VERSION")
    );
    println!("  REST API: {base}/api/v1  (docs: {base}/api/v1/docs)");
    println!("  MCP:      {base}/mcp  (streamable HTTP; `switchyard mcp-stdio` for stdio)");
    println!("  metrics:  {base}/metrics");
    println!(
        "  data:     {} ({} plugins loaded)",
        services.config.data_dir().display(),
        services.plugins.snapshot().len()
    );
    println!("  console:  {base}/{}", console_note());
    if users == 0 {
        let token = services.auth.issue_setup_token();
        println!();
        println!(
            "No users yet. Create the first administrator in the browser (this link works once):"
        );
        println!("  {base}/setup#token={token}");
        println!(
            "  (or `switchyard user create admin --admin` with the password on stdin, or restart with SWITCHYARD_ADMIN_PASSWORD set)"
        );
        println!();
    } else {
        println!(
            "Log in: curl -s {base}/api/v1/auth/login -H 'content-type: application/json' -d '{{\"username\":\"admin\",\"password\":\"…\"}}'"
        );
    }
    println!("  sandboxes: {}", sandbox_status(&services).await);
    services.sandboxes.start_background();
    tracing::info!(listen = %services.config.listen, "server started");
    let routes = switchyard::api::routes(services.clone());
    switchyard::api::serve::serve(
        listener,
        routes,
        shutdown_signal(),
        Duration::from_secs(args.shutdown_grace),
    )
    .await;
    services.sandboxes.drain_pool().await;
    services.store.close().await;
    eprintln!("switchyard stopped");
    Ok(ExitCode::SUCCESS)
}

/// What follows the console's URL: nothing when it is built in, else how to build it.
fn console_note() -> &'static str {
    if switchyard::api::web::built() {
        ""
    } else {
        "  (not built into this binary: run `scripts/web`, then rebuild)"
    }
}

/// One line on whether sandboxes can start, and what to do when they cannot.
async fn sandbox_status(services: &Services) -> String {
    let image = &services.config.sandbox.image;
    let driver = services.sandboxes.driver();
    match driver.image_present(image).await {
        Ok(true) => format!("Docker engine ready, image {image}"),
        Ok(false) => format!(
            "image {image} is missing: build it with `switchyard image build` (sandbox calls answer 503 until then)"
        ),
        Err(e) => format!("unavailable ({e}); sandbox calls answer 503 until the engine is back"),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown signal received; finishing requests in flight");
}
