-- Sessions, agent profiles, tasks and their event log: the orchestration core.
-- A task's events are rows (task_id, seq) with seq contiguous from 1, allocated
-- from tasks.last_seq in the transaction that inserts the event.

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    instructions TEXT NOT NULL,
    provider TEXT,
    model TEXT,
    tools TEXT NOT NULL,
    skills TEXT NOT NULL,
    approval TEXT NOT NULL CHECK (approval IN ('never', 'destructive', 'always')),
    sandbox_limits TEXT NOT NULL,
    shared INTEGER NOT NULL,
    is_default INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (owner_id, name)
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    agent_id TEXT REFERENCES agents (id) ON DELETE SET NULL,
    title TEXT NOT NULL,
    instructions TEXT NOT NULL,
    provider TEXT,
    model TEXT,
    skills TEXT NOT NULL,
    busy_policy TEXT NOT NULL CHECK (busy_policy IN ('queue', 'reject', 'interrupt')),
    sandbox_id TEXT REFERENCES sandboxes (id) ON DELETE SET NULL,
    archived INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX sessions_owner ON sessions (owner_id, id);

CREATE TABLE session_messages (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    task_id TEXT,
    role TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (session_id, seq)
);

CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('agent', 'exec')),
    input TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'input_required', 'completed', 'failed', 'canceled')),
    result TEXT,
    error_code TEXT,
    error_message TEXT,
    attempt INTEGER NOT NULL,
    origin TEXT NOT NULL,
    queued_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    run_after BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    cancel_requested INTEGER NOT NULL,
    last_seq BIGINT NOT NULL,
    state TEXT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL
);
CREATE INDEX tasks_queue ON tasks (status, queued_at);
CREATE INDEX tasks_session ON tasks (session_id, status);
CREATE INDEX tasks_owner ON tasks (owner_id, id);
CREATE INDEX tasks_lease ON tasks (status, lease_until);

CREATE TABLE task_events (
    task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (task_id, seq)
);
