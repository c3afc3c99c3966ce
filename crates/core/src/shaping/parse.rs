//! Reading a shaping file. Written by hand for the same reason as the feedback rules: a
//! line is a few keywords and values (`crate::reply_pattern` reads the conditions).

use super::*;
use crate::delivery::RetryPolicy;
use crate::reply_pattern::parse_conditions;

/// The longest a state may last (a week), and the shortest (a minute).
const MAX_DURATION_SECS: i64 = 7 * 86_400;
const MIN_DURATION_SECS: i64 = 60;

/// Reads `text`; `known` are providers defined elsewhere (the shipped ones, for an
/// operator's file) that its rules may name.
pub(super) fn parse(
    text: &str,
    origin: Origin,
    known: &[ProviderDef],
) -> Result<Shaping, RulesError> {
    let mut shaping = Shaping::default();
    let mut lines = 0;
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let error = |message: String| RulesError {
            line: line_no,
            message,
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        lines += 1;
        if lines > MAX_LINES {
            return Err(error(format!("more than {MAX_LINES} lines")));
        }
        let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        match keyword {
            "provider" => {
                let def = provider_line(rest, origin, line_no).map_err(error)?;
                if shaping.providers.iter().any(|p| p.name == def.name) {
                    return Err(error(format!("provider {} is defined twice", def.name)));
                }
                shaping.providers.push(def);
            }
            "rule" => {
                let mut rule = rule_line(rest).map_err(error)?;
                if let Some(name) = &rule.provider {
                    let defined = |defs: &[ProviderDef]| defs.iter().any(|p| &p.name == name);
                    if name != Provider::RELAY
                        && name != Provider::OTHER
                        && !defined(&shaping.providers)
                        && !defined(known)
                    {
                        return Err(error(format!(
                            "provider {name} is not defined (write a `provider` line before)"
                        )));
                    }
                }
                rule.line = line_no;
                rule.origin = origin;
                rule.text = line.to_owned();
                shaping.rules.push(rule);
            }
            other => {
                return Err(error(format!(
                    "a line starts with `provider` or `rule`, not {other:?}"
                )));
            }
        }
    }
    Ok(shaping)
}

fn provider_line(rest: &str, origin: Origin, line: usize) -> Result<ProviderDef, String> {
    let mut words = rest.split_whitespace();
    let name = words.next().ok_or("a provider needs a name")?;
    if !valid_provider_name(name) || name == Provider::OTHER || name == Provider::RELAY {
        return Err(format!(
            "{name:?} is not a provider name (a-z, 0-9 and -, up to 32; not other or relay)"
        ));
    }
    let mut mx_suffixes = Vec::new();
    for word in words {
        if word.starts_with('#') {
            break;
        }
        let suffix = word.trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if suffix.len() > 253 || !suffix.contains('.') || !suffix.split('.').all(label_ok) {
            return Err(format!("{word:?} is not a host name suffix"));
        }
        mx_suffixes.push(suffix);
    }
    if mx_suffixes.is_empty() {
        return Err(format!("provider {name} names no MX suffix"));
    }
    if mx_suffixes.len() > MAX_SUFFIXES {
        return Err(format!(
            "provider {name} names over {MAX_SUFFIXES} suffixes"
        ));
    }
    Ok(ProviderDef {
        name: name.to_owned(),
        mx_suffixes,
        origin,
        line,
    })
}

fn rule_line(rest: &str) -> Result<ShapingRule, String> {
    let rest = rest.trim_start();
    let (provider, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let provider = match provider {
        "" => return Err("a rule needs a provider (or *)".into()),
        "*" => None,
        name if valid_provider_name(name) => Some(name.to_owned()),
        name => return Err(format!("{name:?} is not a provider name")),
    };
    let (conditions, rest) = parse_conditions(rest)?;
    if conditions.is_empty() {
        return Err("a rule needs at least one condition".into());
    }
    let mut words = rest.split_whitespace().take_while(|w| !w.starts_with('#'));
    let mut word = words.next();
    let trigger = if word == Some("after") {
        let value = words.next().ok_or("after takes a count per hour (3/h)")?;
        let count = value
            .strip_suffix("/h")
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|n| (1..=100_000).contains(n))
            .ok_or_else(|| format!("after {value:?}: expected a count per hour such as 3/h"))?;
        word = words.next();
        Trigger::PerHour(count)
    } else {
        Trigger::Now
    };
    match word {
        Some("then") => {}
        Some(other) => return Err(format!("unknown condition {other:?} (or missing then)")),
        None => return Err("a rule needs `then` and an action".into()),
    }
    let mut actions = Vec::new();
    loop {
        let (action, secs) = action(&mut words)?;
        if action == Action::Nothing && !actions.is_empty() {
            return Err("none is an action of its own".into());
        }
        actions.push((action, secs));
        match words.next() {
            None => break,
            Some("and") if action != Action::Nothing => {}
            Some(extra) => return Err(format!("unexpected {extra:?} after the duration")),
        }
    }
    Ok(ShapingRule {
        provider,
        conditions,
        trigger,
        actions,
        line: 0,
        origin: Origin::Shipped,
        text: String::new(),
    })
}

/// One action and its duration: `suspend for 1h`, `rate 10/m for 30m`, `none`.
fn action<'a>(words: &mut impl Iterator<Item = &'a str>) -> Result<(Action, i64), String> {
    let action_word = words.next().ok_or("then takes an action")?;
    let positive = |value: Option<&str>, what: &str| {
        value
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|n| (1..=1_000_000).contains(n))
            .ok_or_else(|| format!("{what} takes a positive number"))
    };
    let action = match action_word {
        "suspend" => Action::Suspend,
        "suspend-tenant" => Action::SuspendTenant,
        "suspend-campaign" => Action::SuspendCampaign,
        "none" => return Ok((Action::Nothing, 0)),
        "connections" => Action::Connections(positive(words.next(), "connections")?),
        "per-connection" => Action::PerConnection(positive(words.next(), "per-connection")?),
        "rate" => {
            let value = words
                .next()
                .ok_or("rate takes a count per s, m or h (100/h)")?;
            let (count, unit) = value
                .split_once('/')
                .ok_or_else(|| format!("rate {value:?}: expected a count per s, m or h"))?;
            let per_secs = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                _ => return Err(format!("rate {value:?}: the unit is s, m or h")),
            };
            Action::Rate {
                count: positive(Some(count), "rate")?,
                per_secs,
            }
        }
        other => {
            return Err(format!(
                "unknown action {other:?} (suspend, rate, connections, per-connection, \
                 suspend-tenant, suspend-campaign, none)"
            ));
        }
    };
    match words.next() {
        Some("for") => {}
        Some(other) => return Err(format!("expected `for` and a duration, not {other:?}")),
        None => return Err("an action needs `for` and a duration".into()),
    }
    let value = words.next().ok_or("for takes a duration (30m, 2h, 1d)")?;
    let secs = RetryPolicy::parse_delays(value)
        .ok()
        .filter(|v| v.len() == 1)
        .map(|v| v[0])
        .ok_or_else(|| format!("for {value:?}: expected a duration such as 30m, 2h"))?;
    if !(MIN_DURATION_SECS..=MAX_DURATION_SECS).contains(&secs) {
        return Err(format!("for {value}: between 1m and 7d"));
    }
    Ok((action, secs))
}
