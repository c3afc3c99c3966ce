//! `tenant create`, `user create`, `api-key create`: the same use-cases as the API.

use anyhow::bail;
use ee_app::audit::Caller;
use ee_core::clock::Clock;
use ee_store::StoreError;

use super::files::open_db;
use crate::config::Config;

/// A use-case's error as one line naming the command-line flag (`tenant_id` is
/// `--tenant`, `expires_at` is `--expires-at`).
/// The audited write of a command: the command line acting, every tenant in view.
async fn cli_write(db: &ee_store::Db) -> anyhow::Result<ee_app::write::Write> {
    ee_app::write::Write::open(db, Caller::cli(), None, Clock::System.now_ms())
        .await
        .map_err(app_error)
}

pub(super) fn app_error(e: ee_app::AppError) -> anyhow::Error {
    match e {
        ee_app::AppError::Invalid(errors) | ee_app::AppError::OverLimit(errors) => {
            let flags: Vec<String> = errors
                .0
                .iter()
                .map(|e| {
                    let flag = match e.field.as_str() {
                        "tenant_id" => "tenant".to_owned(),
                        other => other.replace('_', "-"),
                    };
                    format!("--{flag}: {}", e.message)
                })
                .collect();
            anyhow::anyhow!("invalid input: {}", flags.join("; "))
        }
        ee_app::AppError::NotFound(what) => anyhow::anyhow!("no {what} has the slug or id given"),
        ee_app::AppError::Store(StoreError::Conflict(what)) => {
            anyhow::anyhow!("{what} already exists")
        }
        other => other.into(),
    }
}

pub(super) async fn tenant_create(
    config: &Config,
    name: &str,
    slug: &str,
    settings: &str,
) -> anyhow::Result<()> {
    let settings = match serde_json::from_str::<serde_json::Value>(settings) {
        Ok(v) if v.is_object() => v,
        _ => bail!("invalid input: --settings: must be a JSON object"),
    };
    let db = open_db(config).await?;
    let input = ee_app::access::tenants::NewTenantInput {
        name: name.to_owned(),
        slug: slug.to_owned(),
        settings: Some(settings),
    };
    let mut w = cli_write(&db).await?;
    let tenant = ee_app::access::tenants::create(&mut w, input)
        .await
        .map_err(app_error)?;
    w.finish().await.map_err(app_error)?;
    println!("{}", tenant.id);
    Ok(())
}

pub(super) async fn user_create(
    config: &Config,
    email: &str,
    role: &str,
    tenant: Option<&str>,
    password: Option<String>,
) -> anyhow::Result<()> {
    let generated = password.is_none();
    let password = password.unwrap_or_else(ee_core::auth::generate_password);
    let db = open_db(config).await?;
    let input = ee_app::access::users::NewUserInput {
        email: email.to_owned(),
        password: password.clone(),
        role: role.to_owned(),
        tenant: tenant.map(str::to_owned),
        username: None,
    };
    let user = input.check().await.map_err(app_error)?;
    let mut w = cli_write(&db).await?;
    let user = ee_app::access::users::create(&mut w, user)
        .await
        .map_err(app_error)?;
    w.finish().await.map_err(app_error)?;
    println!("{}", user.id);
    if generated {
        println!("password: {password}");
    }
    Ok(())
}

pub(super) async fn api_key_create(
    config: &Config,
    tenant: &str,
    name: &str,
    expires_at: Option<&str>,
) -> anyhow::Result<()> {
    let expires_at = match expires_at {
        None => None,
        Some(text) => Some(ee_core::timefmt::parse_rfc3339(text).ok_or_else(|| {
            anyhow::anyhow!(
                "invalid input: --expires-at: must be an RFC 3339 date-time, e.g. 2027-01-01T00:00:00Z"
            )
        })?),
    };
    let db = open_db(config).await?;
    let input = ee_app::access::api_keys::NewKeyInput {
        tenant: tenant.to_owned(),
        name: name.to_owned(),
        expires_at,
        created_by: None,
    };
    let mut w = cli_write(&db).await?;
    let (stored, key) = ee_app::access::api_keys::create(&mut w, input)
        .await
        .map_err(app_error)?;
    w.finish().await.map_err(app_error)?;
    println!(
        "id:  {}\nkey: {key}\nThe key is not stored and is not shown again.",
        stored.id
    );
    Ok(())
}
