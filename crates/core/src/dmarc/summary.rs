//! What a domain's reports add up to over a period: messages per source IP, how many
//! passed DKIM and SPF aligned, the sources that are our own IPs failing DMARC (our DKIM
//! or SPF is wrong: an alert), and the senders we do not know using the domain.

use serde::Serialize;

/// One source IP's messages in a domain's reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Source {
    pub ip: String,
    /// One of the tenant's IPs, or one of this installation's not given to any tenant.
    pub own: bool,
    pub messages: i64,
    /// Messages whose DKIM passed aligned with the From domain.
    pub dkim_aligned: i64,
    /// Messages whose SPF passed aligned with the From domain.
    pub spf_aligned: i64,
    /// Messages that passed DMARC (DKIM or SPF aligned).
    pub passed: i64,
}

impl Source {
    pub fn failed(&self) -> i64 {
        (self.messages - self.passed).max(0)
    }
}

/// A domain's figures over a period.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Summary {
    pub messages: i64,
    pub dkim_aligned: i64,
    pub spf_aligned: i64,
    pub passed: i64,
    /// Shares of `messages`, 0 to 1 (0 without messages).
    pub dkim_pass_rate: f64,
    pub spf_pass_rate: f64,
    pub dmarc_pass_rate: f64,
    /// Source IPs, the most messages first (at most `LISTED`).
    pub sources: Vec<Source>,
    /// Sources that are ours with messages failing DMARC, the most failures first.
    pub own_failing: Vec<Source>,
    /// Sources that are not ours, the most messages first (at most `LISTED`).
    pub unknown_senders: Vec<Source>,
    /// Distinct source IPs in all.
    pub source_count: usize,
}

/// Sources listed at most in each list (the totals cover all).
pub const LISTED: usize = 100;

/// `part` of `whole`, rounded to four decimals.
pub fn rate(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        return 0.0;
    }
    (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0
}

/// Adds up sources (one entry per IP; entries of the same IP are merged).
pub fn summarize(sources: Vec<Source>) -> Summary {
    let mut merged: std::collections::BTreeMap<String, Source> = Default::default();
    for s in sources {
        match merged.get_mut(&s.ip) {
            Some(m) => {
                m.own |= s.own;
                m.messages += s.messages;
                m.dkim_aligned += s.dkim_aligned;
                m.spf_aligned += s.spf_aligned;
                m.passed += s.passed;
            }
            None => {
                merged.insert(s.ip.clone(), s);
            }
        }
    }
    let mut all: Vec<Source> = merged.into_values().collect();
    all.sort_by(|a, b| b.messages.cmp(&a.messages).then_with(|| a.ip.cmp(&b.ip)));
    let sum = |f: fn(&Source) -> i64| all.iter().map(f).fold(0i64, i64::saturating_add);
    let messages = sum(|s| s.messages);
    let dkim_aligned = sum(|s| s.dkim_aligned);
    let spf_aligned = sum(|s| s.spf_aligned);
    let passed = sum(|s| s.passed);
    let mut own_failing: Vec<Source> = all
        .iter()
        .filter(|s| s.own && s.failed() > 0)
        .cloned()
        .collect();
    own_failing.sort_by(|a, b| b.failed().cmp(&a.failed()).then_with(|| a.ip.cmp(&b.ip)));
    own_failing.truncate(LISTED);
    let unknown_senders: Vec<Source> = all
        .iter()
        .filter(|s| !s.own)
        .take(LISTED)
        .cloned()
        .collect();
    let source_count = all.len();
    all.truncate(LISTED);
    Summary {
        messages,
        dkim_aligned,
        spf_aligned,
        passed,
        dkim_pass_rate: rate(dkim_aligned, messages),
        spf_pass_rate: rate(spf_aligned, messages),
        dmarc_pass_rate: rate(passed, messages),
        sources: all,
        own_failing,
        unknown_senders,
        source_count,
    }
}

/// The own IPs a report shows failing DMARC, with their failed messages: each is an
/// alert. `own` tells whether an IP is ours.
pub fn own_failures(
    records: &[super::Record],
    own: impl Fn(&std::net::IpAddr) -> bool,
) -> Vec<(std::net::IpAddr, u64)> {
    let mut out: std::collections::BTreeMap<std::net::IpAddr, u64> = Default::default();
    for r in records.iter().filter(|r| !r.passes() && own(&r.source_ip)) {
        let n = out.entry(r.source_ip).or_default();
        *n = n.saturating_add(r.count);
    }
    out.into_iter().filter(|(_, n)| *n > 0).collect()
}
