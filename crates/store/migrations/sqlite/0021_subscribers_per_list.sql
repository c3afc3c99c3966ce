-- A contact's MailWizz subscribers per list, not one per instance: the lists made for
-- campaign and sequence mirrors hold contacts too, and an erasure must reach each of them
-- (the erasure job deletes every subscriber recorded here). The default list's sync reads
-- only the default list's rows.
CREATE TABLE mailwizz_subscribers_next (
    instance_id TEXT NOT NULL REFERENCES mailwizz_instances(id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    list_uid TEXT NOT NULL,
    subscriber_uid TEXT,
    error TEXT,
    synced_at INTEGER NOT NULL,
    unsubscribed_at INTEGER,
    PRIMARY KEY (instance_id, contact_id, list_uid)
);
INSERT INTO mailwizz_subscribers_next (instance_id, contact_id, list_uid, subscriber_uid, error,
    synced_at, unsubscribed_at)
SELECT instance_id, contact_id, list_uid, subscriber_uid, error, synced_at, unsubscribed_at
FROM mailwizz_subscribers;
DROP TABLE mailwizz_subscribers;
ALTER TABLE mailwizz_subscribers_next RENAME TO mailwizz_subscribers;
CREATE INDEX mailwizz_subscribers_contact ON mailwizz_subscribers(contact_id);
