-- Feedback: every delivery event from every source (our transports' refusals, DSNs, ARF
-- complaints, PowerMTA's accounting file, the PowerMTA and MailWizz webhooks), classified
-- once, with what it was matched to. An event no tenant or message could be found for is
-- kept here (tenant_id NULL) and listed, never dropped. `dedupe_key` makes a record seen
-- twice (a file read again, a webhook retried) count once.
CREATE TABLE delivery_events (
    id TEXT PRIMARY KEY,
    tenant_id TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    message_id TEXT,
    campaign_id TEXT,
    contact_id TEXT,
    ip_id TEXT,
    recipient TEXT NOT NULL,
    -- delivered, deferred, bounced, complaint.
    kind TEXT NOT NULL,
    -- hard, soft, complaint, block, delivered, none.
    class TEXT NOT NULL,
    -- One of PowerMTA's seventeen categories.
    category TEXT NOT NULL,
    -- smtp, dsn, arf, pmta_accounting, pmta_webhook, mailwizz_webhook.
    source TEXT NOT NULL,
    code BIGINT,
    status TEXT,
    diagnostic TEXT,
    remote_mta TEXT,
    ip_address TEXT,
    raw_ref TEXT,
    dedupe_key TEXT UNIQUE,
    occurred_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX delivery_events_tenant ON delivery_events(tenant_id, received_at);
CREATE INDEX delivery_events_recipient ON delivery_events(tenant_id, recipient, occurred_at);
CREATE INDEX delivery_events_unmatched ON delivery_events(received_at) WHERE tenant_id IS NULL;
