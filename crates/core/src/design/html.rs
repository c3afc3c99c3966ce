//! A design written out as e-mail-safe HTML: nested tables of fixed width for the layout
//! (what Outlook's Word engine and every webmail lay out alike), every style inline, no
//! class, no `<style>`, no script; every text escaped; the tags (`[FNAME]`) left for the
//! sending to fill.

use super::{
    Align, Block, Button, Column, Columns, Design, Divider, Footer, Heading, Image, Spacer, Style,
    Text, markdown,
};
use crate::template::{escape_html_into, is_rtl};

const PRESENTATION: &str = "role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\"";
/// Space on each side of the content.
const GUTTER: u16 = 24;

fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    escape_html_into(text, &mut out);
    out
}

/// Where the blocks are written: the content's own width, and the text direction.
struct Frame<'a> {
    style: &'a Style,
    rtl: bool,
    /// Pixels a block's content may take.
    width: u16,
}

impl Frame<'_> {
    fn text_style(&self) -> String {
        format!(
            "font-family:{};font-size:16px;line-height:1.5;color:{};",
            self.style.font.stack(),
            self.style.text_color.as_str()
        )
    }
}

fn align_css(align: Option<Align>) -> String {
    align.map_or_else(String::new, |a| format!("text-align:{};", a.as_str()))
}

fn align_attr(align: Option<Align>) -> String {
    align.map_or_else(String::new, |a| format!(" align=\"{}\"", a.as_str()))
}

/// The design as a whole document, in the template's language (`lang`, and `dir="rtl"`
/// for Arabic).
pub fn render(design: &Design, language: &str) -> String {
    let style = &design.style;
    let rtl = is_rtl(language);
    let dir = if rtl { "rtl" } else { "ltr" };
    let width = style.width;
    let mut out = String::with_capacity(4096);
    out.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\" dir=\"{dir}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"x-apple-disable-message-reformatting\">\n<title></title>\n</head>\n\
         <body style=\"margin:0;padding:0;background-color:{bg};\">\n\
         <table {PRESENTATION} width=\"100%\" style=\"width:100%;background-color:{bg};\">\n\
         <tr><td align=\"center\" style=\"padding:24px 8px;\">\n\
         <table {PRESENTATION} width=\"{width}\" style=\"width:100%;max-width:{width}px;background-color:{content};\">\n",
        lang = esc(language),
        bg = style.background.as_str(),
        content = style.content_background.as_str(),
    ));
    let frame = Frame {
        style,
        rtl,
        width: width - 2 * GUTTER,
    };
    let (body, footer): (Vec<&Block>, Vec<&Block>) = design
        .blocks
        .iter()
        .partition(|b| !matches!(b, Block::Footer(_)));
    for block in body {
        out.push_str("<tr>");
        match block {
            Block::Columns(c) => columns_row(&c.columns, &frame, &mut out),
            other => cell(other, &frame, &format!("padding:8px {GUTTER}px;"), &mut out),
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    // The footer sits under the content, on the background.
    for block in footer {
        out.push_str(&format!(
            "<table {PRESENTATION} width=\"{width}\" style=\"width:100%;max-width:{width}px;\">\n<tr>"
        ));
        cell(
            block,
            &frame,
            &format!("padding:16px {GUTTER}px;"),
            &mut out,
        );
        out.push_str("</tr>\n</table>\n");
    }
    out.push_str("</td></tr>\n</table>\n</body>\n</html>\n");
    out
}

/// Two or three columns: a table whose cells hold their blocks' own tables.
fn columns_row(columns: &[Column], frame: &Frame<'_>, out: &mut String) {
    let n = u16::try_from(columns.len()).unwrap_or(2).max(1);
    let share = 100 / n;
    let half_gutter = GUTTER / 2;
    let inner = Frame {
        width: (frame.width + GUTTER) / n - GUTTER,
        ..*frame
    };
    out.push_str(&format!(
        "<td style=\"padding:8px {half_gutter}px;\"><table {PRESENTATION} width=\"100%\" style=\"width:100%;\"><tr>"
    ));
    for column in columns {
        out.push_str(&format!(
            "<td width=\"{share}%\" valign=\"top\" style=\"width:{share}%;padding:0 {half_gutter}px;vertical-align:top;\">"
        ));
        for block in &column.blocks {
            out.push_str(&format!(
                "<table {PRESENTATION} width=\"100%\" style=\"width:100%;\"><tr>"
            ));
            cell(block, &inner, "padding:8px 0;", out);
            out.push_str("</tr></table>");
        }
        out.push_str("</td>");
    }
    out.push_str("</tr></table></td>");
}

/// One block as a table cell (`<td>…</td>`) with `padding`.
fn cell(block: &Block, frame: &Frame<'_>, padding: &str, out: &mut String) {
    let link_color = frame.style.link_color.as_str();
    let text_style = frame.text_style();
    match block {
        Block::Heading(Heading { text, level, align }) => {
            let (tag, size) = match level.unwrap_or(1) {
                1 => ("h1", 28),
                2 => ("h2", 22),
                _ => ("h3", 18),
            };
            out.push_str(&format!(
                "<td style=\"{padding}{}\"><{tag} style=\"margin:0;font-family:{};font-size:{size}px;line-height:1.25;font-weight:bold;color:{};\">{}</{tag}></td>",
                align_css(*align),
                frame.style.font.stack(),
                frame.style.text_color.as_str(),
                esc(text)
            ));
        }
        Block::Text(Text { text, align }) => {
            out.push_str(&format!(
                "<td style=\"{padding}{text_style}{}\">",
                align_css(*align)
            ));
            markdown::to_html(
                text,
                &text_style,
                link_color,
                frame.rtl,
                |u| super::url(u, "", true).is_ok(),
                out,
            );
            out.push_str("</td>");
        }
        Block::Image(Image {
            src,
            alt,
            href,
            width,
            align,
        }) => {
            let w = width.unwrap_or(frame.width).min(frame.width);
            let margin = match align {
                Some(Align::Center) => "margin:0 auto;",
                Some(Align::Right) => "margin:0 0 0 auto;",
                Some(Align::Left) => "margin:0 auto 0 0;",
                None => "",
            };
            out.push_str(&format!(
                "<td{} style=\"{padding}{}\">",
                align_attr(*align),
                align_css(*align)
            ));
            let link = href.as_deref().filter(|h| super::url(h, "", true).is_ok());
            if let Some(h) = link {
                out.push_str(&format!("<a href=\"{}\">", esc(h.trim())));
            }
            out.push_str(&format!(
                "<img src=\"{}\" alt=\"{}\" width=\"{w}\" style=\"display:block;{margin}width:100%;max-width:{w}px;height:auto;border:0;outline:none;text-decoration:none;\">",
                esc(src.trim()),
                esc(alt)
            ));
            if link.is_some() {
                out.push_str("</a>");
            }
            out.push_str("</td>");
        }
        Block::Button(Button {
            label,
            href,
            color,
            text_color,
            align,
        }) => {
            let bg = color.as_ref().map_or(link_color, |c| c.as_str());
            let fg = text_color.as_ref().map_or("#ffffff", |c| c.as_str());
            out.push_str(&format!(
                "<td{} style=\"{padding}{}\"><table {PRESENTATION}{} style=\"border-collapse:separate;{}\"><tr>\
                 <td bgcolor=\"{bg}\" style=\"border-radius:4px;background-color:{bg};\">\
                 <a href=\"{}\" style=\"display:inline-block;padding:12px 24px;font-family:{};font-size:16px;font-weight:bold;line-height:1.2;color:{fg};text-decoration:none;border-radius:4px;\">{}</a>\
                 </td></tr></table></td>",
                align_attr(*align),
                align_css(*align),
                align_attr(*align),
                match align {
                    Some(Align::Center) => "margin:0 auto;",
                    _ => "",
                },
                esc(href.trim()),
                frame.style.font.stack(),
                esc(label)
            ));
        }
        Block::Divider(Divider { color, thickness }) => {
            let c = color.as_ref().map_or("#d1d5db", |c| c.as_str());
            let t = thickness.unwrap_or(1);
            out.push_str(&format!(
                "<td style=\"{padding}\"><table {PRESENTATION} width=\"100%\" style=\"width:100%;\"><tr>\
                 <td style=\"border-top:{t}px solid {c};font-size:1px;line-height:1px;\">&nbsp;</td></tr></table></td>"
            ));
        }
        Block::Spacer(Spacer { height }) => {
            out.push_str(&format!(
                "<td height=\"{height}\" style=\"height:{height}px;font-size:1px;line-height:1px;\">&nbsp;</td>"
            ));
        }
        Block::Footer(Footer {
            text,
            unsubscribe,
            align,
        }) => {
            let small = format!(
                "font-family:{};font-size:12px;line-height:1.5;color:#6b7280;",
                frame.style.font.stack()
            );
            let align = align.unwrap_or(Align::Center);
            out.push_str(&format!(
                "<td align=\"{a}\" style=\"{padding}{small}text-align:{a};\">",
                a = align.as_str()
            ));
            if !text.trim().is_empty() {
                out.push_str(&format!(
                    "<p style=\"margin:0 0 8px 0;{small}\">{}</p>",
                    esc(text.trim()).replace('\n', "<br>")
                ));
            }
            out.push_str(&format!(
                "<p style=\"margin:0;{small}\"><a href=\"[UNSUBSCRIBE_URL]\" style=\"color:{link_color};text-decoration:underline;\">{}</a></p></td>",
                esc(unsubscribe)
            ));
        }
        Block::Columns(Columns { columns }) => {
            // Checked away below the top level; written as one column here if ever met.
            let blocks: Vec<&Block> = columns.iter().flat_map(|c| c.blocks.iter()).collect();
            out.push_str(&format!("<td style=\"{padding}\">"));
            for b in blocks {
                out.push_str(&format!(
                    "<table {PRESENTATION} width=\"100%\" style=\"width:100%;\"><tr>"
                ));
                cell(b, frame, "padding:8px 0;", out);
                out.push_str("</tr></table>");
            }
            out.push_str("</td>");
        }
    }
}
