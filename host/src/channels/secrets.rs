//! A channel instance's secrets: its own values first, then the plugin's.
//! Which names a plugin may read at all is still its grant, checked by the
//! runtime on every `get-secret`.

use crate::runtime::{BoxFuture, SecretSource};
use crate::store::SqlSecrets;
use std::sync::Arc;

/// The secret source of one channel instance.
pub(crate) struct InstanceSecrets {
    /// Where sealed values live.
    pub secrets: Arc<SqlSecrets>,
    /// The instance.
    pub instance_id: String,
}

impl SecretSource for InstanceSecrets {
    fn secret<'a>(&'a self, plugin: &'a str, name: &'a str) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move {
            if let Some(value) = self.secrets.channel(&self.instance_id, name).await {
                return Some(value);
            }
            self.secrets.secret(plugin, name).await
        })
    }
}
