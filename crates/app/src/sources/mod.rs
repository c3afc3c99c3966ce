//! Data sources: where contacts come from (Scraper-Pro, Backlink-Engine, CSV, the API).
pub mod csv_import;
pub mod field_names;
pub mod imports;

use ee_core::secrets::Sealer;
use ee_core::source::SourceKind;
use ee_core::timefmt::to_rfc3339;
use ee_store::Db;
use ee_store::Scope;
use ee_store::sources;
pub use ee_store::sources::Source;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::AppError;
use crate::audit::{Caller, Change};
use crate::read::Read;

/// Sealing purpose of webhook secrets.
pub const SECRET_PURPOSE: &str = "data-source-secret";

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceOut {
    pub id: String,
    pub tenant_id: String,
    pub slug: String,
    pub name: String,
    /// scraper_pro, backlink_engine, csv, api; powermta, mailwizz (feedback).
    #[serde(rename = "type")]
    pub kind: SourceKind,
    /// `{"route": true}` sends the source's contacts through the routing rules;
    /// `{"category_rules": [{"when": {"tag": "SECTOR:LEGAL"}, "category": "LAWYER"}]}`
    /// gives a category to its contacts that have none (the first rule that holds).
    #[schema(value_type = Object)]
    pub config: Value,
    pub created_at: String,
}

impl From<Source> for SourceOut {
    fn from(s: Source) -> Self {
        Self {
            id: s.id,
            tenant_id: s.tenant_id,
            slug: s.slug,
            name: s.name,
            kind: s.kind,
            config: serde_json::from_str(&s.config).unwrap_or_default(),
            created_at: to_rfc3339(s.created_at),
        }
    }
}

/// A tenant's source by slug or id.
pub async fn find(
    conn: &mut ee_store::AnyConnection,
    tenant_id: &str,
    key: &str,
) -> Result<Option<Source>, ee_store::StoreError> {
    Ok(sources::find(conn, key, Scope::Tenant(tenant_id))
        .await?
        .into_iter()
        .next())
}

/// The source an ingest names, created on first use when the tenant has none by that slug
/// (the seeds' clients post `"source": "api"` or `"source_id": "scraper-pro-001"` without
/// ever registering one). The new source is audited in its own transaction; its webhook
/// secret is not shown (rotate it to sign webhooks).
pub async fn for_ingest(
    db: &Db,
    sealer: &Sealer,
    caller: &Caller,
    tenant_id: &str,
    key: &str,
    now: i64,
) -> Result<Source, AppError> {
    let mut conn = db.pool().acquire().await?;
    if let Some(found) = find(&mut conn, tenant_id, key).await? {
        return Ok(found);
    }
    drop(conn);
    let slug = key.trim().to_ascii_lowercase();
    let mut errors = ee_core::ValidationErrors::new();
    ee_core::tenant::validate_slug(&slug, "source", &mut errors);
    errors.into_result()?;
    let kind = SourceKind::of_first_use(&slug);
    let secret = ee_core::auth::random_token(32);
    let sealed = sealer.seal(SECRET_PURPOSE, secret.as_bytes());
    let mut w = crate::write::Write::open(db, caller.clone(), None, now).await?;
    let source =
        match sources::insert(&mut w.tx, tenant_id, &slug, &slug, kind, "{}", &sealed, now).await {
            Ok(source) => source,
            // Another request created it first.
            Err(ee_store::StoreError::Conflict(_)) => {
                drop(w);
                let mut conn = db.pool().acquire().await?;
                return find(&mut conn, tenant_id, &slug)
                    .await?
                    .ok_or(AppError::NotFound("data source"));
            }
            Err(e) => return Err(e.into()),
        };
    let out = SourceOut::from(source.clone());
    let mut after = serde_json::to_value(&out).unwrap_or_default();
    after["created_on_first_use"] = json!(true);
    let change = Change {
        action: "data_source.create",
        resource_type: "data_source",
        resource_id: Some(&out.id),
        tenant_id: Some(tenant_id),
        before: None,
        after: Some(after),
    };
    w.commit(change).await?;
    Ok(source)
}

impl crate::write::Deletable for Source {
    const DELETED: &'static str = "data_source.delete";
    type Out = SourceOut;

    async fn delete(
        conn: &mut ee_store::AnyConnection,
        id: &str,
    ) -> Result<(), ee_store::StoreError> {
        ee_store::sources::delete(conn, id).await
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceWithSecret {
    #[serde(flatten)]
    pub source: SourceOut,
    /// The webhook signing secret, shown once.
    pub secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSource {
    pub slug: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
}

/// Registers a data source for `tenant_id`; its webhook secret is in the answer, once.
pub async fn create(
    w: &mut crate::write::Write,
    sealer: &Sealer,
    outbound: &ee_core::outbound::OutboundPolicy,
    tenant_id: &str,
    input: CreateSource,
) -> Result<SourceWithSecret, AppError> {
    let mut errors = ee_core::ValidationErrors::new();
    ee_core::tenant::validate_slug(&input.slug, "slug", &mut errors);
    ee_core::tenant::validate_name(&input.name, "name", &mut errors);
    let kind = SourceKind::parse(&input.kind);
    if kind.is_none() {
        errors.add("type", format!("must be one of {}", SourceKind::names()));
    }
    if input.config.as_ref().is_some_and(|c| !c.is_object()) {
        errors.add("config", "must be a JSON object");
    }
    // The same rule as every URL a tenant names (a MailWizz instance's, a relay's),
    // checked here when saved and again when called.
    if let Some(url) = input.config.as_ref().and_then(|c| c.get("bounce_url")) {
        match url
            .as_str()
            .map(|u| (u, ee_connectors::outbound::check_url(outbound, u)))
        {
            Some((u, Ok(()))) if !u.contains(char::is_whitespace) => {}
            Some((_, Err(ee_connectors::outbound::UrlError::Refused(refused)))) => {
                errors.add("config.bounce_url", refused.to_string());
            }
            _ => errors.add(
                "config.bounce_url",
                "must be the http(s) address bounces and complaints are forwarded to",
            ),
        }
    }
    // Categories for its contacts that have none (`ee_core::enrichment`).
    if let Some(config) = &input.config
        && let Err(why) = ee_core::enrichment::category_rules(config)
    {
        errors.add("config.category_rules", why);
    }
    if let Some(scheme) = input.config.as_ref().and_then(|c| c.get("signature"))
        && !matches!(scheme.as_str(), Some("timestamped" | "body"))
    {
        errors.add(
            "config.signature",
            "must be timestamped (the default) or body (HMAC of the body alone: weaker)",
        );
    }
    errors.into_result()?;
    let secret = ee_core::auth::random_token(32);
    let sealed = sealer.seal(SECRET_PURPOSE, secret.as_bytes());
    let config = input.config.unwrap_or_else(|| json!({})).to_string();
    ee_store::tenants::get(&mut w.tx, tenant_id)
        .await
        .map_err(AppError::from_store("tenant"))?;
    let source = sources::insert(
        &mut w.tx,
        tenant_id,
        &input.slug,
        input.name.trim(),
        kind.expect("checked above"),
        &config,
        &sealed,
        w.now,
    )
    .await?;
    let out = SourceOut::from(source);
    w.created("data_source.create", &out).await?;
    Ok(SourceWithSecret {
        source: out,
        secret,
    })
}

/// A new webhook secret for a source the caller may see; the old one stops working at once.
pub async fn rotate_secret(
    w: &mut crate::write::Write,
    sealer: &Sealer,
    id: &str,
) -> Result<SourceWithSecret, AppError> {
    let mut s: Source = w.find(id).await?;
    let secret = ee_core::auth::random_token(32);
    s.secret_sealed = Some(sealer.seal(SECRET_PURPOSE, secret.as_bytes()));
    sources::update(&mut w.tx, &s, w.now).await?;
    let out = SourceOut::from(s);
    w.record(Change {
        action: "data_source.rotate_secret",
        resource_type: "data_source",
        resource_id: Some(&out.id),
        tenant_id: Some(&out.tenant_id),
        before: None,
        after: None,
    })
    .await?;
    Ok(SourceWithSecret {
        source: out,
        secret,
    })
}

crate::write::audited!(SourceOut, "data_source");

/// Whether a source signs (and is sent) the body alone, without a timestamp: its config
/// says `"signature": "body"` (Scraper-Pro's contract; weaker: a captured request can be
/// replayed).
pub fn signs_body_only(config: &str) -> bool {
    serde_json::from_str::<Value>(config)
        .ok()
        .is_some_and(|c| c.get("signature").and_then(|v| v.as_str()) == Some("body"))
}

/// The data sources the caller may see.
pub async fn list(read: &mut Read) -> Result<Vec<Source>, AppError> {
    let (conn, scope) = read.parts();
    Ok(sources::list(conn, scope).await?)
}

/// A source of a tenant by slug or id, or `NotFound` (a request naming it).
pub async fn named(read: &mut Read, tenant_id: &str, key: &str) -> Result<Source, AppError> {
    find(read.conn(), tenant_id, key)
        .await?
        .ok_or(AppError::NotFound("data source"))
}

/// The sources a signed request may come from: every tenant's source with this slug or
/// id (which one signed is for the door to check).
pub async fn signing(read: &mut Read, key: &str) -> Result<Vec<Source>, AppError> {
    Ok(sources::find(read.conn(), key, Scope::All).await?)
}
