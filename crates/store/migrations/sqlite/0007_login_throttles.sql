-- Failed logins per account (keyed by the SHA-256 of the normalised e-mail, so no
-- address is kept for one that does not exist) and per client address.
CREATE TABLE login_throttles (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    last_failure BIGINT NOT NULL
);
