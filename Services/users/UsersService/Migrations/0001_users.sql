-- users keeps its own copy of every user (from UserEvents), profiles, presence and contacts.

CREATE TABLE profiles (
    id           text PRIMARY KEY,
    username     text NOT NULL,
    display_name text NOT NULL,
    about        text NOT NULL DEFAULT '',
    online       boolean NOT NULL DEFAULT false,
    last_seen_at timestamptz,
    created_at   timestamptz NOT NULL
);
-- Prefix search on username and display name, in a stable order (username, id).
CREATE INDEX profiles_username ON profiles (lower(username) text_pattern_ops, id);
CREATE INDEX profiles_display_name ON profiles (lower(display_name) text_pattern_ops);

CREATE TABLE contacts (
    owner_id   text NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    contact_id text NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, contact_id)
);
CREATE INDEX contacts_contact ON contacts (contact_id);
