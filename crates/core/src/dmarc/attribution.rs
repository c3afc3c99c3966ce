//! To whom a report belongs: only ever the tenant holding the domain the report is about
//! (its `policy_published` domain), never one the report names. A domain name several
//! tenants registered goes to the one whose DNS check passed (it published the records:
//! it holds the zone), and to nobody when that does not single one out.

/// A tenant's registration of the report's domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub tenant_id: String,
    pub domain_id: String,
    /// Its last DNS check passed.
    pub proven: bool,
}

/// The holder a report goes to, or why none.
pub fn attribute(holders: &[Holder]) -> Result<&Holder, &'static str> {
    match holders {
        [] => Err("its domain is not one of ours"),
        [one] => Ok(one),
        several => {
            let mut proven = several.iter().filter(|h| h.proven);
            match (proven.next(), proven.next()) {
                (Some(one), None) => Ok(one),
                _ => Err("its domain is registered by several tenants, none proven the holder"),
            }
        }
    }
}
