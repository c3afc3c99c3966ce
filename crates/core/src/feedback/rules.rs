//! Classification rules as data: each line of a rules file names a class and a category
//! and the conditions a reply must meet; the first line that matches wins. The shipped
//! rules (`rules.txt`) come with the binary; a deployment's own file is tried first.
//!
//! ```text
//! # class  category      conditions (all must hold)
//! hard     bad-mailbox   text "user unknown"
//! hard     bad-mailbox   status *.1.1
//! soft     quota-issues  code 552
//! block    spam-related  code 5xx text "spamhaus"
//! ```
//! `status` matches an enhanced status code (`*` for any class, two parts for a prefix),
//! `code` a reply code (`x` for any digit), `text` a part of the diagnostic, in any case.
//! Written by hand: the format is three words and a quoted string, no crate is needed.

use super::{Category, Class, Reply};

/// The rules shipped with the binary.
pub const SHIPPED: &str = include_str!("rules.txt");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RulesError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// class (None = any), subject, detail (None = any).
    Status(Option<u8>, u16, Option<u16>),
    /// Three places, each a digit or any.
    Code([Option<u8>; 3]),
    /// Lowercase.
    Text(String),
}

impl Condition {
    fn holds(&self, reply: &Reply, text: &str) -> bool {
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
            Condition::Text(part) => text.contains(part.as_str()),
        }
    }
}

/// Which file a rule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The rules shipped with the binary (`rules.txt`).
    Shipped,
    /// The deployment's own file (`EE_FEEDBACK_RULES_FILE`), read first.
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

impl Rule {
    /// Whether the rule holds on a bare reply code (`code 550`) and nothing else.
    pub fn by_code_only(&self) -> bool {
        self.conditions
            .iter()
            .all(|c| matches!(c, Condition::Code(_)))
    }
}

/// One line of a rules file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub class: Class,
    pub category: Category,
    conditions: Vec<Condition>,
    /// Its line in its file, for explanations.
    pub line: usize,
    pub origin: Origin,
    /// The line as written.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    /// The shipped rules (tested to parse).
    pub fn shipped() -> Self {
        #[allow(clippy::expect_used)]
        Self::parse(SHIPPED).expect("the shipped rules parse (tested)")
    }

    /// A deployment's rules, tried before the shipped ones.
    pub fn with_extra(extra: &str) -> Result<Self, RulesError> {
        let mut rules = Self::parse(extra)?;
        for rule in &mut rules.rules {
            rule.origin = Origin::Operator;
        }
        rules.rules.extend(Self::shipped().rules);
        Ok(rules)
    }

    pub fn parse(text: &str) -> Result<Self, RulesError> {
        let mut rules = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            rules.push(parse_line(line, line_no)?);
        }
        Ok(Self { rules })
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first rule the reply meets.
    pub fn matching(&self, reply: &Reply) -> Option<&Rule> {
        let text = reply.diagnostic.to_lowercase();
        self.rules
            .iter()
            .find(|r| r.conditions.iter().all(|c| c.holds(reply, &text)))
    }

    /// The class and category of the first rule the reply meets.
    pub fn classify(&self, reply: &Reply) -> Option<(Class, Category)> {
        self.matching(reply).map(|r| (r.class, r.category))
    }

    /// As `classify`, but `None` when what matched is only a bare reply code: the rules
    /// then know no more than a source that names its own category.
    pub fn classify_by_words(&self, reply: &Reply) -> Option<(Class, Category)> {
        self.matching(reply)
            .filter(|r| !r.by_code_only())
            .map(|r| (r.class, r.category))
    }
}

fn parse_line(line: &str, line_no: usize) -> Result<Rule, RulesError> {
    let error = |message: String| RulesError {
        line: line_no,
        message,
    };
    let mut rest = line;
    let mut word = || -> Option<&str> {
        let trimmed = rest.trim_start();
        if trimmed.is_empty() {
            return None;
        }
        let end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        let (w, r) = trimmed.split_at(end);
        rest = r;
        Some(w)
    };
    let class_word = word().ok_or_else(|| error("no class".into()))?;
    let class =
        Class::parse(class_word).ok_or_else(|| error(format!("unknown class {class_word:?}")))?;
    let category_word = word().ok_or_else(|| error("no category".into()))?;
    let category = Category::parse(category_word)
        .ok_or_else(|| error(format!("unknown category {category_word:?}")))?;
    let mut conditions = Vec::new();
    loop {
        let trimmed = rest.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            break;
        }
        let end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        let (keyword, after) = trimmed.split_at(end);
        let after = after.trim_start();
        let condition = match keyword {
            "text" => {
                let quoted = after
                    .strip_prefix('"')
                    .ok_or_else(|| error("text takes a quoted string".into()))?;
                let close = quoted
                    .find('"')
                    .ok_or_else(|| error("the quoted string is not closed".into()))?;
                let part = &quoted[..close];
                if part.trim().is_empty() {
                    return Err(error("the quoted string is empty".into()));
                }
                rest = &quoted[close + 1..];
                Condition::Text(part.to_lowercase())
            }
            "status" | "code" => {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                let (value, r) = after.split_at(end);
                rest = r;
                if keyword == "status" {
                    status_pattern(value)
                        .ok_or_else(|| error(format!("bad status pattern {value:?}")))?
                } else {
                    code_pattern(value)
                        .ok_or_else(|| error(format!("bad code pattern {value:?}")))?
                }
            }
            other => return Err(error(format!("unknown condition {other:?}"))),
        };
        conditions.push(condition);
    }
    if conditions.is_empty() {
        return Err(error("a rule needs at least one condition".into()));
    }
    Ok(Rule {
        class,
        category,
        conditions,
        line: line_no,
        origin: Origin::Shipped,
        text: line.to_owned(),
    })
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
