//! `POST /v1/events`: wabill event lines and Meta envelopes, as JSON Lines or a JSON array, read
//! item by item and stored with the caller's tenant scope.

use crate::api::{read_body, AppState, Auth, MAX_EVENTS_PER_REQUEST};
use crate::errors::{problem, ErrorCode};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use wabill_engine::caller::admit;
use wabill_engine::meta::meta_rows;
use wabill_engine::Caller;
use wabill_formats::body::BodyError;
use wabill_formats::{parse_line, Parsed};
use wabill_rating::calls::Call;
use wabill_rating::Event;
use wabill_store::{MetaPricingRow, Role};

pub(crate) async fn ingest(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // Sent as application/json, the body is one JSON value (an array of items, or one item);
    // otherwise JSON Lines, or an array (decisions.md D77).
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    match read_body(body) {
        Ok(body) => ingest_inner(&state, &caller, &body, json).await,
        Err(r) => r,
    }
}

async fn ingest_inner(state: &AppState, caller: &Caller, body: &[u8], json: bool) -> Response {
    if caller.role == Role::Reader {
        return problem(ErrorCode::Forbidden, "a reader key cannot send events");
    }
    // A JSON array of events, or JSON Lines, read item by item (wabill_formats::body): an
    // item's index counts blank lines, a line that is not UTF-8 is refused alone, and reading
    // stops at the first item, or the first event of an envelope, beyond the limit, so that a
    // body never costs more than the limit whatever it holds (decisions.md D73, D74).
    let lines = wabill_formats::body::shape_of(body, json) == wabill_formats::body::Shape::Lines;
    let error = |i: usize, field: &str, reason: &str| {
        let mut e = serde_json::json!({"index": i, "field": field, "reason": reason});
        if lines {
            e["line"] = serde_json::json!(i + 1);
        }
        e
    };
    let mut errors: Vec<serde_json::Value> = Vec::new();
    let mut parsed = Parsed::default();
    let mut index_of = Vec::new();
    let mut call_index_of = Vec::new();
    // Meta's pricing, with the index of the line that carried it.
    let mut pricing: Vec<(usize, MetaPricingRow)> = Vec::new();
    let mut last_item_events = 0;
    let read = wabill_formats::body::items_of(body, json, MAX_EVENTS_PER_REQUEST, |i, item| {
        let line = match item {
            Ok(line) => line,
            Err(why) => {
                errors.push(error(i, "", &why));
                return true;
            }
        };
        let before = parsed.events.len();
        let before_calls = parsed.calls.len();
        let before_pricing = parsed.meta_pricing.len();
        let before_templates = parsed.templates.len();
        let before_refs = parsed.template_refs.len();
        match parse_line(line, i as u64, &mut parsed) {
            Ok(())
                if parsed.templates.len() > before_templates
                    || parsed.template_refs.len() > before_refs =>
            {
                // The service keeps no template registry yet (decisions.md D156): a message
                // naming its template would be charged on a guess, a template change would be
                // lost. Refused alone, naming why.
                let field = if parsed.templates.len() > before_templates {
                    "kind"
                } else {
                    "template"
                };
                parsed.events.truncate(before);
                parsed.lines.truncate(before);
                parsed.calls.truncate(before_calls);
                parsed.call_lines.truncate(before_calls);
                parsed.meta_pricing.truncate(before_pricing);
                parsed.templates.truncate(before_templates);
                parsed.template_lines.truncate(before_templates);
                parsed.template_refs.truncate(before_refs);
                errors.push(error(
                    i,
                    field,
                    "templates are not taken by the service: give the message's category \
                     (`wabill rate` takes template lines and messages naming their template)",
                ));
            }
            Ok(()) => {
                let calls = parsed.calls.len() - before_calls;
                index_of.extend(std::iter::repeat_n(i, parsed.events.len() - before));
                call_index_of.extend(std::iter::repeat_n(i, calls));
                // Calls are events too: they count toward the request's limit.
                last_item_events = parsed.events.len() - before + calls;
                for row in meta_rows(line, &parsed.meta_pricing[before_pricing..]) {
                    pricing.push((i, row));
                }
            }
            Err(e) => errors.push(error(i, &e.field, &e.why)),
        }
        parsed.events.len() + parsed.calls.len() <= MAX_EVENTS_PER_REQUEST
    });
    let at = |i: usize| {
        if lines {
            format!("line {}", i + 1)
        } else {
            format!("the element at index {i}")
        }
    };
    match read {
        Ok(_) => {}
        Err(BodyError::Empty) => {
            return problem(
                ErrorCode::EmptyBody,
                "the body holds no event: send JSON Lines or a JSON array of events",
            )
        }
        Err(BodyError::TooManyItems { limit, index }) => {
            return problem(
                ErrorCode::TooManyEvents,
                format!(
                    "at most {limit} events per request: {} is the {}th item",
                    at(index),
                    limit + 1
                ),
            )
        }
        Err(BodyError::Stopped { index }) => {
            return problem(
                ErrorCode::TooManyEvents,
                format!(
                    "at most {MAX_EVENTS_PER_REQUEST} events per request: with {} (which holds \
                     {last_item_events} events) the request holds {}",
                    at(index),
                    parsed.events.len() + parsed.calls.len()
                ),
            )
        }
        Err(BodyError::Invalid(why)) => return problem(ErrorCode::InvalidBody, why),
    }
    // What the key's tenant scope refuses is refused alone, by index (decisions.md D46, D50).
    let events: Vec<(usize, Event<'_>)> = index_of.into_iter().zip(parsed.events).collect();
    let admitted = match admit(caller, &**state.engine.store(), events, pricing).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "looking up the messages of statuses failed");
            return problem(
                ErrorCode::StoreUnavailable,
                "nothing was stored; send it again",
            );
        }
    };
    for r in &admitted.refused {
        errors.push(error(r.index, r.field, &r.reason));
    }
    // A call is its WABA's: the key's scope refuses the others alone, by index (D50).
    let calls: Vec<(usize, Call<'_>)> = call_index_of
        .into_iter()
        .zip(std::mem::take(&mut parsed.calls))
        .filter(|(i, c)| {
            let ok = caller.may_see(&c.waba);
            if !ok {
                errors.push(error(
                    *i,
                    "waba",
                    "this key may not send events for that WABA",
                ));
            }
            ok
        })
        .collect();
    let (batch, pricing) = (admitted.events, admitted.pricing);
    state.engine.metrics.add_rejected(errors.len() as u64);
    let stored = match state.engine.ingest(&batch).await {
        Ok(out) => match state.engine.store().record_meta_pricing(&pricing).await {
            Ok(_) => Ok(out),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    // Calls after the message events; a failure of either asks for the whole batch again, and
    // what was stored comes back as duplicates.
    let stored = match stored {
        Ok(mut out) => match state.engine.ingest_calls(&calls).await {
            Ok(c) => {
                out.stored += c.stored;
                out.duplicates += c.duplicates;
                out.conflicts.extend(c.conflicts);
                Ok(out)
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match stored {
        Ok(out) => {
            for (i, why) in out.conflicts {
                errors.push(error(i, "id", &why));
            }
            errors.sort_by_key(|e| e["index"].as_u64());
            let all_rejected = out.stored == 0 && out.duplicates == 0 && !errors.is_empty();
            let mut body = serde_json::json!({
                "stored": out.stored,
                "duplicates": out.duplicates,
                "rejected": errors.len(),
                "errors": errors,
            });
            if !all_rejected {
                return (StatusCode::OK, axum::Json(body)).into_response();
            }
            // Nothing of the batch was taken: a client that checks only the status must not
            // read it as a success (decisions.md D96). The items' errors stay in the body.
            let code = ErrorCode::AllRejected;
            body["error"] = serde_json::json!({
                "code": code.as_str(),
                "message": format!(
                    "every one of the {} items was refused; nothing was stored",
                    body["rejected"]
                ),
            });
            (code.status(), axum::Json(body)).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "storing events failed");
            problem(
                ErrorCode::StoreUnavailable,
                "the batch was not (entirely) stored; send it again: what was stored comes back \
                 as duplicates",
            )
        }
    }
}
