//! Workspace disks: every workspace volume is an ext4 filesystem in a sparse
//! image file of its own (`<workspace_dir>/<volume>.img`), attached to a loop
//! device by the host and mounted by the engine as a `local` volume of
//! `type=ext4` on that device. The kernel enforces the size: a write past it
//! is `ENOSPC` inside the container, and the host's disk holds at most the
//! image's size. Deleted files give their blocks back to the host (`discard`).
//!
//! The loop mapping does not survive a reboot of the machine: [`Disks::attach`]
//! finds the image's device or attaches it again before every container
//! start, and the engine's volume is re-pointed when the device changed.
//! Attaching needs root (the host's, never the sandbox's).

use std::path::{Path, PathBuf};
use tokio::process::Command;

/// Mount options of a workspace filesystem.
pub const MOUNT_OPTIONS: &str = "nodev,nosuid,discard";
/// The filesystem type of a workspace.
pub const FS_TYPE: &str = "ext4";

/// Why a workspace disk could not be made, attached or removed.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// A tool (`mkfs.ext4`, `losetup`, …) is missing or was refused.
    #[error("workspace disk: {0}")]
    Tool(String),
    /// The image cannot shrink below what it holds.
    #[error(
        "a workspace cannot shrink: it is {have} MiB and {want} MiB was asked; create a new sandbox to get a smaller one"
    )]
    Shrink {
        /// Its size now (MiB).
        have: u64,
        /// The size asked for (MiB).
        want: u64,
    },
    /// A file operation on the image failed.
    #[error("workspace disk {path}: {reason}")]
    Io {
        /// The image.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// The workspace images of one host.
#[derive(Debug, Clone)]
pub struct Disks {
    dir: PathBuf,
}

fn io(path: &Path, e: std::io::Error) -> DiskError {
    DiskError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Run `program args`, its standard output on success.
async fn run(program: &str, args: &[&str]) -> Result<String, DiskError> {
    let out = Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| {
            DiskError::Tool(format!(
                "cannot run `{program}` ({e}); install e2fsprogs and util-linux (`apt-get install -y e2fsprogs mount`)"
            ))
        })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let denied = err.contains("ermission denied") || err.contains("not permitted");
    let hint = if program == "losetup" && denied {
        "; attaching workspace disks needs root: run switchyard as root, or set \
         `[sandbox] disk_limits = false` (workspaces then have no size limit)"
    } else {
        ""
    };
    Err(DiskError::Tool(format!(
        "`{program} {}` failed ({}): {err}{hint}",
        args.join(" "),
        out.status
    )))
}

impl Disks {
    /// Images live in `dir` (created 0700 when first needed; kept as an
    /// absolute path, which is how the kernel names a loop device's file).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let dir = std::fs::canonicalize(&dir)
            .or_else(|_| std::path::absolute(&dir))
            .unwrap_or(dir);
        Self { dir }
    }

    /// The directory of the images.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The image of `volume`.
    pub fn image(&self, volume: &str) -> PathBuf {
        self.dir.join(format!("{volume}.img"))
    }

    fn kept_marker(&self, volume: &str) -> PathBuf {
        self.dir.join(format!("{volume}.kept"))
    }

    /// Make `volume`'s image of `size_mb` when missing, grow it when smaller,
    /// attach it, and return its loop device.
    pub async fn prepare(&self, volume: &str, size_mb: u64) -> Result<String, DiskError> {
        let image = self.image(volume);
        let want = size_mb << 20;
        match tokio::fs::metadata(&image).await {
            Ok(m) if m.len() > want => {
                // Smaller limits apply to new workspaces only; this one keeps its size.
                tracing::debug!(volume, have = m.len(), want, "workspace larger than asked");
            }
            Ok(m) if m.len() < want => self.grow(&image, want).await?,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.make(&image, want).await?;
            }
            Err(e) => return Err(io(&image, e)),
        }
        self.attach(&image).await
    }

    /// Refuse a size below the image's.
    pub async fn check_resize(&self, volume: &str, size_mb: u64) -> Result<(), DiskError> {
        if let Ok(m) = tokio::fs::metadata(self.image(volume)).await
            && m.len() > size_mb << 20
        {
            return Err(DiskError::Shrink {
                have: m.len() >> 20,
                want: size_mb,
            });
        }
        Ok(())
    }

    async fn make(&self, image: &Path, size: u64) -> Result<(), DiskError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| io(&self.dir, e))?;
        if let Ok(real) = std::fs::canonicalize(&self.dir)
            && real != self.dir
        {
            return Err(DiskError::Io {
                path: self.dir.display().to_string(),
                reason: format!("it resolves to {}: configure that path", real.display()),
            });
        }
        let part = image.with_extension("img.part");
        let file = std::fs::File::create(&part).map_err(|e| io(&part, e))?;
        file.set_len(size).map_err(|e| io(&part, e))?;
        drop(file);
        let path = part.to_string_lossy().into_owned();
        // Owned by the sandbox user, no reserved blocks, journal left sparse;
        // no lost+found, so the engine copies the image's /workspace in.
        run(
            "mkfs.ext4",
            &[
                "-F",
                "-q",
                "-m",
                "0",
                "-E",
                "root_owner=1000:1000,lazy_itable_init=1,lazy_journal_init=1",
                &path,
            ],
        )
        .await?;
        run("debugfs", &["-w", "-R", "rmdir lost+found", &path]).await?;
        std::fs::rename(&part, image).map_err(|e| io(image, e))?;
        tracing::info!(image = %image.display(), size_mb = size >> 20, "sandboxes: workspace disk made");
        Ok(())
    }

    /// Grow an unmounted image's file and filesystem to `size` bytes.
    async fn grow(&self, image: &Path, size: u64) -> Result<(), DiskError> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(image)
            .map_err(|e| io(image, e))?;
        file.set_len(size).map_err(|e| io(image, e))?;
        drop(file);
        let path = image.to_string_lossy().into_owned();
        for dev in attached(image) {
            run("losetup", &["-c", &dev]).await?;
        }
        // Forced: a check first would recreate the lost+found the image left out.
        run("resize2fs", &["-f", &path]).await?;
        tracing::info!(image = %path, size_mb = size >> 20, "sandboxes: workspace disk grown");
        Ok(())
    }

    /// The loop device of `image`, attaching it when it has none.
    async fn attach(&self, image: &Path) -> Result<String, DiskError> {
        if let Some(dev) = attached(image).into_iter().next() {
            return Ok(dev);
        }
        let path = image.to_string_lossy().into_owned();
        let dev = run("losetup", &["--find", "--show", &path]).await?;
        tracing::info!(image = %path, device = %dev, "sandboxes: workspace disk attached");
        Ok(dev)
    }

    /// Detach `volume`'s image and delete it, half-made or not (absent is fine).
    pub async fn remove(&self, volume: &str) -> Result<(), DiskError> {
        let image = self.image(volume);
        self.detach(&image).await?;
        let part = image.with_extension("img.part");
        for path in [image, part, self.kept_marker(volume)] {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&path, e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// Detach `volume`'s image and mark it kept (a sandbox deleted with
    /// `keep_volume`): start-up reaping leaves it alone.
    pub async fn keep(&self, volume: &str, sandbox: &str) -> Result<(), DiskError> {
        self.detach(&self.image(volume)).await?;
        let marker = self.kept_marker(volume);
        if self.dir.is_dir() {
            std::fs::write(&marker, sandbox).map_err(|e| io(&marker, e))?;
        }
        Ok(())
    }

    /// Whether `volume` was kept on purpose.
    pub fn is_kept(&self, volume: &str) -> bool {
        self.kept_marker(volume).exists()
    }

    async fn detach(&self, image: &Path) -> Result<(), DiskError> {
        for dev in attached(image) {
            run("losetup", &["-d", &dev]).await?;
            tracing::info!(image = %image.display(), device = %dev, "sandboxes: workspace disk detached");
        }
        Ok(())
    }

    /// Bytes of the host's disk `volume`'s image takes now (it is sparse).
    pub fn allocated(&self, volume: &str) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(self.image(volume))
            .map(|m| m.blocks() * 512)
            .unwrap_or(0)
    }

    /// The volumes that have an image (or a half-made one) here.
    pub fn volumes(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".img")
                    .or_else(|| name.strip_suffix(".img.part"))
                    .map(str::to_string)
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Detach loop devices whose image in this directory was deleted.
    pub async fn reap_stale(&self) -> Result<(), DiskError> {
        for (dev, backing) in loops() {
            let Some(path) = backing.strip_suffix(" (deleted)") else {
                continue;
            };
            if Path::new(path).parent() == Some(self.dir.as_path()) {
                run("losetup", &["-d", &dev]).await?;
                tracing::info!(device = %dev, image = path, "sandboxes: stale workspace loop detached");
            }
        }
        Ok(())
    }
}

/// Every loop device with its backing file, from sysfs.
fn loops() -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let backing = std::fs::read_to_string(e.path().join("loop/backing_file")).ok()?;
            name.starts_with("loop")
                .then(|| (format!("/dev/{name}"), backing.trim_end().to_string()))
        })
        .collect()
}

/// The loop devices backed by `image`.
fn attached(image: &Path) -> Vec<String> {
    let image = image.to_string_lossy();
    loops()
        .into_iter()
        .filter(|(_, backing)| *backing == image)
        .map(|(dev, _)| dev)
        .collect()
}
