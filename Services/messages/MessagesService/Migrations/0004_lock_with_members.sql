-- A batch of sends locks its conversations and reads their members in one round trip. The
-- members must be read after the locks are held: a membership change takes the same lock, so it
-- is then either wholly before the read or waits for the batch. One statement cannot promise
-- that (its snapshot is taken before it waits for a lock); in a function each statement takes
-- its own snapshot, so the second one sees every change committed before the first returned.
CREATE FUNCTION lock_with_members(ids text[])
RETURNS TABLE (conversation_id text, last_seq bigint, type text, user_id text, deleted boolean)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    locked text[];
BEGIN
    -- In id order, as every writer of a conversation locks; only what was locked is returned.
    SELECT array_agg(l.id) INTO locked
    FROM (SELECT c.id FROM conversations c WHERE c.id = ANY(ids) ORDER BY c.id FOR UPDATE) AS l;
    RETURN QUERY
        SELECT c.id, c.last_seq, c.type, m.user_id, k.deleted_at IS NOT NULL
        FROM conversations c
        LEFT JOIN members m ON m.conversation_id = c.id
        LEFT JOIN known_users k ON k.id = m.user_id
        WHERE c.id = ANY(locked)
        ORDER BY c.id, m.user_id;
END
$$;
