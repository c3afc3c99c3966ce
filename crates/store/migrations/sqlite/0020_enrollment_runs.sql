-- A contact runs a sequence again when its trigger fires again after it completed (a tag
-- given anew, the event posted again): the same enrollment row, its run raised (part of
-- each step message's idempotency key, so the new run's messages are new ones).
ALTER TABLE campaign_enrollments ADD COLUMN run BIGINT NOT NULL DEFAULT 0;
