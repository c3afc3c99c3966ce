//! A text block's light markup, read by pulldown-cmark (CommonMark) and written out as
//! inline-styled HTML for mail clients: paragraphs, line breaks, bold, italic, lists,
//! quotes, code and links. Raw HTML in the text is shown as text, never passed on; an
//! image in the text shows its description (images are blocks of their own).

use pulldown_cmark::{Event, LinkType, Options, Parser, Tag, TagEnd};

use crate::template::escape_html_into;

/// Where a link of the text goes, as the HTML would have it (`mailto:` added to a bare
/// address in angle brackets).
fn href(link_type: LinkType, dest: &str) -> String {
    if link_type == LinkType::Email && !dest.to_ascii_lowercase().starts_with("mailto:") {
        format!("mailto:{dest}")
    } else {
        dest.to_owned()
    }
}

/// Every link the text makes, for the design's check.
pub(super) fn links(text: &str) -> Vec<String> {
    Parser::new_ext(text, Options::empty())
        .filter_map(|event| match event {
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                ..
            }) => Some(href(link_type, &dest_url)),
            _ => None,
        })
        .collect()
}

/// The text as HTML. `link_ok` says whether a link may be one (the design's check
/// refused the others already; a link it would refuse is written as its words alone).
pub(super) fn to_html(
    text: &str,
    text_style: &str,
    link_color: &str,
    rtl: bool,
    link_ok: impl Fn(&str) -> bool,
    out: &mut String,
) {
    // Links that were not made into <a> end without </a>.
    let mut open_links: Vec<bool> = Vec::new();
    let list_padding = if rtl {
        "padding:0 24px 0 0"
    } else {
        "padding:0 0 0 24px"
    };
    for event in Parser::new_ext(text, Options::empty()) {
        match event {
            Event::Start(tag) => match tag {
                Tag::Paragraph => {
                    out.push_str(&format!("<p style=\"margin:0 0 12px 0;{text_style}\">"));
                }
                Tag::Heading { level, .. } => {
                    let size = match level as u8 {
                        1 => 24,
                        2 => 20,
                        _ => 17,
                    };
                    out.push_str(&format!(
                        "<p style=\"margin:0 0 12px 0;{text_style}font-size:{size}px;font-weight:bold;\">"
                    ));
                }
                Tag::BlockQuote(_) => out.push_str(
                    "<blockquote style=\"margin:0 0 12px 0;padding:0 12px;border-left:3px solid #d1d5db;\">",
                ),
                Tag::CodeBlock(_) => out.push_str(
                    "<pre style=\"margin:0 0 12px 0;font-family:'Courier New', Courier, monospace;font-size:14px;white-space:pre-wrap;\">",
                ),
                Tag::List(None) => out.push_str(&format!(
                    "<ul style=\"margin:0 0 12px 0;{list_padding};{text_style}\">"
                )),
                Tag::List(Some(start)) => out.push_str(&format!(
                    "<ol start=\"{start}\" style=\"margin:0 0 12px 0;{list_padding};{text_style}\">"
                )),
                Tag::Item => out.push_str("<li style=\"margin:0 0 4px 0;\">"),
                Tag::Emphasis => out.push_str("<em>"),
                Tag::Strong => out.push_str("<strong>"),
                Tag::Link {
                    link_type,
                    dest_url,
                    ..
                } => {
                    let target = href(link_type, &dest_url);
                    let made = link_ok(&target);
                    if made {
                        out.push_str("<a href=\"");
                        escape_html_into(target.trim(), out);
                        out.push_str(&format!(
                            "\" style=\"color:{link_color};text-decoration:underline;\">"
                        ));
                    }
                    open_links.push(made);
                }
                _ => {}
            },
            Event::End(tag) => match tag {
                TagEnd::Paragraph | TagEnd::Heading(_) => out.push_str("</p>"),
                TagEnd::BlockQuote(_) => out.push_str("</blockquote>"),
                TagEnd::CodeBlock => out.push_str("</pre>"),
                TagEnd::List(ordered) => out.push_str(if ordered { "</ol>" } else { "</ul>" }),
                TagEnd::Item => out.push_str("</li>"),
                TagEnd::Emphasis => out.push_str("</em>"),
                TagEnd::Strong => out.push_str("</strong>"),
                TagEnd::Link if open_links.pop().unwrap_or(false) => out.push_str("</a>"),
                _ => {}
            },
            Event::Text(t) | Event::Html(t) | Event::InlineHtml(t) => escape_html_into(&t, out),
            Event::Code(t) => {
                out.push_str("<code style=\"font-family:'Courier New', Courier, monospace;\">");
                escape_html_into(&t, out);
                out.push_str("</code>");
            }
            // A line break in the editor is one in the mail.
            Event::SoftBreak | Event::HardBreak => out.push_str("<br>"),
            Event::Rule => out.push_str(
                "<hr style=\"border:0;border-top:1px solid #d1d5db;margin:12px 0;\">",
            ),
            _ => {}
        }
    }
}
