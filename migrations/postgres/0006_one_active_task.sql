-- One running (or waiting) task per session, whatever claims race (several
-- dispatchers on one database): a second claim in the same session fails.
CREATE UNIQUE INDEX tasks_one_active_per_session ON tasks (session_id)
    WHERE status IN ('running', 'input_required');
