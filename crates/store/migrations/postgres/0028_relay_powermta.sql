-- Whether a relay is PowerMTA: only then do messages carry its directives (X-Virtual-MTA,
-- X-Job) and the campaign's id, which another relay would pass on to recipients. The
-- relays of the seeds are PowerMTA: existing ones stay so.
ALTER TABLE relays ADD COLUMN powermta BIGINT NOT NULL DEFAULT 1;
