-- lock_with_members (0004), planned once per connection instead of once per batch. The service's
-- connections ask for a custom plan for every execution (`plan_cache_mode`, see
-- DatabaseConfiguration), and that held for the function's two statements too: planning them
-- anew was about a third of the function's time on every batch. Written as joins from the
-- unnested ids, their generic plans are index lookups per id on large tables (and, on small ones,
-- the same scans a custom plan makes), so the function takes a generic plan for its own
-- statements. A plan made while the tables were small is made again when autovacuum analyzes them.
-- The answer is unchanged: the locked conversations in id order, each with its members.
CREATE OR REPLACE FUNCTION lock_with_members(ids text[])
RETURNS TABLE (conversation_id text, last_seq bigint, type text, user_id text, deleted boolean)
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
        SELECT c.id, c.last_seq, c.type, m.user_id, k.deleted_at IS NOT NULL
        FROM unnest(locked) AS l(id)
        JOIN conversations c ON c.id = l.id
        LEFT JOIN members m ON m.conversation_id = c.id
        LEFT JOIN known_users k ON k.id = m.user_id
        ORDER BY c.id, m.user_id;
END
$$;
