-- API rate limits shared by the nodes: one row per key (a credential's digest or a
-- client address) holding its GCRA state (`ee_core::rate_limit`). A row carries the
-- limit it was last counted under and whether that request was refused, so that one
-- statement can count several keys and say which refused.
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    tat BIGINT NOT NULL,
    refused BIGINT NOT NULL,
    seen_at BIGINT NOT NULL,
    interval_ms BIGINT NOT NULL,
    tolerance_ms BIGINT NOT NULL
);
CREATE INDEX rate_limits_tat ON rate_limits(tat);
