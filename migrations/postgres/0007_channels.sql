-- Channels: configured instances of channel plugins, the conversations they
-- map to sessions, the dedupe records of received deliveries, and the outbox
-- of replies sent back out.

CREATE TABLE channel_instances (
    id TEXT PRIMARY KEY,
    plugin TEXT NOT NULL REFERENCES plugins (name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    agent_id TEXT REFERENCES agents (id) ON DELETE SET NULL,
    config TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    rate_per_minute INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (plugin, name)
);

CREATE TABLE channel_secrets (
    instance_id TEXT NOT NULL REFERENCES channel_instances (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    sealed BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (instance_id, name)
);

CREATE TABLE channel_conversations (
    instance_id TEXT NOT NULL REFERENCES channel_instances (id) ON DELETE CASCADE,
    conversation_key TEXT NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (instance_id, conversation_key)
);

CREATE TABLE channel_receipts (
    instance_id TEXT NOT NULL REFERENCES channel_instances (id) ON DELETE CASCADE,
    delivery_key TEXT NOT NULL,
    task_id TEXT,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (instance_id, delivery_key)
);
CREATE INDEX channel_receipts_received ON channel_receipts (received_at);

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    instance_id TEXT NOT NULL REFERENCES channel_instances (id) ON DELETE CASCADE,
    conversation_key TEXT NOT NULL,
    reply_target TEXT NOT NULL,
    metadata TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    lease_owner TEXT,
    lease_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX deliveries_task ON deliveries (task_id);
CREATE INDEX deliveries_instance ON deliveries (instance_id, created_at);
