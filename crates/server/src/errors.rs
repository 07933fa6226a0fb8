//! Every code the API answers with, and its HTTP status, in one table: handlers name a code and
//! the status follows from it, so that the same code never comes back with two statuses and the
//! OpenAPI document lists exactly what the routes can answer.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Declares [`ErrorCode`] from one row per code: variant = (code, HTTP status, meaning).
macro_rules! error_codes {
    ($($variant:ident = ($code:literal, $status:literal, $meaning:expr),)*) => {
        /// Every code the API answers with. A handler names a variant; its status, its text and
        /// its line in the OpenAPI document all follow from this one table, so the same code
        /// never comes back with two statuses and the document lists exactly what the routes can
        /// answer.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            /// Every code, in the table's order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable snake_case code of the JSON body.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The HTTP status it comes with.
            pub const fn status_u16(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)*
                }
            }

            /// What it means, for the OpenAPI document.
            pub const fn meaning(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $meaning,)*
                }
            }
        }
    };
}

// `window_closed` and `license_required` are answers rather than failures: the send check
// worked and says no, so they come with 200.
error_codes! {
    WindowClosed = ("window_closed", 200, "a non-template message outside the customer service window cannot be sent \
                  (Meta's error 131047); an answer of the send check, not a failure"),
    LicenseRequired = ("license_required", 200, "the agent holds no WhatsApp licence of the tenant owning the WABA at that \
                  instant, so may only read; an answer of the send check, not a failure"),
    InvalidRequest = ("invalid_request", 400, "the request body is not what the route takes (the field and why are named)"),
    InvalidBody = ("invalid_body", 400, "the body is not UTF-8 or not JSON of the expected shape"),
    EmptyBody = ("empty_body", 400, "the body holds no event (nothing but blank lines, or an empty array)"),
    InvalidParameter = ("invalid_parameter", 400, "a query parameter is missing or malformed"),
    InvalidWebhook = ("invalid_webhook", 400, "a signed webhook whose envelope cannot be read"),
    MissingApiKey = ("missing_api_key", 401, "no Authorization: Bearer header"),
    InvalidApiKey = ("invalid_api_key", 401, "unknown or revoked API key"),
    BadSignature = ("bad_signature", 401, "X-Hub-Signature-256 missing or not matching any configured app secret"),
    Forbidden = ("forbidden", 403, "the key's role or WABAs do not allow this"),
    VerificationFailed = ("verification_failed", 403, "Meta's webhook handshake with a wrong mode or token"),
    LinkInvalid = ("link_invalid", 403, "an invoice link altered, signed under a secrets key no longer configured, or \
                  never made by this service"),
    LinkExpired = ("link_expired", 410, "the invoice link is past its expiry: ask for a new one"),
    UnknownAccount = ("unknown_account", 404, "the WABA has no account event yet: nothing can be rated for it"),
    UnknownTenant = ("unknown_tenant", 404, "no such tenant, or none this key may read"),
    NotFound = ("not_found", 404, "no such route"),
    MethodNotAllowed = ("method_not_allowed", 405, "the route exists but not with this method"),
    PayloadTooLarge = ("payload_too_large", 413, "the request body is larger than the configured limit"),
    TooManyEvents = ("too_many_events", 413, "more events than one POST /v1/events or one signed webhook takes (10,000, \
                  counting the events of every Meta envelope)"),
    WabaTaken = ("waba_taken", 409, "a WABA of the set-up belongs to another tenant"),
    LicenceConflict = ("licence_conflict", 409, "licence records are history: one may be added or an open one ended, never \
                  removed or rewritten"),
    AlreadyFinalized = ("already_finalized", 409, "the tenant's month is finalized; a finalized invoice never changes"),
    FinalizedLater = ("finalized_later", 409, "a later month of the tenant is finalized: months are finalized in order"),
    UnpricedCalls = ("unpriced_calls", 409, "a call of the tenant's month could not be priced (no calling rate, no \
                  market): the month is not finalized until it is"),
    AllRejected = ("all_rejected", 422, "every item of the batch was refused and nothing was stored: the body is the \
                  ingest result (stored 0, each item's index, field and reason in `errors`) with this error"),
    NoPlan = ("no_plan", 422, "no plan version of the tenant is in force for the month (billing)"),
    MissingFxRate = ("missing_fx_rate", 422, "the set-up's FX table has no rate the invoice needs (billing)"),
    PreviousNotFinal = ("previous_not_final", 422, "a previous invoice given is a draft (billing)"),
    PreviousAfterMonth = ("previous_after_month", 422, "a previous invoice is not of an earlier month (billing)"),
    PreviousOtherTenant = ("previous_other_tenant", 422, "a previous invoice belongs to another tenant (billing)"),
    PreviousCurrency = ("previous_currency", 422, "a previous invoice is in another currency than the tenant's (billing)"),
    DuplicatePrevious = ("duplicate_previous", 422, "two previous invoices for one month (billing)"),
    UnknownAgent = ("unknown_agent", 422, "a charge names an agent the tenant does not have (billing)"),
    ConflictingCharge = ("conflicting_charge", 422, "a charge id appears twice with different content (billing)"),
    ChargeWithoutInstant = ("charge_without_instant", 422, "a charge with a cost has neither send nor delivery instant (billing)"),
    InvalidAccount = ("invalid_account", 422, "the WABA's account cannot be used for rating (the rating core's reason)"),
    ConflictingAccount = ("conflicting_account", 422, "the WABA's account is given twice with different fields"),
    ConflictingDuplicate = ("conflicting_duplicate", 422, "two events share an id with different content (the send check's reserved id \
                  used by a stored event)"),
    UnsupportedDate = ("unsupported_date", 422, "the instant is before 2023-06-01, which wabill does not price"),
    UnknownCountry = ("unknown_country", 422, "no country has the user's calling code"),
    UnknownMarket = ("unknown_market", 422, "the user's country has no market on that date"),
    MissingRate = ("missing_rate", 422, "the rate data has no rate for the message (currency, model, market, \
                  category, date named)"),
    RequestTimeout = ("request_timeout", 408, "no answer within the configured request timeout (the body included); the \
                  connection is closed, send the request again"),
    RateLimited = ("rate_limited", 429, "this API key sent more requests than its configured rate; Retry-After says \
                  when the next one is taken"),
    InternalError = ("internal_error", 500, "a bug in wabill; nothing internal is shown, try again"),
    StoreUnavailable = ("store_unavailable", 503, "the database could not be read or written (a full disk, an I/O error, the \
                  database server gone); nothing was changed, try again after Retry-After"),
    SecretsKeyMissing = (
        "secrets_key_missing",
        503,
        "no secrets key is configured (secrets-key), so a signing secret cannot be stored \
         sealed, and it is never stored otherwise"
    ),
    WebhookDisabled = ("webhook_disabled", 503, "no app secret is configured, so no webhook post can be authenticated"),
}

impl ErrorCode {
    /// The HTTP status it comes with.
    pub fn status(self) -> StatusCode {
        StatusCode::from_u16(self.status_u16()).expect("statuses of the table are valid (tested)")
    }

    /// The variant of a code the engine, the rating core or billing gave as text.
    pub fn parse(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_str() == code)
    }

    /// [`ErrorCode::parse`] for a domain code that must be in the table; one that is not is a
    /// bug in wabill, answered `internal_error` (500).
    pub fn of(code: &str) -> ErrorCode {
        let found = ErrorCode::parse(code);
        debug_assert!(found.is_some(), "error code '{code}' is not in ErrorCode");
        found.unwrap_or(ErrorCode::InternalError)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Seconds a client is asked to wait (`Retry-After`) after `store_unavailable`: the store
/// recovers by itself (decisions.md D80).
pub const STORE_RETRY_AFTER_S: u64 = 1;

/// An error as a JSON body, `{"error":{"code","message"}}`, with the code's status;
/// `store_unavailable` comes with `Retry-After`.
pub fn problem(code: ErrorCode, message: impl Into<String>) -> Response {
    if code == ErrorCode::StoreUnavailable {
        return problem_retry(code, message, STORE_RETRY_AFTER_S);
    }
    let body = serde_json::json!({ "error": { "code": code.as_str(), "message": message.into() } });
    (code.status(), axum::Json(body)).into_response()
}

/// [`problem`] with `Retry-After: seconds`.
pub fn problem_retry(code: ErrorCode, message: impl Into<String>, seconds: u64) -> Response {
    let body = serde_json::json!({ "error": { "code": code.as_str(), "message": message.into() } });
    let mut resp = (code.status(), axum::Json(body)).into_response();
    resp.headers_mut()
        .insert(axum::http::header::RETRY_AFTER, seconds.into());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_statuses_valid() {
        let mut seen = std::collections::BTreeSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
            assert!(StatusCode::from_u16(c.status_u16()).is_ok(), "{c}");
            assert_eq!(ErrorCode::parse(c.as_str()), Some(*c));
            assert!(!c.meaning().is_empty(), "{c}");
        }
        // Every code the rating core can give a message maps to something in the table.
        for code in [
            "unknown_account",
            "invalid_account",
            "conflicting_account",
            "conflicting_duplicate",
            "unsupported_date",
            "unknown_country",
            "unknown_market",
            "missing_rate",
        ] {
            assert!(ErrorCode::parse(code).is_some(), "{code}");
        }
        assert_eq!(ErrorCode::WindowClosed.status(), StatusCode::OK);
        // Every billing code maps to a row, so the tenant routes never answer 500 for one.
        for code in [
            "no_plan",
            "missing_fx_rate",
            "previous_not_final",
            "already_finalized",
            "previous_after_month",
            "previous_other_tenant",
            "previous_currency",
            "duplicate_previous",
            "unknown_agent",
            "conflicting_charge",
            "charge_without_instant",
            "unpriced_calls",
        ] {
            assert!(ErrorCode::parse(code).is_some(), "{code}");
        }
        assert_eq!(
            ErrorCode::PayloadTooLarge.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(ErrorCode::parse("no_such_code"), None);
    }
}
