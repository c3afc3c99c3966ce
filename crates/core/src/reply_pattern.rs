//! Conditions on an SMTP reply, as the rules files write them (the feedback rules and the
//! traffic-shaping rules share them): `status 4.7.28`, `code 42x`, `text "words"`,
//! `regex "…"`. All the conditions of a line must hold.
//!
//! Written by hand: the format is a keyword and a value, no crate is needed; the regular
//! expressions are the `regex` crate's (linear time, no look-around), size-limited since an
//! operator's file is read at start-up.

use crate::feedback::Reply;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RulesError {
    pub line: usize,
    pub message: String,
}

/// Which file a rule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The rules shipped with the binary (`rules.txt`).
    Shipped,
    /// The deployment's own file (`EE_FEEDBACK_RULES_FILE`, `EE_SHAPING_RULES_FILE`), read
    /// first.
    Operator,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Shipped => "shipped",
            Origin::Operator => "operator",
        }
    }
}

/// The largest compiled regular expression a rule may hold (bytes).
const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// The longest pattern a rule may write.
const PATTERN_MAX: usize = 512;

#[derive(Debug, Clone)]
pub enum Condition {
    /// class (None = any), subject, detail (None = any).
    Status(Option<u8>, u16, Option<u16>),
    /// Three places, each a digit or any.
    Code([Option<u8>; 3]),
    /// Lowercase.
    Text(String),
    /// Case-insensitive.
    Regex(regex::Regex),
}

impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Status(a, b, c), Self::Status(x, y, z)) => (a, b, c) == (x, y, z),
            (Self::Code(a), Self::Code(b)) => a == b,
            (Self::Text(a), Self::Text(b)) => a == b,
            (Self::Regex(a), Self::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl Eq for Condition {}

impl Condition {
    /// Whether the reply meets it; `lowercase` is the reply's diagnostic in lower case.
    pub fn holds(&self, reply: &Reply, lowercase: &str) -> bool {
        match self {
            Condition::Status(class, subject, detail) => {
                let Some(status) = &reply.status else {
                    return false;
                };
                let mut parts = status.split('.');
                let (Some(c), Some(s), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
                    return false;
                };
                class.is_none_or(|want| c.parse() == Ok(want))
                    && s.parse() == Ok(*subject)
                    && detail.is_none_or(|want| d.parse() == Ok(want))
            }
            Condition::Code(places) => {
                let Some(code) = reply.code else {
                    return false;
                };
                let digits = [code / 100, code / 10 % 10, code % 10];
                places
                    .iter()
                    .zip(digits)
                    .all(|(want, got)| want.is_none_or(|w| u16::from(w) == got))
            }
            Condition::Text(part) => lowercase.contains(part.as_str()),
            Condition::Regex(re) => re.is_match(&reply.diagnostic),
        }
    }

    pub fn is_code(&self) -> bool {
        matches!(self, Condition::Code(_))
    }
}

/// Whether every condition holds.
pub fn all_hold(conditions: &[Condition], reply: &Reply, lowercase: &str) -> bool {
    conditions.iter().all(|c| c.holds(reply, lowercase))
}

/// Reads conditions from the start of `rest` until its end, a `#` comment or a word that
/// is not a condition keyword; returns them and what follows.
pub fn parse_conditions(mut rest: &str) -> Result<(Vec<Condition>, &str), String> {
    let mut conditions = Vec::new();
    loop {
        let trimmed = rest.trim_start();
        let end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        let (keyword, after) = trimmed.split_at(end);
        let after = after.trim_start();
        let condition = match keyword {
            "text" | "regex" => {
                if !after.starts_with('"') {
                    return Err(format!("{keyword} takes a quoted string"));
                }
                let (quoted, remainder) =
                    quoted(after).ok_or_else(|| "the quoted string is not closed".to_owned())?;
                if quoted.trim().is_empty() {
                    return Err("the quoted string is empty".into());
                }
                if quoted.len() > PATTERN_MAX {
                    return Err(format!("the quoted string is over {PATTERN_MAX} bytes"));
                }
                rest = remainder;
                if keyword == "text" {
                    Condition::Text(quoted.to_lowercase())
                } else {
                    Condition::Regex(
                        regex::RegexBuilder::new(quoted)
                            .case_insensitive(true)
                            .size_limit(REGEX_SIZE_LIMIT)
                            .build()
                            .map_err(|e| format!("bad regex: {e}"))?,
                    )
                }
            }
            "status" | "code" => {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                let (value, r) = after.split_at(end);
                rest = r;
                if keyword == "status" {
                    status_pattern(value).ok_or_else(|| format!("bad status pattern {value:?}"))?
                } else {
                    code_pattern(value).ok_or_else(|| format!("bad code pattern {value:?}"))?
                }
            }
            _ => return Ok((conditions, trimmed)),
        };
        conditions.push(condition);
    }
}

/// `"…"` at the start of `text`: its content and what follows the closing quote.
fn quoted(text: &str) -> Option<(&str, &str)> {
    let inner = text.strip_prefix('"')?;
    let close = inner.find('"')?;
    Some((&inner[..close], &inner[close + 1..]))
}

/// `5.1.1`, `*.1.1`, `5.7` (any detail), `*.7`.
fn status_pattern(value: &str) -> Option<Condition> {
    let parts: Vec<&str> = value.split('.').collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let class = match parts[0] {
        "*" => None,
        "2" | "4" | "5" => Some(parts[0].parse().ok()?),
        _ => return None,
    };
    let subject = parts[1].parse().ok()?;
    let detail = match parts.get(2) {
        Some(d) => Some(d.parse().ok()?),
        None => None,
    };
    Some(Condition::Status(class, subject, detail))
}

/// `550`, `55x`, `5xx`.
fn code_pattern(value: &str) -> Option<Condition> {
    let bytes = value.as_bytes();
    if bytes.len() != 3 || !matches!(bytes[0], b'2' | b'4' | b'5') {
        return None;
    }
    let mut places = [None; 3];
    for (place, b) in places.iter_mut().zip(bytes) {
        *place = match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'x' | b'X' => None,
            _ => return None,
        };
    }
    Some(Condition::Code(places))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holds(conditions: &str, line: &str) -> bool {
        let (conditions, rest) = parse_conditions(conditions).expect("parses");
        assert!(rest.trim().is_empty(), "left: {rest:?}");
        let reply = Reply::from_smtp(None, line);
        all_hold(&conditions, &reply, &reply.diagnostic.to_lowercase())
    }

    #[test]
    fn each_condition_reads_its_part_of_the_reply() {
        let gmail = "421-4.7.28 Our system has detected an unusual rate of unsolicited mail";
        assert!(holds("status 4.7.28", gmail));
        assert!(holds("status *.7", gmail));
        assert!(!holds("status 5.7.28", gmail));
        assert!(holds("code 42x", gmail));
        assert!(!holds("code 45x", gmail));
        assert!(holds(r#"text "UNUSUAL rate""#, gmail));
        assert!(holds(r#"regex "unusual\s+rate of \w+ mail""#, gmail));
        assert!(!holds(r#"regex "^550""#, gmail));
        assert!(holds(r#"code 421 status 4.7.28 text "unsolicited""#, gmail));
        assert!(!holds(r#"code 421 text "quota""#, gmail));
    }

    #[test]
    fn what_follows_the_conditions_is_returned() {
        let (conditions, rest) = parse_conditions(r#"code 421 text "a b" then suspend"#).unwrap();
        assert_eq!(conditions.len(), 2);
        assert_eq!(rest, "then suspend");
    }

    #[test]
    fn bad_patterns_are_named() {
        for (text, wanted) in [
            ("status 9.1.1", "bad status pattern"),
            ("code 6xx", "bad code pattern"),
            ("text unquoted", "quoted string"),
            (r#"text "open"#, "quoted string"),
            (r#"text """#, "empty"),
            (r#"regex "(unclosed""#, "bad regex"),
            (r#"regex "a{1000}{1000}""#, "bad regex"),
        ] {
            let error = parse_conditions(text).expect_err(text);
            assert!(error.contains(wanted), "{text}: {error}");
        }
    }

    proptest::proptest! {
        /// Whatever a rules file holds, reading its conditions ends without a panic.
        #[test]
        fn any_text_is_read_or_refused(text in "\\PC{0,80}") {
            let _ = parse_conditions(&text);
        }
    }
}
