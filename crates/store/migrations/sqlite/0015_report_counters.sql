-- The delivery reports' figures, counted as events happen (sent, delivered, bounced by
-- class, complaints, people's and machines' opens and clicks, unsubscribes) per tenant and
-- UTC day, by sending IP, sending domain, recipient provider and campaign ('' when none):
-- a report sums rows, never scans the messages; /metrics sums them per tenant.
CREATE TABLE report_counters (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    day BIGINT NOT NULL,
    ip_id TEXT NOT NULL,
    domain TEXT NOT NULL,
    provider TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day, ip_id, domain, provider, campaign_id, name)
);
CREATE INDEX report_counters_day ON report_counters(tenant_id, day);
