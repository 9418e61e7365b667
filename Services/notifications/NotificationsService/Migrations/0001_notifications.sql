-- notifications owns the stored notifications, and keeps from the events what it needs to decide
-- who gets one and who hears of whose presence.

CREATE SEQUENCE notification_positions;

-- One row per (user, group_key): a conversation's new messages update one notification with a
-- count instead of adding a row per message.
CREATE TABLE notifications (
    id              text PRIMARY KEY,
    user_id         text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('message', 'group_added', 'group_removed', 'contact_added', 'signed_in')),
    -- message:<conversation>, group:<conversation>, contact:<who added you>, signin:<session>
    group_key       text NOT NULL,
    conversation_id text,
    actor_id        text,
    payload         jsonb NOT NULL,
    count           integer NOT NULL DEFAULT 1,
    last_seq        bigint,
    read            boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL,
    -- Bumped on every change: lists are newest first by it, and cursors are positions.
    position        bigint NOT NULL DEFAULT nextval('notification_positions'),
    UNIQUE (user_id, group_key)
);
CREATE INDEX notifications_by_user ON notifications (user_id, position DESC);
CREATE INDEX notifications_unread_by_user ON notifications (user_id, position DESC) WHERE NOT read;
CREATE INDEX notifications_by_actor ON notifications (actor_id) WHERE actor_id IS NOT NULL;

CREATE TABLE conversations (
    id   text PRIMARY KEY,
    type text NOT NULL,
    name text
);

CREATE TABLE conversation_members (
    conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         text NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_members_by_user ON conversation_members (user_id);

CREATE TABLE contacts (
    owner_id   text NOT NULL,
    contact_id text NOT NULL,
    PRIMARY KEY (owner_id, contact_id)
);
CREATE INDEX contacts_by_contact ON contacts (contact_id);

-- Whether a user has a chat connection open (from presence.changed): an online user gets no
-- stored message notifications.
CREATE TABLE presence (
    user_id    text PRIMARY KEY,
    online     boolean NOT NULL,
    changed_at timestamptz NOT NULL
);

-- Users who have signed in at least once: the first session (signup's) is not news; later ones
-- are a security notice.
CREATE TABLE signed_in_before (
    user_id text PRIMARY KEY
);
