//! Parsing of the TXT records we check (pure).

use serde::Serialize;

/// A DMARC record (RFC 7489 §6.3), the tags that matter to a sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dmarc {
    /// none, quarantine or reject.
    pub policy: String,
    pub subdomain_policy: Option<String>,
    /// `r` (relaxed, the default) or `s` (strict).
    pub adkim: String,
    pub aspf: String,
    pub pct: u8,
    pub rua: Vec<String>,
}

/// Parses a DMARC record; `Err` says what is wrong with it.
pub fn parse_dmarc(txt: &str) -> Result<Dmarc, String> {
    let mut tags = txt.split(';').map(str::trim).filter(|t| !t.is_empty());
    match tags.next().map(|t| t.replace(' ', "")) {
        Some(v) if v.eq_ignore_ascii_case("v=DMARC1") => {}
        _ => return Err("does not start with v=DMARC1".into()),
    }
    let mut dmarc = Dmarc {
        policy: String::new(),
        subdomain_policy: None,
        adkim: "r".into(),
        aspf: "r".into(),
        pct: 100,
        rua: Vec::new(),
    };
    for tag in tags {
        let Some((name, value)) = tag.split_once('=') else {
            return Err(format!("malformed tag {tag:?}"));
        };
        let value = value.trim().to_ascii_lowercase();
        match name.trim().to_ascii_lowercase().as_str() {
            "p" => dmarc.policy = value,
            "sp" => dmarc.subdomain_policy = Some(value),
            "adkim" => dmarc.adkim = value,
            "aspf" => dmarc.aspf = value,
            "pct" => {
                dmarc.pct = value
                    .parse()
                    .map_err(|_| format!("pct={value} is not a number from 0 to 100"))?
            }
            "rua" => dmarc.rua = value.split(',').map(|s| s.trim().to_owned()).collect(),
            _ => {}
        }
    }
    if !["none", "quarantine", "reject"].contains(&dmarc.policy.as_str()) {
        return Err(format!(
            "p={:?} is not none, quarantine or reject",
            dmarc.policy
        ));
    }
    for (tag, value) in [("adkim", &dmarc.adkim), ("aspf", &dmarc.aspf)] {
        if value != "r" && value != "s" {
            return Err(format!("{tag}={value} is neither r nor s"));
        }
    }
    Ok(dmarc)
}

/// The organizational domain, approximated as the last two labels (enough to judge
/// relaxed alignment of our own sub-domains; a public-suffix list would refine it).
pub fn organizational_domain(domain: &str) -> String {
    let labels: Vec<&str> = domain.trim_end_matches('.').split('.').collect();
    labels[labels.len().saturating_sub(2)..]
        .join(".")
        .to_lowercase()
}

/// Whether an authenticated domain aligns with the From domain under a mode.
pub fn aligned(authenticated: &str, from_domain: &str, mode: &str) -> bool {
    if mode == "s" {
        authenticated.eq_ignore_ascii_case(from_domain)
    } else {
        organizational_domain(authenticated) == organizational_domain(from_domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dmarc_records() {
        let d = parse_dmarc(
            "v=DMARC1; p=quarantine; adkim=s; rua=mailto:a@x.test,mailto:b@x.test; pct=50",
        )
        .unwrap();
        assert_eq!(
            (d.policy.as_str(), d.adkim.as_str(), d.aspf.as_str(), d.pct),
            ("quarantine", "s", "r", 50)
        );
        assert_eq!(d.rua.len(), 2);
        assert!(parse_dmarc("v=spf1 -all").is_err());
        assert!(
            parse_dmarc("v=DMARC1; p=maybe")
                .unwrap_err()
                .contains("maybe")
        );
        assert!(parse_dmarc("v=DMARC1").is_err(), "p is required");
        assert!(parse_dmarc("v=DMARC1; p=none; adkim=x").is_err());
    }

    #[test]
    fn alignment() {
        assert!(aligned("mail.brand.test", "brand.test", "r"));
        assert!(!aligned("mail.brand.test", "brand.test", "s"));
        assert!(aligned("Brand.test", "brand.test", "s"));
        assert!(!aligned("other.test", "brand.test", "r"));
    }
}
