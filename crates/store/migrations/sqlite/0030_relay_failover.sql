-- Several relays per tenant (MailWizz's delivery servers): each has a weight (its share
-- when the tenant spreads by weight) and its own limits; sends per relay and hour count
-- the hourly one. A message event says which relay (or direct route) carried it.
ALTER TABLE relays ADD COLUMN weight INTEGER NOT NULL DEFAULT 1;
ALTER TABLE relays ADD COLUMN max_per_hour INTEGER;
ALTER TABLE relays ADD COLUMN max_connections INTEGER;
CREATE TABLE relay_hours (
    relay_id TEXT NOT NULL REFERENCES relays(id) ON DELETE CASCADE,
    hour INTEGER NOT NULL,
    sent INTEGER NOT NULL,
    PRIMARY KEY (relay_id, hour)
);
ALTER TABLE message_events ADD COLUMN route TEXT;
