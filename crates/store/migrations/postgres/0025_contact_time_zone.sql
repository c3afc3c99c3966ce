-- A contact's time zone becomes a field of its own (it was a free-form custom field,
-- `time_zone` or `timezone`, which windows in the recipient's zone read; that one is
-- still read for a contact whose field is empty, `contact_batches::zones_of`).
ALTER TABLE contacts ADD COLUMN time_zone TEXT;
