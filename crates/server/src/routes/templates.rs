//! `/api/v2/templates`: multilingual templates with MailWizz-style variables, versions,
//! preview and the three-level selection.

use super::{List, ListParams};
use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ee_app::rendering::{declared_variables, describe, render};
use ee_core::template;
use ee_core::timefmt::to_rfc3339;
use ee_store::templates::{self, Content, Template};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::tenant_of;
use crate::audit::Change;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, RequestMeta};
use crate::state::AppState;
use crate::write::{Begin, Write};

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateOut {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub language: String,
    /// Absent for the language's general template.
    pub category: Option<String>,
    pub subject: String,
    pub html: String,
    pub text: Option<String>,
    /// Declared custom variables and their defaults.
    #[schema(value_type = Object)]
    pub variables: BTreeMap<String, Option<String>>,
    pub from_name: Option<String>,
    pub from_email: Option<String>,
    pub reply_to: Option<String>,
    pub version: i64,
    pub active: bool,
    /// Written right to left (Arabic).
    pub rtl: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Template> for TemplateOut {
    fn from(t: Template) -> Self {
        Self {
            variables: declared_variables(&t.variables),
            rtl: template::is_rtl(&t.language),
            id: t.id,
            tenant_id: t.tenant_id,
            name: t.name,
            language: t.language,
            category: t.category,
            subject: t.subject,
            html: t.html_content,
            text: t.text_content,
            from_name: t.from_name,
            from_email: t.from_email,
            reply_to: t.reply_to,
            version: t.version,
            active: t.is_active != 0,
            created_at: to_rfc3339(t.created_at),
            updated_at: to_rfc3339(t.updated_at),
        }
    }
}

/// Seed 004's shape `{name, subject, html, language, tenant}` and the rest.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateIn {
    pub name: Option<String>,
    pub subject: Option<String>,
    pub html: Option<String>,
    /// One of fr, en, es, de, pt, ru, zh, hi, ar (any case).
    pub language: Option<String>,
    /// Tenant slug or id (admins; others default to their own).
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
    /// e.g. blogger, media; absent or `general` for the language's general template.
    pub category: Option<String>,
    /// The text part; generated from the HTML when absent.
    pub text: Option<String>,
    pub from_name: Option<String>,
    pub from_email: Option<String>,
    pub reply_to: Option<String>,
    /// Custom variables the template may use: `{"PROFILE_URL": "https://…"}` (default
    /// value or null) or `["PROFILE_URL"]`.
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Value>,
    pub active: Option<bool>,
}

fn required<'a>(value: &'a Option<String>, field: &str) -> ApiResult<&'a str> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::invalid_field(field, "is required"))
}

fn variables_json(value: Option<&Value>) -> ApiResult<String> {
    let map: BTreeMap<String, Option<String>> = match value {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::Null => Ok((k.clone(), None)),
                Value::String(s) => Ok((k.clone(), Some(s.clone()))),
                _ => Err(ApiError::invalid_field(
                    "variables",
                    format!("the default of {k} must be a string or null"),
                )),
            })
            .collect::<ApiResult<_>>()?,
        Some(Value::Array(names)) => names
            .iter()
            .map(|n| {
                n.as_str()
                    .map(|s| (s.to_owned(), None))
                    .ok_or_else(|| ApiError::invalid_field("variables", "names must be strings"))
            })
            .collect::<ApiResult<_>>()?,
        Some(_) => {
            return Err(ApiError::invalid_field(
                "variables",
                "must be an object (name → default) or a list of names",
            ));
        }
    };
    for name in map.keys() {
        let ok = name.starts_with(|c: char| c.is_ascii_uppercase())
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(ApiError::invalid_field(
                "variables",
                format!("`{name}`: variable names are upper case, digits and _, e.g. PROFILE_URL"),
            ));
        }
    }
    Ok(serde_json::to_string(&map).unwrap_or_else(|_| "{}".into()))
}

fn language_of(value: &str) -> ApiResult<&'static str> {
    template::language(value).ok_or_else(|| {
        ApiError::invalid_field(
            "language",
            format!("`{value}` is not one of {}", template::LANGUAGES.join(", ")),
        )
    })
}

fn check_address(value: Option<&str>, field: &str) -> ApiResult<()> {
    if let Some(v) = value
        && ee_core::contacts::normalize(v, Default::default()).is_err()
    {
        return Err(ApiError::invalid_field(field, "is not a valid address"));
    }
    Ok(())
}

/// Unknown variables and broken tags → 422 naming them.
fn check_content(content: &Content<'_>) -> ApiResult<()> {
    let declared = declared_variables(content.variables);
    let problems = template::check(
        [
            ("subject", content.subject),
            ("html", content.html),
            ("text", content.text.unwrap_or("")),
        ],
        &declared,
    );
    if problems.is_empty() {
        return Ok(());
    }
    let mut error = ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        describe(&problems),
    );
    error.field = Some(
        problems
            .syntax
            .first()
            .map_or_else(|| "variables".to_owned(), |(part, _)| part.clone()),
    );
    error.details = Some(json!({
        "unknown_variables": problems.unknown,
        "syntax": problems.syntax.iter().map(|(p, m)| json!({"part": p, "error": m})).collect::<Vec<_>>(),
        "standard_variables": template::STANDARD_VARIABLES,
    }));
    Err(error)
}

fn normalized_category(category: Option<&str>) -> Option<String> {
    category
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "general")
}

#[utoipa::path(post, path = "/api/v2/templates", tag = "templates", request_body = TemplateIn,
    responses((status = 201, body = TemplateOut), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<TemplateIn>,
) -> ApiResult<(StatusCode, Json<TemplateOut>)> {
    let name = required(&body.name, "name")?;
    let subject = required(&body.subject, "subject")?;
    let html = required(&body.html, "html")?;
    let language = language_of(required(&body.language, "language")?)?;
    check_address(body.from_email.as_deref(), "from_email")?;
    check_address(body.reply_to.as_deref(), "reply_to")?;
    let variables = variables_json(body.variables.as_ref())?;
    let category = normalized_category(body.category.as_deref());
    let content = Content {
        name,
        language,
        category: category.as_deref(),
        subject,
        html,
        text: body.text.as_deref().filter(|t| !t.trim().is_empty()),
        variables: &variables,
        from_name: body.from_name.as_deref(),
        from_email: body.from_email.as_deref(),
        reply_to: body.reply_to.as_deref(),
    };
    check_content(&content)?;
    let now = state.now();
    let mut w = Write::begin(&state, &principal, &meta, now).await?;
    let tenant_id = tenant_of(
        &mut w.tx,
        &principal,
        body.tenant_id.as_deref(),
        "tenant_id",
    )
    .await?;
    let created =
        templates::insert(&mut w.tx, &tenant_id, &content, Some(&principal.id), now).await?;
    let out = TemplateOut::from(created);
    let change = Change {
        action: "template.create",
        resource_type: "template",
        resource_id: Some(&out.id),
        tenant_id: Some(&tenant_id),
        before: None,
        after: serde_json::to_value(&out).ok(),
    };
    w.commit(change).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct TemplateQuery {
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
    pub language: Option<String>,
    pub category: Option<String>,
}

#[utoipa::path(get, path = "/api/v2/templates", tag = "templates", params(TemplateQuery, ListParams),
    responses((status = 200, body = List<TemplateOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<TemplateQuery>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<TemplateOut>>> {
    let mut conn = state.db.pool().acquire().await?;
    let tenant_id = match (&q.tenant_id, principal.scope()) {
        (None, None) => None,
        _ => Some(tenant_of(&mut conn, &principal, q.tenant_id.as_deref(), "tenant_id").await?),
    };
    let language = q.language.as_deref().map(language_of).transpose()?;
    let category = normalized_category(q.category.as_deref());
    let rows = templates::list(
        &mut conn,
        &templates::Filter {
            tenant_id: tenant_id.as_deref(),
            language,
            category: category.as_deref(),
            active: false,
        },
    )
    .await?;
    Ok(Json(List::of(
        rows.into_iter().map(TemplateOut::from).collect(),
        &page,
    )?))
}

#[utoipa::path(get, path = "/api/v2/templates/{id}", tag = "templates", params(("id" = String, Path)),
    responses((status = 200, body = TemplateOut), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<TemplateOut>> {
    let mut conn = state.db.pool().acquire().await?;
    Ok(Json(
        super::visible::<ee_store::templates::Template>(&mut conn, &principal, &id)
            .await?
            .into(),
    ))
}

/// Changes a template; the fields given replace the current ones and a new version is kept.
#[utoipa::path(put, path = "/api/v2/templates/{id}", tag = "templates", params(("id" = String, Path)),
    request_body = TemplateIn,
    responses((status = 200, body = TemplateOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TemplateIn>,
) -> ApiResult<Json<TemplateOut>> {
    if body.tenant_id.is_some() {
        return Err(ApiError::invalid_field(
            "tenant_id",
            "a template cannot move to another tenant",
        ));
    }
    let now = state.now();
    let mut w = Write::begin(&state, &principal, &meta, now).await?;
    let current = w.find::<ee_store::templates::Template>(&id).await?;
    let before = TemplateOut::from(current.clone());
    let variables = match &body.variables {
        Some(v) => variables_json(Some(v))?,
        None => current.variables.clone(),
    };
    let language = match &body.language {
        Some(l) => language_of(l)?,
        None => language_of(&current.language)?,
    };
    let category = match &body.category {
        Some(c) => normalized_category(Some(c)),
        None => current.category.clone(),
    };
    let pick = |given: &Option<String>, now: &Option<String>| -> Option<String> {
        given.clone().or_else(|| now.clone())
    };
    check_address(body.from_email.as_deref(), "from_email")?;
    check_address(body.reply_to.as_deref(), "reply_to")?;
    let name = body.name.clone().unwrap_or(current.name.clone());
    let subject = body.subject.clone().unwrap_or(current.subject.clone());
    let html = body.html.clone().unwrap_or(current.html_content.clone());
    let text = pick(&body.text, &current.text_content).filter(|t| !t.trim().is_empty());
    let from_name = pick(&body.from_name, &current.from_name);
    let from_email = pick(&body.from_email, &current.from_email);
    let reply_to = pick(&body.reply_to, &current.reply_to);
    for (field, value) in [("name", &name), ("subject", &subject), ("html", &html)] {
        if value.trim().is_empty() {
            return Err(ApiError::invalid_field(field, "must not be empty"));
        }
    }
    let content = Content {
        name: name.trim(),
        language,
        category: category.as_deref(),
        subject: &subject,
        html: &html,
        text: text.as_deref(),
        variables: &variables,
        from_name: from_name.as_deref(),
        from_email: from_email.as_deref(),
        reply_to: reply_to.as_deref(),
    };
    check_content(&content)?;
    let active = body.active.unwrap_or(current.is_active != 0);
    let updated = templates::update(
        &mut w.tx,
        &current,
        &content,
        active,
        Some(&principal.id),
        now,
    )
    .await?;
    let out = TemplateOut::from(updated);
    let change = Change {
        action: "template.update",
        resource_type: "template",
        resource_id: Some(&out.id),
        tenant_id: Some(&out.tenant_id),
        before: serde_json::to_value(&before).ok(),
        after: serde_json::to_value(&out).ok(),
    };
    w.commit(change).await?;
    Ok(Json(out))
}

#[utoipa::path(delete, path = "/api/v2/templates/{id}", tag = "templates", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let now = state.now();
    let mut w = Write::begin(&state, &principal, &meta, now).await?;
    let current = w.find::<ee_store::templates::Template>(&id).await?;
    templates::delete(&mut w.tx, &current.id).await?;
    let change = Change {
        action: "template.delete",
        resource_type: "template",
        resource_id: Some(&current.id),
        tenant_id: Some(&current.tenant_id),
        before: serde_json::to_value(TemplateOut::from(current.clone())).ok(),
        after: None,
    };
    w.commit(change).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionOut {
    pub version: i64,
    /// The template as it was in this version.
    #[schema(value_type = Object)]
    pub template: Value,
    pub created_by: Option<String>,
    pub created_at: String,
}

#[utoipa::path(get, path = "/api/v2/templates/{id}/versions", tag = "templates", params(("id" = String, Path), ListParams),
    responses((status = 200, body = List<VersionOut>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn versions(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<VersionOut>>> {
    let mut conn = state.db.pool().acquire().await?;
    let t = super::visible::<ee_store::templates::Template>(&mut conn, &principal, &id).await?;
    let rows = templates::versions(&mut conn, &t.id).await?;
    Ok(Json(List::of(
        rows.into_iter()
            .map(|v| {
                let stored: Value = serde_json::from_str(&v.content).unwrap_or(Value::Null);
                let template = serde_json::from_value::<Template>(stored.clone())
                    .ok()
                    .map(TemplateOut::from)
                    .and_then(|t| serde_json::to_value(t).ok())
                    .unwrap_or(stored);
                VersionOut {
                    version: v.version,
                    template,
                    created_by: v.created_by,
                    created_at: to_rfc3339(v.created_at),
                }
            })
            .collect(),
        &page,
    )?))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewIn {
    /// A real contact of the tenant, by id …
    pub contact_id: Option<String>,
    /// … or by address.
    pub email: Option<String>,
    /// Sample values (`{"FNAME": "Jean"}`), over the contact's.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewOut {
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
    pub language: String,
    pub rtl: bool,
}

#[utoipa::path(post, path = "/api/v2/templates/{id}/preview", tag = "templates", params(("id" = String, Path)),
    request_body = PreviewIn,
    responses((status = 200, body = PreviewOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn preview(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PreviewIn>,
) -> ApiResult<Json<PreviewOut>> {
    let mut conn = state.db.pool().acquire().await?;
    let t = super::visible::<ee_store::templates::Template>(&mut conn, &principal, &id).await?;
    let contact = match (&body.contact_id, &body.email) {
        (Some(cid), _) => Some(
            ee_store::contacts::get(&mut conn, cid, Some(&t.tenant_id))
                .await
                .map_err(ApiError::from_store("contact"))?,
        ),
        (None, Some(email)) => {
            let normalized = ee_core::contacts::normalize(email, Default::default())
                .map_err(|e| ApiError::invalid_field("email", e.to_string()))?;
            Some(
                ee_store::contacts::get_by_email(&mut conn, &t.tenant_id, &normalized)
                    .await?
                    .ok_or_else(|| ApiError::not_found("contact"))?,
            )
        }
        (None, None) => None,
    };
    let values = ee_app::rendering::recipient_values(
        contact.as_ref(),
        &body.variables,
        format!(
            "{}/u/preview",
            state.settings.public_url.trim_end_matches('/')
        ),
        state.now(),
    );
    let rendered = render(
        &t.subject,
        Some(&t.html_content),
        t.text_content.as_deref(),
        &t.language,
        &declared_variables(&t.variables),
        &values,
    )?;
    Ok(Json(PreviewOut {
        subject: rendered.subject,
        html: rendered.html,
        text: rendered.text,
        rtl: template::is_rtl(&t.language),
        language: t.language,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SelectQuery {
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
    pub language: String,
    pub category: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SelectionOut {
    /// category_and_language, language_general or english_general.
    pub level: String,
    pub template: TemplateOut,
}

/// Seed 000 §4.3's selection: category + language → language general → EN general.
#[utoipa::path(get, path = "/api/v2/templates/select", tag = "templates", params(SelectQuery),
    responses((status = 200, body = SelectionOut), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn select(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<SelectQuery>,
) -> ApiResult<Json<SelectionOut>> {
    let mut conn = state.db.pool().acquire().await?;
    let tenant_id = tenant_of(&mut conn, &principal, q.tenant_id.as_deref(), "tenant_id").await?;
    let language = language_of(&q.language)?;
    let (chosen, level) =
        ee_app::rendering::select_template(&mut conn, &tenant_id, language, q.category.as_deref())
            .await?
            .ok_or_else(|| ApiError::not_found("template for this language or English"))?;
    Ok(Json(SelectionOut {
        level: serde_json::to_value(level)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        template: chosen.into(),
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PushIn {
    /// The MailWizz instance (id or name); the tenant's primary one when absent.
    pub instance: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PushOut {
    pub template_id: String,
    pub version: i64,
    pub instance_id: String,
    /// The template's uid in MailWizz.
    pub template_uid: String,
    /// Created now (true) or an update of the one pushed before (false).
    pub created: bool,
}

#[utoipa::path(post, path = "/api/v2/templates/{id}/mailwizz", tag = "templates", params(("id" = String, Path)),
    request_body = PushIn,
    responses((status = 200, body = PushOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
/// Pushes the template to a MailWizz instance of its tenant: created there the first time,
/// updated after (its MailWizz-style tags are MailWizz's own).
pub async fn push_to_mailwizz(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PushIn>,
) -> ApiResult<Json<PushOut>> {
    let mut conn = state.db.pool().acquire().await?;
    let template =
        super::visible::<ee_store::templates::Template>(&mut conn, &principal, &id).await?;
    let instance =
        ee_store::mailwizz::find(&mut conn, &template.tenant_id, body.instance.as_deref())
            .await
            .map_err(|_| {
                ApiError::invalid_field(
                    "instance",
                    "no such MailWizz instance for the template's tenant",
                )
            })?;
    drop(conn);
    let (template_uid, created) =
        ee_app::mailwizz::push_template(&state.services, &instance, &template).await?;
    let out = PushOut {
        template_id: template.id.clone(),
        version: template.version,
        instance_id: instance.id.clone(),
        template_uid,
        created,
    };
    let now = state.now();
    let w = Write::begin(&state, &principal, &meta, now).await?;
    let change = Change {
        action: "template.push_mailwizz",
        resource_type: "template",
        resource_id: Some(&template.id),
        tenant_id: Some(&template.tenant_id),
        before: None,
        after: serde_json::to_value(&out).ok(),
    };
    w.commit(change).await?;
    Ok(Json(out))
}
