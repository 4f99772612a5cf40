-- Schedules: work that starts on its own (once, every N seconds, or cron in an
-- IANA time zone). `next_due_at` is the next slot plus its jitter, NULL while
-- paused or done; the scheduler looks only at rows whose `next_due_at` passed.
CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- JSON: {"type": "once" | "interval" | "cron", ...}.
    trigger_spec TEXT NOT NULL,
    task_kind TEXT NOT NULL CHECK (task_kind IN ('agent', 'exec')),
    input TEXT NOT NULL,
    session_id TEXT,
    agent_id TEXT,
    overlap TEXT NOT NULL CHECK (overlap IN ('skip', 'buffer_one', 'buffer_all', 'cancel_other', 'allow_all')),
    catchup TEXT NOT NULL CHECK (catchup IN ('none', 'latest', 'all')),
    catchup_window_secs BIGINT NOT NULL,
    catchup_max BIGINT NOT NULL,
    jitter_secs BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'paused', 'done')),
    next_slot BIGINT,
    next_due_at BIGINT,
    last_task_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (owner_id, name)
);

CREATE INDEX schedules_due ON schedules (next_due_at);

-- One row per slot the scheduler decided about: its deterministic fire id is
-- (schedule_id, slot), so a slot is started at most once by any host.
CREATE TABLE schedule_runs (
    schedule_id TEXT NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
    slot BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('started', 'buffered', 'skipped', 'missed', 'failed')),
    reason TEXT,
    task_id TEXT,
    due_at BIGINT NOT NULL,
    decided_at BIGINT NOT NULL,
    PRIMARY KEY (schedule_id, slot)
);

CREATE INDEX schedule_runs_state ON schedule_runs (state, schedule_id, slot);
