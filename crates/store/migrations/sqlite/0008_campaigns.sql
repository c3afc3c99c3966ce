-- Campaigns: the columns a campaign needs beyond the first draft of the table (which
-- nothing wrote), its recipient ledger (the audience fixed when sending starts), and the
-- index the engine's claim uses to hold back the messages of a paused campaign.
ALTER TABLE campaigns DROP COLUMN target_tags;
ALTER TABLE campaigns DROP COLUMN schedule;
ALTER TABLE campaigns DROP COLUMN stats;
ALTER TABLE campaigns ADD COLUMN status_reason TEXT;
-- The seed's `trigger` (autoresponders): subscription, a tag, a segment, a custom event.
ALTER TABLE campaigns ADD COLUMN trigger_event TEXT;
-- JSON: {"segments": [ids], "tags": [slugs], "all": bool}.
ALTER TABLE campaigns ADD COLUMN audience TEXT NOT NULL DEFAULT '{}';
-- JSON: throttle, sender and subject overrides, tracking.
ALTER TABLE campaigns ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE campaigns ADD COLUMN scheduled_at BIGINT;
ALTER TABLE campaigns ADD COLUMN started_at BIGINT;
ALTER TABLE campaigns ADD COLUMN finished_at BIGINT;
-- How many recipients the snapshot took.
ALTER TABLE campaigns ADD COLUMN audience_count BIGINT;
CREATE INDEX campaigns_due ON campaigns(status, scheduled_at);

-- One row per recipient, made when sending starts: the contact, and once handed over its
-- message (whose state and last reply the ledger reads). The primary key makes each
-- contact a recipient at most once; the message's idempotency key makes a recipient get
-- at most one message, however often a dispatch is retried or resumed.
CREATE TABLE campaign_recipients (
    campaign_id TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    -- The campaign's tenant; no foreign key of its own: the rows go with their campaign,
    -- and a check per row slows the fan-out.
    tenant_id TEXT NOT NULL,
    -- pending, queued, skipped, failed, cancelled (after queued, the message's state).
    state TEXT NOT NULL,
    detail TEXT,
    message_id TEXT,
    -- An A/B test's variant (its name): set for the test share at the start, for the rest
    -- once the winner is known.
    variant TEXT,
    -- Raised by each retry of a failed recipient: part of its message's idempotency key.
    attempt BIGINT NOT NULL DEFAULT 0,
    queued_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, contact_id)
);
CREATE INDEX campaign_recipients_pending ON campaign_recipients(campaign_id, state, contact_id);
CREATE INDEX campaign_recipients_queued ON campaign_recipients(campaign_id, queued_at);
CREATE INDEX messages_campaign ON messages(campaign_id, state);

-- A campaign's figures, counted as events arrive (handed over, sent, bounced, opened,
-- clicked, unsubscribed…) in hourly buckets: the statistics never scan the messages.
CREATE TABLE campaign_counters (
    campaign_id TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- The hour's start, epoch milliseconds.
    hour BIGINT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, name, hour)
);

-- Autoresponders: each contact's run through a campaign's sequence of steps. One row per
-- contact and campaign: a contact never runs a sequence twice at once.
CREATE TABLE campaign_enrollments (
    campaign_id TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- The index of the next step to send.
    step BIGINT NOT NULL,
    -- active, completed, left (unsubscribed, bounced, complained, goal reached), excluded
    -- (in the trigger's segment before the sequence started).
    state TEXT NOT NULL,
    detail TEXT,
    next_at BIGINT,
    enrolled_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, contact_id)
);
CREATE INDEX campaign_enrollments_due ON campaign_enrollments(campaign_id, state, next_at);
CREATE INDEX contact_events_type ON contact_events(tenant_id, event_type, occurred_at);
