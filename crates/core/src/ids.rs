//! Identifiers: UUIDv7 as text, so ids sort by creation time on both databases.

/// A new identifier for any row.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_time_ordered() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert!(a < b, "UUIDv7 ids created later sort later: {a} {b}");
        assert_eq!(a.len(), 36);
    }
}
