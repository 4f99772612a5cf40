//! Authentication: password logins with JWT access tokens and rotating refresh
//! tokens, API tokens for machines (limited by [`Scope`]s), login throttling
//! (by address and user name, and by each alone), single-use WebSocket
//! tickets, and who a bearer credential belongs to.
//!
//! Access tokens live 120 minutes and name their login session; logging out ends
//! the session. Refresh tokens live 7 days, are used once (a reused one revokes
//! its whole session, including pairs minted by a racing rotation) and, like API
//! tokens, are stored only as SHA-256 hashes. The signing secret is sealed in
//! the store with the key in `secret.key`.
//! Credential checks are cached for a few seconds so hot paths stay off the
//! database; changes made through this process apply at once.

mod cache;
mod jwt;
mod limits;
pub mod password;
mod scopes;
mod setup;
mod tickets;

pub use limits::LoginLimits;
pub use scopes::Scope;
pub use tickets::{TICKET_PREFIX, TICKET_TTL};

use crate::store::{
    ApiToken, NewApiToken, RefreshOutcome, Role, SecretCipher, Store, StoreError, User,
};
use cache::{CredentialCache, Kind};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use jwt::{Claims, Keys};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Access-token lifetime.
pub const ACCESS_TTL: Duration = Duration::from_secs(120 * 60);
/// Refresh-token lifetime.
pub const REFRESH_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// The setting that held the JWT secret in plain text (before sealing).
const PLAIN_SECRET: &str = "jwt_secret";
/// The setting holding the sealed JWT secret (hex).
const SEALED_SECRET: &str = "jwt_secret_sealed";
/// The scope the JWT secret is sealed under (no plugin can be called this:
/// plugin names have no colon).
const SEAL_SCOPE: &str = "host:auth";
/// Prefix of API token values.
pub const API_TOKEN_PREFIX: &str = "sy_";
/// Prefix of refresh token values.
const REFRESH_PREFIX: &str = "syr_";

/// The token of an `Authorization` header value in the Bearer scheme (either
/// case of `Bearer`), trimmed; `None` for other schemes, empty or oversized tokens.
pub fn bearer(value: &str) -> Option<&str> {
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 8192)
}

/// Why authentication failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No or unusable credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// Too many attempts.
    #[error("too many login attempts; try again in {0} s")]
    RateLimited(u64),
    /// A request field is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The current password given for a change is wrong.
    #[error("the current password is wrong")]
    WrongPassword,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The user.
    pub user: User,
    /// The login session, for access tokens.
    pub session: Option<String>,
    /// The API token used, if any.
    pub token_id: Option<String>,
    /// Scopes of the API token; `None` means unrestricted.
    pub scopes: Option<Vec<String>>,
}

impl Identity {
    /// Whether the caller is an administrator.
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// Whether the credential allows `scope` (one of [`Scope`]'s names).
    pub fn allows(&self, scope: &str) -> bool {
        debug_assert!(Scope::parse(scope).is_some(), "unknown scope `{scope}`");
        self.scopes
            .as_ref()
            .is_none_or(|s| s.is_empty() || s.iter().any(|x| x == scope))
    }
}

/// Tokens handed out by a login or refresh.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The JWT access token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// Access-token lifetime in seconds.
    pub expires_in: u64,
}

/// The authentication service.
pub struct Auth {
    store: Store,
    keys: Keys,
    limiter: DefaultKeyedRateLimiter<(IpAddr, String)>,
    failures: limits::FailureLimiter,
    cache: CredentialCache,
    tickets: tickets::Tickets,
    setup: setup::SetupToken,
}

/// SHA-256 hex of a token value.
pub fn token_hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn random_token(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(rand::random::<[u8; 32]>()))
}

fn now_s() -> u64 {
    crate::runtime::system_clock() / 1000
}

impl Auth {
    /// The service over `store`, signing with `secret`, allowing
    /// `logins_per_minute` attempts per client address and user name and
    /// throttling failures by user name and by address as `limits` say.
    pub fn new(store: Store, secret: &[u8], logins_per_minute: u32, limits: LoginLimits) -> Self {
        let per_minute = NonZeroU32::new(logins_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let clock: limits::ClockFn = Arc::new(crate::runtime::system_clock);
        Self {
            store,
            keys: Keys::new(secret),
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute)),
            failures: limits::FailureLimiter::new(limits, clock),
            cache: CredentialCache::default(),
            tickets: tickets::Tickets::default(),
            setup: setup::SetupToken::default(),
        }
    }

    /// The JWT secret from the store, sealed with `cipher` (the key in the
    /// 0600 `secret.key`), generated on first use. A secret stored in plain
    /// text by an earlier version is sealed and the plain copy deleted.
    pub async fn stored_secret(
        store: &Store,
        cipher: &SecretCipher,
    ) -> Result<Vec<u8>, StoreError> {
        let plain = store.setting(PLAIN_SECRET).await?;
        let secret = plain
            .clone()
            .unwrap_or_else(|| hex::encode(rand::random::<[u8; 32]>()));
        let fresh = hex::encode(cipher.seal(SEAL_SCOPE, SEALED_SECRET, &secret));
        let sealed = store.setting_or_insert(SEALED_SECRET, &fresh).await?;
        let opened = hex::decode(&sealed)
            .ok()
            .and_then(|bytes| cipher.open(SEAL_SCOPE, SEALED_SECRET, &bytes))
            .ok_or_else(|| {
                StoreError::Corrupt(
                    "the stored JWT secret cannot be opened with this secret key (secret.key or SWITCHYARD_SECRET_KEY changed?)".into(),
                )
            })?;
        if plain.is_some() {
            store.delete_setting(PLAIN_SECRET).await?;
            tracing::info!("sealed the JWT secret that was stored in plain text");
        }
        Ok(opened.into_bytes())
    }

    /// Log in with a password from `client`.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<(User, Tokens), AuthError> {
        let name = username.to_lowercase();
        let key = (client, name.clone());
        if let Err(wait) = self.limiter.check_key(&key) {
            let retry = wait.wait_time_from(DefaultClock::default().now()).as_secs() + 1;
            return Err(AuthError::RateLimited(retry));
        }
        self.failures
            .check(client, &name)
            .map_err(AuthError::RateLimited)?;
        let bad = || {
            self.failures.failed(client, &name);
            AuthError::Unauthenticated("wrong user name or password".into())
        };
        let found = match self.store.user_for_login(username).await {
            Ok(found) => Some(found),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), hash),
            None => (None, password::decoy().to_string()),
        };
        let candidate = password.to_string();
        let matches = tokio::task::spawn_blocking(move || password::verify(&candidate, &hash))
            .await
            .unwrap_or(false);
        let user = user.filter(|_| matches).ok_or_else(bad)?;
        if user.disabled {
            return Err(bad());
        }
        self.failures.succeeded(&name);
        let family = crate::store::new_id();
        let tokens = self.issue(&user, &family).await?;
        Ok((user, tokens))
    }

    /// Check `user`'s current password (before a self-service change),
    /// throttled and counted like a login from `client`.
    pub async fn check_password(
        &self,
        user: &User,
        password: &str,
        client: IpAddr,
    ) -> Result<(), AuthError> {
        let name = user.username.to_lowercase();
        self.failures
            .check(client, &name)
            .map_err(AuthError::RateLimited)?;
        let (_, hash) = self.store.user_for_login(&user.username).await?;
        let candidate = password.to_string();
        let matches = tokio::task::spawn_blocking(move || password::verify(&candidate, &hash))
            .await
            .unwrap_or(false);
        if !matches {
            self.failures.failed(client, &name);
            return Err(AuthError::WrongPassword);
        }
        Ok(())
    }

    async fn issue(&self, user: &User, family: &str) -> Result<Tokens, AuthError> {
        let now = now_s();
        let claims = Claims {
            sub: user.id.clone(),
            sid: family.to_string(),
            iat: now,
            exp: now + ACCESS_TTL.as_secs(),
            iss: jwt::ISSUER.to_string(),
        };
        let access_token = self.keys.sign(&claims).map_err(AuthError::Invalid)?;
        let refresh_token = random_token(REFRESH_PREFIX);
        let expires_at = crate::store::now_ms() + REFRESH_TTL.as_millis() as i64;
        self.store
            .create_refresh_token(&user.id, family, &token_hash(&refresh_token), expires_at)
            .await?;
        Ok(Tokens {
            access_token,
            refresh_token,
            expires_in: ACCESS_TTL.as_secs(),
        })
    }

    /// Trade a refresh token for new tokens (the old one is used up).
    pub async fn refresh(&self, refresh_token: &str) -> Result<(User, Tokens), AuthError> {
        match self
            .store
            .use_refresh_token(&token_hash(refresh_token))
            .await?
        {
            RefreshOutcome::Rotated { user, family } => {
                let tokens = self.issue(&user, &family).await?;
                // A reuse racing this rotation may have revoked the family
                // between the claim and the new token: then the pair is dead.
                if !self.store.session_live(&family, &user.id).await? {
                    return Err(reused());
                }
                Ok((user, tokens))
            }
            RefreshOutcome::Invalid => Err(AuthError::Unauthenticated(
                "the refresh token is invalid, expired or revoked; log in again".into(),
            )),
            RefreshOutcome::Reused => {
                self.forget_sessions();
                Err(reused())
            }
        }
    }

    /// End a login session (the caller's own, or the one a refresh token belongs to).
    pub async fn logout(&self, session: &str) -> Result<(), AuthError> {
        self.store.revoke_refresh_family(session).await?;
        self.forget_sessions();
        Ok(())
    }

    /// The session of a refresh token, if it is live and belongs to `user_id`.
    pub async fn session_of(
        &self,
        refresh_token: &str,
        user_id: &str,
    ) -> Result<Option<String>, AuthError> {
        Ok(self
            .store
            .refresh_token_family(&token_hash(refresh_token))
            .await?
            .filter(|(_, owner)| owner == user_id)
            .map(|(family, _)| family))
    }

    /// Drop cached credential checks (after revocations and user changes).
    pub fn forget_sessions(&self) {
        self.cache.clear();
        self.tickets.clear();
    }

    /// A single-use WebSocket ticket for `who` (valid [`TICKET_TTL`]).
    pub fn issue_ticket(&self, who: &Identity) -> String {
        self.tickets.issue(who)
    }

    /// Who a WebSocket ticket was issued to; the ticket is used up.
    pub fn redeem_ticket(&self, ticket: &str) -> Result<Identity, AuthError> {
        self.tickets.redeem(ticket).ok_or_else(|| {
            AuthError::Unauthenticated(
                "the ticket is unknown, used or expired; get a new one from POST /api/v1/ws-tickets"
                    .into(),
            )
        })
    }

    /// Who a bearer credential (JWT access token or API token) belongs to.
    pub async fn authenticate(&self, bearer: &str) -> Result<Identity, AuthError> {
        if bearer.starts_with(API_TOKEN_PREFIX) {
            return self.authenticate_api_token(bearer).await;
        }
        let claims = self.keys.verify(bearer).map_err(|e| {
            AuthError::Unauthenticated(format!(
                "the access token is not valid ({e}); log in or refresh"
            ))
        })?;
        if let Some(identity) = self.cache.get(Kind::Session, &claims.sid) {
            return Ok(identity);
        }
        let generation = self.cache.generation();
        let revoked = || AuthError::Unauthenticated("the session has ended; log in again".into());
        let user = match self.store.user(&claims.sub).await {
            Ok(u) if !u.disabled => u,
            Ok(_) | Err(StoreError::NotFound) => return Err(revoked()),
            Err(e) => return Err(e.into()),
        };
        if !self.store.session_live(&claims.sid, &user.id).await? {
            return Err(revoked());
        }
        let identity = Identity {
            user,
            session: Some(claims.sid.clone()),
            token_id: None,
            scopes: None,
        };
        self.cache
            .remember(Kind::Session, claims.sid, &identity, generation);
        Ok(identity)
    }

    async fn authenticate_api_token(&self, value: &str) -> Result<Identity, AuthError> {
        let hash = token_hash(value);
        if let Some(identity) = self.cache.get(Kind::ApiToken, &hash) {
            return Ok(identity);
        }
        let generation = self.cache.generation();
        let (token, user) = self
            .store
            .authenticate_api_token(&hash)
            .await?
            .ok_or_else(|| {
                AuthError::Unauthenticated("the API token is unknown, expired or revoked".into())
            })?;
        let identity = Identity {
            user,
            session: None,
            token_id: Some(token.id),
            scopes: Some(token.scopes),
        };
        self.cache
            .remember(Kind::ApiToken, hash, &identity, generation);
        Ok(identity)
    }

    /// Create an API token for `user_id`; returns the listing and the value (shown once).
    pub async fn create_api_token(
        &self,
        user_id: &str,
        name: &str,
        scopes: &[String],
        expires_at: Option<i64>,
    ) -> Result<(ApiToken, String), AuthError> {
        // The published schema: 1-100 characters, at least one outside ASCII
        // blanks and controls (pattern `[^\x00-\x20\x7f]`).
        let visible = name.chars().any(|c| c > ' ' && c != '\x7f');
        if !visible || name.chars().count() > 100 {
            return Err(AuthError::Invalid(
                "the token name must be 1-100 characters and not only blanks".into(),
            ));
        }
        if let Some(bad) = scopes.iter().find(|s| Scope::parse(s).is_none()) {
            return Err(AuthError::Invalid(format!(
                "unknown scope `{bad}` (known: {})",
                Scope::names()
            )));
        }
        if expires_at.is_some_and(|t| t <= crate::store::now_ms()) {
            return Err(AuthError::Invalid(
                "expires_at must be in the future".into(),
            ));
        }
        let value = random_token(API_TOKEN_PREFIX);
        let token = self
            .store
            .create_api_token(NewApiToken {
                user_id,
                name: name.trim_ascii(),
                token_hash: &token_hash(&value),
                prefix: &value[..API_TOKEN_PREFIX.len() + 6],
                scopes,
                expires_at,
            })
            .await?;
        Ok((token, value))
    }
}

fn reused() -> AuthError {
    AuthError::Unauthenticated(
        "the refresh token was already used; the session is revoked, log in again".into(),
    )
}
