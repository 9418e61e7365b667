-- A deleted account's username cannot be registered again for 30 days (DESIGN.md §3), so nobody
-- takes over a name the deleted person's contacts still recognise.
CREATE TABLE reserved_usernames (
    username    text PRIMARY KEY,
    released_at timestamptz NOT NULL
);
