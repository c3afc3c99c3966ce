-- Every open and click as it came: when, from which IP and user agent, whether a person's
-- or a machine's (a privacy proxy, a link scanner: `machine_reason`), and whether the
-- message had one of its kind before (`repeat`). People's and machines' are counted apart.
CREATE TABLE tracking_hits (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    message_id TEXT NOT NULL,
    campaign_id TEXT,
    contact_id TEXT,
    -- open, click.
    kind TEXT NOT NULL,
    link BIGINT,
    url TEXT,
    ip TEXT,
    user_agent TEXT,
    machine BIGINT NOT NULL,
    machine_reason TEXT,
    repeat BIGINT NOT NULL,
    occurred_at BIGINT NOT NULL
);
CREATE INDEX tracking_hits_message ON tracking_hits(message_id, kind);
CREATE INDEX tracking_hits_tenant ON tracking_hits(tenant_id, occurred_at);
