-- A campaign's messages handed to a transport, per minute: its throttle is a sliding hour
-- over these buckets, reserved by the delivery engine when it claims a batch (so the
-- limit holds at hand-off, across nodes, whatever waits in the queue).
CREATE TABLE campaign_handoffs (
    campaign_id TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    minute BIGINT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, minute)
);
