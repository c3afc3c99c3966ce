//! Mail: DKIM keys now; MIME building, signing, SMTP transports and DSN/ARF parsing
//! come with the message-pipeline issue.

pub mod dkim;
