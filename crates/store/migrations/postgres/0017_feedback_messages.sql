-- Mail the bounce listener received that is no report it can read (an auto-reply, a
-- bounce in an unknown shape): kept for an operator, never dropped.
CREATE TABLE feedback_messages (
    id TEXT PRIMARY KEY,
    envelope_from TEXT,
    envelope_to TEXT NOT NULL,
    -- The message, its first megabyte.
    raw TEXT NOT NULL,
    size BIGINT NOT NULL,
    reason TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX feedback_messages_received ON feedback_messages(received_at);
