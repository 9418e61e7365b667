-- An outbox row lives for milliseconds, and a stored batch's body is tens of kilobytes of JSON:
-- PostgreSQL's default compression (pglz) cost more CPU than the rest of the row's insert.
-- lz4 compresses it several times faster.
ALTER TABLE outbox ALTER COLUMN body SET COMPRESSION lz4;
