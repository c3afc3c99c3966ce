//! MIME building, DKIM signing, SMTP transports (relay and direct to MX), DSN and ARF
//! parsing. Filled by the message-pipeline issue; the crate boundary exists now so that
//! dependencies keep pointing one way (see ARCHITECTURE.md).
