//! Every code the API answers with, and its HTTP status, in one table: handlers name a code and
//! the status follows from it, so that the same code never comes back with two statuses and the
//! OpenAPI document lists exactly what the routes can answer.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A stable code, its HTTP status, and what it means.
#[derive(Clone, Copy, Debug)]
pub struct Code {
    pub code: &'static str,
    pub status: u16,
    pub meaning: &'static str,
}

/// The table. `window_closed` and `license_required` are answers rather than failures: the send
/// check worked and says no, so they come with 200.
pub const CODES: &[Code] = &[
    Code {
        code: "window_closed",
        status: 200,
        meaning: "a non-template message outside the customer service window cannot be sent \
                  (Meta's error 131047); an answer of the send check, not a failure",
    },
    Code {
        code: "license_required",
        status: 200,
        meaning: "the agent holds no WhatsApp licence of the tenant owning the WABA at that \
                  instant, so may only read; an answer of the send check, not a failure",
    },
    Code {
        code: "invalid_request",
        status: 400,
        meaning: "the request body is not what the route takes (the field and why are named)",
    },
    Code {
        code: "invalid_body",
        status: 400,
        meaning: "the body is not UTF-8 or not JSON of the expected shape",
    },
    Code {
        code: "empty_body",
        status: 400,
        meaning: "the body holds no event (nothing but blank lines, or an empty array)",
    },
    Code {
        code: "invalid_parameter",
        status: 400,
        meaning: "a query parameter is missing or malformed",
    },
    Code {
        code: "invalid_webhook",
        status: 400,
        meaning: "a signed webhook whose envelope cannot be read",
    },
    Code {
        code: "missing_api_key",
        status: 401,
        meaning: "no Authorization: Bearer header",
    },
    Code {
        code: "invalid_api_key",
        status: 401,
        meaning: "unknown or revoked API key",
    },
    Code {
        code: "bad_signature",
        status: 401,
        meaning: "X-Hub-Signature-256 missing or not matching any configured app secret",
    },
    Code {
        code: "forbidden",
        status: 403,
        meaning: "the key's role or WABAs do not allow this",
    },
    Code {
        code: "verification_failed",
        status: 403,
        meaning: "Meta's webhook handshake with a wrong mode or token",
    },
    Code {
        code: "unknown_account",
        status: 404,
        meaning: "the WABA has no account event yet: nothing can be rated for it",
    },
    Code {
        code: "unknown_tenant",
        status: 404,
        meaning: "no such tenant, or none this key may read",
    },
    Code {
        code: "not_found",
        status: 404,
        meaning: "no such route",
    },
    Code {
        code: "method_not_allowed",
        status: 405,
        meaning: "the route exists but not with this method",
    },
    Code {
        code: "payload_too_large",
        status: 413,
        meaning: "the request body is larger than the configured limit",
    },
    Code {
        code: "too_many_events",
        status: 413,
        meaning: "more events than one POST /v1/events takes (10,000, counting the events of \
                  every Meta envelope)",
    },
    Code {
        code: "waba_taken",
        status: 409,
        meaning: "a WABA of the set-up belongs to another tenant",
    },
    Code {
        code: "licence_conflict",
        status: 409,
        meaning: "licence records are history: one may be added or an open one ended, never \
                  removed or rewritten",
    },
    Code {
        code: "already_finalized",
        status: 409,
        meaning: "the tenant's month is finalized; a finalized invoice never changes",
    },
    Code {
        code: "finalized_later",
        status: 409,
        meaning: "a later month of the tenant is finalized: months are finalized in order",
    },
    Code {
        code: "no_plan",
        status: 422,
        meaning: "no plan version of the tenant is in force for the month (billing)",
    },
    Code {
        code: "missing_fx_rate",
        status: 422,
        meaning: "the set-up's FX table has no rate the invoice needs (billing)",
    },
    Code {
        code: "previous_not_final",
        status: 422,
        meaning: "a previous invoice given is a draft (billing)",
    },
    Code {
        code: "previous_after_month",
        status: 422,
        meaning: "a previous invoice is not of an earlier month (billing)",
    },
    Code {
        code: "previous_other_tenant",
        status: 422,
        meaning: "a previous invoice belongs to another tenant (billing)",
    },
    Code {
        code: "previous_currency",
        status: 422,
        meaning: "a previous invoice is in another currency than the tenant's (billing)",
    },
    Code {
        code: "duplicate_previous",
        status: 422,
        meaning: "two previous invoices for one month (billing)",
    },
    Code {
        code: "unknown_agent",
        status: 422,
        meaning: "a charge names an agent the tenant does not have (billing)",
    },
    Code {
        code: "conflicting_charge",
        status: 422,
        meaning: "a charge id appears twice with different content (billing)",
    },
    Code {
        code: "charge_without_instant",
        status: 422,
        meaning: "a charge with a cost has neither send nor delivery instant (billing)",
    },
    Code {
        code: "invalid_account",
        status: 422,
        meaning: "the WABA's account cannot be used for rating (the rating core's reason)",
    },
    Code {
        code: "conflicting_account",
        status: 422,
        meaning: "the WABA's account is given twice with different fields",
    },
    Code {
        code: "conflicting_duplicate",
        status: 422,
        meaning: "two events share an id with different content (the send check's reserved id \
                  used by a stored event)",
    },
    Code {
        code: "unsupported_date",
        status: 422,
        meaning: "the instant is before 2023-06-01, which wabill does not price",
    },
    Code {
        code: "unknown_country",
        status: 422,
        meaning: "no country has the user's calling code",
    },
    Code {
        code: "unknown_market",
        status: 422,
        meaning: "the user's country has no market on that date",
    },
    Code {
        code: "missing_rate",
        status: 422,
        meaning: "the rate data has no rate for the message (currency, model, market, \
                  category, date named)",
    },
    Code {
        code: "request_timeout",
        status: 408,
        meaning: "no answer within the configured request timeout (the body included); the \
                  connection is closed, send the request again",
    },
    Code {
        code: "rate_limited",
        status: 429,
        meaning: "this API key sent more requests than its configured rate; Retry-After says \
                  when the next one is taken",
    },
    Code {
        code: "internal_error",
        status: 500,
        meaning: "a bug in wabill; nothing internal is shown, try again",
    },
    Code {
        code: "store_unavailable",
        status: 503,
        meaning: "the database could not be read or written (a full disk, an I/O error, the \
                  database server gone); nothing was changed, try again after Retry-After",
    },
    Code {
        code: "webhook_disabled",
        status: 503,
        meaning: "no app secret is configured, so no webhook post can be authenticated",
    },
];

/// The table's row for a code.
pub fn lookup(code: &str) -> Option<&'static Code> {
    CODES.iter().find(|c| c.code == code)
}

/// The HTTP status of a code. A code missing from the table is a bug in wabill: 500.
pub fn status_of(code: &str) -> StatusCode {
    let found = lookup(code);
    debug_assert!(
        found.is_some(),
        "error code '{code}' is not in errors::CODES"
    );
    found
        .and_then(|c| StatusCode::from_u16(c.status).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Seconds a client is asked to wait (`Retry-After`) after `store_unavailable`: the store
/// recovers by itself (decisions.md D80).
pub const STORE_RETRY_AFTER_S: u64 = 1;

/// An error as a JSON body, `{"error":{"code","message"}}`, with the code's status;
/// `store_unavailable` comes with `Retry-After`.
pub fn problem(code: &str, message: impl Into<String>) -> Response {
    if code == "store_unavailable" {
        return problem_retry(code, message, STORE_RETRY_AFTER_S);
    }
    let body = serde_json::json!({ "error": { "code": code, "message": message.into() } });
    (status_of(code), axum::Json(body)).into_response()
}

/// [`problem`] with `Retry-After: seconds`.
pub fn problem_retry(code: &str, message: impl Into<String>, seconds: u64) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message.into() } });
    let mut resp = (status_of(code), axum::Json(body)).into_response();
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
        for c in CODES {
            assert!(seen.insert(c.code), "{} twice", c.code);
            assert!(StatusCode::from_u16(c.status).is_ok(), "{}", c.code);
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
            assert!(lookup(code).is_some(), "{code}");
        }
        assert_eq!(status_of("window_closed"), StatusCode::OK);
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
        ] {
            assert!(lookup(code).is_some(), "{code}");
        }
        assert_eq!(
            status_of("payload_too_large"),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }

    #[test]
    fn every_code_a_handler_answers_with_is_in_the_table() {
        let sources = [
            include_str!("api.rs"),
            include_str!("check.rs"),
            include_str!("usage.rs"),
            include_str!("reconcile.rs"),
            include_str!("routes.rs"),
            include_str!("tenants.rs"),
            include_str!("alerts.rs"),
            include_str!("limits.rs"),
            include_str!("health.rs"),
        ];
        let mut found = 0;
        for src in sources {
            for part in src
                .split("problem(")
                .skip(1)
                .chain(src.split("problem_retry(").skip(1))
            {
                let rest = part.trim_start();
                let Some(lit) = rest.strip_prefix('"') else {
                    continue; // a code passed through a variable (the core's codes, tested above)
                };
                let code = &lit[..lit.find('"').unwrap()];
                assert!(lookup(code).is_some(), "'{code}' is not in CODES");
                found += 1;
            }
        }
        assert!(found > 20, "the scan found the handlers' codes");
        for r in crate::routes::ROUTES {
            for code in r.codes {
                assert!(lookup(code).is_some(), "{}: '{code}'", r.path);
            }
        }
    }
}
