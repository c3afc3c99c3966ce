-- A campaign message keeps no rendered body: the version of its template it is rendered
-- from when it is sent (its subject, small, is rendered when queued).
ALTER TABLE messages ADD COLUMN template_version BIGINT;
