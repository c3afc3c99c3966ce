-- A contact's time zone becomes a field of its own (it was a free-form custom field,
-- `time_zone` or `timezone`, which windows in the recipient's zone read): kept where it
-- names a zone the same way (the application checks names as it writes them).
ALTER TABLE contacts ADD COLUMN time_zone TEXT;
UPDATE contacts SET time_zone = COALESCE(json_extract(metadata, '$.time_zone'), json_extract(metadata, '$.timezone'))
WHERE json_valid(metadata) AND COALESCE(json_extract(metadata, '$.time_zone'), json_extract(metadata, '$.timezone')) LIKE '%/%';
