use super::{List, ListParams};
use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ee_app::sources::imports::{self, Import};
use ee_core::timefmt::to_rfc3339;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiQuery, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportOut {
    pub id: String,
    pub tenant_id: String,
    pub source_id: Option<String>,
    pub filename: Option<String>,
    pub status: ee_core::contacts::ImportStatus,
    /// Data lines read so far.
    pub total: i64,
    pub created: i64,
    pub updated: i64,
    pub duplicates: i64,
    pub rejected: i64,
    pub delimiter: Option<String>,
    pub encoding: Option<String>,
    pub error: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    /// Where the error report (line, reason) is downloaded.
    pub errors_url: String,
}

impl From<Import> for ImportOut {
    fn from(i: Import) -> Self {
        Self {
            errors_url: format!("/api/v2/imports/{}/errors", i.id),
            id: i.id,
            tenant_id: i.tenant_id,
            source_id: i.source_id,
            filename: i.filename,
            status: i.status,
            total: i.total,
            created: i.created,
            updated: i.updated,
            duplicates: i.duplicates,
            rejected: i.rejected,
            delimiter: i.delimiter,
            encoding: i.encoding,
            error: i.error,
            created_at: to_rfc3339(i.created_at),
            finished_at: i.finished_at.map(to_rfc3339),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ImportQuery {
    /// The data source (slug or id) the contacts come from.
    pub source: Option<String>,
    /// An admin names the tenant (slug or id).
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
    pub filename: Option<String>,
}

/// Streams a body (or a multipart form's first file) to `path`, at most `max` bytes.
async fn save(request: Request, path: &std::path::Path, max: u64) -> ApiResult<Option<String>> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the file is larger than {max} bytes"),
        )
    };
    let io = |e: std::io::Error| {
        tracing::error!(error = %e, "writing an upload failed");
        ApiError::internal()
    };
    let mut file = tokio::fs::File::create(path).await.map_err(io)?;
    let mut written: u64 = 0;
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let mut filename = None;
    if is_multipart {
        let mut form = Multipart::from_request(request, &())
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let mut field = loop {
            match form
                .next_field()
                .await
                .map_err(|e| ApiError::bad_request(e.body_text()))?
            {
                Some(f) if f.file_name().is_some() || f.name() == Some("file") => break f,
                Some(_) => continue,
                None => return Err(ApiError::invalid_field("file", "the form has no file")),
            }
        };
        filename = field.file_name().map(str::to_owned);
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?
        {
            written += chunk.len() as u64;
            if written > max {
                return Err(too_large());
            }
            file.write_all(&chunk).await.map_err(io)?;
        }
    } else {
        let mut stream = Body::into_data_stream(request.into_body());
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::bad_request(format!("could not read the upload: {e}")))?;
            written += chunk.len() as u64;
            if written > max {
                return Err(too_large());
            }
            file.write_all(&chunk).await.map_err(io)?;
        }
    }
    file.flush().await.map_err(io)?;
    if written == 0 {
        return Err(ApiError::invalid_field("file", "is empty"));
    }
    Ok(filename)
}

/// Uploads a CSV file (raw `text/csv` body, or multipart with a file field) and queues its
/// import: streamed to disk, never held in memory; progress at `GET /api/v2/imports/{id}`.
#[utoipa::path(post, path = "/api/v2/contacts/import", tag = "contacts", params(ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "the CSV file"),
    responses((status = 202, body = ImportOut), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiQuery(q): ApiQuery<ImportQuery>,
    request: Request,
) -> ApiResult<(StatusCode, Json<ImportOut>)> {
    let mut read = Read::begin(&state, &principal).await?;
    let tenant_id = read.tenant(q.tenant_id.as_deref()).await?;
    let source = match &q.source {
        Some(key) => Some(ee_app::sources::named(&mut read, &tenant_id, key).await?),
        None => None,
    };
    drop(read);
    let dir = &state.settings.uploads_dir;
    tokio::fs::create_dir_all(dir).await.map_err(|e| {
        tracing::error!(error = %e, "cannot create the uploads directory");
        ApiError::internal()
    })?;
    let path = dir.join(format!("import-{}.csv", ee_core::ids::new_id()));
    let saved = save(request, &path, state.settings.max_upload_bytes).await;
    let form_name = match saved {
        Ok(name) => name,
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e);
        }
    };
    let filename = q.filename.or(form_name);
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let import = ee_app::sources::csv_import::accept(
        &mut w,
        &tenant_id,
        source.as_ref(),
        filename.as_deref(),
        &path,
    )
    .await?;
    w.finish().await?;
    Ok((StatusCode::ACCEPTED, Json(ImportOut::from(import))))
}

/// The same upload at the path seed 003 §E names.
#[utoipa::path(post, path = "/api/v2/campaigns/import-csv", tag = "contacts", params(ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "the CSV file"),
    responses((status = 202, body = ImportOut), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn upload_alias(
    state: State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    q: ApiQuery<ImportQuery>,
    request: Request,
) -> ApiResult<(StatusCode, Json<ImportOut>)> {
    upload(state, principal, meta, q, request).await
}

#[utoipa::path(get, path = "/api/v2/imports", tag = "contacts", params(ListParams),
    responses((status = 200, body = List<ImportOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<ImportOut>>> {
    let mut read = Read::begin(&state, &principal).await?;
    Ok(Json(List::of(
        imports::list(&mut read, 100)
            .await?
            .into_iter()
            .map(ImportOut::from)
            .collect(),
        &page,
    )?))
}

#[utoipa::path(get, path = "/api/v2/imports/{id}", tag = "contacts", params(("id" = String, Path)),
    responses((status = 200, body = ImportOut), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ImportOut>> {
    let mut read = Read::begin(&state, &principal).await?;
    Ok(Json(imports::get(&mut read, &id).await?.into()))
}

/// The error report as CSV: `line,reason`.
#[utoipa::path(get, path = "/api/v2/imports/{id}/errors", tag = "contacts", params(("id" = String, Path)),
    responses((status = 200, description = "line,reason", content_type = "text/csv"), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn errors(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let mut read = Read::begin(&state, &principal).await?;
    let import = imports::get(&mut read, &id).await?;
    let rows = imports::errors(&mut read, &import).await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let _ = out.write_record(["line", "reason"]);
    for (line, reason) in rows {
        let _ = out.write_record([line.to_string(), reason]);
    }
    let bytes = out.into_inner().unwrap_or_default();
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"import-errors.csv\"",
            ),
        ],
        bytes,
    )
        .into_response())
}
