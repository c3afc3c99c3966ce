-- Bounces and complaints forwarded to the data source a contact came from (Scraper-Pro's
-- `POST …/api/bounces {email, type, source}`, HMAC-signed): a durable outbox that the
-- 2-minute retry-queue job sends, with back-off, until delivered or out of attempts.
CREATE TABLE feedback_forwards (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    source_id TEXT NOT NULL REFERENCES data_sources(id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    url TEXT NOT NULL,
    -- The JSON body, fixed when queued: what each attempt signs and sends.
    body TEXT NOT NULL,
    -- pending, delivered, dead.
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_status BIGINT,
    last_error TEXT,
    delivered_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX feedback_forwards_due ON feedback_forwards(next_attempt_at) WHERE state = 'pending';
CREATE INDEX feedback_forwards_tenant ON feedback_forwards(tenant_id, created_at);
