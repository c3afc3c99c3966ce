//! Contact addresses: normalisation for dedupe, the address hash, and the checks that
//! need no network (syntax, disposable domains, role accounts, free providers).

use std::collections::HashSet;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::address::check_syntax;

/// How addresses are folded before dedupe (per tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Folding {
    /// `jane+news@x.com` → `jane@x.com`.
    pub plus_tags: bool,
    /// `j.a.n.e@gmail.com` → `jane@gmail.com` (Gmail ignores dots; googlemail.com is gmail.com).
    pub gmail_dots: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidAddress(pub String);

/// The address as it is stored and deduped: trimmed, lower-cased (mailbox providers
/// treat local parts case-insensitively in practice), the domain in its ASCII (IDNA)
/// form, then folded as the tenant asks. Checks the syntax on the way.
pub fn normalize(raw: &str, folding: Folding) -> Result<String, InvalidAddress> {
    let trimmed = raw.trim().trim_matches(|c| c == '<' || c == '>');
    let (local, domain) = trimmed
        .rsplit_once('@')
        .ok_or_else(|| InvalidAddress("must contain exactly one '@'".into()))?;
    let domain = idna::domain_to_ascii(domain.trim_end_matches('.'))
        .map_err(|_| InvalidAddress("the domain is not a valid internationalised name".into()))?;
    let mut local = local.to_lowercase();
    let domain = if folding.gmail_dots && domain == "googlemail.com" {
        "gmail.com".to_owned()
    } else {
        domain
    };
    if folding.plus_tags
        && let Some((base, _tag)) = local.split_once('+')
        && !base.is_empty()
    {
        local = base.to_owned();
    }
    if folding.gmail_dots && domain == "gmail.com" {
        local.retain(|c| c != '.');
    }
    let address = format!("{local}@{domain}");
    check_syntax(&address).map_err(|e| InvalidAddress(e.to_string()))?;
    Ok(address)
}

/// SHA-256 (hex) of a normalised address: what suppression keeps of an erased contact.
pub fn address_hash(normalized: &str) -> String {
    hex::encode(Sha256::digest(normalized.as_bytes()))
}

/// Lists shipped with the product (see data/*/LICENSE):
/// disposable domains from disposable-email-domains (CC0), free-mail providers from
/// willwhite/freemail (ISC), role local parts from mbalatsko/role-based-email-addresses-list (MIT).
const DISPOSABLE: &str = include_str!("../data/disposable/disposable_email_blocklist.conf");
const FREE: &str = include_str!("../data/free/free.txt");
const ROLE: &str = include_str!("../data/role/list.txt");

fn set(text: &'static str) -> HashSet<&'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

fn disposable() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| set(DISPOSABLE))
}

fn free() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| set(FREE))
}

fn role() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| set(ROLE))
}

/// A tenant's additions to the shipped lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExtraLists {
    pub disposable: HashSet<String>,
    pub free: HashSet<String>,
    pub role: HashSet<String>,
}

/// Whether `domain` or one of its parent domains is in the set.
fn listed(domain: &str, shipped: &HashSet<&str>, extra: &HashSet<String>) -> bool {
    let mut d = domain;
    loop {
        if shipped.contains(d) || extra.contains(d) {
            return true;
        }
        match d.split_once('.') {
            Some((_, parent)) if parent.contains('.') => d = parent,
            _ => return false,
        }
    }
}

/// The longest value of a contact's field (name, company, city…), in characters; a
/// longer one refuses the contact with a reason naming the field.
pub const MAX_FIELD_CHARS: usize = 500;

/// The largest custom-field set of a contact, as JSON.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

/// A contact's status: `active` until it unsubscribes, bounces, complains or is
/// suppressed otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactStatus {
    Active,
    Unsubscribed,
    Bounced,
    Complained,
    Suppressed,
}

crate::names::names!(ContactStatus {
    Active => "active",
    Unsubscribed => "unsubscribed",
    Bounced => "bounced",
    Complained => "complained",
    Suppressed => "suppressed",
});

/// Where a CSV import is: waiting for a worker, being read, finished, or stopped by an
/// error that concerns the whole file (its lines' own errors do not fail it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    Queued,
    Running,
    Done,
    Failed,
}

crate::names::names!(ImportStatus {
    Queued => "queued",
    Running => "running",
    Done => "done",
    Failed => "failed",
});

/// Why an address is on a tenant's suppression list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    Bounced,
    Complained,
    Unsubscribed,
    /// Added by an operator.
    Manual,
    /// Came with an imported suppression list.
    Imported,
    /// The contact was erased (GDPR): only the address's hash is kept.
    Erased,
}

crate::names::names!(SuppressionReason {
    Bounced => "bounced",
    Complained => "complained",
    Unsubscribed => "unsubscribed",
    Manual => "manual",
    Imported => "imported",
    Erased => "erased",
});

impl SuppressionReason {
    /// The status a contact takes when its address is suppressed for this reason.
    pub fn contact_status(self) -> ContactStatus {
        match self {
            SuppressionReason::Bounced => ContactStatus::Bounced,
            SuppressionReason::Complained => ContactStatus::Complained,
            SuppressionReason::Unsubscribed => ContactStatus::Unsubscribed,
            SuppressionReason::Manual | SuppressionReason::Imported | SuppressionReason::Erased => {
                ContactStatus::Suppressed
            }
        }
    }

    /// The event the contact's timeline shows.
    pub fn timeline_event(self) -> &'static str {
        match self.contact_status() {
            ContactStatus::Bounced => "BOUNCED",
            ContactStatus::Complained => "COMPLAINED",
            ContactStatus::Unsubscribed => "UNSUBSCRIBED",
            ContactStatus::Active | ContactStatus::Suppressed => "SUPPRESSED",
        }
    }
}

/// Verdict of a check, from the cheapest that settles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Deliverable as far as we can tell.
    Valid,
    /// Deliverable but worth care (role account, accept-all…).
    Risky,
    /// Not deliverable: bad syntax, no mail server, disposable, refused.
    Invalid,
    /// Not checked yet, or the checks could not conclude (DNS failure).
    Unknown,
}

crate::names::names!(Verdict {
    Valid => "valid",
    Risky => "risky",
    Invalid => "invalid",
    Unknown => "unknown",
});

/// What the checks found, flag by flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Checks {
    pub syntax: bool,
    pub disposable: bool,
    pub role: bool,
    pub free: bool,
    /// None: not looked up.
    pub mx: Option<MxOutcome>,
    /// None: no SMTP probe.
    pub smtp: Option<SmtpOutcome>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MxOutcome {
    /// MX records (or, per RFC 5321 §5.1, an A/AAAA record as implicit MX).
    Found,
    /// Neither MX nor address: nowhere to deliver.
    None,
    /// RFC 7505 null MX: the domain accepts no mail.
    NullMx,
    /// The look-up failed (time-out, SERVFAIL).
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpOutcome {
    Accepted,
    Rejected,
    /// 4xx or no answer: no conclusion.
    Inconclusive,
}

/// The checks that need no network.
pub fn offline_checks(normalized: &str, extra: &ExtraLists) -> Checks {
    let (local, domain) = normalized.rsplit_once('@').unwrap_or(("", normalized));
    let syntax = check_syntax(normalized).is_ok();
    Checks {
        syntax,
        disposable: listed(domain, disposable(), &extra.disposable),
        role: role().contains(local.split('+').next().unwrap_or(local))
            || extra.role.contains(local),
        free: listed(domain, free(), &extra.free),
        mx: None,
        smtp: None,
    }
}

/// The verdict and a confidence from 0 to 1, with the reasons that weigh.
pub fn verdict(checks: &Checks) -> (Verdict, f64, Vec<&'static str>) {
    let mut reasons = Vec::new();
    if !checks.syntax {
        return (Verdict::Invalid, 1.0, vec!["invalid_syntax"]);
    }
    if checks.disposable {
        return (Verdict::Invalid, 0.95, vec!["disposable_domain"]);
    }
    match checks.mx {
        Some(MxOutcome::None) => return (Verdict::Invalid, 0.95, vec!["no_mx_record"]),
        Some(MxOutcome::NullMx) => return (Verdict::Invalid, 1.0, vec!["null_mx"]),
        _ => {}
    }
    if checks.smtp == Some(SmtpOutcome::Rejected) {
        return (Verdict::Invalid, 0.9, vec!["smtp_rejected"]);
    }
    if checks.free {
        reasons.push("free_provider");
    }
    if checks.role {
        reasons.push("role_account");
    }
    let mut confidence: f64 = match (checks.mx, checks.smtp) {
        (Some(MxOutcome::Found), Some(SmtpOutcome::Accepted)) => 0.98,
        (Some(MxOutcome::Found), _) => 0.85,
        (Some(MxOutcome::Error), _) => {
            reasons.push("mx_lookup_failed");
            0.5
        }
        _ => 0.6,
    };
    if checks.role {
        confidence -= 0.2;
    }
    let verdict = if checks.mx == Some(MxOutcome::Error) || checks.mx.is_none() {
        Verdict::Unknown
    } else if checks.role {
        Verdict::Risky
    } else {
        Verdict::Valid
    };
    (verdict, confidence.clamp(0.0, 1.0), reasons)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suppression_reason_sets_the_contact_status_and_its_event() {
        use SuppressionReason as R;
        let seen: Vec<(&str, &str, &str)> = R::ALL
            .iter()
            .map(|r| (r.as_str(), r.contact_status().as_str(), r.timeline_event()))
            .collect();
        assert_eq!(
            seen,
            [
                ("bounced", "bounced", "BOUNCED"),
                ("complained", "complained", "COMPLAINED"),
                ("unsubscribed", "unsubscribed", "UNSUBSCRIBED"),
                ("manual", "suppressed", "SUPPRESSED"),
                ("imported", "suppressed", "SUPPRESSED"),
                ("erased", "suppressed", "SUPPRESSED"),
            ]
        );
        assert_eq!(R::try_from("erased".to_owned()), Ok(R::Erased));
        assert!(ContactStatus::try_from("gone".to_owned()).is_err());
    }

    #[test]
    fn normalisation() {
        let none = Folding::default();
        assert_eq!(
            normalize("  John.Doe@Example.COM ", none).unwrap(),
            "john.doe@example.com"
        );
        assert_eq!(
            normalize("<a@Bücher.example>", none).unwrap(),
            "a@xn--bcher-kva.example"
        );
        assert_eq!(
            normalize("jane+news@x.com", none).unwrap(),
            "jane+news@x.com"
        );
        let all = Folding {
            plus_tags: true,
            gmail_dots: true,
        };
        assert_eq!(normalize("jane+news@x.com", all).unwrap(), "jane@x.com");
        assert_eq!(
            normalize("J.A.N.E+x@GoogleMail.com", all).unwrap(),
            "jane@gmail.com"
        );
        assert_eq!(
            normalize("j.ane@other.com", all).unwrap(),
            "j.ane@other.com",
            "dots fold at Gmail only"
        );
        assert!(normalize("not-an-address", none).is_err());
        assert!(normalize("a b@x.com", none).is_err());
        assert_eq!(address_hash("a@x.com").len(), 64);
        assert_eq!(address_hash("a@x.com"), address_hash("a@x.com"));
    }

    #[test]
    fn shipped_lists() {
        let extra = ExtraLists::default();
        let c = offline_checks("someone@mailinator.com", &extra);
        assert!(c.disposable && c.syntax);
        assert!(
            offline_checks("a@sub.mailinator.com", &extra).disposable,
            "sub-domains of a listed domain"
        );
        let c = offline_checks("postmaster@brand.test", &extra);
        assert!(c.role && !c.disposable && !c.free);
        assert!(offline_checks("jane@gmail.com", &extra).free);
        assert!(!offline_checks("jane@brand.test", &extra).free);
        let mine = ExtraLists {
            disposable: ["brand.test".into()].into(),
            ..Default::default()
        };
        assert!(offline_checks("jane@brand.test", &mine).disposable);
    }

    #[test]
    fn verdicts() {
        let base = Checks {
            syntax: true,
            disposable: false,
            role: false,
            free: false,
            mx: Some(MxOutcome::Found),
            smtp: None,
        };
        assert_eq!(verdict(&base).0, Verdict::Valid);
        assert_eq!(
            verdict(&Checks {
                mx: Some(MxOutcome::NullMx),
                ..base.clone()
            })
            .0,
            Verdict::Invalid
        );
        assert_eq!(
            verdict(&Checks {
                mx: Some(MxOutcome::None),
                ..base.clone()
            })
            .2,
            ["no_mx_record"]
        );
        assert_eq!(
            verdict(&Checks {
                role: true,
                ..base.clone()
            })
            .0,
            Verdict::Risky
        );
        assert_eq!(
            verdict(&Checks {
                mx: Some(MxOutcome::Error),
                ..base.clone()
            })
            .0,
            Verdict::Unknown
        );
        assert_eq!(
            verdict(&Checks {
                disposable: true,
                ..base.clone()
            })
            .0,
            Verdict::Invalid
        );
        assert_eq!(
            verdict(&Checks {
                smtp: Some(SmtpOutcome::Rejected),
                ..base.clone()
            })
            .0,
            Verdict::Invalid
        );
        let free = verdict(&Checks {
            free: true,
            ..base.clone()
        });
        assert_eq!((free.0, free.2), (Verdict::Valid, vec!["free_provider"]));
        assert!(
            verdict(&Checks {
                smtp: Some(SmtpOutcome::Accepted),
                ..base
            })
            .1 > 0.95
        );
    }
}
