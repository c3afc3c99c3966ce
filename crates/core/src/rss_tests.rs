use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

const RSS2: &str = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>News</title>
<item><title>First &amp; one</title><link>https://example.com/1</link><guid>g1</guid>
<description>&lt;p&gt;Hello&lt;/p&gt;</description><pubDate>Mon, 02 Mar 2026 10:00:00 GMT</pubDate></item>
<item><title>Second</title><link>https://example.com/2</link><pubDate>Tue, 03 Mar 2026 10:00:00 GMT</pubDate></item>
</channel></rss>"#;

const RSS1: &str = r#"<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">
<channel rdf:about="https://example.com/"><title>News</title><link>https://example.com/</link><description>d</description></channel>
<item rdf:about="https://example.com/r1"><title>RDF item</title><link>https://example.com/r1</link><description>About</description></item>
</rdf:RDF>"#;

const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>News</title><id>urn:feed</id><updated>2026-03-01T00:00:00Z</updated>
<entry><title>Atom entry</title><id>urn:e1</id><link href="https://example.com/a1"/><updated>2026-03-04T08:00:00Z</updated><summary>Sum</summary></entry>
</feed>"#;

#[test]
fn reads_the_three_formats() {
    let items = parse(RSS2.as_bytes()).unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].key, "g1");
    assert_eq!(items[0].title, "First & one");
    assert_eq!(items[0].summary, "Hello");
    // Without a guid, feed-rs gives the item a stable id of its own.
    assert!(!items[1].key.is_empty() && items[1].key != items[0].key);
    let items = parse(RSS1.as_bytes()).unwrap();
    assert_eq!(items[0].title, "RDF item");
    assert_eq!(items[0].link, "https://example.com/r1");
    let items = parse(ATOM.as_bytes()).unwrap();
    assert_eq!(items[0].key, "urn:e1");
    assert_eq!(items[0].link, "https://example.com/a1");
    assert!(items[0].published_ms.is_some());
}

#[test]
fn only_web_links_are_kept() {
    let feed = r#"<rss version="2.0"><channel><title>t</title><item><title>x</title><link>javascript:alert(1)</link><guid>g</guid></item></channel></rss>"#;
    let items = parse(feed.as_bytes()).unwrap();
    assert_eq!(items[0].link, "");
    assert_eq!(items[0].key, "g");
}

#[test]
fn refuses_what_is_not_a_feed_or_too_long() {
    assert!(parse(b"<html><body>no</body></html>").is_err());
    assert!(parse(b"").is_err());
    let big = vec![b' '; MAX_FEED_BYTES + 1];
    assert!(parse(&big).unwrap_err().contains("bytes"));
}

#[test]
fn only_unsent_items_are_new_newest_first() {
    let items = parse(RSS2.as_bytes()).unwrap();
    let fresh = new_items(items.clone(), &BTreeSet::new());
    assert_eq!(fresh[0].link, "https://example.com/2");
    let sent: BTreeSet<String> = items.iter().map(|i| i.key.clone()).collect();
    assert!(new_items(items, &sent).is_empty());
}

#[test]
fn the_block_repeats_escaped() {
    let items = vec![Item {
        key: "k".into(),
        title: "<b>A</b> [EMAIL]".into(),
        link: "https://x.test/?a=1&b=2".into(),
        summary: "s".into(),
        published_ms: Some(0),
        image: String::new(),
    }];
    let html = render(
        "<ul>[RSS_ITEMS]<li><a href=\"[RSS_ITEM_LINK]\">[RSS_ITEM_TITLE]</a> [RSS_ITEM_DATE][/RSS_ITEMS]</ul> [FNAME]",
        &items,
        true,
    );
    assert_eq!(
        html,
        "<ul><li><a href=\"https://x.test/?a=1&amp;b=2\">&lt;b&gt;A&lt;/b&gt; &#91;EMAIL]</a> 1970-01-01 00:00 UTC</ul> [FNAME]"
    );
    assert_eq!(
        render("[RSS_ITEMS]- [RSS_ITEM_TITLE]\n[/RSS_ITEMS]", &items, false),
        "- <b>A</b> (EMAIL]\n"
    );
    assert_eq!(
        render("[RSS_ITEMS] no end", &items, true),
        "[RSS_ITEMS] no end"
    );
}

#[test]
fn intervals_are_bounded() {
    assert!(check_interval(14).is_err());
    assert!(check_interval(15).is_ok());
    assert!(check_interval(MAX_INTERVAL_MINUTES).is_ok());
    assert!(check_interval(MAX_INTERVAL_MINUTES + 1).is_err());
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn render_never_panics(body in ".{0,200}", title in ".{0,50}") {
        let item = Item { key: "k".into(), title, link: String::new(), summary: String::new(), published_ms: None, image: String::new() };
        let _ = render(&body, std::slice::from_ref(&item), true);
        let _ = render(&body, &[item], false);
    }
}
