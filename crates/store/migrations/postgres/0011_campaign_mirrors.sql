-- A campaign sent by the tenant's MailWizz (delivery mode `mailwizz`) is mirrored there:
-- per template its audience needs (each recipient's language through the fallback chain),
-- a list made for it holding those recipients, and a MailWizz campaign to that list. The
-- figures MailWizz reports are read back into the campaign's counters (`stats`: what was
-- last read, so each read adds only what changed).
CREATE TABLE campaign_mirrors (
    campaign_id TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    template_id TEXT NOT NULL,
    language TEXT NOT NULL,
    instance_id TEXT NOT NULL REFERENCES mailwizz_instances(id) ON DELETE CASCADE,
    list_uid TEXT,
    campaign_uid TEXT,
    subscribers BIGINT NOT NULL DEFAULT 0,
    -- MailWizz's campaign status as last read (sending, paused, sent…).
    status TEXT,
    stats TEXT NOT NULL DEFAULT '{}',
    synced_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, template_id)
);
