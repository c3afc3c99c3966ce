-- The campaign ledger without foreign keys: a check per row (on PostgreSQL a lock on each
-- contact's row) cost the fan-out of a million recipients more than the copy itself. The
-- rows still go with their campaign, contact and tenant: the store deletes them in the
-- same statement sequence (`campaigns::delete`, `contacts::erase`, `tenants::delete`),
-- through the primary key rather than by a scan per erased contact as the cascade did.
CREATE TABLE campaign_recipients_next (
    campaign_id TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT,
    message_id TEXT,
    variant TEXT,
    attempt BIGINT NOT NULL DEFAULT 0,
    queued_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, contact_id)
);
INSERT INTO campaign_recipients_next (campaign_id, contact_id, tenant_id, state, detail, message_id,
    variant, attempt, queued_at, created_at, updated_at)
SELECT campaign_id, contact_id, tenant_id, state, detail, message_id, variant, attempt, queued_at,
    created_at, updated_at FROM campaign_recipients;
DROP TABLE campaign_recipients;
ALTER TABLE campaign_recipients_next RENAME TO campaign_recipients;
CREATE INDEX campaign_recipients_pending ON campaign_recipients(campaign_id, state, contact_id);
CREATE INDEX campaign_recipients_queued ON campaign_recipients(campaign_id, queued_at);
