-- Counting a user's open tasks (the per-user queue limit, checked on every new
-- task) reads only their pending and running rows, not their whole history.
CREATE INDEX tasks_owner_status ON tasks (owner_id, status);
