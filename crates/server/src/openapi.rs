//! The OpenAPI 3 document of `GET /openapi.json`, generated from the route list
//! (`routes::ROUTES`) and the error table (`errors::ErrorCode`), so that it describes exactly the
//! routes the router serves and the statuses their codes come with.

use crate::errors::ErrorCode;
use crate::routes::{Access, Route, ROUTES};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The document.
pub fn document() -> Value {
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for r in ROUTES {
        paths
            .entry(r.path)
            .or_default()
            .insert(r.method.as_str().to_string(), operation(r));
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "wabill",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Rating and billing engine for WhatsApp Business Platform messaging. \
                Error answers are {\"error\":{\"code\",\"message\"}}; each code has one HTTP \
                status (x-error-codes lists them).",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer",
                           "description": "a key from `wabill keys create`"},
            },
            "schemas": schemas(),
        },
        "x-error-codes": ErrorCode::ALL.iter().map(|c| json!({
            "code": c.as_str(), "status": c.status_u16(), "meaning": c.meaning(),
        })).collect::<Vec<_>>(),
    })
}

fn operation(r: &Route) -> Value {
    let mut op = Map::new();
    op.insert("summary".into(), json!(r.summary));
    op.insert(
        "operationId".into(),
        json!(format!("{:?}", r.op).to_lowercase()),
    );
    // Path parameters come from the path's `{name}` segments.
    let mut params: Vec<Value> = r
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    if !r.params.is_empty() || !params.is_empty() {
        params.extend(r.params.iter().map(|p| {
            let mut schema = json!({"type": p.kind});
            if !p.values.is_empty() {
                schema["enum"] = json!(p.values);
            }
            json!({"name": p.name, "in": "query", "required": p.required,
                       "description": p.description, "schema": schema})
        }));
        op.insert("parameters".into(), json!(params));
    }
    if let Some((content_type, schema)) = r.body {
        op.insert(
            "requestBody".into(),
            json!({"required": true, "content": {content_type: {"schema": schema_ref(schema)}}}),
        );
    }
    match r.auth {
        Access::ApiKey => {
            op.insert("security".into(), json!([{"apiKey": []}]));
        }
        Access::MetaSignature => {
            op.insert(
                "description".into(),
                json!(
                    "Authenticated by X-Hub-Signature-256 (HMAC-SHA256 of the body under \
                       the app secret), not by an API key."
                ),
            );
        }
        Access::None => {}
    }
    let mut responses = Map::new();
    let (content_type, schema) = r.ok;
    let ok_content = if schema.is_empty() {
        json!({content_type: {}})
    } else {
        json!({content_type: {"schema": schema_ref(schema)}})
    };
    responses.insert(
        "200".into(),
        json!({"description": "done", "content": ok_content}),
    );
    // Error codes grouped by their status (window_closed is a 200 answer, described there).
    let mut by_status: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    // What the connection loop and the key's rate limit may answer on any route (`limits`).
    let everywhere: &[ErrorCode] = match r.auth {
        Access::ApiKey => &[ErrorCode::RateLimited, ErrorCode::RequestTimeout],
        _ => &[ErrorCode::RequestTimeout],
    };
    for c in r.codes.iter().chain(everywhere) {
        if c.status_u16() != 200 {
            by_status
                .entry(c.status_u16())
                .or_default()
                .push(c.as_str());
        }
    }
    for (status, codes) in by_status {
        responses.insert(
            status.to_string(),
            json!({
                "description": codes.join(", "),
                "content": {"application/json": {"schema": schema_ref("Problem")}},
            }),
        );
    }
    op.insert("responses".into(), Value::Object(responses));
    Value::Object(op)
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn schemas() -> Value {
    let mut all = base_schemas();
    alert_schemas(&mut all);
    all
}

fn base_schemas() -> Value {
    let s = |t: &str| json!({"type": t});
    let nullable = |t: &str| json!({"type": t, "nullable": true});
    let instant = json!({"type": "string", "format": "date-time"});
    let decimal = json!({"type": "string", "description": "exact decimal"});
    json!({
        "TenantSetup": {
            "type": "object",
            "description": "tenant, teams, agents, licences, plans, fx: the set-up document of \
                            `wabill invoice --setup` (README, Tenant invoices)",
        },
        "LicenceRecord": {
            "type": "object",
            "description": "{\"id\":\"L4\",\"target\":{\"agent\":\"a1\"},\"from\":\"2026-03-01\",\"to\":null}",
        },
        "TenantVersion": {
            "type": "object",
            "properties": {"tenant": s("string"), "version": s("integer"),
                           "recorded_at_ms": s("integer"), "recorded": s("boolean"),
                           "setup": schema_ref("TenantSetup")},
        },
        "Invoice": {
            "type": "object",
            "description": "the invoice record of `wabill invoice` (JSON); csv and html render it",
        },
        "Problem": {
            "type": "object",
            "properties": {"error": {"type": "object", "properties": {
                "code": s("string"), "message": s("string")}}},
        },
        "WebhookEnvelope": {
            "type": "object",
            "description": "{\"object\":\"whatsapp_business_account\",\"entry\":[...]} as Meta sends it",
        },
        "EventLines": {
            "type": "string",
            "description": "one event of docs/events.md (or Meta envelope) per line; a JSON array of them is also accepted",
        },
        "IngestResult": {
            "type": "object",
            "properties": {
                "stored": s("integer"), "duplicates": s("integer"), "rejected": s("integer"),
                "errors": {"type": "array", "items": {"type": "object", "properties": {
                    "index": s("integer"), "line": s("integer"), "field": s("string"),
                    "reason": s("string")}}},
            },
        },
        "Charge": {
            "type": "object",
            "description": "docs/events.md, \"Output: charges\"",
            "properties": {
                "id": s("string"), "waba": s("string"), "phone": s("string"), "user": s("string"),
                "country": s("string"), "market": s("string"), "pricing_model": s("string"),
                "category": s("string"), "type": s("string"), "billable": s("boolean"),
                "tier": nullable("string"), "rate": decimal.clone(), "amount": decimal.clone(),
                "currency": s("string"), "billed_at": instant.clone(),
                "conversation_id": nullable("string"),
                "agent": nullable("string"),
            },
        },
        "Charges": {
            "type": "object",
            "properties": {
                "charges": {"type": "array", "items": schema_ref("Charge")},
                "next": nullable("string"),
            },
        },
        "Unratable": {"type": "object", "properties": {"unratable": {"type": "array", "items": {"type": "object"}}}},
        "SendCheckRequest": {
            "type": "object",
            "required": ["waba", "phone", "user", "type"],
            "properties": {
                "waba": s("string"),
                "phone": {"type": "string", "description": "business phone number, digits"},
                "user": {"type": "string", "description": "the user's number, digits"},
                "type": {"type": "string", "description": "template, or a non-template type (text, image, ...)"},
                "category": {"type": "string", "enum": ["marketing", "utility", "authentication"],
                             "description": "required for a template"},
                "api": {"type": "string", "enum": ["marketing_messages"]},
                "now": {"type": "string", "description": "check as of this instant instead of the server's clock (RFC 3339 or Unix seconds)"},
                "agent": {"type": "string", "description": "the tenant's agent who would send: without a WhatsApp licence at that instant the answer is license_required"},
            },
        },
        "SendCheckAnswer": {
            "type": "object",
            "properties": {
                "allowed": s("boolean"),
                "reason": {"type": "object", "nullable": true, "description": "why not: code (window_closed), meta_error (131047), message"},
                "at": instant.clone(),
                "charge": {"type": "object", "nullable": true, "properties": {
                    "pricing_model": s("string"), "category": s("string"), "type": s("string"),
                    "billable": s("boolean"), "tier": nullable("string"), "rate": decimal.clone(),
                    "amount": decimal.clone(), "currency": s("string"), "country": s("string"),
                    "market": s("string"), "conversation_id": nullable("string"),
                    "opens_conversation": s("boolean"),
                    "tier_position": {"type": "integer", "nullable": true, "description": "the message's place among the month's charged messages of its volume-tier counter"},
                }},
                "windows": {"type": "object", "properties": {
                    "customer_service": {"type": "object", "properties": {"open": s("boolean"), "ends_at": instant.clone()}},
                    "free_entry_point": {"type": "object", "properties": {"open": s("boolean"), "ends_at": instant.clone(), "opened_by_this_message": s("boolean")}},
                    "conversations": {"type": "array", "items": {"type": "object", "properties": {
                        "conversation_id": s("string"), "category": s("string"), "type": s("string"),
                        "opened_at": instant.clone(), "expires_at": instant.clone()}}},
                }},
            },
        },
        "Usage": {
            "type": "object",
            "properties": {"data": {"type": "array", "items": {"type": "object", "properties": {
                "currency": s("string"), "granularity": s("string"),
                "data_points": {"type": "array", "items": {"type": "object", "properties": {
                    "start": {"type": "integer", "description": "Unix seconds"},
                    "end": {"type": "integer", "description": "Unix seconds"},
                    "phone_number": s("string"), "country": s("string"),
                    "pricing_category": s("string"), "pricing_type": s("string"),
                    "tier": {"type": "string", "description": "lower:upper, 0:MAX when untiered; absent for free messages"},
                    "volume": s("integer"), "cost": decimal.clone(),
                }}},
            }}}},
        },
        "Reconciliation": {
            "type": "object",
            "properties": {
                "waba": s("string"), "month": s("string"),
                "totals": {"type": "object", "properties": {
                    "compared": s("integer"), "agreeing": s("integer"), "disagreeing": s("integer"),
                    "wabill_only": s("integer"), "meta_only": s("integer")}},
                "disagreements": {"type": "array", "items": {"type": "object", "properties": {
                    "id": s("string"),
                    "differences": {"type": "array", "items": {"type": "object", "properties": {
                        "field": s("string"), "wabill": {}, "meta": {}}}},
                    "wabill": schema_ref("Charge"), "meta": {"type": "object"}}}},
                "meta_only": {"type": "array", "items": {"type": "object"}},
            },
        },
    })
}

/// The budget alert routes' schemas (apart: one `json!` of everything exceeds the macro's
/// recursion limit).
fn alert_schemas(all: &mut Value) {
    let s = |t: &str| json!({"type": t});
    let nullable = |t: &str| json!({"type": t, "nullable": true});
    let instant = json!({"type": "string", "format": "date-time"});
    let decimal = json!({"type": "string", "description": "exact decimal"});
    let more = json!({
        "AuditLog": {
            "type": "object",
            "required": ["entries", "next"],
            "properties": {
                "entries": {"type": "array", "items": {
                    "type": "object",
                    "required": ["id", "at", "actor", "action", "target"],
                    "properties": {
                        "id": s("integer"),
                        "at": instant,
                        "actor": {"type": "string", "description": "key:<id>:<name>, or cli:<user>"},
                        "action": {"type": "string", "enum": ["tenant.put", "licence.add", "invoice.finalize", "alert_settings.put", "key.create", "key.revoke"]},
                        "target": s("string"),
                    },
                }},
                "next": {"type": "integer", "nullable": true, "description": "the `after` of the next page; null at the end"},
            },
        },
        "AlertSettingsRequest": {
            "type": "object",
            "required": ["url", "thresholds"],
            "properties": {
                "url": {"type": "string", "description": "an http:// or https:// URL, without credentials"},
                "secret": {"type": "string", "description": "HMAC-SHA256 key of X-Wabill-Signature-256; required the first time, kept when omitted"},
                "thresholds": {"type": "array", "items": {"type": "object",
                    "description": "{\"percent\":\"80\"} of the included budget, or {\"spend\":\"500\"} in the tenant's currency"}},
            },
        },
        "AlertSettings": {
            "type": "object",
            "properties": {"tenant": s("string"), "settings": {"type": "object", "properties": {
                "url": s("string"), "thresholds": {"type": "array", "items": {"type": "object"}},
                "secret_set": s("boolean"), "updated_at": instant.clone()}}},
        },
        "Alerts": {
            "type": "object",
            "properties": {
                "tenant": s("string"),
                "settings": {"type": "object", "nullable": true},
                "alerts": {"type": "array", "items": {"type": "object", "properties": {
                    "tenant": s("string"), "month": s("string"), "key": s("string"),
                    "threshold": {"type": "object"}, "spend": decimal.clone(),
                    "budget": {"type": "string", "nullable": true}, "currency": s("string"),
                    "at": instant.clone(),
                    "state": {"type": "string", "enum": ["pending", "delivered", "failed"]},
                    "attempts": s("integer"), "created_at": instant.clone(),
                    "delivered_at": {"type": "string", "format": "date-time", "nullable": true},
                    "next_attempt_at": {"type": "string", "format": "date-time", "nullable": true},
                    "last_error": nullable("string")}}},
            },
        },
    });
    for (k, v) in more.as_object().expect("an object") {
        all[k] = v.clone();
    }
}

/// `GET /openapi.json`.
pub(crate) async fn serve_document() -> Response {
    axum::Json(document()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_and_referenced_schema_is_in_the_document() {
        let doc = document();
        for r in ROUTES {
            let op = &doc["paths"][r.path][r.method.as_str()];
            assert!(op.is_object(), "{} {} missing", r.method.as_str(), r.path);
            assert!(op["responses"]["408"].is_object(), "{}", r.path);
            if matches!(r.auth, Access::ApiKey) {
                let limited = op["responses"]["429"]["description"].as_str();
                assert_eq!(limited, Some("rate_limited"), "{}", r.path);
            }
        }
        assert!(doc["paths"]["/readyz"]["get"]["responses"]["503"].is_object());
        // Every $ref resolves.
        let text = doc.to_string();
        for part in text.split("\"#/components/schemas/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "schema {name} is referenced but not defined"
            );
        }
    }
}
