-- Sends per provider and second, across every IP and node: the providers' rates
-- (seed 002: Gmail 50/s, Yahoo 30/s, Hotmail 20/s). Rows older than a minute are deleted.
CREATE TABLE provider_seconds (
    provider TEXT NOT NULL,
    second INTEGER NOT NULL,
    sent INTEGER NOT NULL,
    PRIMARY KEY (provider, second)
);
