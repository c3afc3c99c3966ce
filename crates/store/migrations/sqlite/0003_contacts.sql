-- Contacts: more fields, where each value came from, validation; sources' batches,
-- routing rules, segments, suppression, imports, the MX cache and tenant list additions.

ALTER TABLE contacts ADD COLUMN address TEXT;
ALTER TABLE contacts ADD COLUMN city TEXT;
ALTER TABLE contacts ADD COLUMN category TEXT;
ALTER TABLE contacts ADD COLUMN company TEXT;
-- JSON: field → the source that gave its value.
ALTER TABLE contacts ADD COLUMN field_sources TEXT NOT NULL DEFAULT '{}';
ALTER TABLE contacts ADD COLUMN validation_status TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE contacts ADD COLUMN validation_confidence REAL;
ALTER TABLE contacts ADD COLUMN validation_reasons TEXT NOT NULL DEFAULT '[]';
ALTER TABLE contacts ADD COLUMN validated_at INTEGER;
ALTER TABLE contacts ADD COLUMN engaged_at INTEGER;
CREATE INDEX contacts_list ON contacts(tenant_id, created_at, id);
CREATE INDEX contacts_validation ON contacts(tenant_id, validation_status);

CREATE INDEX tags_slug ON tags(tenant_id, slug);
CREATE INDEX contact_events_tenant ON contact_events(tenant_id, occurred_at);

CREATE TABLE ingest_batches (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    source_key TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, source_key, batch_id)
);

CREATE TABLE routing_rules (
    id TEXT PRIMARY KEY,
    priority INTEGER NOT NULL,
    conditions TEXT NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
);

CREATE TABLE segments (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    expression TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE suppressions (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    email_hash TEXT NOT NULL,
    -- NULL once the contact was erased (GDPR): only the hash remains.
    email TEXT,
    reason TEXT NOT NULL,
    source TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, email_hash)
);

CREATE TABLE imports (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    source_id TEXT,
    filename TEXT,
    path TEXT,
    status TEXT NOT NULL,
    total INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    delimiter TEXT,
    encoding TEXT,
    error TEXT,
    created_at INTEGER NOT NULL,
    finished_at INTEGER
);

CREATE TABLE import_errors (
    import_id TEXT NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
    line INTEGER NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (import_id, line)
);

CREATE TABLE mx_cache (
    domain TEXT PRIMARY KEY,
    outcome TEXT NOT NULL,
    hosts TEXT NOT NULL DEFAULT '[]',
    expires_at INTEGER NOT NULL
);

CREATE TABLE validation_list_entries (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    list TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (tenant_id, list, value)
);
