-- Email-Engine schema, PostgreSQL flavour. Kept column-for-column with migrations/sqlite:
-- ids are TEXT (UUIDv7), times BIGINT epoch milliseconds, booleans BIGINT 0/1, JSON as TEXT,
-- so that one set of queries (sqlx Any) serves both databases.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    settings TEXT NOT NULL DEFAULT '{}',
    is_active BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    tenant_id TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    email TEXT NOT NULL UNIQUE,
    username TEXT,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    is_active BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK ((role = 'admin' AND tenant_id IS NULL) OR (role = 'user' AND tenant_id IS NOT NULL))
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    ip_address TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    key_prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    previous_key_hash TEXT UNIQUE,
    previous_valid_until BIGINT,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    rotated_at BIGINT,
    expires_at BIGINT,
    revoked_at BIGINT,
    last_used_at BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys(tenant_id);

CREATE TABLE audit_logs (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id TEXT,
    actor_label TEXT,
    tenant_id TEXT,
    action TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT,
    changes TEXT NOT NULL DEFAULT '{}',
    ip_address TEXT,
    user_agent TEXT,
    request_id TEXT
);
CREATE INDEX audit_logs_time ON audit_logs(created_at, id);
CREATE INDEX audit_logs_actor ON audit_logs(actor_id, created_at);
CREATE INDEX audit_logs_resource ON audit_logs(resource_type, resource_id);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'dead')),
    unique_key TEXT UNIQUE,
    priority BIGINT NOT NULL DEFAULT 0,
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    run_at BIGINT NOT NULL,
    lease_token TEXT,
    locked_by TEXT,
    locked_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX jobs_ready ON jobs(state, run_at);
CREATE INDEX jobs_lease ON jobs(state, locked_until);

-- The domain model of seed 001 §4.2. Later issues add their columns and tables.

CREATE TABLE mailwizz_instances (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    api_url TEXT NOT NULL,
    api_key_sealed TEXT NOT NULL,
    default_list_uid TEXT,
    is_primary BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX mailwizz_instances_tenant ON mailwizz_instances(tenant_id);

CREATE TABLE warmup_plans (
    id TEXT PRIMARY KEY,
    tenant_id TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    ip_id TEXT NOT NULL,
    start_date TEXT NOT NULL,
    current_phase BIGINT NOT NULL DEFAULT 1,
    daily_quota BIGINT NOT NULL,
    total_sent_today BIGINT NOT NULL DEFAULT 0,
    bounce_rate DOUBLE PRECISION NOT NULL DEFAULT 0,
    spam_rate DOUBLE PRECISION NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    schedule TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX warmup_plans_ip ON warmup_plans(ip_id);

CREATE TABLE ips (
    id TEXT PRIMARY KEY,
    tenant_id TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    ip_address TEXT NOT NULL UNIQUE,
    hostname TEXT,
    pool TEXT,
    state TEXT NOT NULL,
    warmup_plan_id TEXT REFERENCES warmup_plans(id) ON DELETE SET NULL,
    blacklist_status TEXT NOT NULL DEFAULT 'clean',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX ips_tenant ON ips(tenant_id);

CREATE TABLE domains (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    domain_name TEXT NOT NULL,
    dkim_selector TEXT,
    dkim_private_key_sealed TEXT,
    spf_record TEXT,
    dmarc_record TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, domain_name)
);

CREATE TABLE blacklist_checks (
    id TEXT PRIMARY KEY,
    ip_id TEXT NOT NULL REFERENCES ips(id) ON DELETE CASCADE,
    blacklist_name TEXT NOT NULL,
    is_listed BIGINT NOT NULL,
    checked_at BIGINT NOT NULL,
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX blacklist_checks_ip ON blacklist_checks(ip_id, checked_at);

CREATE TABLE data_sources (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    config TEXT NOT NULL DEFAULT '{}',
    secret_sealed TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, slug)
);

CREATE TABLE contacts (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    source_id TEXT REFERENCES data_sources(id) ON DELETE SET NULL,
    email TEXT NOT NULL,
    email_hash TEXT NOT NULL,
    first_name TEXT,
    last_name TEXT,
    phone TEXT,
    language TEXT,
    country TEXT,
    status TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, email)
);
CREATE INDEX contacts_hash ON contacts(tenant_id, email_hash);

CREATE TABLE tags (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    parent_id TEXT REFERENCES tags(id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, slug)
);

CREATE TABLE contact_tags (
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    tag_id TEXT NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (contact_id, tag_id)
);
CREATE INDEX contact_tags_tag ON contact_tags(tag_id);

CREATE TABLE email_templates (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    language TEXT NOT NULL,
    category TEXT,
    subject TEXT NOT NULL,
    html_content TEXT NOT NULL,
    text_content TEXT,
    variables TEXT NOT NULL DEFAULT '[]',
    is_active BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX email_templates_tenant ON email_templates(tenant_id, language);

CREATE TABLE campaigns (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    source_id TEXT REFERENCES data_sources(id) ON DELETE SET NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    template_id TEXT REFERENCES email_templates(id) ON DELETE SET NULL,
    target_tags TEXT NOT NULL DEFAULT '[]',
    schedule TEXT NOT NULL DEFAULT '{}',
    stats TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX campaigns_tenant ON campaigns(tenant_id);

CREATE TABLE contact_events (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    campaign_id TEXT REFERENCES campaigns(id) ON DELETE SET NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    occurred_at BIGINT NOT NULL
);
CREATE INDEX contact_events_contact ON contact_events(contact_id, occurred_at);
