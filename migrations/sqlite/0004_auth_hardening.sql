-- Auth hardening: login sessions (refresh-token families) revoked as a whole.
-- A family listed here is dead, including refresh tokens minted into it after
-- the revocation (a rotation racing a reuse); rows older than the refresh-token
-- lifetime are pruned.

CREATE TABLE revoked_sessions (
    family TEXT PRIMARY KEY,
    revoked_at BIGINT NOT NULL
);
CREATE INDEX revoked_sessions_revoked_at ON revoked_sessions (revoked_at);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
