-- Traffic shaping (`ee_core::shaping`): what a provider's replies made us hold back, read
-- by every node. One row per provider, scope, subject and action, its period extended
-- when its rule fires again; a row past `until_at` or lifted holds nothing.
CREATE TABLE shaping_states (
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    scope TEXT NOT NULL,
    subject TEXT NOT NULL,
    subject_label TEXT,
    tenant_id TEXT,
    action TEXT NOT NULL,
    value_count BIGINT,
    value_secs BIGINT,
    rule_key TEXT NOT NULL,
    rule_text TEXT NOT NULL,
    reply TEXT NOT NULL,
    fired BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    until_at BIGINT NOT NULL,
    lifted_at BIGINT,
    lifted_by TEXT,
    UNIQUE (provider, scope, subject, action)
);
CREATE INDEX shaping_states_until ON shaping_states(until_at);

-- Replies a counted rule (`after N/h`) has met, per sending path and clock hour.
CREATE TABLE shaping_hits (
    rule_key TEXT NOT NULL,
    provider TEXT NOT NULL,
    scope TEXT NOT NULL,
    subject TEXT NOT NULL,
    hour BIGINT NOT NULL,
    hits BIGINT NOT NULL,
    PRIMARY KEY (rule_key, provider, scope, subject, hour)
);

-- Connections open at once on a path to a provider, across the nodes: a node holds one
-- slot per open connection (sending or idle in its pool), renews its slots while alive,
-- and frees them when it closes the connection; a dead node's slots run out.
CREATE TABLE connection_slots (
    key TEXT NOT NULL,
    slot BIGINT NOT NULL,
    holder TEXT NOT NULL,
    until_at BIGINT NOT NULL,
    PRIMARY KEY (key, slot)
);
CREATE INDEX connection_slots_holder ON connection_slots(holder);
