-- Each delivery attempt over SMTP records its TLS session: version, cipher and whether the
-- peer's certificate verified (`ee_mail::smtp::TlsInfo::describe`); empty in clear.
ALTER TABLE message_events ADD COLUMN tls TEXT;
