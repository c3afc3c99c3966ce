//! Tags: `CATEGORY:VALUE` (TYPE, SECTOR, QUALITY, GEOGRAPHY, or any other word) or free
//! tags without a category; values may be paths (`LEGAL/LAWYER`), and a contact tagged
//! with a path matches every prefix of it (`LEGAL`).

use serde::Serialize;

pub const KNOWN_CATEGORIES: [&str; 4] = ["TYPE", "SECTOR", "QUALITY", "GEOGRAPHY"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tag {
    /// Upper-case category, or empty for a free tag.
    pub category: String,
    /// The path segments as written (`["LEGAL", "LAWYER"]`).
    pub path: Vec<String>,
}

impl Tag {
    /// The identifier: lower-case `category:seg/seg`, or `seg/seg` for a free tag.
    pub fn slug(&self) -> String {
        let path = self
            .path
            .iter()
            .map(|s| slug_part(s))
            .collect::<Vec<_>>()
            .join("/");
        if self.category.is_empty() {
            path
        } else {
            format!("{}:{path}", self.category.to_lowercase())
        }
    }

    /// The display name: the last segment.
    pub fn name(&self) -> &str {
        self.path.last().map_or("", String::as_str)
    }

    /// The parent tag (one segment shorter), if any.
    pub fn parent(&self) -> Option<Tag> {
        (self.path.len() > 1).then(|| Tag {
            category: self.category.clone(),
            path: self.path[..self.path.len() - 1].to_vec(),
        })
    }

    /// The category as the tags table stores it.
    pub fn category_or_free(&self) -> &str {
        if self.category.is_empty() {
            "FREE"
        } else {
            &self.category
        }
    }
}

fn slug_part(segment: &str) -> String {
    segment
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tag {0:?}: {1}")]
pub struct TagError(pub String, pub &'static str);

pub fn parse(text: &str) -> Result<Tag, TagError> {
    let bad = |why| TagError(text.to_owned(), why);
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 200 {
        return Err(bad("must have 1 to 200 characters"));
    }
    let (category, value) = match text.split_once(':') {
        Some((c, v)) => {
            let c = c.trim();
            if c.is_empty() || !c.chars().all(|ch| ch.is_ascii_alphabetic() || ch == '_') {
                return Err(bad("the category must be letters"));
            }
            (c.to_ascii_uppercase(), v)
        }
        None => (String::new(), text),
    };
    let path: Vec<String> = value.split('/').map(|s| s.trim().to_owned()).collect();
    if path.iter().any(|s| s.is_empty()) {
        return Err(bad("a path segment is empty"));
    }
    if path
        .iter()
        .any(|s| s.chars().any(|c| c.is_control() || c == ':' || c == '%'))
    {
        return Err(bad("contains a character that is not allowed"));
    }
    Ok(Tag { category, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_and_slugs() {
        let t = parse("TYPE:LAWYER").unwrap();
        assert_eq!(
            (t.slug(), t.name(), t.category_or_free()),
            ("type:lawyer".to_owned(), "LAWYER", "TYPE")
        );
        let h = parse("sector:Legal/Lawyer").unwrap();
        assert_eq!(h.slug(), "sector:legal/lawyer");
        assert_eq!(h.parent().unwrap().slug(), "sector:legal");
        let free = parse("VIP client").unwrap();
        assert_eq!(
            (free.slug(), free.category_or_free()),
            ("vip-client".to_owned(), "FREE")
        );
        assert_eq!(
            parse("GEOGRAPHY:FRANCE").unwrap().slug(),
            "geography:france"
        );
        for bad in ["", "TYPE:", "TYPE:a//b", "1X:y", "a:b:c"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
