-- A batch of sends writes its messages, advances its conversations' last_seq and its senders'
-- markers with statements planned once per connection, not once per batch, as lock_with_members's
-- have been since 0005. Asked for a custom plan on every batch (`plan_cache_mode`, see
-- DatabaseConfiguration), Postgres spent about 0.7 ms planning the store's statement for a batch
-- of 50, and chose to read all of conversations and members (a hash join over a sequential scan)
-- to update 50 rows of each: 2.4–2.7 ms on the bench's 3,000 conversations against 0.8–1.2 ms
-- by index. The generic plans of these joins from the unnested arrays are index
-- lookups per row; a plan made while the tables were small is made again when autovacuum
-- analyzes them. The outbox rows stay in the caller's statement (Outbox.insertion), beside the call.
CREATE FUNCTION store_messages(
    ids text[], conversation_ids text[], seqs bigint[], sender_ids text[], client_msg_ids text[], bodies text[],
    stored_at timestamptz, advanced_ids text[], last_seqs bigint[],
    marked_conversation_ids text[], marked_user_ids text[], marked_seqs bigint[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    INSERT INTO messages (id, conversation_id, seq, sender_id, client_msg_id, body, sent_at)
    SELECT n.id, n.conversation_id, n.seq, n.sender_id, n.client_msg_id, n.body, stored_at
    FROM unnest(ids, conversation_ids, seqs, sender_ids, client_msg_ids, bodies)
         AS n(id, conversation_id, seq, sender_id, client_msg_id, body);

    UPDATE conversations c SET last_seq = v.last_seq, last_activity = stored_at
    FROM unnest(advanced_ids, last_seqs) AS v(id, last_seq)
    WHERE c.id = v.id;

    -- A sender has read their own messages.
    UPDATE members m
    SET delivered_seq = GREATEST(m.delivered_seq, v.seq), read_seq = GREATEST(m.read_seq, v.seq)
    FROM unnest(marked_conversation_ids, marked_user_ids, marked_seqs) AS v(conversation_id, user_id, seq)
    WHERE m.conversation_id = v.conversation_id AND m.user_id = v.user_id;
END
$$;
