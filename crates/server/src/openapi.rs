use utoipa::Modify;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Email-Engine API", description = "Self-hosted email infrastructure: tenants, sending infrastructure, contacts, campaigns, delivery."),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Login, token refresh and logout"),
        (name = "tenants", description = "Brands, each fully isolated"),
        (name = "users", description = "Accounts (admin only)"),
        (name = "api-keys", description = "Keys for machine clients, sent as X-API-KEY"),
        (name = "audit", description = "Who changed what"),
        (name = "ips", description = "Sending IPs and their state machine"),
        (name = "warm-up", description = "Warm-up plans and sending quotas"),
        (name = "domains", description = "Sending domains, DKIM keys and DNS checks"),
        (name = "blacklists", description = "DNS blacklist checks"),
        (name = "contacts", description = "Ingestion, validation, tags, imports, suppression, GDPR"),
        (name = "segments", description = "Saved filters over contacts"),
        (name = "sources", description = "Data sources, their webhooks, routing rules"),
        (name = "templates", description = "Multilingual templates, variables, preview, selection"),
        (name = "messages", description = "The transactional API and message states"),
        (name = "delivery", description = "Delivery routes (relays) and tenants' delivery settings"),
        (name = "mailwizz", description = "A tenant's MailWizz instances (keys sealed, never returned)"),
        (name = "powermta", description = "The generated PowerMTA configuration (admin)"),
        (name = "tracking", description = "Open pixel, click redirects, unsubscribe (public)"),
        (name = "jobs", description = "Scheduled jobs and the job queue (admin)"),
        (name = "alerts", description = "Alerts raised by the infrastructure checks"),
        (name = "system", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-KEY"))),
        );
    }
}
