-- Sending infrastructure: IP life cycle and history, per-day traffic, warm-up progress,
-- pools, DKIM keys, DNS check history, alerts, job results.

ALTER TABLE ips ADD COLUMN previous_state TEXT;
ALTER TABLE ips ADD COLUMN state_reason TEXT;
ALTER TABLE ips ADD COLUMN state_changed_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX ips_tenant_pool ON ips(tenant_id, pool, state);

CREATE TABLE ip_transitions (
    id TEXT PRIMARY KEY,
    ip_id TEXT NOT NULL REFERENCES ips(id) ON DELETE CASCADE,
    tenant_id TEXT,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    reason TEXT,
    actor_type TEXT NOT NULL,
    actor_id TEXT,
    actor_label TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX ip_transitions_ip ON ip_transitions(ip_id, created_at);

-- What each IP sent, and what bounced or was complained about, per UTC day.
CREATE TABLE ip_daily_stats (
    ip_id TEXT NOT NULL REFERENCES ips(id) ON DELETE CASCADE,
    day BIGINT NOT NULL,
    sent BIGINT NOT NULL DEFAULT 0,
    bounced BIGINT NOT NULL DEFAULT 0,
    complained BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (ip_id, day)
);

-- Sent-today and the rates are derived from ip_daily_stats; the plan keeps its progress.
ALTER TABLE warmup_plans DROP COLUMN total_sent_today;
ALTER TABLE warmup_plans DROP COLUMN bounce_rate;
ALTER TABLE warmup_plans DROP COLUMN spam_rate;
ALTER TABLE warmup_plans ADD COLUMN last_advanced_day BIGINT;
ALTER TABLE warmup_plans ADD COLUMN paused_at BIGINT;
ALTER TABLE warmup_plans ADD COLUMN completed_at BIGINT;

CREATE TABLE ip_pools (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    rotation TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

ALTER TABLE domains ADD COLUMN dmarc_policy TEXT NOT NULL DEFAULT 'none';
ALTER TABLE domains ADD COLUMN last_checked_at BIGINT;
ALTER TABLE domains ADD COLUMN last_check_ok BIGINT;

CREATE TABLE dkim_keys (
    id TEXT PRIMARY KEY,
    domain_id TEXT NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    selector TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    private_key_sealed TEXT NOT NULL,
    public_key TEXT NOT NULL,
    -- active: signs; published: retired from signing, still in DNS; retired: gone.
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT,
    UNIQUE (domain_id, selector)
);

CREATE TABLE domain_checks (
    id TEXT PRIMARY KEY,
    domain_id TEXT NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    checked_at BIGINT NOT NULL,
    ok BIGINT NOT NULL,
    results TEXT NOT NULL
);
CREATE INDEX domain_checks_domain ON domain_checks(domain_id, checked_at);

CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    tenant_id TEXT,
    cause TEXT NOT NULL,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    message TEXT NOT NULL,
    occurrences BIGINT NOT NULL DEFAULT 1,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    notified_at BIGINT
);
CREATE INDEX alerts_cause ON alerts(cause, last_at);

ALTER TABLE jobs ADD COLUMN result TEXT;
CREATE INDEX jobs_kind ON jobs(kind, created_at);
