//! The one list of routes. The router is built from it and so is the OpenAPI document
//! (`openapi.rs`), so that the document cannot describe a route the service does not have or
//! miss one it has. Error answers of each route are codes of `errors.rs`, whose table gives
//! their HTTP status.

use crate::api::{self, AppState};
use crate::errors::{problem, ErrorCode};
use crate::handlers::{
    alerts, audit, charges, check, console, estimate, events, reconcile, tenants, usage, webhook,
};
use crate::{health, openapi};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Put => "put",
        }
    }
}

/// How a route's caller is authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone (probes, Meta's handshake, this document, the console's files, the calculator).
    None,
    /// `Authorization: Bearer KEY`.
    ApiKey,
    /// Meta's `X-Hub-Signature-256` over the body.
    MetaSignature,
}

/// Which handler serves a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    WebhookVerify,
    WebhookPost,
    Ingest,
    Charges,
    Unratable,
    SendCheck,
    Usage,
    Reconciliation,
    TenantPut,
    TenantGet,
    LicencePost,
    InvoiceGet,
    InvoiceFinalize,
    InvoiceLink,
    SharedInvoice,
    AlertSettingsPut,
    AlertsGet,
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
    Audit,
    Estimate,
    EstimateOptions,
    Console,
    ConsoleScript,
    ConsoleStyle,
}

/// What a query parameter's value may be, exactly as its handler reads it: the OpenAPI
/// document's schema of it (`openapi::shape_schema`), so that a value the schema allows is
/// taken and one it does not is refused (decisions.md D77).
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// Any text.
    Text,
    /// At least one character.
    NonEmpty,
    /// An instant: RFC 3339 or Unix seconds, within the accepted range (`wabill_formats::time`).
    Instant,
    /// `YYYY-MM`.
    Month,
    /// The `next` cursor of a page of charges.
    Cursor,
    /// A comma-separated list of these words.
    List(&'static [&'static str]),
    /// An integer in `min..=max`.
    Int { min: i64, max: i64 },
    /// One of these words.
    Enum(&'static [&'static str]),
}

/// A query parameter.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub name: &'static str,
    pub required: bool,
    pub description: &'static str,
    pub shape: Shape,
}

const fn param(name: &'static str, required: bool, description: &'static str) -> Param {
    shaped(name, required, description, Shape::Text)
}

const fn shaped(
    name: &'static str,
    required: bool,
    description: &'static str,
    shape: Shape,
) -> Param {
    Param {
        name,
        required,
        description,
        shape,
    }
}

/// A route: method, path, handler, and what the OpenAPI document says about it.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub op: Op,
    pub summary: &'static str,
    pub auth: Access,
    pub params: &'static [Param],
    /// (content type, schema name in `components.schemas`) of the request body.
    pub body: Option<(&'static str, &'static str)>,
    /// (content type, schema name or `""`) of the successful answer.
    pub ok: (&'static str, &'static str),
    /// Error codes the route can answer with.
    pub codes: &'static [ErrorCode],
}

pub const ROUTES: &[Route] = &[
    Route {
        method: Method::Get,
        path: "/webhooks/whatsapp",
        op: Op::WebhookVerify,
        summary: "Meta's webhook verification handshake: echoes hub.challenge for the right \
                  hub.verify_token",
        auth: Access::None,
        params: &[
            param("hub.mode", true, "subscribe"),
            param("hub.verify_token", true, "the configured verify token"),
            param("hub.challenge", true, "echoed back"),
        ],
        body: None,
        ok: ("text/plain", ""),
        codes: &[ErrorCode::VerificationFailed],
    },
    Route {
        method: Method::Post,
        path: "/webhooks/whatsapp",
        op: Op::WebhookPost,
        summary: "A signed Meta webhook envelope: its messages and statuses are stored (with \
                  the pricing objects Meta attached) before the 200",
        auth: Access::MetaSignature,
        params: &[],
        body: Some(("application/json", "WebhookEnvelope")),
        ok: ("text/plain", ""),
        codes: &[
            ErrorCode::WebhookDisabled,
            ErrorCode::BadSignature,
            ErrorCode::InvalidBody,
            ErrorCode::EmptyBody,
            ErrorCode::InvalidWebhook,
            ErrorCode::PayloadTooLarge,
            ErrorCode::TooManyEvents,
            ErrorCode::StoreUnavailable,
        ],
    },
    Route {
        method: Method::Post,
        path: "/v1/events",
        op: Op::Ingest,
        summary: "Events of docs/events.md (or Meta envelopes), as JSON Lines or a JSON array, \
                  stored idempotently; per-line errors with their index",
        auth: Access::ApiKey,
        params: &[],
        body: Some(("application/x-ndjson", "EventLines")),
        ok: ("application/json", "IngestResult"),
        codes: &[
            ErrorCode::MissingApiKey,
            ErrorCode::InvalidApiKey,
            ErrorCode::Forbidden,
            ErrorCode::InvalidBody,
            ErrorCode::EmptyBody,
            ErrorCode::TooManyEvents,
            ErrorCode::PayloadTooLarge,
            ErrorCode::AllRejected,
            ErrorCode::StoreUnavailable,
        ],
    },
    Route {
        method: Method::Get,
        path: "/v1/charges",
        op: Op::Charges,
        summary: "Stored charges, exactly as `wabill rate` prints them, by (send instant, id), \
                  paged",
        auth: Access::ApiKey,
        params: &[
            param("waba", false, "only this WABA"),
            shaped(
                "from",
                false,
                "sent at or after (RFC 3339 or Unix seconds)",
                Shape::Instant,
            ),
            shaped(
                "to",
                false,
                "sent before (RFC 3339 or Unix seconds)",
                Shape::Instant,
            ),
            shaped(
                "after",
                false,
                "the `next` cursor of the previous page",
                Shape::Cursor,
            ),
            Param {
                name: "limit",
                required: false,
                description:
                    "rows per page, 1 to 10000 (default 1000; a CSV download without a limit \
                              is every row, in one body)",
                shape: Shape::Int {
                    min: 1,
                    max: api::MAX_PAGE_ROWS as i64,
                },
            },
            Param {
                name: "format",
                required: false,
                description:
                    "json (default) or csv (without `limit`, every row; with it, one page \
                              and its cursor in X-Next-Cursor)",
                shape: Shape::Enum(&["json", "csv"]),
            },
            Param {
                name: "unit",
                required: false,
                description: "message (default): one charge per outbound message; call: one \
                              call charge line per call, by (start, id, WABA); `from` and `to` \
                              then bound the call's start",
                shape: Shape::Enum(&["message", "call"]),
            },
        ],
        body: None,
        ok: ("application/json", "Charges"),
        codes: &[
            ErrorCode::MissingApiKey,
            ErrorCode::InvalidApiKey,
            ErrorCode::InvalidParameter,
            ErrorCode::StoreUnavailable,
        ],
    },
    Route {
        method: Method::Get,
        path: "/v1/unratable",
        op: Op::Unratable,
        summary: "Messages the last re-rating could not price, by portfolio and month (admin)",
        auth: Access::ApiKey,
        params: &[],
        body: None,
        ok: ("application/json", "Unratable"),
        codes: &[
            ErrorCode::MissingApiKey,
            ErrorCode::InvalidApiKey,
            ErrorCode::Forbidden,
            ErrorCode::StoreUnavailable,
        ],
    },
    Route {
        method: Method::Post,
        path: "/v1/sends/check",
        op: Op::SendCheck,
        summary: "May this message be sent now, and what would it cost if delivered now? \
                  Rated by the rating core with the pair's stored events; windows included",
        auth: Access::ApiKey,
        params: &[],
        body: Some(("application/json", "SendCheckRequest")),
        ok: ("application/json", "SendCheckAnswer"),
        codes: &[
            ErrorCode::WindowClosed,
            ErrorCode::LicenseRequired,
            ErrorCode::MissingApiKey,
            ErrorCode::InvalidApiKey,
            ErrorCode::Forbidden,
            ErrorCode::InvalidRequest,
            ErrorCode::PayloadTooLarge,
            ErrorCode::UnknownAccount,
            ErrorCode::InvalidAccount,
            ErrorCode::ConflictingAccount,
            ErrorCode::ConflictingDuplicate,
            ErrorCode::UnsupportedDate,
            ErrorCode::UnknownCountry,
            ErrorCode::UnknownMarket,
            ErrorCode::MissingRate,
            ErrorCode::StoreUnavailable,
        ],
    },
    Route {
        method: Method::Get,
        path: "/v1/usage",
        op: Op::Usage,
        summary: "Delivered messages and their cost, shaped like Meta's pricing_analytics; or \
                  calls, shaped like its call_analytics (unit=call)",
        auth: Access::ApiKey,
        params: &[
            shaped("waba", true, "the WABA", Shape::NonEmpty),
            shaped(
                "start",
                true,
                "delivered at or after (Unix seconds, or RFC 3339); before end",
                Shape::Instant,
            ),
            shaped(
                "end",
                true,
                "delivered before (Unix seconds, or RFC 3339); after start",
                Shape::Instant,
            ),
            Param {
                name: "granularity",
                required: true,
                description: "bucket size",
                shape: Shape::Enum(&["HALF_HOUR", "DAILY", "MONTHLY"]),
            },
            shaped(
                "dimensions",
                false,
                "comma-separated breakdowns: COUNTRY, PHONE, PRICING_CATEGORY, PRICING_TYPE, TIER \
                 (messages); COUNTRY, DIRECTION, PHONE (calls)",
                Shape::List(&wabill_engine::usage::ALL_DIMENSIONS),
            ),
            Param {
                name: "unit",
                required: false,
                description: "message (default): delivered messages by delivery instant, as \
                              pricing_analytics; call: calls by start, as Meta's \
                              call_analytics (count, cost, average_duration)",
                shape: Shape::Enum(&["message", "call"]),
            },
            param(
                "directions",
                false,
                "calls only: comma-separated directions to keep (BUSINESS_INITIATED, \
                 USER_INITIATED)",
            ),
            Param {
                name: "align",
                required: false,
                description: "UTC (default, as Meta) or WABA: DAILY and MONTHLY buckets start at \
                              the WABA's local midnight, as its bill's months do",
                shape: Shape::Enum(&["UTC", "WABA"]),
            },
            param(
                "phone_numbers",
                false,
                "comma-separated business numbers to keep",
            ),
            param(
                "country_codes",
                false,
                "comma-separated ISO 3166 alpha-2 codes to keep",
            ),
            param(
                "pricing_types",
                false,
                "comma-separated pricing types to keep (REGULAR, FREE_CUSTOMER_SERVICE, ...)",
            ),
            param(
                "pricing_categories",
                false,
                "comma-separated pricing categories to keep (MARKETING, UTILITY, ...)",
            ),
        ],
        body: None,
        ok: ("application/json", "Usage"),
        codes: &[
            ErrorCode::MissingApiKey,
            ErrorCode::InvalidApiKey,
            ErrorCode::Forbidden,
            ErrorCode::InvalidParameter,
            ErrorCode::UnknownAccount,
            ErrorCode::StoreUnavailable,
        ],
    },
    Route {
        method: Method::Get,
        path: "/v1/reconciliation",
        op: Op::Reconciliation,
        summary: "Messages of a WABA's month where Meta's webhook pricing disagrees with \
                  wabill's charge, with totals",
        auth: Access::ApiKey,
        params: &[
            shaped("waba", true, "the WABA", Shape::NonEmpty),
            shaped(
                "month",
                true,
                "YYYY-MM, in the WABA's timezone",
                Shape::Month,
            ),
        ],
        body: None,
        ok: ("application/json", "Reconciliation"),
        codes: &[
            ErrorCode::MissingApiKey,
            ErrorCode::InvalidApiKey,
            ErrorCode::Forbidden,
            ErrorCode::InvalidParameter,
            ErrorCode::UnknownAccount,
            ErrorCode::StoreUnavailable,
        ],
    },
    Route {
        method: Method::Put,
        path: "/v1/tenants/{id}",
        op: Op::TenantPut,
        summary: "Records a tenant's billing set-up as its newest version (admin); versions are \
                  kept, licence records are never removed or rewritten",
        auth: Access::ApiKey,
        params: &[],
        body: Some(("application/json", "TenantSetup")),
        ok: ("application/json", "TenantVersion"),
        codes: &[
            ErrorCode::MissingApiKey,
            ErrorCode::InvalidApiKey,
            ErrorCode::Forbidden,
            ErrorCode::InvalidBody,
            ErrorCode::InvalidRequest,
            ErrorCode::PayloadTooLarge,
            ErrorCode::WabaTaken,
            ErrorCode::LicenceConflict,
            ErrorCode::StoreUnavailable,
        ],
    },
    Route {
        method: Method::Get,
        path: "/v1/tenants/{id}",
        op: Op::TenantGet,
        summary: "A tenant's newest set-up (admin, or a key whose WABAs include all the tenant's)",
        auth: Access::ApiKey,
        params: &[],
        body: None,
        ok: ("application/json", "TenantVersion"),
        codes: &[
            ErrorCode::MissingApiKey,
            ErrorCode::InvalidApiKey,
            ErrorCode::UnknownTenant,
            ErrorCode::StoreUnavailable,
        ],
    },
    Route {
        method: Method::Post,
        path: "/v1/tenants/{id}/licences",
        op: Op::LicencePost,
        summary: "Adds a dated licence record to the tenant's set-up, or ends an open one (same \
                  id, with `to`), as a new version (admin)",
        auth: Access::ApiKey,
        params: &[],
        body: Some(("application/json", "LicenceRecord")),
        ok: ("application/json", "TenantVersion"),
        codes: &[
            ErrorCode::MissingApiKey,
            ErrorCode::InvalidApiKey,
            ErrorCode::Forbidden,
            ErrorCode::InvalidBody,
            ErrorCode::InvalidRequest,
            ErrorCode::PayloadTooLarge,
            ErrorCode::UnknownTenant,
            ErrorCode::LicenceConflict,
            ErrorCode::StoreUnavailable,
        ],
    },
    Route {
        method: Method::Get,
        path: "/v1/tenants/{id}/invoices/{month}",
        op: Op::InvoiceGet,
        summary: "The tenant's invoice of a month (YYYY-MM, tenant calendar): the finalized \
                  record, else a draft from the stored charges of its WABAs",
        auth: Access::ApiKey,
        params: &[Param {
            name: "format",
            required: false,
            description: "json (default, the invoice record), csv or html (printable)",
            shape: Shape::Enum(&["json", "csv", "html"]),
        }],
        body: None,
        ok: ("application/json", "Invoice"),
        codes: &[
            ErrorCode::MissingApiKey,
            ErrorCode::InvalidApiKey,
            ErrorCode::InvalidParameter,
            ErrorCode::UnknownTenant,
            ErrorCode::NoPlan,
            ErrorCode::MissingFxRate,
            ErrorCode::PreviousNotFinal,
            ErrorCode::PreviousAfterMonth,
            ErrorCode::PreviousOtherTenant,
            ErrorCode::PreviousCurrency,
            ErrorCode::DuplicatePrevious,
            ErrorCode::UnknownAgent,
            ErrorCode::ConflictingCharge,
            ErrorCode::ChargeWithoutInstant,
            ErrorCode::StoreUnavailable,
        ],
    },
    Route {
        method: Method::Post,
        path: "/v1/tenants/{id}/invoices/{month}/finalize",
        op: Op::InvoiceFinalize,
        summary: "Finalizes the tenant's invoice of a month and stores it, once; months are \
                  finalized in order (admin)",
        auth: Access::ApiKey,
        params: &[],
        body: None,
        ok: ("application/json", "Invoice"),
        codes: &[
            ErrorCode::MissingApiKey,
            ErrorCode::InvalidApiKey,
            ErrorCode::Forbidden,
            ErrorCode::InvalidParameter,
            ErrorCode::UnknownTenant,
            ErrorCode::AlreadyFinalized,
            ErrorCode::FinalizedLater,
            ErrorCode::UnpricedCalls,
            ErrorCode::NoPlan,
            ErrorCode::MissingFxRate,
            ErrorCode::PreviousNotFinal,
            ErrorCode::PreviousAfterMonth,
            ErrorCode::PreviousOtherTenant,
            ErrorCode::PreviousCurrency,
            ErrorCode::DuplicatePrevious,
            ErrorCode::UnknownAgent,
            ErrorCode::ConflictingCharge,
            ErrorCode::ChargeWithoutInstant,
            ErrorCode::StoreUnavailable,
        ],
    },
    Route {
        method: Method::Post,
        path: "/v1/tenants/{id}/invoices/{month}/link",
        op: Op::InvoiceLink,
        summary: "A signed link to the tenant's printable invoice of a month, opened without a \
                  key until it expires (decisions.md D97); the path, to put after the service's \
                  address",
        auth: Access::ApiKey,
        params: &[Param {
            name: "ttl",
            required: false,
            description:
                "seconds the link lives, 60 to 7776000 (90 days; default 2592000, 30 days)",
            shape: Shape::Int {
                min: 60,
                max: wabill_engine::links::MAX_TTL_S,
            },
        }],
        body: None,
        ok: ("application/json", "InvoiceLink"),
        codes: &[
            ErrorCode::MissingApiKey,
            ErrorCode::InvalidApiKey,
            ErrorCode::InvalidParameter,
            ErrorCode::UnknownTenant,
            ErrorCode::SecretsKeyMissing,
            ErrorCode::StoreUnavailable,
        ],
    },
    Route {
        method: Method::Get,
        path: "/invoices/{id}/{month}",
        op: Op::SharedInvoice,
        summary: "The printable invoice a signed link opens (POST \
                  /v1/tenants/{id}/invoices/{month}/link), without a key",
        auth: Access::None,
        params: &[
            Param {
                name: "expires",
                required: true,
                description: "the link's expiry, Unix seconds, as the link gives it",
                shape: Shape::Int {
                    min: 0,
                    max: 4_102_444_800,
                },
            },
            shaped(
                "sig",
                true,
                "the link's signature, as the link gives it",
                Shape::NonEmpty,
            ),
        ],
        body: None,
        ok: ("text/html", ""),
        codes: &[
            ErrorCode::InvalidParameter,
            ErrorCode::LinkInvalid,
            ErrorCode::LinkExpired,
            ErrorCode::UnknownTenant,
            ErrorCode::NoPlan,
            ErrorCode::MissingFxRate,
            ErrorCode::PreviousNotFinal,
            ErrorCode::PreviousAfterMonth,
            ErrorCode::PreviousOtherTenant,
            ErrorCode::PreviousCurrency,
            ErrorCode::DuplicatePrevious,
            ErrorCode::UnknownAgent,
            ErrorCode::ConflictingCharge,
            ErrorCode::ChargeWithoutInstant,
            ErrorCode::SecretsKeyMissing,
            ErrorCode::StoreUnavailable,
        ],
    },
    Route {
        method: Method::Put,
        path: "/v1/tenants/{id}/alerts/settings",
        op: Op::AlertSettingsPut,
        summary: "Sets the tenant's budget alerts: thresholds (percent of the included budget \
                  or absolute spend), an http:// or https:// webhook URL and its signing \
                  secret, which is never returned (admin)",
        auth: Access::ApiKey,
        params: &[],
        body: Some(("application/json", "AlertSettingsRequest")),
        ok: ("application/json", "AlertSettings"),
        codes: &[
            ErrorCode::MissingApiKey,
            ErrorCode::InvalidApiKey,
            ErrorCode::Forbidden,
            ErrorCode::InvalidBody,
            ErrorCode::InvalidRequest,
            ErrorCode::PayloadTooLarge,
            ErrorCode::UnknownTenant,
            ErrorCode::StoreUnavailable,
            ErrorCode::SecretsKeyMissing,
        ],
    },
    Route {
        method: Method::Get,
        path: "/v1/tenants/{id}/alerts",
        op: Op::AlertsGet,
        summary: "The tenant's alert settings (without the secret) and every budget alert \
                  emitted, with its delivery state: pending, delivered, failed",
        auth: Access::ApiKey,
        params: &[],
        body: None,
        ok: ("application/json", "Alerts"),
        codes: &[
            ErrorCode::MissingApiKey,
            ErrorCode::InvalidApiKey,
            ErrorCode::UnknownTenant,
            ErrorCode::StoreUnavailable,
        ],
    },
    Route {
        method: Method::Get,
        path: "/v1/audit",
        op: Op::Audit,
        summary: "The audit log of admin actions, oldest first: who (the API key, or the \
                  command line and its user), what, on which tenant or key, when (admin)",
        auth: Access::ApiKey,
        params: &[
            Param {
                name: "after",
                required: false,
                description: "the id of the last entry already read (default 0: from the start)",
                shape: Shape::Int {
                    min: 0,
                    max: i64::MAX,
                },
            },
            Param {
                name: "limit",
                required: false,
                description: "entries per page, 1 to 1000 (default 100)",
                shape: Shape::Int {
                    min: 1,
                    max: api::MAX_AUDIT_ROWS as i64,
                },
            },
        ],
        body: None,
        ok: ("application/json", "AuditLog"),
        codes: &[
            ErrorCode::MissingApiKey,
            ErrorCode::InvalidApiKey,
            ErrorCode::Forbidden,
            ErrorCode::InvalidParameter,
            ErrorCode::StoreUnavailable,
        ],
    },
    Route {
        method: Method::Post,
        path: "/v1/estimate",
        op: Op::Estimate,
        summary: "The calculator: what a month of expected traffic will cost, rated by the \
                  rating core on the engine of `wabill estimate`, answered exactly as \
                  `wabill estimate --format json` prints it. Public (no API key) unless the \
                  calculator is turned off (calculator = false), then 404",
        auth: Access::None,
        params: &[],
        body: Some(("application/json", "EstimateRequest")),
        ok: ("application/json", "EstimateReport"),
        codes: &[
            ErrorCode::InvalidBody,
            ErrorCode::InvalidRequest,
            ErrorCode::PayloadTooLarge,
            ErrorCode::NotFound,
            ErrorCode::MissingRate,
        ],
    },
    Route {
        method: Method::Get,
        path: "/v1/estimate",
        op: Op::EstimateOptions,
        summary: "What the calculator can be asked: the markets and currencies of the rate \
                  data, the categories, the bounds. Public unless the calculator is off (404)",
        auth: Access::None,
        params: &[],
        body: None,
        ok: ("application/json", "EstimateOptions"),
        codes: &[ErrorCode::NotFound],
    },
    Route {
        method: Method::Get,
        path: "/",
        op: Op::Console,
        summary: "The web console (HTML; its script and style are the two routes below): the \
                  calculator, and a sign-in with an API key for the keyed pages",
        auth: Access::None,
        params: &[],
        body: None,
        ok: ("text/html", ""),
        codes: &[],
    },
    Route {
        method: Method::Get,
        path: "/console/app.js",
        op: Op::ConsoleScript,
        summary: "The web console's script",
        auth: Access::None,
        params: &[],
        body: None,
        ok: ("text/javascript", ""),
        codes: &[],
    },
    Route {
        method: Method::Get,
        path: "/console/app.css",
        op: Op::ConsoleStyle,
        summary: "The web console's style sheet",
        auth: Access::None,
        params: &[],
        body: None,
        ok: ("text/css", ""),
        codes: &[],
    },
    Route {
        method: Method::Get,
        path: "/healthz",
        op: Op::Healthz,
        summary: "Liveness: the process answers (the store is not asked)",
        auth: Access::None,
        params: &[],
        body: None,
        ok: ("application/json", ""),
        codes: &[],
    },
    Route {
        method: Method::Get,
        path: "/readyz",
        op: Op::Readyz,
        summary: "Readiness: the store can be read and written now (503 store_unavailable \
                  while it cannot, with Retry-After)",
        auth: Access::None,
        params: &[],
        body: None,
        ok: ("application/json", ""),
        codes: &[ErrorCode::StoreUnavailable],
    },
    Route {
        method: Method::Get,
        path: "/metrics",
        op: Op::Metrics,
        summary: "Counters in Prometheus' text format",
        auth: Access::None,
        params: &[],
        body: None,
        ok: ("text/plain", ""),
        codes: &[],
    },
    Route {
        method: Method::Get,
        path: "/openapi.json",
        op: Op::OpenApi,
        summary: "This document",
        auth: Access::None,
        params: &[],
        body: None,
        ok: ("application/json", ""),
        codes: &[],
    },
];

fn method_router(route: &Route) -> MethodRouter<Arc<AppState>> {
    let f = match route.method {
        Method::Get => MethodFilter::GET,
        Method::Post => MethodFilter::POST,
        Method::Put => MethodFilter::PUT,
    };
    match route.op {
        Op::WebhookVerify => on(f, webhook::webhook_verify),
        Op::WebhookPost => on(f, webhook::webhook_post),
        Op::Ingest => on(f, events::ingest),
        Op::Charges => on(f, charges::charges),
        Op::Unratable => on(f, charges::unratable),
        Op::SendCheck => on(f, check::send_check),
        Op::Usage => on(f, usage::usage),
        Op::Reconciliation => on(f, reconcile::reconciliation),
        Op::TenantPut => on(f, tenants::put_tenant),
        Op::TenantGet => on(f, tenants::get_tenant),
        Op::LicencePost => on(f, tenants::post_licence),
        Op::InvoiceGet => on(f, tenants::get_invoice),
        Op::InvoiceFinalize => on(f, tenants::finalize_invoice),
        Op::InvoiceLink => on(f, tenants::invoice_link),
        Op::SharedInvoice => on(f, tenants::shared_invoice),
        Op::AlertSettingsPut => on(f, alerts::put_settings),
        Op::AlertsGet => on(f, alerts::get_alerts),
        Op::Healthz => on(f, health::healthz),
        Op::Readyz => on(f, health::readyz),
        Op::Metrics => on(f, charges::metrics),
        Op::OpenApi => on(f, openapi::serve_document),
        Op::Audit => on(f, audit::audit_log),
        Op::Estimate => on(f, estimate::estimate)
            .layer(DefaultBodyLimit::max(estimate::MAX_ESTIMATE_BODY_BYTES)),
        Op::EstimateOptions => on(f, estimate::options),
        Op::Console => on(f, console::index),
        Op::ConsoleScript => on(f, console::script),
        Op::ConsoleStyle => on(f, console::style),
    }
}

async fn not_found() -> Response {
    problem(ErrorCode::NotFound, "no such route; see GET /openapi.json")
}

async fn method_not_allowed() -> Response {
    problem(
        ErrorCode::MethodNotAllowed,
        "the route exists with another method; see GET /openapi.json",
    )
}

/// The service's router: every route of [`ROUTES`], JSON answers for unknown routes and
/// methods, and the body limit of the state.
pub fn router(state: Arc<AppState>) -> Router {
    let mut r = Router::new();
    for route in ROUTES {
        let path = route.path;
        // Every answer of a route is counted under its path, refusals of its extractors
        // (authentication, the query string) included.
        let observed = method_router(route).route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            move |State(state): State<Arc<AppState>>, req: Request, next: Next| async move {
                let started = std::time::Instant::now();
                let resp = next.run(req).await;
                api::observe(&state, path, started, resp)
            },
        ));
        // Two routes on one path merge their methods.
        r = r.route(route.path, observed);
    }
    r.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(axum::middleware::from_fn(api::log_request))
        .with_state(state)
}
