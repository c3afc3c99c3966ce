//! E-mail address syntax within the limits of RFC 5321 (local part ≤ 64 octets,
//! whole path ≤ 254, labels ≤ 63). This is the shared first gate; the contacts
//! pipeline adds DNS and list-based checks on top.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AddressError {
    #[error("is empty")]
    Empty,
    #[error("must contain exactly one '@'")]
    At,
    #[error("is longer than 254 characters")]
    TooLong,
    #[error("local part is empty or longer than 64 characters")]
    LocalLength,
    #[error("local part contains a character that is not allowed")]
    LocalChars,
    #[error("domain is not a valid host name")]
    Domain,
}

/// Checks the syntax of a dot-atom address (quoted local parts are refused: no
/// real mailbox we send to needs them, and they are a common injection vector).
pub fn check_syntax(address: &str) -> Result<(), AddressError> {
    if address.is_empty() {
        return Err(AddressError::Empty);
    }
    if address.len() > 254 {
        return Err(AddressError::TooLong);
    }
    let (local, domain) = match address.split_once('@') {
        Some((l, d)) if !d.contains('@') => (l, d),
        _ => return Err(AddressError::At),
    };
    if local.is_empty() || local.len() > 64 {
        return Err(AddressError::LocalLength);
    }
    let atom_char = |c: char| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    if local
        .split('.')
        .any(|atom| atom.is_empty() || !atom.chars().all(atom_char))
    {
        return Err(AddressError::LocalChars);
    }
    if !is_host_name(domain) {
        return Err(AddressError::Domain);
    }
    Ok(())
}

/// A fully qualified host name: at least two labels of letters, digits and inner
/// hyphens, each at most 63 characters, 253 in all (a trailing dot is allowed).
pub fn is_host_name(domain: &str) -> bool {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in [
            "a@example.com",
            "first.last+tag@sub.example.co.uk",
            "élise@exemple.fr",
        ] {
            assert_eq!(check_syntax(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_broken_addresses() {
        assert_eq!(check_syntax(""), Err(AddressError::Empty));
        assert_eq!(check_syntax("no-at.example.com"), Err(AddressError::At));
        assert_eq!(check_syntax("a@b@example.com"), Err(AddressError::At));
        assert_eq!(check_syntax("@example.com"), Err(AddressError::LocalLength));
        assert_eq!(
            check_syntax("a..b@example.com"),
            Err(AddressError::LocalChars)
        );
        assert_eq!(
            check_syntax("a b@example.com"),
            Err(AddressError::LocalChars)
        );
        assert_eq!(check_syntax("a@localhost"), Err(AddressError::Domain));
        assert_eq!(check_syntax("a@-bad.com"), Err(AddressError::Domain));
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert_eq!(check_syntax(&long_local), Err(AddressError::LocalLength));
        let long = format!("a@{}.com", "b".repeat(260));
        assert_eq!(check_syntax(&long), Err(AddressError::TooLong));
    }
}
