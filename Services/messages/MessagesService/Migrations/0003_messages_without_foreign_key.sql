-- A message's conversation is checked where messages are written, not by a foreign key: every
-- insert runs under that conversation's row lock taken to assign its seq, so the conversation
-- exists. The key's check ran once per inserted row (a lookup and a row lock each), about a
-- third of the cost of storing a batch; no conversation is ever deleted, so its cascade never ran.
ALTER TABLE messages DROP CONSTRAINT messages_conversation_id_fkey;
