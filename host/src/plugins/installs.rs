//! Installs in progress: a large component (a Python or JavaScript guest is
//! 15-20 MB) takes seconds to compile, so an install answers before it is done
//! and the plugin shows `compiling` until its tools appear, or `failed` with
//! the reason (kept for 15 minutes, or until the next attempt).
//!
//! Only the outcome of a running compile lives here: the package itself is in
//! the store and registry once it is installed. An install cut short by a
//! restart is not resumed; the caller installs again.

use super::manifest::Manifest;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// How long a failed install stays visible.
const FAILED_FOR_MS: u64 = 15 * 60 * 1000;

/// Where an install stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InstallState {
    /// The component is being compiled and checked.
    Compiling,
    /// It failed; `error` says why. Nothing changed.
    Failed,
    /// Done: the plugin is installed and live.
    Installed,
}

/// One install, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InstallStatus {
    /// The plugin.
    pub name: String,
    /// The version being installed.
    pub version: String,
    /// Where it stands.
    pub state: InstallState,
    /// When it started (ms since the epoch).
    pub started_at: u64,
    /// When it ended (ms since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
    /// Size of the component being compiled, in bytes.
    pub component_bytes: u64,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The installing user for a private plugin; absent for a shared one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    /// The manifest being installed.
    #[serde(skip)]
    pub manifest: Manifest,
}

/// The installs of one host, by plugin name.
#[derive(Default)]
pub struct Installs {
    jobs: Mutex<BTreeMap<String, InstallStatus>>,
}

impl Installs {
    /// Record that `manifest` started compiling; `false` when an install of
    /// the same name is already compiling.
    pub fn begin(
        &self,
        manifest: &Manifest,
        component_bytes: u64,
        owner_id: Option<String>,
    ) -> bool {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if jobs
            .get(&manifest.name)
            .is_some_and(|j| j.state == InstallState::Compiling)
        {
            return false;
        }
        jobs.insert(
            manifest.name.clone(),
            InstallStatus {
                name: manifest.name.clone(),
                version: manifest.version.to_string(),
                state: InstallState::Compiling,
                started_at: crate::runtime::system_clock(),
                finished_at: None,
                component_bytes,
                error: None,
                owner_id,
                manifest: manifest.clone(),
            },
        );
        true
    }

    /// The install of `name` ended: forgotten on success, kept as `failed` with `error`.
    pub fn finish(&self, name: &str, error: Option<String>) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        match error {
            None => {
                jobs.remove(name);
            }
            Some(error) => {
                if let Some(job) = jobs.get_mut(name) {
                    job.state = InstallState::Failed;
                    job.finished_at = Some(crate::runtime::system_clock());
                    job.error = Some(error);
                }
            }
        }
    }

    /// Forget a failed install of `name` (a removal); `true` when there was one.
    pub fn forget_failed(&self, name: &str) -> bool {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if jobs
            .get(name)
            .is_some_and(|j| j.state == InstallState::Failed)
        {
            jobs.remove(name);
            return true;
        }
        false
    }

    /// The current or recently failed install of `name`.
    pub fn get(&self, name: &str) -> Option<InstallStatus> {
        self.all().into_iter().find(|j| j.name == name)
    }

    /// Every install compiling or recently failed, by name.
    pub fn all(&self) -> Vec<InstallStatus> {
        let now = crate::runtime::system_clock();
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.retain(|_, j| {
            j.finished_at
                .is_none_or(|done| now.saturating_sub(done) < FAILED_FOR_MS)
        });
        jobs.values().cloned().collect()
    }
}
