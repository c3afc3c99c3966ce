//! Templates: MailWizz-style variable tags, their validation and rendering, the
//! three-level fallback of seed 000 §4.3, right-to-left languages and the text part.
//!
//! A tag is `[NAME]` or `[NAME|fallback]`, NAME being upper-case letters, digits and `_`
//! starting with a letter (`[FNAME]`, `[PROFILE_URL|https://example.com]`). Anything else
//! between brackets (`[1]`, `a[href]`, `[Note]`) is text, as in MailWizz.

use std::collections::{BTreeMap, BTreeSet};

/// The languages templates are written in (ISO 639-1, lower case).
pub const LANGUAGES: [&str; 9] = ["fr", "en", "es", "de", "pt", "ru", "zh", "hi", "ar"];

/// The language every selection falls back to.
pub const DEFAULT_LANGUAGE: &str = "en";

/// Variables every template may use: the contact's fields and the system's links.
pub const STANDARD_VARIABLES: [&str; 11] = [
    "EMAIL",
    "FNAME",
    "LNAME",
    "COMPANY",
    "PHONE",
    "CITY",
    "COUNTRY",
    "LANGUAGE",
    "ADDRESS",
    "UNSUBSCRIBE_URL",
    "CURRENT_YEAR",
];

/// The tags an item of an RSS campaign's feed fills inside its `[RSS_ITEMS]` block.
pub const FEED_ITEM_TAGS: [&str; 5] = [
    "RSS_ITEM_TITLE",
    "RSS_ITEM_LINK",
    "RSS_ITEM_SUMMARY",
    "RSS_ITEM_DATE",
    "RSS_ITEM_IMAGE",
];

/// Whether a tag is an RSS feed's (`[RSS_ITEMS]` or an item's): known to every template,
/// filled only by an rss campaign's runs (`ee_core::rss`), empty elsewhere.
pub fn is_feed_tag(name: &str) -> bool {
    name == "RSS_ITEMS" || FEED_ITEM_TAGS.contains(&name)
}

/// A supported language from any case (`FR`, `fr`); `None` when not one of the nine.
pub fn language(code: &str) -> Option<&'static str> {
    let lower = code.trim().to_ascii_lowercase();
    LANGUAGES.iter().copied().find(|l| *l == lower)
}

/// Languages written right to left.
pub fn is_rtl(language: &str) -> bool {
    language.eq_ignore_ascii_case("ar")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment<'a> {
    Text(&'a str),
    Var {
        name: &'a str,
        fallback: Option<&'a str>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("tag `{tag}` at offset {offset} is not closed by `]`")]
    Unclosed { tag: String, offset: usize },
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'
}

/// Splits a template text into text and tags.
pub fn parse(source: &str) -> Result<Vec<Segment<'_>>, Vec<SyntaxError>> {
    let bytes = source.as_bytes();
    let mut segments = Vec::new();
    let mut errors = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'[' || !bytes.get(i + 1).is_some_and(u8::is_ascii_uppercase) {
            i += 1;
            continue;
        }
        let name_start = i + 1;
        let mut j = name_start;
        while j < bytes.len() && is_name_char(bytes[j]) {
            j += 1;
        }
        let name = &source[name_start..j];
        match bytes.get(j) {
            Some(b']') => {
                push_text(&mut segments, &source[text_start..i]);
                segments.push(Segment::Var {
                    name,
                    fallback: None,
                });
                i = j + 1;
                text_start = i;
            }
            Some(b'|') => {
                // The fallback runs to `]` on the same line.
                let rest = &source[j + 1..];
                let end = rest.find([']', '\n', '[']);
                match end {
                    Some(k) if rest.as_bytes()[k] == b']' => {
                        push_text(&mut segments, &source[text_start..i]);
                        segments.push(Segment::Var {
                            name,
                            fallback: Some(&rest[..k]),
                        });
                        i = j + 1 + k + 1;
                        text_start = i;
                    }
                    _ => {
                        errors.push(SyntaxError::Unclosed {
                            tag: format!("[{name}|"),
                            offset: i,
                        });
                        i = j + 1;
                    }
                }
            }
            // `[FNAME` then a space, a line end, markup or the end: a tag left open.
            // `[Note]` or `[A-1]` stay text.
            next if name.len() >= 2
                && next.is_none_or(|b| b.is_ascii_whitespace() || b"<>\"',;.!?".contains(b)) =>
            {
                errors.push(SyntaxError::Unclosed {
                    tag: format!("[{name}"),
                    offset: i,
                });
                i = j;
            }
            _ => i = j,
        }
    }
    push_text(&mut segments, &source[text_start..]);
    if errors.is_empty() {
        Ok(segments)
    } else {
        Err(errors)
    }
}

fn push_text<'a>(segments: &mut Vec<Segment<'a>>, text: &'a str) {
    if !text.is_empty() {
        segments.push(Segment::Text(text));
    }
}

/// What is wrong with a template's parts, each named by its part (`subject`, `html`, `text`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    /// `(part, message)` for each syntax error.
    pub syntax: Vec<(String, String)>,
    /// Variables used but neither standard nor declared by the template.
    pub unknown: BTreeSet<String>,
}

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.syntax.is_empty() && self.unknown.is_empty()
    }
}

/// Checks the parts of a template: syntax, and that each variable is standard or declared.
pub fn check<'a>(
    parts: impl IntoIterator<Item = (&'a str, &'a str)>,
    declared: &BTreeMap<String, Option<String>>,
) -> Problems {
    let mut problems = Problems::default();
    for (part, source) in parts {
        match parse(source) {
            Err(errors) => problems
                .syntax
                .extend(errors.into_iter().map(|e| (part.to_owned(), e.to_string()))),
            Ok(segments) => {
                for segment in segments {
                    if let Segment::Var { name, .. } = segment
                        && !STANDARD_VARIABLES.contains(&name)
                        && !is_feed_tag(name)
                        && !declared.contains_key(name)
                    {
                        problems.unknown.insert(name.to_owned());
                    }
                }
            }
        }
    }
    problems
}

/// Where the value of a variable comes from: the recipient's values first, then the tag's
/// own fallback, then the template's default for it, else empty.
pub struct Values<'a> {
    pub values: &'a BTreeMap<String, String>,
    pub defaults: &'a BTreeMap<String, Option<String>>,
}

impl Values<'_> {
    fn resolve<'s>(&'s self, name: &str, fallback: Option<&'s str>) -> &'s str {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
            .or(fallback)
            .or_else(|| self.defaults.get(name).and_then(|d| d.as_deref()))
            .unwrap_or("")
    }
}

/// Renders parsed segments. In HTML, recipients' values are escaped; the author's own
/// text (fallbacks and defaults) is HTML already and goes in as written.
pub fn render(segments: &[Segment<'_>], values: &Values<'_>, html: bool) -> String {
    let mut out = String::with_capacity(segments.iter().map(segment_len).sum::<usize>() + 64);
    for segment in segments {
        match segment {
            Segment::Text(t) => out.push_str(t),
            Segment::Var { name, fallback } => {
                let from_recipient = values
                    .values
                    .get(*name)
                    .is_some_and(|v| !v.trim().is_empty());
                let value = values.resolve(name, *fallback);
                if html && from_recipient {
                    escape_html_into(value, &mut out);
                } else {
                    out.push_str(value);
                }
            }
        }
    }
    out
}

fn segment_len(segment: &Segment<'_>) -> usize {
    match segment {
        Segment::Text(t) => t.len(),
        Segment::Var { .. } => 16,
    }
}

pub fn escape_html_into(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Marks an HTML body right to left for RTL languages: `dir="rtl"` on `<html>` (and
/// `lang`), or a wrapping `<div dir="rtl">` for a fragment. A `dir` already given wins.
pub fn apply_direction(html: &str, language: &str) -> String {
    if !is_rtl(language) {
        return html.to_owned();
    }
    let lower = html.to_ascii_lowercase();
    if let Some(start) = lower.find("<html")
        && let Some(end) = lower[start..].find('>').map(|e| start + e)
    {
        if lower[start..end].contains("dir=") {
            return html.to_owned();
        }
        let at = start + "<html".len();
        return format!(
            "{} dir=\"rtl\" lang=\"{}\"{}",
            &html[..at],
            language.to_ascii_lowercase(),
            &html[at..]
        );
    }
    format!("<div dir=\"rtl\">{html}</div>")
}

/// A template as the selection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub id: &'a str,
    /// `None` (or "general") is the language's general template.
    pub category: Option<&'a str>,
    pub language: &'a str,
}

/// Which of the three levels a selection matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    CategoryAndLanguage,
    LanguageGeneral,
    EnglishGeneral,
    /// No general template in English either: the category's English one.
    EnglishCategory,
}

fn is_general(category: Option<&str>) -> bool {
    category.is_none_or(|c| c.trim().is_empty() || c.eq_ignore_ascii_case("general"))
}

/// Seed 000 §4.3: category + language, then the language's general template, then the
/// English general one; and where there is none, the category's English template. The
/// one rule the preview, `select` and sending all follow.
pub fn select<'a>(
    candidates: &[Candidate<'a>],
    language: &str,
    category: Option<&str>,
) -> Option<(&'a str, Level)> {
    let same_language = |c: &&Candidate<'a>| c.language.eq_ignore_ascii_case(language);
    if let Some(category) = category.filter(|c| !is_general(Some(c)))
        && let Some(found) = candidates
            .iter()
            .filter(same_language)
            .find(|c| c.category.is_some_and(|k| k.eq_ignore_ascii_case(category)))
    {
        return Some((found.id, Level::CategoryAndLanguage));
    }
    if let Some(found) = candidates
        .iter()
        .filter(same_language)
        .find(|c| is_general(c.category))
    {
        return Some((found.id, Level::LanguageGeneral));
    }
    let english = |c: &&Candidate<'a>| c.language.eq_ignore_ascii_case(DEFAULT_LANGUAGE);
    if let Some(found) = candidates
        .iter()
        .filter(english)
        .find(|c| is_general(c.category))
    {
        return Some((found.id, Level::EnglishGeneral));
    }
    let category = category.filter(|c| !is_general(Some(c)))?;
    candidates
        .iter()
        .filter(english)
        .find(|c| c.category.is_some_and(|k| k.eq_ignore_ascii_case(category)))
        .map(|c| (c.id, Level::EnglishCategory))
}

/// The text part of an HTML body: blocks become lines, links keep their address, list
/// items get a dash, scripts, styles and the head are dropped, entities decoded.
///
/// Written here rather than taken from a crate: html2text drags in html5ever and a DOM for
/// what is, for e-mail bodies, a single pass over tags.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    let mut skip_until: Option<&'static str> = None;
    let mut link: Option<String> = None;
    let mut link_text_start = 0;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            if skip_until.is_none() {
                push_text_collapsed(&decode_entities(rest), &mut out);
            }
            break;
        };
        if skip_until.is_none() {
            push_text_collapsed(&decode_entities(&rest[..lt]), &mut out);
        }
        let after = &rest[lt..];
        if after.starts_with("<!--") {
            rest = after.find("-->").map_or("", |e| &after[e + 3..]);
            continue;
        }
        let Some(gt) = after.find('>') else {
            break;
        };
        let tag = &after[1..gt];
        rest = &after[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if let Some(end) = skip_until {
            if closing && name == end {
                skip_until = None;
            }
            continue;
        }
        match (name.as_str(), closing) {
            ("script", false) => skip_until = Some("script"),
            ("style", false) => skip_until = Some("style"),
            ("head", false) => skip_until = Some("head"),
            ("title", false) => skip_until = Some("title"),
            ("br", _) => newline(&mut out, 1),
            (
                "p" | "div" | "table" | "tr" | "ul" | "ol" | "h1" | "h2" | "h3" | "h4" | "h5"
                | "h6" | "blockquote",
                _,
            ) => newline(&mut out, if name == "p" { 2 } else { 1 }),
            ("li", false) => {
                newline(&mut out, 1);
                out.push_str("- ");
            }
            ("td" | "th", true) => out.push(' '),
            ("hr", _) => {
                newline(&mut out, 1);
                out.push_str("----");
                newline(&mut out, 1);
            }
            ("a", false) => {
                link = attribute(tag, "href").map(|h| decode_entities(&h));
                link_text_start = out.len();
            }
            ("a", true) => {
                if let Some(href) = link.take() {
                    let text = out[link_text_start..].trim().to_owned();
                    let shown = href.strip_prefix("mailto:").unwrap_or(&href);
                    if !href.starts_with('#') && text != shown && !text.is_empty() {
                        out.push_str(&format!(" ({shown})"));
                    } else if text.is_empty() {
                        out.push_str(shown);
                    }
                }
            }
            ("img", _) => {
                if let Some(alt) = attribute(tag, "alt").filter(|a| !a.trim().is_empty()) {
                    push_text_collapsed(&decode_entities(&alt), &mut out);
                }
            }
            _ => {}
        }
    }
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let mut text = String::with_capacity(out.len());
    let mut blank = 0;
    for line in lines {
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !text.is_empty() {
            text.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        text.push_str(line);
    }
    text
}

fn newline(out: &mut String, count: usize) {
    let have = out.chars().rev().take_while(|c| *c == '\n').count();
    for _ in have..count {
        out.push('\n');
    }
}

fn push_text_collapsed(text: &str, out: &mut String) {
    for c in text.chars() {
        if c.is_whitespace() && c != '\u{a0}' {
            if !out.ends_with([' ', '\n']) && !out.is_empty() {
                out.push(' ');
            }
        } else if c == '\u{a0}' {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
}

/// The value of an attribute in a tag's source (`a href="x"`), quoted or not.
pub fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find(name) {
        let at = from + found;
        from = at + name.len();
        let before_ok = at > 0 && lower.as_bytes()[at - 1].is_ascii_whitespace();
        let rest = lower[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let value_at = tag.len() - rest.len() + 1;
        let value = tag[value_at..].trim_start();
        return Some(match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or("").to_owned(),
            _ => value
                .split(|c: char| c.is_whitespace() || c == '>')
                .next()
                .unwrap_or("")
                .to_owned(),
        });
    }
    None
}

/// Decodes the entities e-mail HTML uses: the five XML ones, `&nbsp;`, and numeric ones.
pub fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let end = after.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let entity = &after[1..e];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
