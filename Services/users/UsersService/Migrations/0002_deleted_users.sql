-- Deleted accounts leave a tombstone: a request naming one is answered 404 at once, instead of
-- waiting for a registration that will never come (read your own writes, DESIGN.md §3).
CREATE TABLE deleted_users (
    id         text PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
