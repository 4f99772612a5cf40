-- Sandboxes: one row per named sandbox (container + workspace volume) and the
-- per-user sandbox limits administrators set.

CREATE TABLE sandboxes (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('starting', 'idle', 'busy', 'stopped', 'failed')),
    detail TEXT,
    container_id TEXT,
    volume TEXT NOT NULL,
    limits TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    UNIQUE (owner_id, name)
);
CREATE INDEX sandboxes_state ON sandboxes (state);

CREATE TABLE sandbox_user_limits (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    limits TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
