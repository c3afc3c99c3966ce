-- Message pipeline: template details and versions, delivery routes (relays), the message
-- queue with one row per recipient message, and its events.

ALTER TABLE email_templates ADD COLUMN from_name TEXT;
ALTER TABLE email_templates ADD COLUMN from_email TEXT;
ALTER TABLE email_templates ADD COLUMN reply_to TEXT;
ALTER TABLE email_templates ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
CREATE UNIQUE INDEX email_templates_name ON email_templates(tenant_id, name);

CREATE TABLE email_template_versions (
    template_id TEXT NOT NULL REFERENCES email_templates(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    -- JSON of the whole template as it was.
    content TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (template_id, version)
);

CREATE TABLE relays (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    host TEXT NOT NULL,
    port BIGINT NOT NULL,
    username TEXT,
    -- Sealed with the master key.
    password_sealed TEXT,
    tls TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    contact_id TEXT REFERENCES contacts(id) ON DELETE SET NULL,
    campaign_id TEXT,
    template_id TEXT REFERENCES email_templates(id) ON DELETE SET NULL,
    kind TEXT NOT NULL,
    idempotency_key TEXT,
    to_email TEXT NOT NULL,
    to_name TEXT,
    from_email TEXT NOT NULL,
    from_name TEXT,
    reply_to TEXT,
    subject TEXT NOT NULL,
    html TEXT,
    text_body TEXT,
    language TEXT,
    -- JSON object of extra headers.
    headers TEXT NOT NULL DEFAULT '{}',
    track_opens BIGINT NOT NULL,
    track_clicks BIGINT NOT NULL,
    -- JSON array of the original links, by index (click tokens point into it).
    links TEXT NOT NULL DEFAULT '[]',
    message_id_header TEXT NOT NULL,
    state TEXT NOT NULL,
    state_reason TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_token TEXT,
    lease_until BIGINT,
    ip_id TEXT,
    route TEXT,
    last_code BIGINT,
    last_reply TEXT,
    queued_at BIGINT NOT NULL,
    sent_at BIGINT,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, idempotency_key)
);
-- What waits, in due order (the claim), and what is leased (the reaper): partial indexes
-- keep both small however many sent messages the table holds.
CREATE INDEX messages_waiting ON messages(next_attempt_at, id) WHERE state IN ('queued', 'deferred');
CREATE INDEX messages_leased ON messages(lease_until) WHERE state = 'sending';
CREATE INDEX messages_recipient ON messages(tenant_id, to_email, queued_at);
CREATE INDEX messages_tenant ON messages(tenant_id, queued_at);

CREATE TABLE message_events (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    code BIGINT,
    detail TEXT,
    ip_id TEXT,
    occurred_at BIGINT NOT NULL
);
CREATE INDEX message_events_message ON message_events(message_id, occurred_at);

-- Sends per IP, provider and hour: the per-destination hourly limits.
CREATE TABLE ip_provider_hours (
    ip_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    hour BIGINT NOT NULL,
    sent BIGINT NOT NULL,
    PRIMARY KEY (ip_id, provider, hour)
);
