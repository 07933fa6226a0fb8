//! `GET` and `POST /webhooks/whatsapp`: Meta's subscription handshake, and its signed webhooks
//! stored as events (with their pricing, for reconciliation).

use crate::api::{read_body, AppState, Params, MAX_EVENTS_PER_REQUEST};
use crate::errors::{problem, ErrorCode};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;
use wabill_engine::meta::{self, meta_rows};
use wabill_formats::{parse_envelope_within, EnvelopeError, Parsed};
use wabill_rating::Event;

pub(crate) async fn webhook_verify(
    State(state): State<Arc<AppState>>,
    Params(q): Params<HashMap<String, String>>,
) -> Response {
    match meta::verify_subscription(
        q.get("hub.mode").map(String::as_str),
        q.get("hub.verify_token").map(String::as_str),
        q.get("hub.challenge").map(String::as_str),
        &state.verify_token,
    ) {
        Some(challenge) => (StatusCode::OK, challenge.to_string()).into_response(),
        None => problem(
            ErrorCode::VerificationFailed,
            "hub.mode or hub.verify_token does not match",
        ),
    }
}

pub(crate) async fn webhook_post(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match read_body(body) {
        Ok(body) => webhook_inner(&state, &headers, &body).await,
        Err(r) => r,
    }
}

async fn webhook_inner(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Response {
    if state.app_secrets.is_empty() {
        return problem(
            ErrorCode::WebhookDisabled,
            "no app secret is configured (WABILL_APP_SECRET): unsigned posts are never accepted",
        );
    }
    let sig = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if let Err(e) = meta::verify_signature(&state.app_secrets, body, sig) {
        state.engine.metrics.add_unauthorized_webhook();
        return problem(ErrorCode::BadSignature, e.to_string());
    }
    // The bounds of `POST /v1/events` (decisions.md D75): the body's bytes as UTF-8, an empty
    // body refused, every string within `wabill_formats::limits` (checked as the envelope is
    // read), and at most MAX_EVENTS_PER_REQUEST events.
    let text = match std::str::from_utf8(body) {
        Ok(text) => text.trim(),
        Err(e) => {
            state.engine.metrics.add_rejected(1);
            return problem(
                ErrorCode::InvalidBody,
                format!(
                    "the body is not UTF-8 (an invalid byte at byte {} of the body)",
                    e.valid_up_to() + 1
                ),
            );
        }
    };
    if text.is_empty() {
        state.engine.metrics.add_rejected(1);
        return problem(
            ErrorCode::EmptyBody,
            "the body holds no webhook envelope: Meta posts one JSON object",
        );
    }
    let mut parsed = Parsed::default();
    if let Err(e) = parse_envelope_within(text, MAX_EVENTS_PER_REQUEST, &mut parsed) {
        state.engine.metrics.add_rejected(1);
        return match e {
            EnvelopeError::TooManyEvents { limit } => problem(
                ErrorCode::TooManyEvents,
                format!(
                    "at most {limit} events per request: the envelope holds more than {limit} \
                     messages and statuses (its reading stopped at the {}th)",
                    limit + 1
                ),
            ),
            EnvelopeError::Invalid(e) => problem(ErrorCode::InvalidWebhook, e.to_string()),
        };
    }
    let calls: Vec<(usize, wabill_rating::calls::Call<'_>)> = std::mem::take(&mut parsed.calls)
        .into_iter()
        .enumerate()
        .collect();
    if !parsed.templates.is_empty() {
        // Answered 200 (Meta would retry anything else), not kept: the service has no
        // template registry yet (decisions.md D156).
        tracing::warn!(
            changes = parsed.templates.len(),
            "template webhooks are not kept by the service"
        );
    }
    let pricing = meta_rows(text, &parsed.meta_pricing);
    let batch: Vec<(usize, Event<'_>)> = parsed.events.into_iter().enumerate().collect();
    // Events first, then Meta's pricing; the 200 only once both are stored. A failure of the
    // second leaves stored events that Meta's retry finds again as duplicates.
    let stored = match state.engine.ingest(&batch).await {
        Ok(_) => match state.engine.ingest_calls(&calls).await {
            Ok(_) => state.engine.store().record_meta_pricing(&pricing).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match stored {
        Ok(_) => (StatusCode::OK, "EVENT_RECEIVED").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "storing a webhook failed");
            problem(
                ErrorCode::StoreUnavailable,
                "the event could not be stored; Meta will retry",
            )
        }
    }
}
