//! Sandbox settings (`[sandbox]` in `switchyard.toml`) and resource limits,
//! resolved system → user → sandbox: the system sets defaults and maxima, an
//! administrator may set a user's own maxima (never above the system's), and a
//! sandbox may ask for anything up to its owner's maxima.

use serde::{Deserialize, Serialize};

/// The image tag `switchyard image build` produces and sandboxes run.
pub const DEFAULT_IMAGE: &str = concat!("switchyard-worker:", env!("CARGO_PKG_VERSION"));

/// Resource limits of one sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Memory (MiB); swap is not allowed beyond it.
    pub memory_mb: u64,
    /// CPU cores (fractions allowed).
    pub cpus: f64,
    /// Largest number of processes and threads.
    pub pids: i64,
    /// Longest run of one command (seconds).
    pub exec_timeout_secs: u64,
    /// Outbound network (off unless an administrator allows it).
    pub network: bool,
    /// Size of the workspace filesystem (MiB), enforced by the kernel.
    #[serde(default = "default_disk_mb")]
    pub disk_mb: u64,
}

/// The workspace size of sandboxes stored before sizes existed.
fn default_disk_mb() -> u64 {
    Limits::system_defaults().disk_mb
}

impl Limits {
    const fn system_defaults() -> Self {
        Self {
            memory_mb: 512,
            cpus: 1.0,
            pids: 256,
            exec_timeout_secs: 300,
            network: false,
            disk_mb: 2048,
        }
    }

    const fn system_maxima() -> Self {
        Self {
            memory_mb: 4096,
            cpus: 2.0,
            pids: 4096,
            exec_timeout_secs: 3600,
            network: true,
            disk_mb: 10240,
        }
    }

    /// Each value no larger than `max`'s.
    pub fn capped_by(self, max: &Self) -> Self {
        Self {
            memory_mb: self.memory_mb.min(max.memory_mb),
            cpus: self.cpus.min(max.cpus),
            pids: self.pids.min(max.pids),
            exec_timeout_secs: self.exec_timeout_secs.min(max.exec_timeout_secs),
            network: self.network && max.network,
            disk_mb: self.disk_mb.min(max.disk_mb),
        }
    }
}

/// Limits asked for on one sandbox or set for one user: every field optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsRequest {
    /// Memory (MiB), 64 or more.
    #[schema(minimum = 64, maximum = 1048576)]
    #[serde(default, deserialize_with = "whole")]
    pub memory_mb: Option<u64>,
    /// CPU cores, 0.01 or more.
    #[schema(minimum = 0.01, maximum = 1024)]
    pub cpus: Option<f64>,
    /// Largest number of processes and threads, 32 or more.
    #[schema(minimum = 32, maximum = 4194304)]
    #[serde(default, deserialize_with = "whole")]
    pub pids: Option<i64>,
    /// Longest run of one command (seconds), 1 or more.
    #[schema(minimum = 1, maximum = 86400)]
    #[serde(default, deserialize_with = "whole")]
    pub exec_timeout_secs: Option<u64>,
    /// Outbound network.
    pub network: Option<bool>,
    /// Size of the workspace filesystem (MiB), 64 or more.
    #[schema(minimum = 64, maximum = 4194304)]
    #[serde(default, deserialize_with = "whole")]
    pub disk_mb: Option<u64>,
}

/// What an administrator set for one user: their maxima and quota.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserLimits {
    /// Live sandboxes the user may have at once (the system quota when unset).
    #[schema(maximum = 1000)]
    #[serde(default, deserialize_with = "whole")]
    pub quota: Option<u32>,
    /// Total workspace size (MiB) of all the user's sandboxes, stopped ones
    /// included (the system's `storage_quota_mb` when unset).
    #[schema(maximum = 4194304)]
    #[serde(default, deserialize_with = "whole")]
    pub storage_mb: Option<u64>,
    /// The user's maxima (each unset value is the system's maximum; `network`
    /// unset means no network).
    #[serde(default)]
    pub max: LimitsRequest,
}

/// Why requested limits are refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LimitsError {
    /// A value is malformed (below the floor, not finite).
    #[error("{0}")]
    Invalid(String),
    /// A value is above what this user may have.
    #[error("{0}")]
    AboveMaximum(String),
}

/// `[sandbox]` in `switchyard.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// The worker image.
    pub image: String,
    /// The Docker engine socket (default: `DOCKER_HOST` or `/var/run/docker.sock`).
    pub docker_socket: Option<String>,
    /// Live sandboxes per user unless an administrator set another quota.
    pub quota: u32,
    /// Stop a sandbox's container after this long without use (seconds; 0 never).
    pub idle_ttl_secs: u64,
    /// Pre-started containers handed out on create (0 disables the pool).
    pub warm_pool: u32,
    /// Keep a shell waiting in each running sandbox so its next command skips the engine's exec start.
    pub standby: bool,
    /// Largest command output kept per exec (bytes), beyond which it is cut with a marker.
    pub max_output_bytes: u64,
    /// Largest file upload (bytes).
    pub max_file_bytes: u64,
    /// Give every workspace a filesystem of its own size (a loop-mounted ext4
    /// image; needs root). Off: workspaces share the engine's disk, unlimited.
    pub disk_limits: bool,
    /// Where workspace images live (default: `workspaces` in the data dir).
    pub workspace_dir: Option<std::path::PathBuf>,
    /// Total workspace size (MiB) per user unless an administrator set another.
    pub storage_quota_mb: u64,
    /// Limits of a sandbox that asks for none (unset keys keep the built-in defaults).
    #[serde(deserialize_with = "partial_defaults")]
    pub defaults: Limits,
    /// The highest limits anyone may have (unset keys keep the built-in maxima).
    #[serde(deserialize_with = "partial_maxima")]
    pub maxima: Limits,
}

fn fill(req: LimitsRequest, base: Limits) -> Limits {
    Limits {
        memory_mb: req.memory_mb.unwrap_or(base.memory_mb),
        cpus: req.cpus.unwrap_or(base.cpus),
        pids: req.pids.unwrap_or(base.pids),
        exec_timeout_secs: req.exec_timeout_secs.unwrap_or(base.exec_timeout_secs),
        network: req.network.unwrap_or(base.network),
        disk_mb: req.disk_mb.unwrap_or(base.disk_mb),
    }
}

fn partial_defaults<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Limits, D::Error> {
    Ok(fill(
        LimitsRequest::deserialize(d)?,
        Limits::system_defaults(),
    ))
}

fn partial_maxima<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Limits, D::Error> {
    Ok(fill(
        LimitsRequest::deserialize(d)?,
        Limits::system_maxima(),
    ))
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            image: DEFAULT_IMAGE.into(),
            docker_socket: None,
            quota: 3,
            idle_ttl_secs: 30 * 60,
            warm_pool: 1,
            standby: true,
            max_output_bytes: 1 << 20,
            max_file_bytes: 256 << 20,
            disk_limits: true,
            workspace_dir: None,
            storage_quota_mb: 10240,
            defaults: Limits::system_defaults(),
            maxima: Limits::system_maxima(),
        }
    }
}

impl SandboxConfig {
    /// A user's maxima: the administrator's values for them, within the system's.
    pub fn user_maxima(&self, user: &UserLimits, admin: bool) -> Limits {
        let base = Limits {
            network: admin,
            ..self.maxima
        };
        fill(user.max, base).capped_by(&self.maxima)
    }

    /// The live-sandbox quota of a user.
    pub fn quota(&self, user: &UserLimits) -> u32 {
        user.quota.unwrap_or(self.quota)
    }

    /// The storage quota (MiB) of a user.
    pub fn storage_quota_mb(&self, user: &UserLimits) -> u64 {
        user.storage_mb.unwrap_or(self.storage_quota_mb)
    }

    /// The limits of a new sandbox: the request, or the defaults, within `maxima`.
    pub fn resolve(&self, req: &LimitsRequest, maxima: &Limits) -> Result<Limits, LimitsError> {
        check_floors(req)?;
        let limits = fill(*req, self.defaults.capped_by(maxima));
        let above = |what: &str, asked: String, max: String| {
            Err(LimitsError::AboveMaximum(format!(
                "{what} {asked} is above your maximum of {max}; ask an administrator to raise it"
            )))
        };
        if limits.memory_mb > maxima.memory_mb {
            return above(
                "memory_mb",
                limits.memory_mb.to_string(),
                maxima.memory_mb.to_string(),
            );
        }
        if limits.cpus > maxima.cpus {
            return above("cpus", limits.cpus.to_string(), maxima.cpus.to_string());
        }
        if limits.pids > maxima.pids {
            return above("pids", limits.pids.to_string(), maxima.pids.to_string());
        }
        if limits.exec_timeout_secs > maxima.exec_timeout_secs {
            return above(
                "exec_timeout_secs",
                limits.exec_timeout_secs.to_string(),
                maxima.exec_timeout_secs.to_string(),
            );
        }
        if limits.disk_mb > maxima.disk_mb {
            return above(
                "disk_mb",
                limits.disk_mb.to_string(),
                maxima.disk_mb.to_string(),
            );
        }
        if limits.network && !maxima.network {
            return Err(LimitsError::AboveMaximum(
                "network access is not allowed for you; an administrator can enable it in your sandbox limits".into(),
            ));
        }
        Ok(limits)
    }
}

/// An optional whole number from JSON: an integer, or a float without a
/// fraction (`2.0`, which JSON Schema counts as an integer).
fn whole<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error;
    let Some(v) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let n = v
        .as_i64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        })
        .ok_or_else(|| D::Error::custom(format!("{v} is not a whole number")))?;
    T::try_from(n)
        .map(Some)
        .map_err(|_| D::Error::custom(format!("{n} is out of range")))
}

/// Refuse an administrator's limits for a user outside the published ranges.
pub fn check_user(limits: &UserLimits) -> Result<(), LimitsError> {
    if limits.quota.is_some_and(|q| q > 1000) {
        return Err(LimitsError::Invalid("quota must be at most 1000".into()));
    }
    if limits.storage_mb.is_some_and(|m| m > 1 << 22) {
        return Err(LimitsError::Invalid(
            "storage_mb must be at most 4194304".into(),
        ));
    }
    check_floors(&limits.max)
}

/// Refuse values below what a container can run with.
pub fn check_floors(req: &LimitsRequest) -> Result<(), LimitsError> {
    let bad = |m: String| Err(LimitsError::Invalid(m));
    if req.memory_mb.is_some_and(|m| !(64..=1 << 20).contains(&m)) {
        return bad("memory_mb must be between 64 and 1048576".into());
    }
    if req
        .cpus
        .is_some_and(|c| !c.is_finite() || !(0.01..=1024.0).contains(&c))
    {
        return bad("cpus must be between 0.01 and 1024".into());
    }
    if req.pids.is_some_and(|p| !(32..=1 << 22).contains(&p)) {
        return bad("pids must be between 32 and 4194304".into());
    }
    if req
        .exec_timeout_secs
        .is_some_and(|t| !(1..=86_400).contains(&t))
    {
        return bad("exec_timeout_secs must be between 1 and 86400".into());
    }
    if req.disk_mb.is_some_and(|d| !(64..=1 << 22).contains(&d)) {
        return bad("disk_mb must be between 64 and 4194304".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_stay_within_the_owner_maxima() {
        let config = SandboxConfig::default();
        let user = UserLimits {
            quota: Some(1),
            max: LimitsRequest {
                memory_mb: Some(1024),
                network: Some(true),
                ..LimitsRequest::default()
            },
            ..UserLimits::default()
        };
        let max = config.user_maxima(&user, false);
        assert_eq!(max.memory_mb, 1024);
        assert!(max.network);
        assert_eq!(config.quota(&user), 1);
        let fine = config
            .resolve(
                &LimitsRequest {
                    memory_mb: Some(1024),
                    network: Some(true),
                    ..Default::default()
                },
                &max,
            )
            .unwrap();
        assert_eq!((fine.memory_mb, fine.pids, fine.network), (1024, 256, true));
        let e = config
            .resolve(
                &LimitsRequest {
                    memory_mb: Some(2048),
                    ..Default::default()
                },
                &max,
            )
            .unwrap_err();
        assert!(matches!(e, LimitsError::AboveMaximum(_)), "{e}");
        let plain = config.user_maxima(&UserLimits::default(), false);
        assert!(!plain.network);
        assert!(
            config
                .resolve(
                    &LimitsRequest {
                        network: Some(true),
                        ..Default::default()
                    },
                    &plain
                )
                .is_err()
        );
        assert!(matches!(
            config.resolve(
                &LimitsRequest {
                    cpus: Some(f64::NAN),
                    ..Default::default()
                },
                &plain
            ),
            Err(LimitsError::Invalid(_))
        ));
        let huge = UserLimits {
            max: LimitsRequest {
                memory_mb: Some(1 << 30),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            config.user_maxima(&huge, true).memory_mb,
            config.maxima.memory_mb
        );
    }
}
