//! The Docker driver: [`Driver`] on the Docker engine API through bollard.
//!
//! It connects lazily and reconnects after the engine was down, negotiating the
//! API version each time (the engine here speaks 1.41). Every container gets the
//! hardened host config of [`host_config`].

use super::driver::{
    Chunk, ContainerInfo, ContainerSpec, Driver, DriverError, ExecSession, ExecSpec, Stats,
};
use bollard::Docker;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptions, EventsOptions, ListContainersOptions,
    RemoveContainerOptions, RemoveVolumeOptions, StatsOptions, UploadToContainerOptions,
};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use std::collections::HashMap;
use tokio::sync::Mutex;

/// The default engine socket.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// A Docker engine reached over its unix socket.
pub struct DockerDriver {
    socket: String,
    client: Mutex<Option<Docker>>,
}

impl DockerDriver {
    /// A driver for the engine at `socket` (`unix://` prefix optional); nothing
    /// is contacted until the first call.
    pub fn new(socket: Option<&str>) -> Self {
        let socket = socket
            .map(str::to_string)
            .or_else(|| {
                std::env::var("DOCKER_HOST")
                    .ok()
                    .filter(|h| h.starts_with("unix://"))
            })
            .unwrap_or_else(|| DEFAULT_SOCKET.to_string());
        Self {
            socket: socket.trim_start_matches("unix://").to_string(),
            client: Mutex::new(None),
        }
    }

    /// The engine client (connected and version-negotiated).
    pub async fn client(&self) -> Result<Docker, DriverError> {
        self.docker().await
    }

    async fn docker(&self) -> Result<Docker, DriverError> {
        let mut slot = self.client.lock().await;
        if let Some(d) = slot.as_ref() {
            return Ok(d.clone());
        }
        let d = Docker::connect_with_unix(&self.socket, 120, bollard::API_DEFAULT_VERSION)
            .map_err(|e| unavailable(&self.socket, e))?
            .negotiate_version()
            .await
            .map_err(|e| unavailable(&self.socket, e))?;
        *slot = Some(d.clone());
        Ok(d)
    }

    /// Map an engine error, forgetting the connection when the engine is gone.
    async fn fail(&self, what: &str, e: bollard::errors::Error) -> DriverError {
        let mapped = map(what, e);
        if matches!(mapped, DriverError::Unavailable(_)) {
            *self.client.lock().await = None;
        }
        mapped
    }
}

fn unavailable(socket: &str, e: impl std::fmt::Display) -> DriverError {
    DriverError::Unavailable(format!(
        "cannot reach the Docker engine at {socket} ({e}); start it (e.g. `dockerd &`) and retry"
    ))
}

fn map(what: &str, e: bollard::errors::Error) -> DriverError {
    use bollard::errors::Error as E;
    match e {
        E::DockerResponseServerError {
            status_code: 404,
            message,
        } => DriverError::NotFound(format!("{what} ({message})")),
        E::DockerResponseServerError {
            status_code: 409,
            message,
        } if message.contains("not running") || message.contains("paused") => {
            DriverError::NotRunning(format!("{what} ({message})"))
        }
        E::DockerResponseServerError {
            status_code,
            message,
        } => DriverError::Failed(format!("{what}: {message} ({status_code})")),
        E::SocketNotFoundError(s) => unavailable(&s, "no socket"),
        E::IOError { err } => DriverError::Unavailable(format!("{what}: {err}")),
        E::HyperResponseError { err } => DriverError::Unavailable(format!("{what}: {err}")),
        E::HyperLegacyError { err } => DriverError::Unavailable(format!("{what}: {err:?}")),
        other => DriverError::Failed(format!("{what}: {other}")),
    }
}

/// The hardened host config of a sandbox container: no capabilities, no new
/// privileges, read-only root, tmpfs scratch space, the workspace volume, the
/// engine's init as PID 1, resource limits, and no network unless allowed.
pub fn host_config(spec: &ContainerSpec) -> HostConfig {
    let l = &spec.limits;
    let memory = (l.memory_mb as i64) << 20;
    HostConfig {
        network_mode: Some(if l.network { "bridge" } else { "none" }.into()),
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges".into()]),
        readonly_rootfs: Some(true),
        tmpfs: Some(HashMap::from([
            ("/tmp".into(), "rw,nosuid,nodev,size=256m,mode=1777".into()),
            (
                "/home/agent".into(),
                "rw,nosuid,nodev,size=64m,uid=1000,gid=1000,mode=0700".into(),
            ),
        ])),
        mounts: Some(vec![Mount {
            target: Some("/workspace".into()),
            source: Some(spec.volume.clone()),
            typ: Some(MountType::VOLUME),
            ..Default::default()
        }]),
        memory: Some(memory),
        memory_swap: Some(memory),
        nano_cpus: Some((l.cpus * 1e9) as i64),
        pids_limit: Some(l.pids),
        init: Some(true),
        ..Default::default()
    }
}

fn info(
    id: Option<String>,
    running: bool,
    labels: Option<HashMap<String, String>>,
) -> ContainerInfo {
    ContainerInfo {
        id: id.unwrap_or_default(),
        running,
        labels: labels.unwrap_or_default(),
    }
}

#[async_trait::async_trait]
impl Driver for DockerDriver {
    async fn ping(&self) -> Result<(), DriverError> {
        let d = self.docker().await?;
        match d.ping().await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail("ping", e).await),
        }
    }

    async fn image_present(&self, image: &str) -> Result<bool, DriverError> {
        let d = self.docker().await?;
        match d.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) => match self.fail("image", e).await {
                DriverError::NotFound(_) => Ok(false),
                other => Err(other),
            },
        }
    }

    async fn ensure_volume(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
        device: Option<&str>,
    ) -> Result<(), DriverError> {
        use super::disk::{FS_TYPE, MOUNT_OPTIONS};
        let d = self.docker().await?;
        let options = device.map(|dev| {
            HashMap::from([
                ("type".to_string(), FS_TYPE.to_string()),
                ("device".to_string(), dev.to_string()),
                ("o".to_string(), MOUNT_OPTIONS.to_string()),
            ])
        });
        if let Some(wanted) = &options {
            match d.inspect_volume(name).await {
                Ok(v) if v.options.get("device") == wanted.get("device") => return Ok(()),
                Ok(v) => {
                    // The loop device changed (a reboot): the old definition
                    // would mount whatever that device is now.
                    tracing::info!(volume = name, was = ?v.options.get("device"), device, "sandboxes: re-pointing a workspace volume");
                    self.remove_volume(name).await?;
                }
                Err(e) => match self.fail("volume", e).await {
                    DriverError::NotFound(_) => {}
                    other => return Err(other),
                },
            }
        }
        let req = VolumeCreateRequest {
            name: Some(name.into()),
            labels: Some(labels.clone()),
            driver_opts: options,
            ..Default::default()
        };
        match d.create_volume(req).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail("volume", e).await),
        }
    }

    async fn list_volumes(
        &self,
        label: &str,
    ) -> Result<Vec<(String, HashMap<String, String>)>, DriverError> {
        let d = self.docker().await?;
        let options = bollard::query_parameters::ListVolumesOptions {
            filters: Some(HashMap::from([("label".into(), vec![label.into()])])),
        };
        match d.list_volumes(Some(options)).await {
            Ok(list) => Ok(list
                .volumes
                .unwrap_or_default()
                .into_iter()
                .map(|v| (v.name, v.labels))
                .collect()),
            Err(e) => Err(self.fail("volumes", e).await),
        }
    }

    async fn remove_volume(&self, name: &str) -> Result<(), DriverError> {
        let d = self.docker().await?;
        match d
            .remove_volume(name, Some(RemoveVolumeOptions { force: true }))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => match self.fail("volume", e).await {
                DriverError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn start(&self, spec: &ContainerSpec) -> Result<String, DriverError> {
        let d = self.docker().await?;
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: Some(vec!["sleep".into(), "infinity".into()]),
            user: Some("1000:1000".into()),
            working_dir: Some("/workspace".into()),
            labels: Some(spec.labels.clone()),
            network_disabled: Some(!spec.limits.network),
            host_config: Some(host_config(spec)),
            ..Default::default()
        };
        let created = match d
            .create_container(None::<CreateContainerOptions>, body)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                return Err(match self.fail("container", e).await {
                    DriverError::NotFound(_) => DriverError::ImageMissing(spec.image.clone()),
                    other => other,
                });
            }
        };
        if let Err(e) = d.start_container(&created.id, None).await {
            let err = self.fail("starting the container", e).await;
            let _ = self.remove(&created.id).await;
            return Err(err);
        }
        Ok(created.id)
    }

    async fn remove(&self, id: &str) -> Result<(), DriverError> {
        let d = self.docker().await?;
        let options = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        match d.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) => match self.fail("container", e).await {
                DriverError::NotFound(_) => Ok(()),
                DriverError::Failed(m) if m.contains("already in progress") => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn inspect(&self, id: &str) -> Result<ContainerInfo, DriverError> {
        let d = self.docker().await?;
        match d.inspect_container(id, None).await {
            Ok(c) => Ok(info(
                c.id,
                c.state.and_then(|s| s.running).unwrap_or(false),
                c.config.and_then(|c| c.labels),
            )),
            Err(e) => Err(self.fail("container", e).await),
        }
    }

    async fn list(&self, label: &str) -> Result<Vec<ContainerInfo>, DriverError> {
        let d = self.docker().await?;
        let options = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("label".into(), vec![label.into()])])),
            ..Default::default()
        };
        match d.list_containers(Some(options)).await {
            Ok(list) => Ok(list
                .into_iter()
                .map(|c| {
                    let running = c.state.as_ref().is_some_and(|s| s.to_string() == "running");
                    info(c.id, running, c.labels)
                })
                .collect()),
            Err(e) => Err(self.fail("containers", e).await),
        }
    }

    async fn exec(&self, id: &str, spec: &ExecSpec) -> Result<ExecSession, DriverError> {
        let d = self.docker().await?;
        let options = CreateExecOptions {
            cmd: Some(spec.argv.clone()),
            env: Some(spec.env.clone()),
            working_dir: Some(spec.workdir.clone()),
            user: Some("1000:1000".into()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            attach_stdin: Some(spec.stdin),
            tty: Some(spec.tty),
            ..Default::default()
        };
        let exec = match d.create_exec(id, options).await {
            Ok(e) => e,
            Err(e) => return Err(self.fail("sandbox container", e).await),
        };
        let start = StartExecOptions {
            detach: false,
            tty: spec.tty,
            output_capacity: Some(64 << 10),
        };
        match d.start_exec(&exec.id, Some(start)).await {
            Ok(StartExecResults::Attached { output, input }) => {
                use bollard::container::LogOutput;
                let output = output
                    .filter_map(|item| async move {
                        match item {
                            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                                Some(Ok(Chunk::Stdout(message)))
                            }
                            Ok(LogOutput::StdErr { message }) => Some(Ok(Chunk::Stderr(message))),
                            Ok(LogOutput::StdIn { .. }) => None,
                            Err(e) => Some(Err(map("command output", e))),
                        }
                    })
                    .boxed();
                Ok(ExecSession {
                    id: exec.id,
                    output,
                    input: spec.stdin.then_some(input),
                })
            }
            Ok(StartExecResults::Detached) => Err(DriverError::Failed(
                "the engine detached the command".into(),
            )),
            Err(e) => Err(self.fail("starting the command", e).await),
        }
    }

    async fn exec_exit(&self, exec_id: &str) -> Result<Option<i64>, DriverError> {
        let d = self.docker().await?;
        match d.inspect_exec(exec_id).await {
            Ok(i) if i.running == Some(true) => Ok(None),
            Ok(i) => Ok(Some(i.exit_code.unwrap_or(-1))),
            Err(e) => Err(self.fail("command", e).await),
        }
    }

    async fn resize(&self, exec_id: &str, rows: u16, cols: u16) -> Result<(), DriverError> {
        let d = self.docker().await?;
        let options = ResizeExecOptions {
            height: rows,
            width: cols,
        };
        match d.resize_exec(exec_id, options).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail("terminal", e).await),
        }
    }

    async fn put_archive(&self, id: &str, dir: &str, tar: Bytes) -> Result<(), DriverError> {
        let d = self.docker().await?;
        let options = UploadToContainerOptions {
            path: dir.into(),
            ..Default::default()
        };
        match d
            .upload_to_container(id, Some(options), bollard::body_full(tar))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(dir, e).await),
        }
    }

    async fn get_archive(
        &self,
        id: &str,
        path: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, DriverError>>, DriverError> {
        let d = self.docker().await?;
        let options = DownloadFromContainerOptions { path: path.into() };
        let what = path.to_string();
        Ok(d.download_from_container(id, Some(options))
            .map_err(move |e| map(&what, e))
            .boxed())
    }

    async fn stats(&self, id: &str) -> Result<Stats, DriverError> {
        let d = self.docker().await?;
        let options = StatsOptions {
            stream: false,
            one_shot: true,
        };
        let mut stream = std::pin::pin!(d.stats(id, Some(options)));
        let s = match stream.next().await {
            Some(Ok(s)) => s,
            Some(Err(e)) => return Err(self.fail("container", e).await),
            None => return Err(DriverError::NotFound(format!("statistics of {id}"))),
        };
        let memory = s.memory_stats.unwrap_or_default();
        Ok(Stats {
            memory_bytes: memory.usage.unwrap_or(0),
            memory_max_bytes: memory.max_usage.unwrap_or(0),
            memory_limit_bytes: memory.limit.unwrap_or(0),
            cpu_total_ns: s
                .cpu_stats
                .and_then(|c| c.cpu_usage)
                .and_then(|u| u.total_usage)
                .unwrap_or(0),
            pids: s.pids_stats.and_then(|p| p.current).unwrap_or(0),
        })
    }

    async fn oom_events(
        &self,
        label: &str,
        since: i64,
    ) -> Result<BoxStream<'static, Result<(String, i64), DriverError>>, DriverError> {
        let d = self.docker().await?;
        let options = EventsOptions {
            since: Some(since.to_string()),
            filters: Some(HashMap::from([
                ("type".into(), vec!["container".into()]),
                ("event".into(), vec!["oom".into()]),
                ("label".into(), vec![label.into()]),
            ])),
            ..Default::default()
        };
        Ok(d.events(Some(options))
            .filter_map(|e| async move {
                match e {
                    Ok(m) => {
                        let at = m
                            .time_nano
                            .map(|n| n / 1_000_000)
                            .or(m.time.map(|s| s * 1000));
                        let at = at.unwrap_or_else(crate::store::now_ms);
                        m.actor.and_then(|a| a.id).map(|id| Ok((id, at)))
                    }
                    Err(e) => Some(Err(map("events", e))),
                }
            })
            .boxed())
    }
}
