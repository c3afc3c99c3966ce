//! The HTTP API of Email-Engine: auth, tenancy, audit, metrics and OpenAPI.

pub mod audit;
pub mod auth;
pub mod error;
pub mod extract;
pub mod metrics;
mod openapi;
pub mod ratelimit;
mod read;
mod redoc;
pub mod routes;
pub mod settings;
pub mod state;
pub mod ui;
mod write;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use axum::response::IntoResponse;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

pub use error::{ApiError, ApiResult};
pub use settings::Settings;
pub use state::AppState;

use crate::error::ApiError as Error;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The body limit of the bulk routes (ingest batches of 10 000 contacts, the source
/// webhooks); other routes take `EE_MAX_BODY_BYTES`.
pub const BULK_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The OpenAPI document and the routes it describes.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use routes::{
        alerts, api_keys, audit, auth, blacklists, campaigns, compliance, contacts, delivery,
        dmarc, domains, events, feedback, feedback_forwards, imports, ingest, ips, jobs, mailwizz,
        message_queue, messages, pools, powermta, relays, reports, segments, session, shaping,
        sources, suppressions, system, tags, templates, tenants, tls_reports, tracking,
        unsubscribe, users, validation, warmup,
    };
    let (system_routes, system_doc) = OpenApiRouter::new()
        .routes(routes!(system::health))
        .routes(routes!(system::metrics))
        .routes(routes!(tracking::open))
        .routes(routes!(tracking::click))
        .routes(routes!(unsubscribe::confirm_page, unsubscribe::unsubscribe))
        .split_for_parts();
    let (api_routes, mut doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(session::open, session::current, session::close))
        .routes(routes!(tenants::list, tenants::create))
        .routes(routes!(tenants::get, tenants::update, tenants::delete))
        .routes(routes!(compliance::compliance))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::get, users::update, users::delete))
        .routes(routes!(api_keys::list, api_keys::create))
        .routes(routes!(api_keys::revoke))
        .routes(routes!(api_keys::rotate))
        .routes(routes!(audit::list))
        .routes(routes!(ips::list, ips::create))
        .routes(routes!(ips::get, ips::update, ips::delete))
        .routes(routes!(ips::transition))
        .routes(routes!(ips::transitions))
        .routes(routes!(ips::traffic))
        .routes(routes!(warmup::list, warmup::create))
        .routes(routes!(warmup::get))
        .routes(routes!(warmup::days))
        .routes(routes!(warmup::pause))
        .routes(routes!(warmup::resume))
        .routes(routes!(warmup::quota))
        .routes(routes!(jobs::list))
        .routes(routes!(jobs::run))
        .routes(routes!(jobs::queue))
        .routes(routes!(jobs::retry))
        .routes(routes!(alerts::list))
        .routes(routes!(pools::list))
        .routes(routes!(pools::put))
        .routes(routes!(domains::list, domains::create))
        .routes(routes!(domains::get, domains::update, domains::delete))
        .routes(routes!(domains::rotate_dkim))
        .routes(routes!(domains::retire_dkim))
        .routes(routes!(domains::dns_records))
        .routes(routes!(domains::validate))
        .routes(routes!(domains::checks))
        .routes(routes!(dmarc::domain_summary))
        .routes(routes!(dmarc::domain_reports))
        .routes(routes!(dmarc::list))
        .routes(routes!(blacklists::check))
        .routes(routes!(blacklists::history))
        .routes(routes!(campaigns::list, campaigns::create))
        .routes(routes!(
            campaigns::get,
            campaigns::update,
            campaigns::delete
        ))
        .routes(routes!(campaigns::schedule))
        .routes(routes!(campaigns::start))
        .routes(routes!(campaigns::pause))
        .routes(routes!(campaigns::resume))
        .routes(routes!(campaigns::cancel))
        .routes(routes!(campaigns::audience))
        .routes(routes!(campaigns::recipients))
        .routes(routes!(campaigns::retry_failed))
        .routes(routes!(campaigns::stats))
        .routes(routes!(campaigns::test_send))
        .routes(routes!(campaigns::enrollments))
        .routes(routes!(campaigns::winner))
        .routes(routes!(campaigns::runs))
        .routes(routes!(events::post))
        .routes(routes!(contacts::list))
        .routes(routes!(contacts::get, contacts::erase))
        .routes(routes!(contacts::events))
        .routes(routes!(contacts::export))
        .routes(routes!(tags::bulk_tags))
        .routes(routes!(tags::tags))
        .routes(routes!(validation::validate))
        .routes(routes!(validation::put_list))
        .routes(routes!(segments::list, segments::create))
        .routes(routes!(segments::get, segments::update, segments::delete))
        .routes(routes!(segments::count))
        .routes(routes!(segments::count_expression))
        .routes(routes!(segments::preview))
        .routes(routes!(sources::list, sources::create))
        .routes(routes!(sources::delete))
        .routes(routes!(sources::rotate_secret))
        .routes(routes!(sources::rules, sources::create_rule))
        .routes(routes!(sources::delete_rule))
        .routes(routes!(suppressions::list, suppressions::add))
        .routes(routes!(suppressions::remove))
        .routes(routes!(imports::list))
        .routes(routes!(imports::get))
        .routes(routes!(imports::errors))
        .routes(routes!(templates::list, templates::create))
        .routes(routes!(templates::select))
        .routes(routes!(
            templates::get,
            templates::update,
            templates::delete
        ))
        .routes(routes!(templates::versions))
        .routes(routes!(templates::preview))
        .routes(routes!(templates::test_send))
        .routes(routes!(templates::push_to_mailwizz))
        .routes(routes!(messages::send, message_queue::list))
        .routes(routes!(message_queue::retry))
        .routes(routes!(message_queue::retry_many))
        .routes(routes!(message_queue::backlog))
        .routes(routes!(messages::get))
        .routes(routes!(tracking::hits))
        .routes(routes!(relays::list_relays, relays::create_relay))
        .routes(routes!(relays::update_relay, relays::delete_relay))
        .routes(routes!(shaping::list_shaping))
        .routes(routes!(shaping::lift_shaping))
        .routes(routes!(shaping::shaping_rules))
        .routes(routes!(tls_reports::list_tls_reports))
        .routes(routes!(
            delivery::get_delivery,
            delivery::put_delivery,
            delivery::patch_delivery
        ))
        .routes(routes!(powermta::config))
        .routes(routes!(powermta::deploy))
        .routes(routes!(powermta::status))
        .routes(routes!(mailwizz::list, mailwizz::create))
        .routes(routes!(mailwizz::get, mailwizz::update, mailwizz::delete))
        .routes(routes!(mailwizz::campaign_stats))
        .routes(routes!(mailwizz::contact_subscribers))
        .routes(routes!(
            mailwizz::list_delivery_servers,
            mailwizz::create_delivery_server
        ))
        .routes(routes!(mailwizz::delete_delivery_server))
        .routes(routes!(feedback::pmta_bounce))
        .routes(routes!(feedback::mailwizz_bounce))
        .routes(routes!(feedback::events))
        .routes(routes!(feedback::unread))
        .routes(routes!(feedback_forwards::list))
        .routes(routes!(reports::report))
        .routes(routes!(feedback_forwards::retry))
        .split_for_parts();
    // Large bodies: batches of 10 000 contacts, and uploads streamed to disk.
    let (bulk_routes, bulk_doc) = OpenApiRouter::new()
        .routes(routes!(ingest::ingest))
        .routes(routes!(sources::scraper_pro))
        .routes(routes!(sources::backlinks_engine))
        .routes(routes!(feedback::pmta_accounting))
        .routes(routes!(feedback::reports))
        .layer(DefaultBodyLimit::max(BULK_BODY_BYTES))
        .layer(axum::Extension(extract::BodyLimit(BULK_BODY_BYTES)))
        .split_for_parts();
    let (upload_routes, upload_doc) = OpenApiRouter::new()
        .routes(routes!(imports::upload))
        .routes(routes!(imports::upload_alias))
        .layer(DefaultBodyLimit::disable())
        .split_for_parts();
    doc.merge(system_doc);
    doc.merge(bulk_doc);
    doc.merge(upload_doc);
    let doc = openapi::finish(doc);
    (
        system_routes
            .merge(api_routes)
            .merge(bulk_routes)
            .merge(upload_routes),
        doc,
    )
}

/// The whole application with its middleware.
pub fn router(state: AppState) -> Router {
    let (routes, doc) = api();
    let app = routes
        .layer(axum::middleware::from_fn_with_state(state.clone(), rate_limit_api_only))
        .merge(SwaggerUi::new("/docs").url("/openapi.json", doc))
        .merge(ui::routes())
        .merge(redoc::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(axum::Extension(extract::BodyLimit(
            state.settings.max_body_bytes,
        )))
        .layer(axum::middleware::from_fn_with_state(state.metrics.clone(), metrics::track))
        .layer(axum::middleware::from_fn_with_state(
            std::sync::Arc::new(state.settings.trusted_proxies.clone()),
            extract::resolve_client,
        ))
        .layer(cors(&state.settings.cors_origins))
        .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            tracing::error!("a handler panicked");
            Error::internal().into_response()
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let id = request
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    // The path only: query strings may carry tokens.
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid));
    app.with_state(state)
}

/// Rate limits apply to the API, not to health checks, metrics scrapes or the docs.
async fn rate_limit_api_only(
    state: axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    if let Err(error) = state.limits.check_request(&parts).await {
        return error.into_response();
    }
    next.run(axum::extract::Request::from_parts(parts, body))
        .await
}

fn cors(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([REQUEST_ID, axum::http::header::RETRY_AFTER])
        .max_age(Duration::from_secs(600));
    if origins.iter().any(|o| o == "*") {
        layer.allow_origin(Any)
    } else {
        let list: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
        layer.allow_origin(AllowOrigin::list(list))
    }
}

async fn not_found() -> Error {
    Error::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> Error {
    Error::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take this method",
    )
}

/// Serves until `shutdown` resolves, with the peer address available to handlers.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.limits.clone();
    let shrink = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            limits.shrink();
        }
    });
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    shrink.abort();
    result
}
