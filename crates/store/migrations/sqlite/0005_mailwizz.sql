-- MailWizz as a delivery route: each contact's subscriber in an instance's default list,
-- the MailWizz template each of ours was pushed to, and which delivery server each sending
-- IP feeds (for the hourly warm-up quota sync).

CREATE TABLE mailwizz_subscribers (
    instance_id TEXT NOT NULL REFERENCES mailwizz_instances(id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    list_uid TEXT NOT NULL,
    -- NULL when MailWizz refused the subscriber; `error` says why.
    subscriber_uid TEXT,
    error TEXT,
    synced_at INTEGER NOT NULL,
    -- Set once the contact, no longer mailable here (unsubscribed, bounced, suppressed),
    -- was unsubscribed in MailWizz too.
    unsubscribed_at INTEGER,
    PRIMARY KEY (instance_id, contact_id)
);

CREATE TABLE mailwizz_templates (
    instance_id TEXT NOT NULL REFERENCES mailwizz_instances(id) ON DELETE CASCADE,
    template_id TEXT NOT NULL REFERENCES email_templates(id) ON DELETE CASCADE,
    template_uid TEXT NOT NULL,
    version INTEGER NOT NULL,
    pushed_at INTEGER NOT NULL,
    PRIMARY KEY (instance_id, template_id)
);

CREATE TABLE mailwizz_delivery_servers (
    id TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL REFERENCES mailwizz_instances(id) ON DELETE CASCADE,
    ip_id TEXT NOT NULL REFERENCES ips(id) ON DELETE CASCADE,
    server_id TEXT NOT NULL,
    -- The last sync: synced, unsupported (the instance has no such endpoint) or failed.
    last_status TEXT,
    last_detail TEXT,
    last_hourly_quota INTEGER,
    last_daily_quota INTEGER,
    last_sync_at INTEGER,
    created_at INTEGER NOT NULL,
    UNIQUE (instance_id, server_id)
);
CREATE INDEX mailwizz_delivery_servers_ip ON mailwizz_delivery_servers(ip_id);
