-- Each delivery attempt over SMTP records its TLS session: version, cipher and whether the
-- peer's certificate verified (`ee_mail::smtp::TlsInfo::describe`); empty in clear. And,
-- for a domain whose MTA-STS policy is in `testing` mode, what that policy would have
-- refused (RFC 8461 §5).
ALTER TABLE message_events ADD COLUMN tls TEXT;
ALTER TABLE message_events ADD COLUMN mta_sts TEXT;
