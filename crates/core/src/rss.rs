//! RSS-to-email campaigns, without I/O: the limits a feed is held to, the feed read into
//! items (RSS 0.9x/1.0/2.0 and Atom, through feed-rs), which items are new, and the
//! `[RSS_ITEMS]…[/RSS_ITEMS]` repeat block rendered with them.

use std::collections::BTreeSet;

use crate::template::escape_html_into;

/// The most bytes read from a feed; a longer one is refused.
pub const MAX_FEED_BYTES: usize = 2 * 1024 * 1024;
/// The most items taken from one feed (the first ones, as the feed lists them).
pub const MAX_ITEMS: usize = 200;
/// The most items one run sends (the newest); the first check sends at most this many.
pub const MAX_ITEMS_PER_RUN: usize = 20;
/// The longest feed URL.
pub const MAX_URL_LEN: usize = 2048;
/// Field lengths kept (characters); longer text is cut.
pub const MAX_TITLE_CHARS: usize = 300;
pub const MAX_LINK_CHARS: usize = 2048;
pub const MAX_SUMMARY_CHARS: usize = 2000;
/// The shortest and longest check interval, in minutes (15 minutes to 7 days).
pub const MIN_INTERVAL_MINUTES: u32 = 15;
pub const MAX_INTERVAL_MINUTES: u32 = 7 * 24 * 60;
/// How long a fetch may take, in seconds.
pub const FETCH_TIMEOUT_SECS: u64 = 15;

/// The repeat block's tags.
pub const BLOCK_OPEN: &str = "[RSS_ITEMS]";
pub const BLOCK_CLOSE: &str = "[/RSS_ITEMS]";
/// The tags an item fills inside the block.
pub use crate::template::{FEED_ITEM_TAGS as ITEM_TAGS, is_feed_tag};

/// Whether an interval is within bounds; the message names the bounds when not.
pub fn check_interval(minutes: u32) -> Result<(), String> {
    if (MIN_INTERVAL_MINUTES..=MAX_INTERVAL_MINUTES).contains(&minutes) {
        Ok(())
    } else {
        Err(format!(
            "must be {MIN_INTERVAL_MINUTES} to {MAX_INTERVAL_MINUTES} minutes (15 minutes to 7 days)"
        ))
    }
}

/// One item of a feed, as a message shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// What identifies it across checks: its guid or Atom id (for an item without one,
    /// feed-rs's stable hash of it), else its link, else its title.
    pub key: String,
    pub title: String,
    pub link: String,
    pub summary: String,
    /// When it was published (or last updated), in ms since the epoch.
    pub published_ms: Option<i64>,
    pub image: String,
}

/// Reads a feed; the reason when it is not one.
pub fn parse(bytes: &[u8]) -> Result<Vec<Item>, String> {
    if bytes.len() > MAX_FEED_BYTES {
        return Err(format!("the feed is over {MAX_FEED_BYTES} bytes"));
    }
    let feed = feed_rs::parser::parse(bytes).map_err(|e| format!("not a feed: {e}"))?;
    let mut items = Vec::new();
    for entry in feed.entries.into_iter().take(MAX_ITEMS) {
        let link = entry
            .links
            .iter()
            .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
            .or(entry.links.first())
            .map(|l| l.href.clone())
            .unwrap_or_default();
        let title = entry.title.map(|t| t.content).unwrap_or_default();
        let summary = entry
            .summary
            .map(|t| t.content)
            .or_else(|| entry.content.and_then(|c| c.body))
            .unwrap_or_default();
        let image = entry
            .media
            .iter()
            .flat_map(|m| {
                m.content
                    .iter()
                    .filter_map(|c| c.url.as_ref().map(|u| u.to_string()))
                    .chain(m.thumbnails.iter().map(|t| t.image.uri.clone()))
            })
            .next()
            .unwrap_or_default();
        let published_ms = entry
            .published
            .or(entry.updated)
            .map(|d| d.timestamp_millis());
        let key = [entry.id.trim(), link.trim(), title.trim()]
            .into_iter()
            .find(|k| !k.is_empty())
            .map(|k| cut(k, MAX_LINK_CHARS))
            .unwrap_or_default();
        if key.is_empty() {
            continue;
        }
        items.push(Item {
            key,
            title: cut(strip_tags(&title).trim(), MAX_TITLE_CHARS),
            link: web_address(&link),
            summary: cut(strip_tags(&summary).trim(), MAX_SUMMARY_CHARS),
            published_ms,
            image: web_address(&image),
        });
    }
    Ok(items)
}

/// The items not sent before, newest first, at most `MAX_ITEMS_PER_RUN`. An item whose
/// key was sent is not new again, even when its date changes.
pub fn new_items(items: Vec<Item>, sent: &BTreeSet<String>) -> Vec<Item> {
    let mut seen = BTreeSet::new();
    let mut fresh: Vec<Item> = items
        .into_iter()
        .filter(|i| !sent.contains(&i.key) && seen.insert(i.key.clone()))
        .collect();
    // Newest first; items without a date keep the feed's order after the dated ones.
    fresh.sort_by_key(|i| std::cmp::Reverse(i.published_ms.unwrap_or(i64::MIN)));
    fresh.truncate(MAX_ITEMS_PER_RUN);
    fresh
}

/// Expands every `[RSS_ITEMS]…[/RSS_ITEMS]` block of `body` once per item; item values are
/// HTML-escaped when `html`. Their `[` is written `&#91;` (html) or `(` (text) so that a
/// feed cannot fill in the recipient's own variables. A block without its end is left as
/// it is.
pub fn render(body: &str, items: &[Item], html: bool) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find(BLOCK_OPEN) {
        let after = &rest[start + BLOCK_OPEN.len()..];
        let Some(end) = after.find(BLOCK_CLOSE) else {
            break;
        };
        out.push_str(&rest[..start]);
        let inner = &after[..end];
        for item in items {
            render_item(inner, item, html, &mut out);
        }
        rest = &after[end + BLOCK_CLOSE.len()..];
    }
    out.push_str(rest);
    out
}

fn render_item(inner: &str, item: &Item, html: bool, out: &mut String) {
    let date = item
        .published_ms
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    let values = [
        ("[RSS_ITEM_TITLE]", item.title.as_str()),
        ("[RSS_ITEM_LINK]", item.link.as_str()),
        ("[RSS_ITEM_SUMMARY]", item.summary.as_str()),
        ("[RSS_ITEM_DATE]", date.as_str()),
        ("[RSS_ITEM_IMAGE]", item.image.as_str()),
    ];
    let mut rest = inner;
    'outer: while let Some(at) = rest.find('[') {
        out.push_str(&rest[..at]);
        for (tag, value) in values {
            if rest[at..].starts_with(tag) {
                write_value(value, html, out);
                rest = &rest[at + tag.len()..];
                continue 'outer;
            }
        }
        out.push('[');
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

fn write_value(value: &str, html: bool, out: &mut String) {
    if html {
        let mut escaped = String::with_capacity(value.len());
        escape_html_into(value, &mut escaped);
        out.push_str(&escaped.replace('[', "&#91;"));
    } else {
        out.push_str(&value.replace('[', "("));
    }
}

/// Text without its tags (a summary is often HTML): what is between `<` and `>` dropped.
fn strip_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    for c in text.chars() {
        match c {
            '<' => inside = true,
            '>' if inside => inside = false,
            c if !inside => out.push(c),
            _ => {}
        }
    }
    out
}

/// A link or image as a message may hold it: an http(s) address, else nothing (a feed's
/// `javascript:` or `data:` link never reaches an `href`).
fn web_address(url: &str) -> String {
    let url = url.trim();
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        cut(url, MAX_LINK_CHARS)
    } else {
        String::new()
    }
}

fn cut(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

#[cfg(test)]
#[path = "rss_tests.rs"]
mod tests;
