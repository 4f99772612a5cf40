//! `switchyard image`: build the sandbox worker image.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use switchyard::config::Config;
use switchyard::sandbox::docker::DockerDriver;
use switchyard::sandbox::image::{self, BuildOptions};

/// Image commands.
#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// Build (or check) the sandbox image from `worker-image/Dockerfile`.
    ///
    /// With no registry (the default), the base is made from Debian packages with
    /// `debootstrap --variant=minbase` (needs root and the `debootstrap` package,
    /// about a minute) and imported into the engine; with a registry, pass
    /// `--base debian:bookworm-slim`. An image built from the same Dockerfile is
    /// kept unless `--force`.
    Build {
        /// Build on this image instead of a debootstrap base (e.g. `debian:bookworm-slim`).
        #[arg(long)]
        base: Option<String>,
        /// Debian mirror for debootstrap [default: the first one in /etc/apt/sources.list*].
        #[arg(long)]
        mirror: Option<String>,
        /// Tag to build [default: the `[sandbox] image` setting].
        #[arg(long)]
        tag: Option<String>,
        /// Rebuild the base and the image even when they are current.
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(cmd: ImageCommand, config: &Config) -> anyhow::Result<ExitCode> {
    match cmd {
        ImageCommand::Build {
            base,
            mirror,
            tag,
            force,
        } => {
            let driver = DockerDriver::new(config.sandbox.docker_socket.as_deref());
            let opts = BuildOptions {
                tag: tag.unwrap_or_else(|| config.sandbox.image.clone()),
                base,
                mirror,
                force,
            };
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed}] {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            let started = Instant::now();
            let quiet = bar.is_hidden();
            let report = |line: String| {
                if quiet {
                    eprintln!("{line}");
                } else {
                    bar.set_message(line);
                }
            };
            let result = image::build(&driver, &opts, &report).await;
            bar.finish_and_clear();
            let tag = result.context("building the sandbox image")?;
            println!(
                "{tag} is ready ({:.0} s); sandboxes can start.",
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
