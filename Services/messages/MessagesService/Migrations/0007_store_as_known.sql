-- A batch of sends whose conversations messages already knows is stored in one statement, with no
-- transaction around it: no lock_with_members round trip, no BEGIN and no COMMIT. messages keeps
-- what lock_with_members told it of each conversation (its last seq, its type, its members and
-- which of them deleted their account), with a version of the members that every change to them
-- moves on. store_messages_as_known locks the batch's conversations (in id order, as every writer
-- does), checks that each one's last seq and members' version are still the ones the batch was
-- built on, and only then writes; otherwise it refuses, changing nothing, and the batch is stored
-- the long way (lock_with_members, which reads the version too).

ALTER TABLE conversations ADD COLUMN members_version bigint NOT NULL DEFAULT 0;

-- Every change to who is a member moves the version on, in the transaction of the change: a
-- member added or removed, and an account deleted (its member entries stay, marked). Each
-- statement that adds or removes members touches one conversation, whose lock its transaction
-- holds already (MessagesStore), so these updates add no lock to order. A member added has their
-- account locked against deletion until the addition commits (FOR SHARE, here), so a deletion
-- either waits and its trigger sees the new entries it must move on, or came first and the
-- addition waits for it.
CREATE FUNCTION members_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM 1 FROM known_users k WHERE k.id IN (SELECT changed.user_id FROM changed) ORDER BY k.id FOR SHARE;
    END IF;
    UPDATE conversations c SET members_version = c.members_version + 1
    WHERE c.id IN (SELECT DISTINCT changed.conversation_id FROM changed);
    RETURN NULL;
END
$$;

CREATE TRIGGER members_added AFTER INSERT ON members
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION members_changed();
CREATE TRIGGER members_removed AFTER DELETE ON members
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION members_changed();

CREATE FUNCTION member_account_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Its conversations locked in id order first, as every writer of a conversation locks.
    PERFORM 1 FROM conversations c
    WHERE c.id IN (SELECT m.conversation_id FROM members m WHERE m.user_id = NEW.id)
    ORDER BY c.id FOR UPDATE;
    UPDATE conversations c SET members_version = c.members_version + 1
    WHERE c.id IN (SELECT m.conversation_id FROM members m WHERE m.user_id = NEW.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER member_account_deleted AFTER UPDATE OF deleted_at ON known_users
    FOR EACH ROW WHEN (OLD.deleted_at IS DISTINCT FROM NEW.deleted_at) EXECUTE FUNCTION member_account_deleted();

-- lock_with_members (0005) with each conversation's members' version.
DROP FUNCTION lock_with_members(text[]);
CREATE FUNCTION lock_with_members(ids text[])
RETURNS TABLE (conversation_id text, last_seq bigint, members_version bigint, type text, user_id text, deleted boolean)
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    locked text[];
BEGIN
    -- In id order, as every writer of a conversation locks; only what was locked is returned.
    SELECT array_agg(l.id) INTO locked
    FROM (
        SELECT c.id FROM (SELECT DISTINCT unnest(ids) AS id) AS wanted JOIN conversations c ON c.id = wanted.id
        ORDER BY c.id FOR UPDATE OF c
    ) AS l;
    RETURN QUERY
        SELECT c.id, c.last_seq, c.members_version, c.type, m.user_id, k.deleted_at IS NOT NULL
        FROM unnest(locked) AS l(id)
        JOIN conversations c ON c.id = l.id
        LEFT JOIN members m ON m.conversation_id = c.id
        LEFT JOIN known_users k ON k.id = m.user_id
        ORDER BY c.id, m.user_id;
END
$$;

-- store_messages (0006), once the batch's conversations are found as the batch expects them
-- (`known_*`: each conversation's last seq before the batch and its members' version). The check
-- reads the conversations in a statement of its own, after the locks are held, so it sees every
-- change committed before they were granted. A stale expectation raises SQLSTATE SC001.
CREATE FUNCTION store_messages_as_known(
    known_ids text[], known_last_seqs bigint[], known_versions bigint[],
    ids text[], conversation_ids text[], seqs bigint[], sender_ids text[], client_msg_ids text[], bodies text[],
    stored_at timestamptz, advanced_ids text[], last_seqs bigint[],
    marked_conversation_ids text[], marked_user_ids text[], marked_seqs bigint[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    as_known integer;
BEGIN
    PERFORM 1
    FROM (SELECT DISTINCT unnest(known_ids) AS id) AS wanted JOIN conversations c ON c.id = wanted.id
    ORDER BY c.id FOR UPDATE OF c;
    SELECT count(*) INTO as_known
    FROM unnest(known_ids, known_last_seqs, known_versions) AS k(id, last_seq, version)
    JOIN conversations c ON c.id = k.id AND c.last_seq = k.last_seq AND c.members_version = k.version;
    IF as_known <> cardinality(known_ids) THEN
        RAISE EXCEPTION 'a conversation changed since the batch was built' USING ERRCODE = 'SC001';
    END IF;
    PERFORM store_messages(
        ids, conversation_ids, seqs, sender_ids, client_msg_ids, bodies, stored_at, advanced_ids, last_seqs,
        marked_conversation_ids, marked_user_ids, marked_seqs);
END
$$;
