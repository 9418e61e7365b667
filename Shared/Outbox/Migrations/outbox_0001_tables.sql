-- The transactional outbox and the consumer's record of processed events (DESIGN.md §5.4).
-- Every service that publishes or consumes events has these two tables in its own schema.

CREATE TABLE outbox (
    position        bigserial PRIMARY KEY,
    event_id        text NOT NULL UNIQUE,
    exchange        text NOT NULL,
    routing_key     text NOT NULL,
    event_type      text NOT NULL,
    body            bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz NOT NULL DEFAULT now()
);

-- The relay only ever looks at what is still unpublished.
CREATE INDEX outbox_pending ON outbox (position) WHERE published_at IS NULL;

CREATE TABLE processed_events (
    consumer     text NOT NULL,
    event_id     text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX processed_events_age ON processed_events (processed_at);
