-- Each user's number of open (pending or running) tasks, kept by triggers in
-- the transaction that changes a task: the per-user queue limit, checked on
-- every new task, reads one row however long the queue is.
CREATE TABLE task_counts (
    owner_id TEXT PRIMARY KEY,
    open_tasks BIGINT NOT NULL
);

INSERT INTO task_counts (owner_id, open_tasks)
    SELECT owner_id, COUNT(*) FROM tasks WHERE status IN ('pending', 'running') GROUP BY owner_id;

CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks
WHEN NEW.status IN ('pending', 'running')
BEGIN
    INSERT INTO task_counts (owner_id, open_tasks) VALUES (NEW.owner_id, 1)
        ON CONFLICT (owner_id) DO UPDATE SET open_tasks = open_tasks + 1;
END;

CREATE TRIGGER task_counts_update AFTER UPDATE OF status ON tasks
WHEN (OLD.status IN ('pending', 'running')) <> (NEW.status IN ('pending', 'running'))
BEGIN
    INSERT INTO task_counts (owner_id, open_tasks)
        VALUES (NEW.owner_id, CASE WHEN NEW.status IN ('pending', 'running') THEN 1 ELSE -1 END)
        ON CONFLICT (owner_id) DO UPDATE SET open_tasks = open_tasks + excluded.open_tasks;
END;

CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks
WHEN OLD.status IN ('pending', 'running')
BEGIN
    UPDATE task_counts SET open_tasks = open_tasks - 1 WHERE owner_id = OLD.owner_id;
END;
