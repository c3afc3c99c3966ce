//! A template's design: blocks (heading, text, image, button, columns, divider, spacer,
//! footer) that the admin UI's visual editor arranges, checked here and rendered into
//! e-mail-safe HTML (`html.rs`: tables and inline styles only).
//!
//! The design is stored beside the HTML it renders to, so the editor reopens a template
//! with its blocks (the round trip); the HTML is always the design's rendering, never
//! edited apart from it: saving hand-written HTML drops the design.
//!
//! A design comes from a browser, so it is outside input: its size, the number and
//! nesting of blocks, every text's length and every link's scheme are bounded, and each
//! problem names the place it is at (`blocks[2].columns[0].blocks[1].href`).

mod html;
mod markdown;
mod read;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use html::render;

/// The largest design accepted, as JSON.
pub const MAX_BYTES: usize = 512 * 1024;
/// Blocks in a design, those inside columns included.
pub const MAX_BLOCKS: usize = 200;
/// Characters of a text block (its markup included).
pub const MAX_TEXT: usize = 20_000;
/// Characters of a heading, a label, an image's description or a footer's line.
pub const MAX_SHORT: usize = 500;
/// Characters of a link or an image's address.
pub const MAX_URL: usize = 2_048;
/// Content widths a design may take, in pixels (600 is the usual e-mail width).
pub const WIDTHS: std::ops::RangeInclusive<u16> = 320..=900;

/// A design: its blocks from top to bottom, and the style they share.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Design {
    pub style: Style,
    pub blocks: Vec<Block>,
}

/// Colours, font and width every block shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Style {
    /// Around the content.
    pub background: Color,
    /// Behind the content.
    pub content_background: Color,
    pub text_color: Color,
    pub link_color: Color,
    pub font: Font,
    /// The content's width in pixels (320 to 900).
    pub width: u16,
}

impl Default for Style {
    fn default() -> Self {
        Self {
            background: Color::new("#f4f4f5"),
            content_background: Color::new("#ffffff"),
            text_color: Color::new("#1f2933"),
            link_color: Color::new("#1a56db"),
            font: Font::Sans,
            width: 600,
        }
    }
}

/// Font families that every mail client has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Font {
    #[default]
    Sans,
    Serif,
    Mono,
}

impl Font {
    pub fn stack(self) -> &'static str {
        match self {
            Font::Sans => "Arial, Helvetica, sans-serif",
            Font::Serif => "Georgia, 'Times New Roman', Times, serif",
            Font::Mono => "'Courier New', Courier, monospace",
        }
    }
}

/// A block's alignment; none follows the language's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Align {
    Left,
    Center,
    Right,
}

impl Align {
    pub fn as_str(self) -> &'static str {
        match self {
            Align::Left => "left",
            Align::Center => "center",
            Align::Right => "right",
        }
    }
}

/// `#rgb` or `#rrggbb`, kept in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Color(String);

impl Color {
    fn new(hex: &str) -> Self {
        Self(hex.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Color {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let digits = value.strip_prefix('#').unwrap_or("");
        if matches!(digits.len(), 3 | 6) && digits.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(Self(value.to_ascii_lowercase()))
        } else {
            Err(format!(
                "`{}` is not a colour: write #rgb or #rrggbb",
                value.chars().take(20).collect::<String>()
            ))
        }
    }
}

impl From<Color> for String {
    fn from(c: Color) -> Self {
        c.0
    }
}

/// One block, written `{"type": "text", …its fields}`. Texts may hold the template's
/// tags (`[FNAME|friend]`); a text block's text is light markup: paragraphs, `**bold**`,
/// `*italic*`, lists and `[links](https://…)`; HTML in it shows as written, never as
/// markup.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Heading(Heading),
    Text(Text),
    Image(Image),
    Button(Button),
    /// Two or three columns side by side, each with its own blocks (no columns inside
    /// columns, no footer).
    Columns(Columns),
    Divider(Divider),
    Spacer(Spacer),
    /// The sender's line (address, why the recipient gets this) and the unsubscribe
    /// link, which always goes to `[UNSUBSCRIBE_URL]`.
    Footer(Footer),
}

/// The block kinds, as `type` names them.
pub const KINDS: [&str; 8] = [
    "heading", "text", "image", "button", "columns", "divider", "spacer", "footer",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heading {
    pub text: String,
    /// 1 (largest) to 3; 1 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub align: Option<Align>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub align: Option<Align>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// An http(s) address or a tag (`[LOGO_URL]`).
    pub src: String,
    #[serde(default)]
    pub alt: String,
    /// Where a click on the image goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    /// In pixels; the content's width when absent (never wider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub align: Option<Align>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Button {
    pub label: String,
    pub href: String,
    /// The button's colour; the links' colour when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<Color>,
    /// The label's colour; white when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_color: Option<Color>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub align: Option<Align>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Columns {
    pub columns: Vec<Column>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Column {
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Divider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<Color>,
    /// 1 to 10 pixels; 1 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thickness: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spacer {
    /// 4 to 200 pixels.
    pub height: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Footer {
    #[serde(default)]
    pub text: String,
    /// The link's words ("Se désabonner").
    pub unsubscribe: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub align: Option<Align>,
}

/// What is wrong with a design, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct DesignError {
    /// Inside the design, e.g. `blocks[2].href`; empty for the design as a whole.
    pub path: String,
    pub problem: String,
}

impl DesignError {
    pub(crate) fn at(path: &str, problem: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            problem: problem.into(),
        }
    }
}

/// A design read from JSON and checked, or the first problem found.
pub fn parse(value: &serde_json::Value) -> Result<Design, DesignError> {
    let size = serde_json::to_vec(value).map(|v| v.len()).unwrap_or(0);
    if size > MAX_BYTES {
        return Err(DesignError::at(
            "",
            format!("is {size} bytes; a design is at most {MAX_BYTES}"),
        ));
    }
    let design = read::design(value)?;
    check(&design)?;
    Ok(design)
}

/// The design's rules beyond its shape.
pub fn check(design: &Design) -> Result<(), DesignError> {
    if !WIDTHS.contains(&design.style.width) {
        return Err(DesignError::at(
            "style.width",
            format!("must be {} to {} pixels", WIDTHS.start(), WIDTHS.end()),
        ));
    }
    if design.blocks.is_empty() {
        return Err(DesignError::at("blocks", "a design has at least one block"));
    }
    let total = design
        .blocks
        .iter()
        .map(|b| match b {
            Block::Columns(c) => 1 + c.columns.iter().map(|c| c.blocks.len()).sum::<usize>(),
            _ => 1,
        })
        .sum::<usize>();
    if total > MAX_BLOCKS {
        return Err(DesignError::at(
            "blocks",
            format!("has {total} blocks; a design has at most {MAX_BLOCKS}"),
        ));
    }
    let footers = design
        .blocks
        .iter()
        .filter(|b| matches!(b, Block::Footer(_)))
        .count();
    if footers > 1 {
        return Err(DesignError::at("blocks", "a design has one footer at most"));
    }
    for (i, block) in design.blocks.iter().enumerate() {
        let path = format!("blocks[{i}]");
        check_block(block, &path, true)?;
    }
    Ok(())
}

fn check_block(block: &Block, path: &str, top: bool) -> Result<(), DesignError> {
    let field = |name: &str| format!("{path}.{name}");
    match block {
        Block::Heading(Heading { text, level, .. }) => {
            short(text, &field("text"), true)?;
            if level.is_some_and(|l| !(1..=3).contains(&l)) {
                return Err(DesignError::at(&field("level"), "must be 1, 2 or 3"));
            }
        }
        Block::Text(Text { text, .. }) => {
            let count = text.chars().count();
            if count > MAX_TEXT {
                return Err(DesignError::at(
                    &field("text"),
                    format!("has {count} characters; a text block has at most {MAX_TEXT}"),
                ));
            }
            if text.trim().is_empty() {
                return Err(DesignError::at(&field("text"), "must not be empty"));
            }
            markdown::links(text)
                .iter()
                .try_for_each(|link| url(link, &field("text"), true))?;
        }
        Block::Image(Image {
            src,
            alt,
            href,
            width,
            ..
        }) => {
            url(src, &field("src"), false)?;
            short(alt, &field("alt"), false)?;
            if let Some(href) = href {
                url(href, &field("href"), true)?;
            }
            if width.is_some_and(|w| !(16..=*WIDTHS.end()).contains(&w)) {
                return Err(DesignError::at(
                    &field("width"),
                    format!("must be 16 to {} pixels", WIDTHS.end()),
                ));
            }
        }
        Block::Button(Button { label, href, .. }) => {
            short(label, &field("label"), true)?;
            url(href, &field("href"), true)?;
        }
        Block::Columns(Columns { columns }) => {
            if !top {
                return Err(DesignError::at(path, "columns cannot be inside columns"));
            }
            if !(2..=3).contains(&columns.len()) {
                return Err(DesignError::at(&field("columns"), "give 2 or 3 columns"));
            }
            for (c, column) in columns.iter().enumerate() {
                for (b, inner) in column.blocks.iter().enumerate() {
                    let inner_path = format!("{path}.columns[{c}].blocks[{b}]");
                    if matches!(inner, Block::Footer(_)) {
                        return Err(DesignError::at(
                            &inner_path,
                            "the footer goes below the content, not in a column",
                        ));
                    }
                    check_block(inner, &inner_path, false)?;
                }
            }
        }
        Block::Divider(Divider { thickness, .. }) => {
            if thickness.is_some_and(|t| !(1..=10).contains(&t)) {
                return Err(DesignError::at(
                    &field("thickness"),
                    "must be 1 to 10 pixels",
                ));
            }
        }
        Block::Spacer(Spacer { height }) => {
            if !(4..=200).contains(height) {
                return Err(DesignError::at(&field("height"), "must be 4 to 200 pixels"));
            }
        }
        Block::Footer(Footer {
            text, unsubscribe, ..
        }) => {
            if text.chars().count() > MAX_SHORT * 4 {
                return Err(DesignError::at(
                    &field("text"),
                    format!("has more than {} characters", MAX_SHORT * 4),
                ));
            }
            short(unsubscribe, &field("unsubscribe"), true)?;
        }
    }
    Ok(())
}

fn short(text: &str, path: &str, required: bool) -> Result<(), DesignError> {
    if required && text.trim().is_empty() {
        return Err(DesignError::at(path, "must not be empty"));
    }
    let count = text.chars().count();
    if count > MAX_SHORT {
        return Err(DesignError::at(
            path,
            format!("has {count} characters; at most {MAX_SHORT}"),
        ));
    }
    Ok(())
}

/// A link or an image's address: http(s) (or mailto: for a link), or one starting with a
/// tag the sending fills (`[UNSUBSCRIBE_URL]`, `[SITE_URL]/offer`); nothing that runs
/// (`javascript:`) or embeds (`data:`), no spaces, quotes or angle brackets.
fn url(value: &str, path: &str, link: bool) -> Result<(), DesignError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(DesignError::at(path, "must not be empty"));
    }
    if value.len() > MAX_URL {
        return Err(DesignError::at(
            path,
            format!("is longer than {MAX_URL} characters"),
        ));
    }
    if let Some(bad) = value.chars().find(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '<' | '>' | '\\' | '`')
    }) {
        return Err(DesignError::at(
            path,
            format!("`{bad}` has no place in an address"),
        ));
    }
    let lower = value.to_ascii_lowercase();
    let scheme_ok = lower.starts_with("https://")
        || lower.starts_with("http://")
        || (link && lower.starts_with("mailto:"))
        || starts_with_tag(value);
    if scheme_ok {
        Ok(())
    } else {
        let allowed = if link {
            "https://, http://, mailto: or a tag such as [UNSUBSCRIBE_URL]"
        } else {
            "https://, http:// or a tag such as [LOGO_URL]"
        };
        Err(DesignError::at(
            path,
            format!(
                "`{}` must start with {allowed}",
                value.chars().take(40).collect::<String>()
            ),
        ))
    }
}

/// Whether `value` begins with a whole tag: `[NAME]` or `[NAME|fallback]`.
fn starts_with_tag(value: &str) -> bool {
    let Some(rest) = value.strip_prefix('[') else {
        return false;
    };
    let name_len = rest
        .bytes()
        .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
        .count();
    name_len > 0
        && rest.as_bytes()[0].is_ascii_uppercase()
        && rest[name_len..].starts_with([']', '|'])
        && rest[name_len..].contains(']')
}
