-- Deleted accounts leave a tombstone. Events about an account can arrive after its deletion (they
-- come from every service, in no order across them: its sockets' last "offline", a snapshot of a
-- group it was in, a contact added a moment before): nothing is kept or stored about it again.
CREATE TABLE deleted_users (
    id         text PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
