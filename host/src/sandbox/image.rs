//! Building the worker image (`switchyard image build`): `worker-image/Dockerfile`
//! on a base that is either pulled from a registry (`--base
//! debian:bookworm-slim`) or, with no registry, made here from Debian packages
//! with `debootstrap --variant=minbase` and imported into the engine.

use super::docker::DockerDriver;
use bollard::query_parameters::{BuildImageOptions, CreateImageOptions};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The sandbox Dockerfile, embedded so the binary can build its image anywhere.
pub const DOCKERFILE: &str = include_str!("../../../worker-image/Dockerfile");
/// The tag of the base made with debootstrap.
pub const BASE_TAG: &str = "switchyard-worker-base:bookworm";
/// Packages the debootstrap base includes (the Dockerfile installs any missing).
pub const PACKAGES: &str = "bash,coreutils,findutils,procps,python3,git,curl,ca-certificates";
/// Label holding the Dockerfile's digest, to tell a current image from a stale one.
pub const LABEL_DOCKERFILE: &str = "io.switchyard.dockerfile-sha256";

/// Why the image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The engine is unreachable.
    #[error(transparent)]
    Driver(#[from] super::DriverError),
    /// A step failed; the message says what to do.
    #[error("{0}")]
    Step(String),
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The tag to produce.
    pub tag: String,
    /// A base image to build on (from a registry); `None` makes one with debootstrap.
    pub base: Option<String>,
    /// The Debian mirror for debootstrap (default: the first in apt's sources).
    pub mirror: Option<String>,
    /// Rebuild even when the image is current.
    pub force: bool,
}

/// The Dockerfile's digest.
pub fn dockerfile_digest() -> String {
    hex::encode(Sha256::digest(DOCKERFILE.as_bytes()))
}

/// The first Debian mirror apt is configured with.
pub fn apt_mirror() -> Option<String> {
    let mut files = vec![std::path::PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<_> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for line in text.lines().map(str::trim) {
            let url = if let Some(rest) = line.strip_prefix("deb ") {
                rest.split_whitespace().find(|w| w.starts_with("http"))
            } else {
                line.strip_prefix("URIs:").map(str::trim)
            };
            if let Some(url) = url.and_then(|u| u.split_whitespace().next())
                && url.trim_end_matches('/').ends_with("/debian")
            {
                return Some(url.to_string());
            }
        }
    }
    None
}

/// Build the worker image, reporting each step through `progress`; the tag.
pub async fn build(
    driver: &DockerDriver,
    opts: &BuildOptions,
    progress: &(dyn Fn(String) + Sync),
) -> Result<String, ImageError> {
    let docker = driver.client().await?;
    let digest = dockerfile_digest();
    if !opts.force
        && let Ok(image) = docker.inspect_image(&opts.tag).await
        && image
            .config
            .and_then(|c| c.labels)
            .and_then(|l| l.get(LABEL_DOCKERFILE).cloned())
            .as_deref()
            == Some(digest.as_str())
    {
        progress(format!("{} is up to date", opts.tag));
        return Ok(opts.tag.clone());
    }
    let base = match &opts.base {
        Some(b) => b.clone(),
        None => {
            if opts.force || docker.inspect_image(BASE_TAG).await.is_err() {
                make_base(driver, opts.mirror.clone(), progress).await?;
            } else {
                progress(format!("using the existing base {BASE_TAG}"));
            }
            BASE_TAG.to_string()
        }
    };
    progress(format!("building {} on {base}", opts.tag));
    let mut context = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(DOCKERFILE.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    context
        .append_data(&mut header, "Dockerfile", DOCKERFILE.as_bytes())
        .map_err(|e| ImageError::Step(format!("packing the build context: {e}")))?;
    let context = context
        .into_inner()
        .map_err(|e| ImageError::Step(format!("packing the build context: {e}")))?;
    let options = BuildImageOptions {
        dockerfile: "Dockerfile".into(),
        t: Some(opts.tag.clone()),
        rm: true,
        forcerm: true,
        buildargs: Some(HashMap::from([("BASE".into(), base.clone())])),
        labels: Some(HashMap::from([(LABEL_DOCKERFILE.into(), digest)])),
        ..Default::default()
    };
    let mut events =
        std::pin::pin!(docker.build_image(options, None, Some(bollard::body_full(context.into()))));
    while let Some(event) = events.next().await {
        match event {
            Ok(info) => {
                if let Some(line) = info
                    .stream
                    .as_deref()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                {
                    progress(line.to_string());
                }
            }
            Err(e) => {
                return Err(ImageError::Step(format!(
                    "building the image failed: {e}. With a registry, try `switchyard image build --base debian:bookworm-slim`"
                )));
            }
        }
    }
    Ok(opts.tag.clone())
}

async fn make_base(
    driver: &DockerDriver,
    mirror: Option<String>,
    progress: &(dyn Fn(String) + Sync),
) -> Result<(), ImageError> {
    let root = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    };
    let found = which("debootstrap");
    if !root || !found {
        return Err(ImageError::Step(
            "making the base image needs root and debootstrap: run `apt-get install -y debootstrap` \
             and `sudo switchyard image build`; or, with a registry, `switchyard image build --base debian:bookworm-slim`"
                .into(),
        ));
    }
    let mirror = mirror.or_else(apt_mirror).ok_or_else(|| {
        ImageError::Step("no Debian mirror in /etc/apt/sources.list*: pass --mirror URL".into())
    })?;
    let dir = tempfile::Builder::new()
        .prefix("switchyard-rootfs-")
        .tempdir_in("/var/tmp")
        .map_err(|e| ImageError::Step(format!("creating a work directory in /var/tmp: {e}")))?;
    let rootfs = dir.path().join("rootfs");
    progress(format!(
        "debootstrap --variant=minbase bookworm from {mirror} (about a minute)"
    ));
    let mut child = tokio::process::Command::new("debootstrap")
        .args([
            "--variant=minbase",
            &format!("--include={PACKAGES}"),
            "bookworm",
        ])
        .arg(&rootfs)
        .arg(&mirror)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ImageError::Step(format!("starting debootstrap: {e}")))?;
    let stderr = child.stderr.take();
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        if let Some(s) = stderr {
            let mut lines = BufReader::new(s).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                if text.len() < 8192 {
                    text.push_str(&l);
                    text.push('\n');
                }
            }
        }
        text
    });
    if let Some(out) = child.stdout.take() {
        let mut lines = BufReader::new(out).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            progress(line);
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|e| ImageError::Step(format!("debootstrap: {e}")))?;
    if !status.success() {
        let errors = errors.await.unwrap_or_default();
        return Err(ImageError::Step(format!(
            "debootstrap failed ({status}); see {}/debootstrap/debootstrap.log\n{errors}",
            rootfs.display()
        )));
    }
    progress(format!("importing the root filesystem as {BASE_TAG}"));
    import(driver, &rootfs).await
}

async fn import(driver: &DockerDriver, rootfs: &Path) -> Result<(), ImageError> {
    let mut tar = tokio::process::Command::new("tar")
        .arg("-C")
        .arg(rootfs)
        .args(["-c", "."])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ImageError::Step(format!("starting tar: {e}")))?;
    let out = tar
        .stdout
        .take()
        .ok_or_else(|| ImageError::Step("tar has no output".into()))?;
    let body = bollard::body_try_stream(tokio_util::io::ReaderStream::new(out));
    let (repo, tag) = BASE_TAG.split_once(':').unwrap_or((BASE_TAG, "latest"));
    let options = CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some(repo.into()),
        tag: Some(tag.into()),
        ..Default::default()
    };
    let docker = driver
        .client()
        .await?
        .with_timeout(std::time::Duration::from_secs(1800));
    let mut events = std::pin::pin!(docker.create_image(Some(options), Some(body), None));
    while let Some(event) = events.next().await {
        event.map_err(|e| ImageError::Step(format!("importing the base image: {e}")))?;
    }
    let status = tar
        .wait()
        .await
        .map_err(|e| ImageError::Step(format!("tar: {e}")))?;
    if !status.success() {
        return Err(ImageError::Step(format!("tar failed ({status})")));
    }
    Ok(())
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .any(|dir| dir.join(program).is_file())
    })
}
