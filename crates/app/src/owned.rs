//! The rows a tenant owns, each found by id within the caller's scope (`Owned`), and
//! those deleted outright with their audit entry (`Deletable`). One implementation per
//! kind of row replaces a look-up function per route.

use ee_store::{AnyConnection, Scope, StoreError};

use crate::write::Owned;

/// `Owned` for a store row whose module has `get(conn, id, scope)`.
macro_rules! owned {
    ($row:ty, $module:ident, $name:literal) => {
        impl Owned for $row {
            const NAME: &'static str = $name;

            async fn get(
                conn: &mut AnyConnection,
                id: &str,
                scope: Scope<'_>,
            ) -> Result<Self, StoreError> {
                ee_store::$module::get(conn, id, scope).await
            }
        }
    };
}

owned!(ee_store::api_keys::ApiKey, api_keys, "API key");
owned!(ee_store::campaigns::Campaign, campaigns, "campaign");
owned!(ee_store::contacts::Contact, contacts, "contact");
owned!(ee_store::domains::Domain, domains, "domain");
owned!(ee_store::ips::Ip, ips, "IP");
owned!(ee_store::mailwizz::Instance, mailwizz, "MailWizz instance");
owned!(ee_store::messages::Message, messages, "message");
owned!(ee_store::relays::Relay, relays, "relay");
owned!(ee_store::segments::Segment, segments, "segment");
owned!(ee_store::sources::Source, sources, "data source");
owned!(ee_store::templates::Template, templates, "template");
owned!(ee_store::warmup::Plan, warmup, "warm-up plan");

/// A tenant is its own row: a caller limited to one tenant sees that one only.
impl Owned for ee_store::tenants::Tenant {
    const NAME: &'static str = "tenant";

    async fn get(conn: &mut AnyConnection, id: &str, scope: Scope<'_>) -> Result<Self, StoreError> {
        if scope.tenant().is_some_and(|own| own != id) {
            return Err(StoreError::NotFound);
        }
        ee_store::tenants::get(conn, id).await
    }
}
