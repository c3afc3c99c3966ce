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
//! `code` a reply code (`x` for any digit), `text` a part of the diagnostic, in any case,
//! `regex` a regular expression (`crate::reply_pattern`).

use super::{Category, Class, Reply};
use crate::reply_pattern::{Condition, all_hold, parse_conditions};
pub use crate::reply_pattern::{Origin, RulesError};

/// The rules shipped with the binary.
pub const SHIPPED: &str = include_str!("rules.txt");

impl Rule {
    /// Whether the rule holds on a bare reply code (`code 550`) and nothing else.
    pub fn by_code_only(&self) -> bool {
        self.conditions.iter().all(Condition::is_code)
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
            .find(|r| all_hold(&r.conditions, reply, &text))
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
    let (conditions, left) = parse_conditions(rest).map_err(error)?;
    let left = left.trim_start();
    if !left.is_empty() && !left.starts_with('#') {
        let word = left.split_whitespace().next().unwrap_or(left);
        return Err(error(format!("unknown condition {word:?}")));
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
