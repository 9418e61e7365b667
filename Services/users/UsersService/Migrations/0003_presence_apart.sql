-- Presence gets its own table. A presence change can reach users before the registration it
-- follows: socket-handler announces a new account's first connection at once, while auth's outbox
-- relay may still be publishing user.registered. Kept in `profiles`, such a change found no row,
-- changed nothing, and the new account showed offline to everyone until its next change. Kept
-- apart, it is an upsert by user id (newest wins) whichever event comes first, and replicas
-- applying the two at once cannot miss each other.
CREATE TABLE presence (
    id           text PRIMARY KEY,
    online       boolean NOT NULL,
    last_seen_at timestamptz NOT NULL
);
INSERT INTO presence (id, online, last_seen_at)
SELECT id, online, last_seen_at FROM profiles WHERE last_seen_at IS NOT NULL;
ALTER TABLE profiles DROP COLUMN online, DROP COLUMN last_seen_at;
