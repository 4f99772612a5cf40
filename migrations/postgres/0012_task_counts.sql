-- Each user's number of open (pending or running) tasks, kept by a trigger in
-- the transaction that changes a task: the per-user queue limit, checked on
-- every new task, reads one row however long the queue is.
CREATE TABLE task_counts (
    owner_id TEXT PRIMARY KEY,
    open_tasks BIGINT NOT NULL
);

INSERT INTO task_counts (owner_id, open_tasks)
    SELECT owner_id, COUNT(*) FROM tasks WHERE status IN ('pending', 'running') GROUP BY owner_id;

CREATE FUNCTION task_counts_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta BIGINT := 0;
    owner TEXT;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        IF OLD.status IN ('pending', 'running') THEN
            delta := delta - 1;
        END IF;
        owner := OLD.owner_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        IF NEW.status IN ('pending', 'running') THEN
            delta := delta + 1;
        END IF;
        owner := NEW.owner_id;
    END IF;
    IF delta <> 0 THEN
        INSERT INTO task_counts (owner_id, open_tasks) VALUES (owner, delta)
            ON CONFLICT (owner_id) DO UPDATE SET open_tasks = task_counts.open_tasks + EXCLUDED.open_tasks;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER task_counts_change AFTER INSERT OR DELETE OR UPDATE OF status ON tasks
    FOR EACH ROW EXECUTE FUNCTION task_counts_change();
