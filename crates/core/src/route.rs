//! Which way a message went: through a relay, direct to the recipient's MX from one of our
//! IPs (which IP is stored beside it), or through a MailWizz instance. Stored on the
//! message as `relay:<relay name>`, `direct` or `mailwizz:<instance name>`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Relay(String),
    Direct,
    Mailwizz(String),
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Relay(name) => write!(f, "relay:{name}"),
            Route::Direct => f.write_str("direct"),
            Route::Mailwizz(name) => write!(f, "mailwizz:{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_stored_as_before() {
        assert_eq!(Route::Relay("pmta-1".into()).to_string(), "relay:pmta-1");
        assert_eq!(Route::Direct.to_string(), "direct");
        assert_eq!(Route::Mailwizz("main".into()).to_string(), "mailwizz:main");
    }
}
