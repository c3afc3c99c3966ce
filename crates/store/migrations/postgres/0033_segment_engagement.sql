-- Segments on engagement look up one contact's opens and clicks, messages sent and soft
-- bounces (a correlated subquery per contact counted): each table gets an index that
-- leads with the contact. The messages' one also serves a contact's erasure (its messages
-- keep no contact), which scanned the table.
CREATE INDEX tracking_hits_contact ON tracking_hits(contact_id, kind, occurred_at);
CREATE INDEX messages_contact ON messages(contact_id, sent_at);
CREATE INDEX delivery_events_contact ON delivery_events(contact_id, class, occurred_at);
