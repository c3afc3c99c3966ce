//! Which way a message went: through a relay, direct to the recipient's MX from one of our
//! IPs (which IP is stored beside it), or through a MailWizz instance. Stored on the
//! message as `relay:<relay name>`, `direct` or `mailwizz:<instance name>`.

use std::fmt;
use std::str::FromStr;

use crate::delivery::Mode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Relay(String),
    Direct,
    Mailwizz(String),
}

impl Route {
    /// The delivery mode this route belongs to.
    pub fn mode(&self) -> Mode {
        match self {
            Route::Relay(_) => Mode::Relay,
            Route::Direct => Mode::Direct,
            Route::Mailwizz(_) => Mode::Mailwizz,
        }
    }

    /// The relay's or the instance's name.
    pub fn target(&self) -> Option<&str> {
        match self {
            Route::Relay(t) | Route::Mailwizz(t) => Some(t),
            Route::Direct => None,
        }
    }
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

impl FromStr for Route {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "direct" {
            return Ok(Route::Direct);
        }
        let (kind, target) = s.split_once(':').ok_or_else(|| {
            format!("`{s}` is not a route (direct, relay:<name>, mailwizz:<name>)")
        })?;
        let target = target.to_owned();
        match kind {
            "relay" => Ok(Route::Relay(target)),
            "mailwizz" => Ok(Route::Mailwizz(target)),
            other => Err(format!("`{other}` is not a kind of route")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_read_back_as_written() {
        for route in [
            Route::Relay("pmta-1".into()),
            Route::Direct,
            Route::Mailwizz("main:eu".into()),
        ] {
            let text = route.to_string();
            assert_eq!(text.parse::<Route>().unwrap(), route, "{text}");
        }
        assert_eq!(Route::Relay("pmta".into()).to_string(), "relay:pmta");
        assert_eq!(
            "mailwizz:a:b".parse::<Route>().unwrap().target(),
            Some("a:b"),
            "a name may hold a colon"
        );
        assert_eq!(Route::Direct.mode(), Mode::Direct);
        assert_eq!(Route::Direct.to_string(), "direct");
    }

    #[test]
    fn what_is_not_a_route_is_refused() {
        assert!("relay".parse::<Route>().is_err());
        assert!("direct:x".parse::<Route>().is_err());
        assert!("smtp:host".parse::<Route>().is_err());
        assert!("".parse::<Route>().is_err());
    }
}
