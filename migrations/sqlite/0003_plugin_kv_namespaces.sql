-- Plugin key-value data is kept per namespace: `user:<id>` (the user a call is
-- made for), `shared` (plugin-wide, only with a shared-KV grant) or `local` (CLI
-- calls without --user). Rows from before belong to no one in particular: they go
-- to the plugin's owner (its installer) when it has one, else to `shared`.
CREATE TABLE plugin_kv_new (
    plugin TEXT NOT NULL REFERENCES plugins (name) ON DELETE CASCADE,
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (plugin, namespace, key)
);

INSERT INTO plugin_kv_new (plugin, namespace, key, value, updated_at)
SELECT kv.plugin,
       COALESCE((SELECT 'user:' || p.owner_id FROM plugins p
                 WHERE p.name = kv.plugin AND p.owner_id IS NOT NULL), 'shared'),
       kv.key, kv.value, kv.updated_at
FROM plugin_kv kv;

DROP TABLE plugin_kv;

ALTER TABLE plugin_kv_new RENAME TO plugin_kv;

CREATE INDEX plugin_kv_namespace ON plugin_kv (namespace);
