-- A deleted account stays known, marked: its messages stay for the others, its member entries
-- show it as deleted, and a direct conversation with it becomes read-only (DESIGN.md §3).
ALTER TABLE known_users ADD COLUMN deleted_at timestamptz;
