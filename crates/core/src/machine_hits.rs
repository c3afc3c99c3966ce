//! Telling people from machines in opens and clicks: mail privacy proxies and image
//! prefetchers, link scanners of mail gateways, bots. A hit is a machine's when it is a
//! HEAD request, follows the hidden decoy link (no person sees it), comes from an operator's
//! listed IP range (Apple's privacy proxy, a gateway), names a known scanner or library in
//! its user agent (or none), or comes faster after sending than a person could.

use std::net::IpAddr;

/// The click token index of the hidden decoy link of every tracked message.
pub const DECOY_INDEX: u32 = u32::MAX;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum HitKind {
    Open,
    Click,
}

crate::names::names!(HitKind {
    Open => "open",
    Click => "click",
});

/// What is known of a hit.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'a> {
    pub kind: HitKind,
    pub head: bool,
    pub decoy: bool,
    pub user_agent: Option<&'a str>,
    pub ip: Option<IpAddr>,
    /// Milliseconds since the message was sent, when known.
    pub since_sent_ms: Option<i64>,
}

/// Parts of user agents that only machines send (lowercase).
const MACHINE_AGENTS: &[&str] = &[
    "bot",
    "crawler",
    "spider",
    "preview",
    "prefetch",
    "scanner",
    "python-requests",
    "python-urllib",
    "curl/",
    "wget/",
    "go-http-client",
    "java/",
    "okhttp",
    "libwww",
    "httpclient",
    "headlesschrome",
    "phantomjs",
    "barracuda",
    "mimecast",
    "proofpoint",
    "symantec",
    "forcepoint",
    "trendmicro",
    "sophos",
    "fortinet",
    "zscaler",
    "ironport",
    "safelinks",
    "microsoft office existence discovery",
    "facebookexternalhit",
    "slackbot",
    "whatsapp",
];

/// The operator's settings: IP ranges whose hits are machines', and how soon after
/// sending an open or a click is too soon for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineRules {
    pub ranges: Vec<ipnet::IpNet>,
    pub open_within_ms: i64,
    pub click_within_ms: i64,
}

impl Default for MachineRules {
    fn default() -> Self {
        Self {
            ranges: Vec::new(),
            open_within_ms: 2_000,
            click_within_ms: 10_000,
        }
    }
}

impl MachineRules {
    /// Ranges as the configuration writes them: `17.0.0.0/8, 2620:149::/32`.
    pub fn parse_ranges(text: &str) -> Result<Vec<ipnet::IpNet>, String> {
        text.split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                t.parse::<ipnet::IpNet>()
                    .or_else(|_| t.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("{t:?} is not an IP range"))
            })
            .collect()
    }

    /// Why a hit is a machine's; `None` for a person's.
    pub fn machine_reason(&self, hit: &Hit<'_>) -> Option<String> {
        if hit.head {
            return Some("a HEAD request".into());
        }
        if hit.decoy {
            return Some("the hidden decoy link".into());
        }
        if let Some(ip) = hit.ip
            && let Some(range) = self.ranges.iter().find(|r| r.contains(&ip))
        {
            return Some(format!("from {range}, a listed machine range"));
        }
        match hit.user_agent.map(str::trim).filter(|u| !u.is_empty()) {
            None => return Some("no user agent".into()),
            Some(agent) => {
                let lower = agent.to_ascii_lowercase();
                if let Some(part) = MACHINE_AGENTS.iter().find(|p| lower.contains(*p)) {
                    return Some(format!("user agent names {part:?}"));
                }
            }
        }
        let within = match hit.kind {
            HitKind::Open => self.open_within_ms,
            HitKind::Click => self.click_within_ms,
        };
        match hit.since_sent_ms {
            Some(ms) if ms < within => Some(format!(
                "{} ms after sending, sooner than a person",
                ms.max(0)
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";

    fn hit(kind: HitKind) -> Hit<'static> {
        Hit {
            kind,
            head: false,
            decoy: false,
            user_agent: Some(BROWSER),
            ip: Some("198.51.100.4".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))),
            since_sent_ms: Some(3_600_000),
        }
    }

    #[test]
    fn a_person_is_a_person() {
        let rules = MachineRules::default();
        assert_eq!(rules.machine_reason(&hit(HitKind::Open)), None);
        assert_eq!(rules.machine_reason(&hit(HitKind::Click)), None);
    }

    #[test]
    fn machines_are_known_by_method_decoy_range_agent_and_timing() {
        let rules = MachineRules {
            ranges: MachineRules::parse_ranges("17.0.0.0/8, 2620:149::/32").expect("ranges"),
            ..MachineRules::default()
        };
        let cases: Vec<(Hit<'static>, &str)> = vec![
            (
                Hit {
                    head: true,
                    ..hit(HitKind::Click)
                },
                "a HEAD request",
            ),
            (
                Hit {
                    decoy: true,
                    ..hit(HitKind::Click)
                },
                "the hidden decoy link",
            ),
            (
                Hit {
                    ip: Some("17.58.1.2".parse().expect("ip")),
                    ..hit(HitKind::Open)
                },
                "from 17.0.0.0/8",
            ),
            (
                Hit {
                    user_agent: None,
                    ..hit(HitKind::Open)
                },
                "no user agent",
            ),
            (
                Hit {
                    user_agent: Some("Mimecast Link Checker"),
                    ..hit(HitKind::Click)
                },
                "mimecast",
            ),
            (
                Hit {
                    user_agent: Some("python-requests/2.31"),
                    ..hit(HitKind::Click)
                },
                "python-requests",
            ),
            (
                Hit {
                    since_sent_ms: Some(3_000),
                    ..hit(HitKind::Click)
                },
                "3000 ms after sending",
            ),
            (
                Hit {
                    since_sent_ms: Some(500),
                    ..hit(HitKind::Open)
                },
                "500 ms after sending",
            ),
        ];
        for (h, expected) in cases {
            let reason = rules.machine_reason(&h).unwrap_or_default();
            assert!(reason.contains(expected), "{h:?}: {reason}");
        }
        // A human open 3 s after sending is fine; a click is not.
        assert_eq!(
            rules.machine_reason(&Hit {
                since_sent_ms: Some(3_000),
                ..hit(HitKind::Open)
            }),
            None
        );
        assert!(MachineRules::parse_ranges("17.0.0.0/8, nope").is_err());
    }
}
