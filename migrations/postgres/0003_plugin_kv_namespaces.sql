-- Plugin key-value data is kept per namespace: `user:<id>` (the user a call is
-- made for), `shared` (plugin-wide, only with a shared-KV grant) or `local` (CLI
-- calls without --user). Rows from before belong to no one in particular: they go
-- to the plugin's owner (its installer) when it has one, else to `shared`.
ALTER TABLE plugin_kv ADD COLUMN namespace TEXT NOT NULL DEFAULT 'shared';

UPDATE plugin_kv SET namespace = 'user:' || p.owner_id
FROM plugins p
WHERE p.name = plugin_kv.plugin AND p.owner_id IS NOT NULL;

ALTER TABLE plugin_kv ALTER COLUMN namespace DROP DEFAULT;

ALTER TABLE plugin_kv DROP CONSTRAINT plugin_kv_pkey;

ALTER TABLE plugin_kv ADD PRIMARY KEY (plugin, namespace, key);

CREATE INDEX plugin_kv_namespace ON plugin_kv (namespace);
