-- messages owns conversations, their members, the messages and the read/delivery markers.

-- The users messages knows about (from UserEvents): only existing users can be added.
CREATE TABLE known_users (
    id       text PRIMARY KEY,
    username text NOT NULL
);

CREATE TABLE conversations (
    id              text PRIMARY KEY,
    type            text NOT NULL CHECK (type IN ('direct', 'group')),
    name            text,
    -- "<smaller id>|<larger id>" for direct conversations: exactly one per pair.
    direct_key      text UNIQUE,
    -- The last assigned seq: messages take last_seq + 1 under this row's lock, so seqs are gap-free.
    last_seq        bigint NOT NULL DEFAULT 0,
    last_activity   timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE members (
    conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         text NOT NULL,
    role            text NOT NULL CHECK (role IN ('admin', 'member')),
    delivered_seq   bigint NOT NULL DEFAULT 0,
    read_seq        bigint NOT NULL DEFAULT 0,
    joined_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX members_user ON members (user_id);

CREATE TABLE messages (
    id              text PRIMARY KEY,
    conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             bigint NOT NULL,
    sender_id       text NOT NULL,
    client_msg_id   text NOT NULL,
    body            text NOT NULL,
    sent_at         timestamptz NOT NULL,
    UNIQUE (conversation_id, seq),
    -- Sends are idempotent on (sender, clientMsgId).
    UNIQUE (sender_id, client_msg_id)
);
