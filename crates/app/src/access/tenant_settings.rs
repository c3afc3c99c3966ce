//! A tenant's settings, typed: how it delivers and how its contacts are read.

use ee_store::tenants::Tenant;
use serde_json::Value;

/// What a tenant's `settings` hold, read in this one place: how it delivers, and how its
/// contacts are read. Each section is read on its own, so one that does not read back
/// (they are checked when written: that is a fault, logged) leaves the others as they are
/// and falls back to its defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantSettings {
    pub delivery: ee_core::delivery::TenantDelivery,
    pub contacts: ContactSettings,
}

/// Key `contacts` of a tenant's settings.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct ContactSettings {
    /// How addresses are folded before they are compared (dots, `+tags`).
    pub folding: ee_core::contacts::Folding,
    /// Whether validation asks the recipient's server (an SMTP probe).
    pub smtp_probe: bool,
}

impl TenantSettings {
    pub fn of(tenant: &Tenant) -> Self {
        let all: Value = serde_json::from_str(&tenant.settings).unwrap_or_else(|e| {
            tracing::error!(tenant = %tenant.id, error = %e, "unreadable tenant settings");
            Value::Null
        });
        Self {
            delivery: section(&all, "delivery", &tenant.id),
            contacts: section(&all, "contacts", &tenant.id),
        }
    }
}

fn section<T: serde::de::DeserializeOwned + Default>(all: &Value, key: &str, tenant: &str) -> T {
    match all.get(key) {
        None | Some(Value::Null) => T::default(),
        Some(value) => serde_json::from_value(value.clone()).unwrap_or_else(|e| {
            tracing::error!(tenant, section = key, error = %e, "unreadable tenant settings");
            T::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ee_store::tenants::Tenant;

    fn tenant(settings: &str) -> Tenant {
        Tenant {
            id: "t1".into(),
            name: "Brand".into(),
            slug: "brand".into(),
            settings: settings.into(),
            is_active: true,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn each_section_of_the_settings_is_read_on_its_own() {
        let read = TenantSettings::of(&tenant(
            r#"{"delivery": {"mode": "relay", "relay": "pmta"}, "contacts": {"smtp_probe": true, "folding": {"gmail_dots": true}}}"#,
        ));
        assert_eq!(read.delivery.relay.as_deref(), Some("pmta"));
        assert!(read.contacts.smtp_probe);
        assert!(read.contacts.folding.gmail_dots);

        // A section that does not read back falls back alone.
        let read = TenantSettings::of(&tenant(
            r#"{"delivery": {"mode": "relay", "relay": "pmta"}, "contacts": {"smtp_probe": "yes"}}"#,
        ));
        assert_eq!(read.delivery.relay.as_deref(), Some("pmta"));
        assert_eq!(read.contacts, ContactSettings::default());

        assert_eq!(TenantSettings::of(&tenant("{}")), TenantSettings::default());
        assert_eq!(
            TenantSettings::of(&tenant("not json")),
            TenantSettings::default()
        );
    }
}
