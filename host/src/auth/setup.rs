//! First-run setup: while no user exists, `switchyard serve` prints a link
//! that carries a one-time setup token, and `POST /api/v1/setup` with that
//! token creates the first administrator. Only the token's hash is kept, in
//! this process's memory: a restart prints a new link (the old one fails
//! closed), and once any user exists setup is refused whatever the token.

use super::{Auth, AuthError, Tokens, password, token_hash};
use crate::store::{Role, StoreError, User};
use std::sync::Mutex;

/// Prefix of setup token values.
pub const SETUP_PREFIX: &str = "sys_";

/// The outstanding setup token, by hash.
#[derive(Default)]
pub(super) struct SetupToken {
    hash: Mutex<Option<String>>,
}

impl SetupToken {
    /// A new token (replacing any earlier one).
    pub(super) fn issue(&self) -> String {
        let value = format!("{SETUP_PREFIX}{}", hex::encode(rand::random::<[u8; 24]>()));
        if let Ok(mut hash) = self.hash.lock() {
            *hash = Some(token_hash(&value));
        }
        value
    }

    /// Take the token if `value` is it (so two setups cannot both succeed);
    /// hand it back with [`SetupToken::restore`] when the setup fails.
    pub(super) fn claim(&self, value: &str) -> Option<String> {
        let mut hash = self.hash.lock().ok()?;
        let wanted = token_hash(value);
        let matches = hash.as_deref().is_some_and(|h| {
            // Both are 64 hex digits; compare every byte anyway.
            h.len() == wanted.len()
                && h.bytes()
                    .zip(wanted.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        if matches { hash.take() } else { None }
    }

    /// Put back a claimed token whose setup failed.
    pub(super) fn restore(&self, claimed: String) {
        if let Ok(mut hash) = self.hash.lock() {
            hash.get_or_insert(claimed);
        }
    }
}

impl Auth {
    /// Issue the setup token `serve` prints while no user exists.
    pub fn issue_setup_token(&self) -> String {
        self.setup.issue()
    }

    /// Whether setup is still possible: no user exists yet.
    pub async fn setup_required(&self) -> Result<bool, AuthError> {
        Ok(self.store.user_count().await? == 0)
    }

    /// Create the first administrator with the setup token, and sign them in.
    pub async fn set_up(
        &self,
        token: &str,
        username: &str,
        new_password: &str,
    ) -> Result<(User, Tokens), AuthError> {
        if !self.setup_required().await? {
            return Err(AuthError::Conflict(
                "switchyard is already set up: sign in, or ask an administrator for an account"
                    .into(),
            ));
        }
        password::check_new(new_password).map_err(AuthError::Invalid)?;
        let Some(claimed) = self.setup.claim(token) else {
            return Err(AuthError::Unauthenticated(
                "the setup token is wrong or used up: open the newest link `switchyard serve` printed (restarting it prints a new one)"
                    .into(),
            ));
        };
        let created = async {
            let candidate = new_password.to_string();
            let hash = tokio::task::spawn_blocking(move || password::hash(&candidate))
                .await
                .map_err(|e| AuthError::Invalid(e.to_string()))?
                .map_err(AuthError::Invalid)?;
            if self.store.user_count().await? > 0 {
                return Err(AuthError::Conflict("switchyard is already set up".into()));
            }
            match self.store.create_user(username, &hash, Role::Admin).await {
                Ok(user) => Ok(user),
                Err(StoreError::Conflict(m)) => Err(AuthError::Conflict(m)),
                Err(e) => Err(e.into()),
            }
        }
        .await;
        let user = match created {
            Ok(user) => user,
            Err(e) => {
                if !matches!(e, AuthError::Conflict(_)) {
                    self.setup.restore(claimed);
                }
                return Err(e);
            }
        };
        let family = crate::store::new_id();
        let tokens = self.issue(&user, &family).await?;
        Ok((user, tokens))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_works_once_and_only_the_newest_one() {
        let setup = SetupToken::default();
        assert!(setup.claim("").is_none());
        let old = setup.issue();
        let new = setup.issue();
        assert!(setup.claim(&old).is_none());
        assert!(setup.claim("sys_wrong").is_none());
        let claimed = setup.claim(&new).expect("the newest token");
        assert!(setup.claim(&new).is_none(), "claimed tokens are gone");
        setup.restore(claimed);
        assert!(setup.claim(&new).is_some(), "a failed setup hands it back");
    }
}
