//! `GET /v1/usage`: Meta-shaped usage of a WABA (the engine's `usage`), from its query string.

use crate::api::{AppState, Auth, Params};
use crate::errors::{problem, ErrorCode};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use wabill_engine::usage::{
    aggregate, aggregate_calls, list, CallUsageQuery, Granularity, UsageQuery, CALL_DIMENSIONS,
    DIMENSIONS,
};
use wabill_engine::Caller;
use wabill_rating::UnixMs;
use wabill_store::CallChargeFilter;

/// `GET /v1/usage`.
pub(crate) async fn usage(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Params(q): Params<HashMap<String, String>>,
) -> Response {
    usage_inner(&state, &caller, &q).await
}

async fn usage_inner(state: &AppState, caller: &Caller, q: &HashMap<String, String>) -> Response {
    let bad = |why: String| problem(ErrorCode::InvalidParameter, why);
    let Some(waba) = q.get("waba").filter(|w| !w.is_empty()) else {
        return bad("waba: required (usage is per WABA, as Meta's)".into());
    };
    if !caller.may_see(waba) {
        return problem(ErrorCode::Forbidden, "this key may not read that WABA");
    }
    // The reason a parameter is wrong, turned into the answer below.
    let instant = |name: &str| -> Result<UnixMs, String> {
        let v = q
            .get(name)
            .ok_or_else(|| format!("{name}: required (Unix seconds or RFC 3339)"))?;
        wabill_formats::time::parse_instant(v).map_err(|why| format!("{name}: {why}"))
    };
    let (start, end) = match (instant("start"), instant("end")) {
        (Ok(s), Ok(e)) if s < e => (s, e),
        (Ok(_), Ok(_)) => return bad("start: must be before end".into()),
        (Err(why), _) | (_, Err(why)) => return bad(why),
    };
    let Some(granularity) = q.get("granularity").and_then(|g| Granularity::parse(g)) else {
        return bad("granularity: required, HALF_HOUR, DAILY or MONTHLY".into());
    };
    let calls = match q.get("unit").map(String::as_str) {
        None | Some("message") => false,
        Some("call") => true,
        Some(other) => return bad(format!("unit: '{other}' is not message or call")),
    };
    // What each unit is broken down by and filtered on; the other unit's are refused, never
    // ignored.
    let (known, foreign): (&[&'static str], &[&str]) = if calls {
        (&CALL_DIMENSIONS, &["pricing_types", "pricing_categories"])
    } else {
        (&DIMENSIONS, &["directions"])
    };
    if let Some(f) = foreign.iter().find(|f| q.contains_key(**f)) {
        return bad(format!(
            "{f}: not a filter of {}",
            if calls { "calls" } else { "messages" }
        ));
    }
    let mut dimensions = BTreeSet::new();
    for d in q.get("dimensions").map(|v| list(v)).unwrap_or_default() {
        match known.iter().find(|x| **x == d.to_uppercase()) {
            Some(x) => {
                dimensions.insert(*x);
            }
            None => {
                return bad(format!(
                    "dimensions: '{d}' is not one of {}",
                    known.join(", ")
                ))
            }
        }
    }
    let tz = match q.get("align").map(|a| a.to_uppercase()).as_deref() {
        None | Some("UTC") => chrono_tz::UTC,
        Some("WABA") => match state.engine.account_info(waba).await {
            Some((_, tz)) => tz,
            None => {
                return problem(
                    ErrorCode::UnknownAccount,
                    format!("WABA '{waba}' has no account: its timezone is unknown"),
                )
            }
        },
        Some(other) => return bad(format!("align: '{other}' is not UTC or WABA")),
    };
    let set = |name: &str, upper: bool| {
        q.get(name).map(|v| {
            list(v)
                .into_iter()
                .map(|x| if upper { x.to_uppercase() } else { x })
                .collect::<BTreeSet<String>>()
        })
    };
    if calls {
        let query = CallUsageQuery {
            start,
            end,
            granularity,
            dimensions,
            tz,
            phone_numbers: set("phone_numbers", false),
            country_codes: set("country_codes", true),
            directions: set("directions", true),
        };
        let mut filter = CallChargeFilter {
            waba: Some(waba.clone()),
            wabas: None,
            from_ms: Some(start),
            to_ms: Some(end),
            after: None,
            limit: 10_000,
        };
        let mut rows = Vec::new();
        loop {
            match state.engine.store().call_charges(&filter).await {
                Ok(page) => {
                    let done = page.len() < filter.limit as usize;
                    filter.after = page.last().map(|r| r.cursor());
                    rows.extend(page);
                    if done {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "reading call usage failed");
                    return problem(ErrorCode::StoreUnavailable, "try again");
                }
            }
        }
        return (StatusCode::OK, axum::Json(aggregate_calls(&query, &rows))).into_response();
    }
    let query = UsageQuery {
        start,
        end,
        granularity,
        dimensions,
        tz,
        phone_numbers: set("phone_numbers", false),
        country_codes: set("country_codes", true),
        pricing_types: set("pricing_types", true),
        pricing_categories: set("pricing_categories", true),
    };
    match state.engine.store().usage(waba, start, end).await {
        Ok(rows) => (StatusCode::OK, axum::Json(aggregate(&query, &rows))).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading usage failed");
            problem(ErrorCode::StoreUnavailable, "try again")
        }
    }
}
