-- External MCP servers a user lends the agent: their tools join the owner's
-- tool set (and everyone's when an administrator shares one) as NAME__TOOL.
-- `headers` holds the request headers (an Authorization value, API keys)
-- sealed with the secret key; only their names are ever shown.
CREATE TABLE mcp_servers (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    transport TEXT NOT NULL CHECK (transport IN ('http', 'stdio')),
    -- The streamable-HTTP endpoint (http).
    url TEXT,
    -- JSON array: the command and its arguments, run in a sandbox (stdio).
    command TEXT,
    -- JSON array of the header names.
    header_names TEXT NOT NULL,
    headers BYTEA,
    shared INTEGER NOT NULL,
    enabled INTEGER NOT NULL,
    timeout_secs BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (owner_id, name)
);
