//! `/api/v2/templates`: multilingual templates with MailWizz-style variables, versions,
//! preview and the three-level selection.

use super::{List, ListParams};
use ee_app::Scope;
use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ee_app::campaigns::rendering::{declared_variables, render};
use ee_app::campaigns::templates::{
    self, Template, TemplateIn, TemplateOut, language_of, normalized_category,
};
use ee_app::campaigns::test_send::{TestMessage, TestSend};
use ee_app::contacts::view;
use ee_core::template;
use ee_core::timefmt::to_rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

#[utoipa::path(post, path = "/api/v2/templates", tag = "templates", request_body = TemplateIn,
    responses((status = 201, body = TemplateOut), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<TemplateIn>,
) -> ApiResult<(StatusCode, Json<TemplateOut>)> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let tenant_id = w.tenant(body.tenant_id.as_deref()).await?;
    let out = templates::create(&mut w, &tenant_id, &body).await?;
    w.finish().await?;
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
    let mut read = Read::begin(&state, &principal).await?;
    let tenant_id = match (&q.tenant_id, principal.scope()) {
        (None, Scope::All) => None,
        _ => Some(read.tenant(q.tenant_id.as_deref()).await?),
    };
    let language = q.language.as_deref().map(language_of).transpose()?;
    let category = normalized_category(q.category.as_deref());
    let rows = templates::list(
        &mut read,
        tenant_id.as_deref(),
        language,
        category.as_deref(),
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
    let mut read = Read::begin(&state, &principal).await?;
    Ok(Json(read.find::<Template>(&id).await?.into()))
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
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let out = templates::update(&mut w, &id, &body).await?;
    w.finish().await?;
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
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    ee_app::write::delete::<Template>(&mut w, &id).await?;
    w.finish().await?;
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
    let mut read = Read::begin(&state, &principal).await?;
    let t = read.find::<Template>(&id).await?;
    let rows = templates::versions(&mut read, &t).await?;
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
    /// Values (`{"FNAME": "Jean"}`), over the contact's.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Without a contact: fill the template for a made-up recipient named in its
    /// language (true, the default), or leave its variables empty to see their
    /// fallbacks (false).
    pub samples: Option<bool>,
    /// A draft of the subject, rendered instead of the saved one (an editor's live
    /// preview: nothing is saved).
    pub subject: Option<String>,
    /// A draft of the HTML body …
    pub html: Option<String>,
    /// … or of the design it is rendered from (the visual editor's blocks).
    #[schema(value_type = Option<Object>)]
    pub design: Option<Value>,
    /// A draft of the text body.
    pub text: Option<String>,
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
    render_preview(&state, &principal, &id, body)
        .await
        .map(Json)
}

/// A template (or a draft of it) filled for a contact or with sample values: the API's
/// preview and the admin UI's preview frame.
pub(crate) async fn render_preview(
    state: &AppState,
    principal: &Principal,
    id: &str,
    body: PreviewIn,
) -> ApiResult<PreviewOut> {
    let mut read = Read::begin(state, principal).await?;
    let t = read.find::<Template>(id).await?;
    let contact = match (&body.contact_id, &body.email) {
        (Some(cid), _) => Some(view::of_tenant(&mut read, &t.tenant_id, cid).await?),
        (None, Some(email)) => {
            let normalized = ee_core::contacts::normalize(email, Default::default())
                .map_err(|e| ApiError::invalid_field("email", e.to_string()))?;
            Some(
                view::by_email(&mut read, &t.tenant_id, &normalized)
                    .await?
                    .ok_or_else(|| ApiError::not_found("contact"))?,
            )
        }
        (None, None) => None,
    };
    let unsubscribe = format!(
        "{}/u/preview",
        state.settings.public_url.trim_end_matches('/')
    );
    let values = match (&contact, body.samples.unwrap_or(true)) {
        (None, true) => ee_app::campaigns::rendering::sample_values(
            &t.language,
            &body.variables,
            unsubscribe,
            state.now(),
        ),
        _ => ee_app::campaigns::rendering::recipient_values(
            contact.as_ref(),
            &body.variables,
            unsubscribe,
            state.now(),
        ),
    };
    let drawn = match &body.design {
        Some(d) => Some(ee_core::design::render(
            &templates::design_of(d)?,
            &t.language,
        )),
        None => None,
    };
    let html = drawn
        .as_deref()
        .or(body.html.as_deref())
        .unwrap_or(&t.html_content);
    let rendered = render(
        body.subject.as_deref().unwrap_or(&t.subject),
        Some(html),
        body.text.as_deref().or(t.text_content.as_deref()),
        &t.language,
        &declared_variables(&t.variables),
        &values,
    )?;
    Ok(PreviewOut {
        subject: rendered.subject,
        html: rendered.html,
        text: rendered.text,
        rtl: template::is_rtl(&t.language),
        language: t.language,
    })
}

/// Sends the template as saved to up to 10 addresses, filled from a chosen contact (or
/// the variables' fallbacks), marked `X-Template-Test`: the editor's "send a test".
#[utoipa::path(post, path = "/api/v2/templates/{id}/test", tag = "templates", params(("id" = String, Path)),
    request_body = TestSend,
    responses((status = 202, body = Vec<TestMessage>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn test_send(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TestSend>,
) -> ApiResult<(StatusCode, Json<Vec<TestMessage>>)> {
    let mut read = Read::begin(&state, &principal).await?;
    let t = read.find::<Template>(&id).await?;
    drop(read);
    let sent = ee_app::campaigns::test_send::send_template(&state.services, &t, body).await?;
    Ok((StatusCode::ACCEPTED, Json(sent)))
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
    /// category_and_language, language_general, english_general or english_category.
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
    let mut read = Read::begin(&state, &principal).await?;
    let tenant_id = read.tenant(q.tenant_id.as_deref()).await?;
    let language = language_of(&q.language)?;
    let (chosen, level) = templates::select(&mut read, &tenant_id, language, q.category.as_deref())
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

pub use ee_app::delivery::mailwizz::PushOut;

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
    let mut read = Read::begin(&state, &principal).await?;
    let template = read.find::<Template>(&id).await?;
    let instance = ee_app::delivery::mailwizz_instances::of_tenant(
        &mut read,
        &template.tenant_id,
        body.instance.as_deref(),
    )
    .await?;
    drop(read);
    let (template_uid, created) =
        ee_app::delivery::mailwizz::push_template(&state.services, &instance, &template).await?;
    let out = PushOut {
        template_id: template.id.clone(),
        version: template.version,
        instance_id: instance.id.clone(),
        template_uid,
        created,
    };
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    ee_app::delivery::mailwizz::record_push(&mut w, &template.tenant_id, &out).await?;
    w.finish().await?;
    Ok(Json(out))
}
