//! SPF records (RFC 7208): parsing and macro expansion, the pure half of the
//! evaluation that `ee-dns` performs against the DNS.
//!
//! Written here rather than taken from a crate: mail-auth 0.13 failed 56 of the 203
//! OpenSPF suite tests and viaspf 0.6 fails /0 prefixes (its mask shift overflows), so
//! neither evaluates every record as the RFC says. The suite runs in `ee-dns`'s tests.

use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    All,
    Include(String),
    A {
        domain: Option<String>,
        cidr4: u8,
        cidr6: u8,
    },
    Mx {
        domain: Option<String>,
        cidr4: u8,
        cidr6: u8,
    },
    Ptr(Option<String>),
    Ip4 {
        addr: std::net::Ipv4Addr,
        cidr: u8,
    },
    Ip6 {
        addr: std::net::Ipv6Addr,
        cidr: u8,
    },
    Exists(String),
}

impl Mechanism {
    /// Mechanisms that query the DNS count towards the limit of 10 (§4.6.4).
    pub fn does_lookup(&self) -> bool {
        matches!(
            self,
            Mechanism::Include(_)
                | Mechanism::A { .. }
                | Mechanism::Mx { .. }
                | Mechanism::Ptr(_)
                | Mechanism::Exists(_)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub qualifier: Qualifier,
    pub mechanism: Mechanism,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub directives: Vec<Directive>,
    pub redirect: Option<String>,
    pub exp: Option<String>,
}

/// Any syntax error makes the result "permerror".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SPF syntax error: {0}")]
pub struct SyntaxError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, SyntaxError> {
    Err(SyntaxError(message.into()))
}

/// True for the text of an SPF record: `v=spf1` then a space or the end (§4.5).
pub fn is_spf_record(txt: &str) -> bool {
    let lower = txt.to_ascii_lowercase();
    lower == "v=spf1" || lower.starts_with("v=spf1 ")
}

pub fn parse_record(txt: &str) -> Result<Record, SyntaxError> {
    if !txt.is_ascii() || txt.chars().any(|c| c.is_ascii_control()) {
        return err("the record holds characters outside printable ASCII");
    }
    if !is_spf_record(txt) {
        return err("not an SPF version 1 record");
    }
    let mut record = Record::default();
    for term in txt[6..].split(' ').filter(|t| !t.is_empty()) {
        if let Some((name, value)) = modifier(term) {
            match name.to_ascii_lowercase().as_str() {
                "redirect" => {
                    if record.redirect.is_some() {
                        return err("redirect appears twice");
                    }
                    check_domain_spec(value)?;
                    record.redirect = Some(value.to_owned());
                }
                "exp" => {
                    if record.exp.is_some() {
                        return err("exp appears twice");
                    }
                    check_domain_spec(value)?;
                    record.exp = Some(value.to_owned());
                }
                _ => check_macro_string(value, false)?,
            }
            continue;
        }
        record.directives.push(directive(term)?);
    }
    Ok(record)
}

/// `name=value` where name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ).
fn modifier(term: &str) -> Option<(&str, &str)> {
    let (name, value) = term.split_once('=')?;
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    (first_ok && chars.all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .then_some((name, value))
}

fn directive(term: &str) -> Result<Directive, SyntaxError> {
    let (qualifier, rest) = match term.chars().next() {
        Some('+') => (Qualifier::Pass, &term[1..]),
        Some('-') => (Qualifier::Fail, &term[1..]),
        Some('~') => (Qualifier::SoftFail, &term[1..]),
        Some('?') => (Qualifier::Neutral, &term[1..]),
        _ => (Qualifier::Pass, term),
    };
    let name_end = rest.find([':', '/']).unwrap_or(rest.len());
    let (name, args) = rest.split_at(name_end);
    let mechanism = match name.to_ascii_lowercase().as_str() {
        "all" if args.is_empty() => Mechanism::All,
        "include" => Mechanism::Include(required_domain(args, "include")?),
        "exists" => Mechanism::Exists(required_domain(args, "exists")?),
        "a" => {
            let (domain, cidr4, cidr6) = domain_and_cidr(args)?;
            Mechanism::A {
                domain,
                cidr4,
                cidr6,
            }
        }
        "mx" => {
            let (domain, cidr4, cidr6) = domain_and_cidr(args)?;
            Mechanism::Mx {
                domain,
                cidr4,
                cidr6,
            }
        }
        "ptr" => match args.strip_prefix(':') {
            None if args.is_empty() => Mechanism::Ptr(None),
            Some(domain) => {
                check_domain_spec(domain)?;
                Mechanism::Ptr(Some(domain.to_owned()))
            }
            None => return err(format!("ptr takes no {args:?}")),
        },
        "ip4" => {
            let body = args
                .strip_prefix(':')
                .ok_or_else(|| SyntaxError("ip4 needs an address".into()))?;
            let (addr, cidr) = match body.split_once('/') {
                Some((a, c)) => (a, cidr_value(c, 32)?),
                None => (body, 32),
            };
            let addr = addr
                .parse()
                .map_err(|_| SyntaxError(format!("{addr:?} is not an IPv4 address")))?;
            Mechanism::Ip4 { addr, cidr }
        }
        "ip6" => {
            let body = args
                .strip_prefix(':')
                .ok_or_else(|| SyntaxError("ip6 needs an address".into()))?;
            let (addr, cidr) = match body.rsplit_once('/') {
                Some((a, c)) => (a, cidr_value(c, 128)?),
                None => (body, 128),
            };
            let addr = addr
                .parse()
                .map_err(|_| SyntaxError(format!("{addr:?} is not an IPv6 address")))?;
            Mechanism::Ip6 { addr, cidr }
        }
        _ => return err(format!("unknown mechanism {term:?}")),
    };
    Ok(Directive {
        qualifier,
        mechanism,
    })
}

fn required_domain(args: &str, mechanism: &str) -> Result<String, SyntaxError> {
    let domain = args
        .strip_prefix(':')
        .filter(|d| !d.is_empty())
        .ok_or_else(|| SyntaxError(format!("{mechanism} needs a domain")))?;
    check_domain_spec(domain)?;
    Ok(domain.to_owned())
}

/// A prefix length: "0", or digits without a leading zero, at most `max`.
fn cidr_value(text: &str, max: u8) -> Result<u8, SyntaxError> {
    let ok = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    match text.parse::<u8>() {
        Ok(n) if ok && n <= max => Ok(n),
        _ => err(format!("/{text} is not a prefix length from 0 to {max}")),
    }
}

/// `[":" domain-spec] [dual-cidr]` of a and mx. A trailing `/digits` or `//digits` is the
/// prefix length; any other `/` belongs to the domain-spec.
fn domain_and_cidr(args: &str) -> Result<(Option<String>, u8, u8), SyntaxError> {
    let split = args
        .char_indices()
        .filter(|(_, c)| *c == '/')
        .map(|(i, _)| i)
        .find(|&i| is_dual_cidr(&args[i..]))
        .unwrap_or(args.len());
    let (domain_part, cidr_part) = args.split_at(split);
    let (mut cidr4, mut cidr6) = (32, 128);
    if !cidr_part.is_empty() {
        let (four, six) = match cidr_part.strip_prefix("//") {
            Some(six) => (None, Some(six)),
            None => {
                let body = &cidr_part[1..];
                match body.split_once("//") {
                    Some((four, six)) => (Some(four), Some(six)),
                    None => (Some(body), None),
                }
            }
        };
        if let Some(four) = four {
            cidr4 = cidr_value(four, 32)?;
        }
        if let Some(six) = six {
            cidr6 = cidr_value(six, 128)?;
        }
    }
    let domain = match domain_part.strip_prefix(':') {
        Some(domain) => {
            check_domain_spec(domain)?;
            Some(domain.to_owned())
        }
        None if domain_part.is_empty() => None,
        None => return err(format!("unexpected {domain_part:?}")),
    };
    Ok((domain, cidr4, cidr6))
}

fn is_dual_cidr(text: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    match text.strip_prefix("//") {
        Some(six) => digits(six),
        None => match text.strip_prefix('/') {
            Some(body) => match body.split_once("//") {
                Some((four, six)) => digits(four) && digits(six),
                None => digits(body),
            },
            None => false,
        },
    }
}

/// domain-spec = macro-string domain-end; domain-end = ( "." toplabel [ "." ] ) / macro-expand.
pub fn check_domain_spec(spec: &str) -> Result<(), SyntaxError> {
    check_macro_string(spec, false)?;
    if ends_with_macro_expand(spec) {
        return Ok(());
    }
    let trimmed = spec.strip_suffix('.').unwrap_or(spec);
    let Some((_, toplabel)) = trimmed.rsplit_once('.') else {
        return err(format!("{spec:?} does not end in a dot and a top label"));
    };
    let alnum_hyphen = toplabel
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-');
    let has_alpha = toplabel.chars().any(|c| c.is_ascii_alphabetic());
    if toplabel.is_empty()
        || !alnum_hyphen
        || !has_alpha
        || toplabel.starts_with('-')
        || toplabel.ends_with('-')
    {
        return err(format!("{toplabel:?} is not a valid top label"));
    }
    Ok(())
}

fn ends_with_macro_expand(spec: &str) -> bool {
    pieces(spec, false).is_ok_and(|ps| matches!(ps.last(), Some(Piece::Macro { .. })))
}

/// One piece of a macro-string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Macro {
        letter: char,
        upper: bool,
        digits: Option<usize>,
        reverse: bool,
        delimiters: String,
    },
}

fn pieces(text: &str, in_exp: bool) -> Result<Vec<Piece>, SyntaxError> {
    let mut out = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            let visible = ('\u{21}'..='\u{7e}').contains(&c) || (in_exp && c == ' ');
            if !visible {
                return err(format!("{c:?} is not allowed in a macro string"));
            }
            literal.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => literal.push('%'),
            Some('_') => literal.push(' '),
            Some('-') => literal.push_str("%20"),
            Some('{') => {
                if !literal.is_empty() {
                    out.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                let mut body = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => body.push(c),
                        None => return err("unterminated macro"),
                    }
                }
                out.push(parse_macro(&body, in_exp)?);
            }
            other => {
                return err(format!(
                    "invalid macro sequence %{}",
                    other.map(String::from).unwrap_or_default()
                ));
            }
        }
    }
    if !literal.is_empty() {
        out.push(Piece::Literal(literal));
    }
    Ok(out)
}

fn parse_macro(body: &str, in_exp: bool) -> Result<Piece, SyntaxError> {
    let mut chars = body.chars();
    let letter = chars
        .next()
        .ok_or_else(|| SyntaxError("empty macro".into()))?;
    let lower = letter.to_ascii_lowercase();
    let allowed = if in_exp { "slodiphcrtv" } else { "slodiphv" };
    if !allowed.contains(lower) {
        return err(format!("macro letter {letter:?} is not allowed here"));
    }
    let rest: String = chars.collect();
    let digits_len = rest.chars().take_while(char::is_ascii_digit).count();
    let digits = if digits_len > 0 {
        let n: usize = rest[..digits_len]
            .parse()
            .map_err(|_| SyntaxError("bad macro digits".into()))?;
        if n == 0 {
            return err("a macro cannot keep 0 parts");
        }
        Some(n)
    } else {
        None
    };
    let mut tail = &rest[digits_len..];
    let reverse = match tail.chars().next() {
        Some('r' | 'R') => {
            tail = &tail[1..];
            true
        }
        _ => false,
    };
    if !tail.chars().all(|c| ".-+,/_=".contains(c)) {
        return err(format!("invalid macro transformers {rest:?}"));
    }
    Ok(Piece::Macro {
        letter: lower,
        upper: letter.is_ascii_uppercase(),
        digits,
        reverse,
        delimiters: tail.to_owned(),
    })
}

pub fn check_macro_string(text: &str, in_exp: bool) -> Result<(), SyntaxError> {
    pieces(text, in_exp).map(|_| ())
}

/// Whether expanding `text` needs the validated domain name of the IP (`%{p}`).
pub fn uses_p_macro(text: &str) -> bool {
    pieces(text, true).is_ok_and(|ps| {
        ps.iter()
            .any(|p| matches!(p, Piece::Macro { letter: 'p', .. }))
    })
}

/// The values macros expand to.
#[derive(Debug, Clone)]
pub struct MacroContext<'a> {
    pub ip: IpAddr,
    pub sender_local: &'a str,
    pub sender_domain: &'a str,
    pub domain: &'a str,
    pub helo: &'a str,
    /// The validated name of the IP, when `%{p}` is used.
    pub validated_name: Option<&'a str>,
    pub receiver: &'a str,
    pub timestamp: i64,
}

fn letter_value(letter: char, ctx: &MacroContext<'_>) -> String {
    match letter {
        's' => format!("{}@{}", ctx.sender_local, ctx.sender_domain),
        'l' => ctx.sender_local.to_owned(),
        'o' => ctx.sender_domain.to_owned(),
        'd' => ctx.domain.to_owned(),
        'i' => match ctx.ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => v6
                .octets()
                .iter()
                .flat_map(|b| [b >> 4, b & 0xf])
                .map(|n| format!("{n:x}"))
                .collect::<Vec<_>>()
                .join("."),
        },
        'p' => ctx.validated_name.unwrap_or("unknown").to_owned(),
        'v' => if ctx.ip.is_ipv4() { "in-addr" } else { "ip6" }.to_owned(),
        'h' => ctx.helo.to_owned(),
        'c' => ctx.ip.to_string(),
        'r' => ctx.receiver.to_owned(),
        't' => ctx.timestamp.to_string(),
        _ => String::new(),
    }
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Expands a macro-string (§7).
pub fn expand(text: &str, ctx: &MacroContext<'_>, in_exp: bool) -> Result<String, SyntaxError> {
    let mut out = String::new();
    for piece in pieces(text, in_exp)? {
        match piece {
            Piece::Literal(s) => out.push_str(&s),
            Piece::Macro {
                letter,
                upper,
                digits,
                reverse,
                delimiters,
            } => {
                let value = letter_value(letter, ctx);
                let delims = if delimiters.is_empty() {
                    ".".to_owned()
                } else {
                    delimiters
                };
                let mut parts: Vec<&str> = value.split(|c| delims.contains(c)).collect();
                if reverse {
                    parts.reverse();
                }
                if let Some(n) = digits
                    && n < parts.len()
                {
                    parts = parts.split_off(parts.len() - n);
                }
                let joined = parts.join(".");
                out.push_str(&if upper { url_encode(&joined) } else { joined });
            }
        }
    }
    Ok(out)
}

/// §7.3: an expanded domain longer than 253 characters loses labels from the left.
pub fn shorten_domain(domain: &str) -> String {
    let mut d = domain.trim_end_matches('.');
    while d.len() > 253 {
        match d.split_once('.') {
            Some((_, rest)) => d = rest,
            None => break,
        }
    }
    d.to_owned()
}

/// §4.3: a name we may look up: labels of 1 to 63 octets, at least two of them.
pub fn is_valid_domain(domain: &str) -> bool {
    let d = domain.strip_suffix('.').unwrap_or(domain);
    let labels: Vec<&str> = d.split('.').collect();
    d.len() <= 253 && labels.len() >= 2 && labels.iter().all(|l| !l.is_empty() && l.len() <= 63)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> MacroContext<'static> {
        MacroContext {
            ip: "192.0.2.3".parse().unwrap(),
            sender_local: "strong-bad",
            sender_domain: "email.example.com",
            domain: "email.example.com",
            helo: "mx.example.org",
            validated_name: None,
            receiver: "localhost",
            timestamp: 0,
        }
    }

    #[test]
    fn rfc_7208_section_7_4_examples() {
        let c = ctx();
        let e = |t: &str| expand(t, &c, false).unwrap();
        assert_eq!(e("%{s}"), "strong-bad@email.example.com");
        assert_eq!(e("%{o}"), "email.example.com");
        assert_eq!(e("%{d}"), "email.example.com");
        assert_eq!(e("%{d4}"), "email.example.com");
        assert_eq!(e("%{d3}"), "email.example.com");
        assert_eq!(e("%{d2}"), "example.com");
        assert_eq!(e("%{d1}"), "com");
        assert_eq!(e("%{dr}"), "com.example.email");
        assert_eq!(e("%{d2r}"), "example.email");
        assert_eq!(e("%{l}"), "strong-bad");
        assert_eq!(e("%{l-}"), "strong.bad");
        assert_eq!(e("%{lr}"), "strong-bad");
        assert_eq!(e("%{lr-}"), "bad.strong");
        assert_eq!(e("%{l1r-}"), "strong");
        assert_eq!(
            e("%{ir}.%{v}._spf.%{d2}"),
            "3.2.0.192.in-addr._spf.example.com"
        );
        assert_eq!(e("%{lr-}.lp._spf.%{d2}"), "bad.strong.lp._spf.example.com");
        assert_eq!(
            e("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}"),
            "3.2.0.192.in-addr.strong.lp._spf.example.com"
        );
        assert_eq!(
            e("%{d2}.trusted-domains.example.net"),
            "example.com.trusted-domains.example.net"
        );
        let v6 = MacroContext {
            ip: "2001:db8::cb01".parse().unwrap(),
            ..c.clone()
        };
        assert_eq!(
            expand("%{ir}.%{v}._spf.%{d2}", &v6, false).unwrap(),
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
        );
        assert_eq!(e("%%%_%-"), "% %20");
        assert_eq!(
            expand("%{S}", &c, false).unwrap(),
            "strong-bad%40email.example.com"
        );
    }

    #[test]
    fn macro_errors() {
        assert!(check_macro_string("%{x}", false).is_err());
        assert!(check_macro_string("%{c}", false).is_err(), "c only in exp");
        assert!(check_macro_string("%{c}", true).is_ok());
        assert!(check_macro_string("%{d0}", false).is_err());
        assert!(check_macro_string("%z", false).is_err());
        assert!(check_macro_string("%{d", false).is_err());
    }

    #[test]
    fn records() {
        let r = parse_record("v=spf1 ip4:192.0.2.0/24 -a:mail.example.com/28//64 mx ~all redirect=_spf.example.com foo.bar=baz").unwrap();
        assert_eq!(r.directives.len(), 4);
        assert_eq!(r.directives[1].qualifier, Qualifier::Fail);
        assert_eq!(
            r.directives[1].mechanism,
            Mechanism::A {
                domain: Some("mail.example.com".into()),
                cidr4: 28,
                cidr6: 64
            }
        );
        assert_eq!(r.redirect.as_deref(), Some("_spf.example.com"));
        assert!(
            parse_record("v=spf1 a:foo:bar/baz.example.com").is_ok(),
            "a colon and a slash in a domain-spec"
        );
        for bad in [
            "v=spf1 ip4:1.2.3.4/33",
            "v=spf1 ip4:1.2.3.4/032",
            "v=spf1 a:museum",
            "v=spf1 a:foo.1.2.3",
            "v=spf1 a:",
            "v=spf1 moo",
            "v=spf1 redirect=a.example.com redirect=b.example.com",
            "v=spf1 all:x",
            "v=spf1 a:%{c}.example.com",
            "v=spf1 -all \u{96}",
        ] {
            assert!(parse_record(bad).is_err(), "{bad}");
        }
        assert!(parse_record("v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all").is_ok());
        assert!(
            is_spf_record("V=SpF1") && !is_spf_record("v=spf10") && !is_spf_record("v=spf1-all")
        );
    }

    #[test]
    fn domains() {
        assert!(is_valid_domain("example.com"));
        assert!(!is_valid_domain("example"));
        assert!(!is_valid_domain("a..example.com"));
        assert!(!is_valid_domain(&format!("{}.example.com", "a".repeat(64))));
        let long = format!("{}.example.com", ["x"; 130].join("."));
        assert!(shorten_domain(&long).len() <= 253);
        assert!(shorten_domain(&long).ends_with(".example.com"));
    }
}
