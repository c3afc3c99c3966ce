-- Whether a contact's language was inferred from its country at ingest (it gave none)
-- rather than given; a language given later replaces an inferred one.
ALTER TABLE contacts ADD COLUMN language_inferred INTEGER NOT NULL DEFAULT 0;
