-- DMARC aggregate reports received (RFC 7489 §7.2, `ee_core::dmarc`): each kept with the
-- tenant and domain it was attributed to (both NULL when it was not, or was refused,
-- with why), and its records, one per source IP and outcome.
CREATE TABLE dmarc_reports (
    id TEXT PRIMARY KEY,
    tenant_id TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    domain_id TEXT REFERENCES domains(id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    reason TEXT,
    domain TEXT NOT NULL,
    org_name TEXT NOT NULL,
    email TEXT NOT NULL,
    report_id TEXT NOT NULL,
    begin_at BIGINT NOT NULL,
    end_at BIGINT NOT NULL,
    policy TEXT NOT NULL,
    messages BIGINT NOT NULL,
    records BIGINT NOT NULL,
    skipped BIGINT NOT NULL,
    sender TEXT,
    size BIGINT NOT NULL,
    dedupe_key TEXT UNIQUE,
    received_at BIGINT NOT NULL
);
CREATE INDEX dmarc_reports_domain ON dmarc_reports(domain_id, received_at);
CREATE INDEX dmarc_reports_tenant ON dmarc_reports(tenant_id, received_at);

CREATE TABLE dmarc_records (
    report_id TEXT NOT NULL REFERENCES dmarc_reports(id) ON DELETE CASCADE,
    source_ip TEXT NOT NULL,
    own BIGINT NOT NULL,
    count BIGINT NOT NULL,
    disposition TEXT NOT NULL,
    dkim_aligned BIGINT NOT NULL,
    spf_aligned BIGINT NOT NULL,
    header_from TEXT NOT NULL,
    envelope_from TEXT,
    dkim TEXT NOT NULL,
    spf TEXT NOT NULL
);
CREATE INDEX dmarc_records_report ON dmarc_records(report_id);
