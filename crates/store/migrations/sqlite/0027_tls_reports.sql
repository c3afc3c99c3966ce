-- SMTP TLS reporting (RFC 8460): each day's delivery sessions to a domain, counted by
-- the policy they were held to and what they came to (`ee_core::tls_rpt`), until the
-- day's report to that domain goes out; then the report itself.
CREATE TABLE tls_sessions (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    day TEXT NOT NULL,
    domain TEXT NOT NULL,
    policy_type TEXT NOT NULL,
    policy_lines TEXT NOT NULL,
    mx_host TEXT NOT NULL,
    outcome TEXT NOT NULL,
    sending_ip TEXT NOT NULL,
    receiving_ip TEXT NOT NULL,
    sessions BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day, domain, policy_type, policy_lines, mx_host, outcome, sending_ip, receiving_ip)
);

CREATE TABLE tls_reports (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    domain TEXT NOT NULL,
    day TEXT NOT NULL,
    state TEXT NOT NULL,
    destinations TEXT NOT NULL,
    successful BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    detail TEXT,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, domain, day)
);
CREATE INDEX tls_reports_tenant ON tls_reports(tenant_id, day);
