//! The relays a tenant in relay mode lists, as the engine tries them (a file of its own:
//! `delivery` holds the settings and names `relay_choice`'s order, so the list read here
//! cannot sit in either without the two importing each other).

impl crate::delivery::TenantDelivery {
    /// The relays a message tries, in the tenant's order: `relay`, then `relays`, each
    /// once.
    pub fn relay_keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        for key in self.relay.iter().chain(&self.relays) {
            if !keys.contains(&key.as_str()) {
                keys.push(key);
            }
        }
        keys
    }
}
