//! A channel instance's secrets: its own values first, then the plugin's,
//! the instance's opened values remembered briefly ([`crate::store::Recent`]). Which names a plugin
//! may read at all is still its grant, checked by the runtime on every
//! `get-secret`.

use crate::runtime::{BoxFuture, SecretSource};
use crate::store::SqlSecrets;
use std::sync::Arc;

/// The secret source of one channel instance.
pub(crate) struct InstanceSecrets {
    /// Where sealed values live.
    pub secrets: Arc<SqlSecrets>,
    /// The instance.
    pub instance_id: String,
    /// Values opened lately, by (instance, name).
    pub recent: Arc<crate::store::Recent<(String, String), Option<String>>>,
}

impl SecretSource for InstanceSecrets {
    fn secret<'a>(&'a self, plugin: &'a str, name: &'a str) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move {
            // The instance's own values are remembered (its changes clear
            // them); the plugin's, changed elsewhere, are read each time.
            let key = (self.instance_id.clone(), name.to_string());
            let own = match self.recent.get(&key) {
                Some(value) => value,
                None => {
                    let value = self.secrets.channel(&self.instance_id, name).await;
                    self.recent.put(key, value.clone());
                    value
                }
            };
            match own {
                Some(value) => Some(value),
                None => self.secrets.secret(plugin, name).await,
            }
        })
    }
}
