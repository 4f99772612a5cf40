//! Authentication: password logins with JWT access tokens and rotating refresh
//! tokens, API tokens for machines, login rate limiting, and who a bearer
//! credential belongs to.
//!
//! Access tokens live 120 minutes and name their login session; logging out ends
//! the session. Refresh tokens live 7 days, are used once (a reused one revokes
//! its whole session) and, like API tokens, are stored only as SHA-256 hashes.
//! Credential checks are cached for a few seconds so hot paths stay off the
//! database; changes made through this process apply at once.

mod jwt;
pub mod password;

use crate::store::{ApiToken, NewApiToken, RefreshOutcome, Role, Store, StoreError, User};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use jwt::{Claims, Keys};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Access-token lifetime.
pub const ACCESS_TTL: Duration = Duration::from_secs(120 * 60);
/// Refresh-token lifetime.
pub const REFRESH_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How long a verified credential is trusted without asking the database.
const CACHE_TTL: Duration = Duration::from_secs(5);
/// Prefix of API token values.
pub const API_TOKEN_PREFIX: &str = "sy_";
/// Prefix of refresh token values.
const REFRESH_PREFIX: &str = "syr_";
/// Scopes an API token can be limited to.
pub const SCOPES: &[&str] = &[
    "read",
    "tools:call",
    "sandboxes",
    "plugins:write",
    "tokens:write",
    "users:write",
];

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

    /// Whether the credential allows `scope`.
    pub fn allows(&self, scope: &str) -> bool {
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

type Cache<K> = Mutex<HashMap<K, (Identity, Instant)>>;

/// The authentication service.
pub struct Auth {
    store: Store,
    keys: Keys,
    limiter: DefaultKeyedRateLimiter<(IpAddr, String)>,
    sessions: Cache<String>,
    api_tokens: Cache<String>,
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
    /// `logins_per_minute` attempts per client address and user name.
    pub fn new(store: Store, secret: &[u8], logins_per_minute: u32) -> Self {
        let per_minute = NonZeroU32::new(logins_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            store,
            keys: Keys::new(secret),
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute)),
            sessions: Mutex::default(),
            api_tokens: Mutex::default(),
        }
    }

    /// The JWT secret from the store, generated and stored on first use.
    pub async fn stored_secret(store: &Store) -> Result<Vec<u8>, StoreError> {
        let fresh = hex::encode(rand::random::<[u8; 32]>());
        let secret = store.setting_or_insert("jwt_secret", &fresh).await?;
        Ok(secret.into_bytes())
    }

    /// Log in with a password from `client`.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<(User, Tokens), AuthError> {
        let key = (client, username.to_lowercase());
        if let Err(wait) = self.limiter.check_key(&key) {
            let retry = wait.wait_time_from(DefaultClock::default().now()).as_secs() + 1;
            return Err(AuthError::RateLimited(retry));
        }
        let bad = || AuthError::Unauthenticated("wrong user name or password".into());
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
        let family = crate::store::new_id();
        let tokens = self.issue(&user, &family).await?;
        Ok((user, tokens))
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
                Ok((user, tokens))
            }
            RefreshOutcome::Invalid => Err(AuthError::Unauthenticated(
                "the refresh token is invalid, expired or revoked; log in again".into(),
            )),
            RefreshOutcome::Reused => {
                self.forget_sessions();
                Err(AuthError::Unauthenticated(
                    "the refresh token was already used; the session is revoked, log in again"
                        .into(),
                ))
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
        for cache in [&self.sessions, &self.api_tokens] {
            if let Ok(mut c) = cache.lock() {
                c.clear();
            }
        }
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
        if let Some(identity) = cached(&self.sessions, &claims.sid) {
            return Ok(identity);
        }
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
        remember(&self.sessions, claims.sid, &identity);
        Ok(identity)
    }

    async fn authenticate_api_token(&self, value: &str) -> Result<Identity, AuthError> {
        let hash = token_hash(value);
        if let Some(identity) = cached(&self.api_tokens, &hash) {
            return Ok(identity);
        }
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
        remember(&self.api_tokens, hash, &identity);
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
        if let Some(bad) = scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
            return Err(AuthError::Invalid(format!(
                "unknown scope `{bad}` (known: {})",
                SCOPES.join(", ")
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

fn cached(cache: &Cache<String>, key: &str) -> Option<Identity> {
    let cache = cache.lock().ok()?;
    let (identity, at) = cache.get(key)?;
    (at.elapsed() < CACHE_TTL).then(|| identity.clone())
}

fn remember(cache: &Cache<String>, key: String, identity: &Identity) {
    if let Ok(mut cache) = cache.lock() {
        if cache.len() > 10_000 {
            cache.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        }
        cache.insert(key, (identity.clone(), Instant::now()));
    }
}
