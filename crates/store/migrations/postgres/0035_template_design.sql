-- A template's design (`ee_core::design`): the blocks the visual editor arranges, as
-- JSON, kept beside the HTML they render to so that the editor reopens the template with
-- its blocks. Null for a template whose HTML is written by hand.
ALTER TABLE email_templates ADD COLUMN design TEXT;
