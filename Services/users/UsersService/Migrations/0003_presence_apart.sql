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

-- While a rolling update runs, pods of the release before keep writing presence to `profiles`'
-- own columns: a trigger carries their writes over, newest wins, so none is lost. They also keep
-- reading it there, so until the update ends they answer with presence as they themselves last
-- wrote it, not what this release's pods applied. The columns and the trigger go in a later
-- release, once no release in service uses them; it also removes the presence of accounts that pods
-- of the release before deleted (their deletion leaves it). The trigger comes before the copy:
-- creating it locks out their writes until this migration commits, so none falls between the two.
CREATE FUNCTION presence_from_profiles() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF NEW.last_seen_at IS NOT NULL THEN
        INSERT INTO presence AS s (id, online, last_seen_at) VALUES (NEW.id, NEW.online, NEW.last_seen_at)
        ON CONFLICT (id) DO UPDATE SET online = EXCLUDED.online, last_seen_at = EXCLUDED.last_seen_at
        WHERE s.last_seen_at <= EXCLUDED.last_seen_at;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER presence_from_profiles AFTER UPDATE OF online, last_seen_at ON profiles
    FOR EACH ROW EXECUTE FUNCTION presence_from_profiles();

INSERT INTO presence (id, online, last_seen_at)
SELECT id, online, last_seen_at FROM profiles WHERE last_seen_at IS NOT NULL;
