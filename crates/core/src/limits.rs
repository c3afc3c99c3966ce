//! The longest text each field of a request may hold. A longer value is refused with the
//! field and its limit named, never stored cut. Fields not named here take `DEFAULT`.
//! Contacts inside an ingest batch are checked one by one instead (`contacts`), so that
//! one long field refuses that contact, not the whole batch.

/// Any text field not named below, in characters.
pub const DEFAULT: usize = 65_536;

/// The limit of a field, by its name (the last part of its path), in characters.
pub fn max_chars(field: &str) -> usize {
    match field {
        "html" | "text" | "html_content" | "text_content" => 1_048_576,
        "subject" => 998,
        "name" | "title" | "from_name" | "to_name" | "default_from_name" => 200,
        "slug" | "selector" | "dkim_selector" | "pool" | "tenant" | "tenant_id" => 100,
        "email" | "to" | "from_email" | "reply_to" | "return_path" | "unsubscribe_mailto"
        | "default_from_email" | "default_reply_to" => 254,
        "host" | "hostname" | "domain" => 253,
        "api_url" | "url" => 2048,
        "password" | "api_key" | "refresh_token" | "username" => 1024,
        "reason" | "description" => 1000,
        _ => DEFAULT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_fields_have_their_limits_others_the_default() {
        assert_eq!(max_chars("subject"), 998);
        assert_eq!(max_chars("html"), 1_048_576);
        assert_eq!(max_chars("email"), 254);
        assert_eq!(max_chars("favourite_colour"), DEFAULT);
    }
}

/// The first `max` bytes of a text we keep from elsewhere (a reply, a link), cut on a
/// character boundary: for what is recorded, not for what a request sends (refused whole).
pub fn cut_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod cut_tests {
    #[test]
    fn cuts_on_a_character() {
        assert_eq!(super::cut_bytes("héllo", 2), "h");
        assert_eq!(super::cut_bytes("héllo", 3), "hé");
        assert_eq!(super::cut_bytes("abc", 9), "abc");
    }
}
