-- Autoresponder sequences are mirrored into MailWizz too: per step and per template its
-- enrolled contacts need, a MailWizz autoresponder campaign (after subscription, at the
-- step's time) on the list of that language. A regular campaign's mirrors are step 0.
CREATE TABLE campaign_mirrors_next (
    campaign_id TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    step BIGINT NOT NULL DEFAULT 0,
    template_id TEXT NOT NULL,
    language TEXT NOT NULL,
    instance_id TEXT NOT NULL REFERENCES mailwizz_instances(id) ON DELETE CASCADE,
    list_uid TEXT,
    campaign_uid TEXT,
    subscribers BIGINT NOT NULL DEFAULT 0,
    status TEXT,
    stats TEXT NOT NULL DEFAULT '{}',
    synced_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, step, template_id)
);
INSERT INTO campaign_mirrors_next (campaign_id, step, template_id, language, instance_id, list_uid,
    campaign_uid, subscribers, status, stats, synced_at, created_at, updated_at)
SELECT campaign_id, 0, template_id, language, instance_id, list_uid, campaign_uid, subscribers,
    status, stats, synced_at, created_at, updated_at FROM campaign_mirrors;
DROP TABLE campaign_mirrors;
ALTER TABLE campaign_mirrors_next RENAME TO campaign_mirrors;
