-- RSS-to-email campaigns (`ee_core::rss`): per campaign, when its feed is checked next
-- and what the last check found; each run (a set of new items sent to the audience); and
-- every item sent, by its key (guid, else link), so that an item goes out once.
CREATE TABLE campaign_feeds (
    campaign_id TEXT PRIMARY KEY REFERENCES campaigns(id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    next_check_at BIGINT NOT NULL,
    last_checked_at BIGINT,
    last_run_at BIGINT,
    last_error TEXT,
    runs BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX campaign_feeds_due ON campaign_feeds(next_check_at);

CREATE TABLE campaign_feed_runs (
    campaign_id TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    run BIGINT NOT NULL,
    items BIGINT NOT NULL,
    recipients BIGINT NOT NULL,
    titles TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, run)
);

CREATE TABLE campaign_feed_items (
    campaign_id TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    item_key TEXT NOT NULL,
    link TEXT NOT NULL,
    published_at BIGINT,
    run BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, item_key)
);
