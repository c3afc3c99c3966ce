-- The claim takes each tenant's earliest due messages (fairness between tenants): a
-- partial index per tenant keeps that a short range read however large the backlog.
CREATE INDEX messages_waiting_tenant ON messages(tenant_id, next_attempt_at, id) WHERE state IN ('queued', 'deferred');
