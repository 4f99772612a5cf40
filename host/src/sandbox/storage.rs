//! Workspace storage: making, growing and removing workspace volumes on their
//! size-limited disks ([`super::disk`]), the per-user storage quota (the sum
//! of the workspace sizes of all a user's sandboxes, stopped ones included,
//! since their workspaces stay), and the administrators' view of it.

use super::disk::DiskError;
use super::{Caller, Limits, Sandbox, SandboxError, Sandboxes, UserLimits};
use crate::store::SandboxRow;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

impl From<DiskError> for SandboxError {
    fn from(e: DiskError) -> Self {
        match e {
            DiskError::Shrink { .. } => Self::Conflict(e.to_string()),
            other => Self::Failed(other.to_string()),
        }
    }
}

/// One user's workspace storage.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserStorage {
    /// The user's id.
    pub user_id: String,
    /// Their login name (empty when the user is gone).
    pub username: String,
    /// Their sandboxes, stopped ones included.
    pub sandboxes: u64,
    /// Sum of the workspace sizes (MiB): what counts against the quota.
    pub allocated_mb: u64,
    /// Their storage quota (MiB).
    pub quota_mb: u64,
    /// Bytes of the host's disk the workspaces take now (images are sparse).
    pub used_bytes: u64,
}

/// A change of a sandbox's workspace size.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resize {
    /// The new size (MiB): larger than now (workspaces never shrink), within
    /// your `disk_mb` maximum and storage quota; applied at the next start.
    #[schema(minimum = 64, maximum = 4194304)]
    pub disk_mb: u64,
}

fn limits_of(row: &SandboxRow, defaults: Limits) -> Limits {
    serde_json::from_str(&row.limits).unwrap_or(defaults)
}

impl Sandboxes {
    /// Make sure `volume` exists on a disk of `disk_mb` (grown when smaller),
    /// attached and pointed at by the engine's volume.
    pub(super) async fn prepare_workspace(
        &self,
        volume: &str,
        labels: &HashMap<String, String>,
        disk_mb: u64,
    ) -> Result<(), SandboxError> {
        let device = match &self.disks {
            Some(disks) => Some(disks.prepare(volume, disk_mb).await?),
            None => None,
        };
        Ok(self
            .driver
            .ensure_volume(volume, labels, device.as_deref())
            .await?)
    }

    /// Remove a workspace: the engine's volume, then its disk.
    pub(super) async fn remove_workspace(&self, volume: &str) -> Result<(), SandboxError> {
        self.driver.remove_volume(volume).await?;
        if let Some(disks) = &self.disks {
            disks.remove(volume).await?;
        }
        Ok(())
    }

    /// Keep a deleted sandbox's workspace for recovery (reaping spares it).
    pub(super) async fn keep_workspace(
        &self,
        volume: &str,
        sandbox: &str,
    ) -> Result<(), SandboxError> {
        if let Some(disks) = &self.disks {
            self.driver.remove_volume(volume).await?;
            disks.keep(volume, sandbox).await?;
        }
        Ok(())
    }

    /// Refuse when `owner`'s workspaces plus `extra_mb` pass their storage quota.
    pub(super) async fn check_storage(
        &self,
        owner: &str,
        user: &UserLimits,
        extra_mb: u64,
    ) -> Result<(), SandboxError> {
        let quota = self.config.storage_quota_mb(user);
        let rows = self.store.owner_sandboxes(owner).await?;
        let used: u64 = rows
            .iter()
            .map(|r| limits_of(r, self.config.defaults).disk_mb)
            .sum();
        if used + extra_mb > quota {
            return Err(SandboxError::Conflict(format!(
                "the workspaces of your {} sandboxes take {used} MiB of your {quota} MiB storage quota \
                 and this needs {extra_mb} MiB more: delete a sandbox (stopped ones keep their workspace; \
                 DELETE /api/v1/sandboxes/ID), or ask an administrator for more",
                rows.len()
            )));
        }
        Ok(())
    }

    /// Grow a sandbox's workspace (applied when its container next starts).
    pub async fn resize_workspace(
        &self,
        caller: &Caller,
        id: &str,
        req: Resize,
    ) -> Result<Sandbox, SandboxError> {
        let row = self.row(caller, id).await?;
        let guard = self.lock(&row.owner_id);
        let _held = guard.lock().await;
        let row = self.row(caller, id).await?;
        let mut limits = limits_of(&row, self.config.defaults);
        if req.disk_mb < limits.disk_mb {
            return Err(DiskError::Shrink {
                have: limits.disk_mb,
                want: req.disk_mb,
            }
            .into());
        }
        super::limits::check_floors(&super::LimitsRequest {
            disk_mb: Some(req.disk_mb),
            ..Default::default()
        })?;
        let user = self.user_limits(&row.owner_id).await?;
        let maxima = self.config.user_maxima(&user, caller.admin);
        if req.disk_mb > maxima.disk_mb {
            return Err(SandboxError::Forbidden(format!(
                "disk_mb {} is above your maximum of {}; ask an administrator to raise it",
                req.disk_mb, maxima.disk_mb
            )));
        }
        if let Some(disks) = &self.disks {
            disks.check_resize(&row.volume, req.disk_mb).await?;
        }
        self.check_storage(&row.owner_id, &user, req.disk_mb - limits.disk_mb)
            .await?;
        limits.disk_mb = req.disk_mb;
        let json = serde_json::to_string(&limits).unwrap_or_default();
        self.store.set_sandbox_limits(&row.id, &json).await?;
        tracing::info!(sandbox = %row.id, disk_mb = req.disk_mb, "sandboxes: workspace size raised");
        self.get(caller, id).await
    }

    /// Workspace storage per user (administrators).
    pub async fn storage(&self) -> Result<Vec<UserStorage>, SandboxError> {
        let mut by_user: BTreeMap<String, UserStorage> = BTreeMap::new();
        for row in self.store.all_sandboxes().await? {
            let entry = by_user
                .entry(row.owner_id.clone())
                .or_insert_with(|| UserStorage {
                    user_id: row.owner_id.clone(),
                    username: String::new(),
                    sandboxes: 0,
                    allocated_mb: 0,
                    quota_mb: 0,
                    used_bytes: 0,
                });
            entry.sandboxes += 1;
            entry.allocated_mb += limits_of(&row, self.config.defaults).disk_mb;
            entry.used_bytes += self.disks.as_ref().map_or(0, |d| d.allocated(&row.volume));
        }
        for entry in by_user.values_mut() {
            entry.username = self
                .store
                .user(&entry.user_id)
                .await
                .map(|u| u.username)
                .unwrap_or_default();
            entry.quota_mb = self
                .config
                .storage_quota_mb(&self.user_limits(&entry.user_id).await?);
        }
        Ok(by_user.into_values().collect())
    }
}
