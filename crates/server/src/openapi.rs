//! The OpenAPI 3 document of `GET /openapi.json`, generated from the route list
//! (`routes::ROUTES`) and the error table (`errors::ErrorCode`), so that it describes exactly the
//! routes the router serves and the statuses their codes come with.

use crate::errors::ErrorCode;
use crate::routes::{Access, Op, Route, Shape, ROUTES};
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
        .map(|name| {
            let schema = match name {
                "month" => shape_schema(Shape::Month),
                _ => shape_schema(Shape::NonEmpty),
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect();
    if !r.params.is_empty() || !params.is_empty() {
        params.extend(r.params.iter().map(|p| {
            let schema = shape_schema(p.shape);
            json!({"name": p.name, "in": "query", "required": p.required,
                       "description": p.description, "schema": schema})
        }));
        op.insert("parameters".into(), json!(params));
    }
    if let Some((content_type, schema)) = r.body {
        let mut content = json!({content_type: {"schema": schema_ref(schema)}});
        // The events route reads a JSON array as well as JSON Lines (`wabill_formats::body`).
        if r.op == Op::Ingest {
            content["application/json"] = json!({"schema": schema_ref("EventArray")});
        }
        op.insert(
            "requestBody".into(),
            json!({"required": true, "content": content}),
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
    let mut ok_content = if schema.is_empty() {
        json!({content_type: {}})
    } else {
        json!({content_type: {"schema": schema_ref(schema)}})
    };
    // The other renderings a `format` parameter asks for.
    match r.op {
        Op::Charges => {
            ok_content["text/csv"] = json!({"schema": {"type": "string"}});
        }
        Op::InvoiceGet => {
            ok_content["text/csv"] = json!({"schema": {"type": "string"}});
            ok_content["text/html"] = json!({"schema": {"type": "string"}});
        }
        _ => {}
    }
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
        // An all-rejected batch answers the ingest result with its error (decisions.md D96).
        let schema = if codes.contains(&ErrorCode::AllRejected.as_str()) {
            schema_ref("RejectedBatch")
        } else {
            schema_ref("Problem")
        };
        responses.insert(
            status.to_string(),
            json!({
                "description": codes.join(", "),
                "content": {"application/json": {"schema": schema}},
            }),
        );
    }
    op.insert("responses".into(), Value::Object(responses));
    Value::Object(op)
}

/// An instant as `wabill_formats::time::parse_instant` takes it, within its range: RFC 3339
/// (seconds, up to three digits of fraction, `Z` or an offset) or Unix seconds. The pattern is
/// what a generator may produce, all of it accepted: years 2001-2099 and days up to the 28th,
/// so that no offset or month length leaves the range; the other accepted instants are named
/// in the description (decisions.md D77).
pub const INSTANT_PATTERN: &str = "^(20(0[1-9]|[1-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,3})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])|[1-3][0-9]{9})$";

/// `YYYY-MM`.
pub const MONTH_PATTERN: &str = "^[0-9]{4}-(0[1-9]|1[0-2])$";

fn instant_schema() -> Value {
    json!({"type": "string", "pattern": INSTANT_PATTERN,
           "description": "RFC 3339 with an offset (2025-07-01T10:00:00Z, 2025-07-01T07:00:00.250-03:00) \
               or Unix seconds, in 2000-01-01T00:00:00Z <= t < 2100-01-01T00:00:00Z, at most \
               millisecond precision, no leap second; the pattern gives the common part of that \
               range (every instant of 2001-2099 with days up to the 28th), every instant of the \
               range is taken"})
}

/// The schema of a query or path parameter of this shape.
pub fn shape_schema(shape: Shape) -> Value {
    match shape {
        Shape::Text => json!({"type": "string"}),
        Shape::NonEmpty => json!({"type": "string", "minLength": 1}),
        Shape::Instant => instant_schema(),
        Shape::Month => json!({"type": "string", "pattern": MONTH_PATTERN}),
        // `{send instant ms}.{hex of the id}` (ids are UTF-8; the pattern's bytes are ASCII).
        Shape::Cursor => {
            json!({"type": "string", "pattern": "^-?[0-9]{1,18}\\.([2-7][0-9a-fA-F])*$"})
        }
        Shape::List(words) => {
            // Upper or lower case, comma-separated, spaces around, Meta's `["A","B"]` too.
            let word = words
                .iter()
                .map(|w| {
                    w.chars()
                        .map(|c| {
                            if c.is_ascii_alphabetic() {
                                format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
                            } else {
                                c.to_string()
                            }
                        })
                        .collect::<String>()
                })
                .collect::<Vec<_>>()
                .join("|");
            let item = format!(" *\"? *({word})? *\"? *");
            json!({"type": "string", "pattern": format!("^ *\\[?{item}(,{item})*\\]? *$")})
        }
        Shape::Int { min, max } => json!({"type": "integer", "minimum": min, "maximum": max}),
        Shape::Enum(values) => json!({"type": "string", "enum": values}),
    }
}

/// The items of `Charges`: message charges, or call charges with `unit=call`; and the
/// `CallCharge` schema is added beside the others (`components`).
fn charges_items() -> Value {
    json!({
        "type": "array",
        "description": "`Charge` lines, or `CallCharge` lines with `unit=call`",
        "items": {"anyOf": [schema_ref("Charge"), schema_ref("CallCharge")]},
    })
}

/// One call charge line (docs/events.md "Call charges"), as `GET /v1/charges?unit=call` answers.
fn call_charge_schema() -> Value {
    let s = |t: &str| json!({"type": t});
    let nullable = |t: &str| json!({"type": t, "nullable": true});
    let instant = json!({"type": "string", "format": "date-time"});
    let decimal = json!({"type": "string", "description": "exact decimal"});
    json!({
        "type": "object",
        "description": "docs/events.md, \"Call charges\": one line per call (`unit=call`)",
        "properties": {
            "unit": {"type": "string", "enum": ["call"]},
            "id": s("string"), "waba": s("string"), "phone": s("string"),
            "user": {"type": "string", "nullable": true, "description": "null when the user is known only by BSUID"},
            "user_id": nullable("string"),
            "country": {"type": "string", "nullable": true, "description": "null when the user has no number"},
            "market": nullable("string"),
            "direction": {"type": "string", "enum": ["business_initiated", "user_initiated"]},
            "type": {"type": "string", "enum": ["regular", "free_user_initiated", "not_connected", "unterminated"]},
            "billable": s("boolean"),
            "seconds": {"type": "integer", "minimum": 0},
            "pulses": {"type": "integer", "minimum": 0, "description": "started 6-second pulses"},
            "tier_minutes": {"type": "string", "nullable": true, "description": "exact decimal: the month's minutes counted for the tier through this call; null on free calls"},
            "tier": nullable("string"),
            "rate": {"type": "string", "nullable": true, "description": "exact decimal per minute; null on free calls and on a call that could not be priced"},
            "amount": {"type": "string", "nullable": true, "description": "exact decimal; null only for a call to be charged that could not be priced (see `error`)"},
            "currency": s("string"),
            "start": instant.clone(),
            "recording": decimal.clone(),
            "transcription": decimal.clone(),
            "agent": nullable("string"),
            "error": {"type": "string", "nullable": true, "description": "why the call could not be priced (also in GET /v1/unratable); absent otherwise"},
        },
    })
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn schemas() -> Value {
    let mut all = base_schemas();
    alert_schemas(&mut all);
    estimate_schemas(&mut all);
    all["CallCharge"] = call_charge_schema();
    // The call figures of `GET /v1/usage?unit=call` (Meta's call_analytics), beside the
    // messages' (apart: the main `json!` is at the macro's recursion limit).
    let points = &mut all["Usage"]["properties"]["data"]["items"]["properties"]["data_points"]
        ["items"]["properties"];
    points["direction"] = json!({"type": "string", "enum": ["BUSINESS_INITIATED", "USER_INITIATED"], "description": "calls"});
    points["count"] = json!({"type": "integer", "description": "calls: answered calls"});
    points["average_duration"] = json!({"type": "integer", "description": "calls: their seconds over their count, whole seconds"});
    points["unpriced"] = json!({"type": "integer", "description": "calls that could not be priced (counted, not in cost); absent when none"});
    all
}

/// The calculator's schemas: the request exactly as `wabill_estimate::request` reads it
/// (decisions.md D171), the report as `wabill estimate --format json` prints it.
fn estimate_schemas(all: &mut Value) {
    use wabill_estimate::request::MAX_MARKET_CHARS;
    use wabill_estimate::{
        MAX_CALL_MINUTES, MAX_CALL_SECONDS, MAX_MESSAGES, MAX_PHONES, MAX_TRAFFIC_LINES,
    };
    let s = |t: &str| json!({"type": t});
    let int = json!({"type": "integer", "minimum": 0});
    let decimal = json!({"type": "string", "description": "exact decimal"});
    let iso2 =
        json!({"type": "string", "pattern": "^[A-Z]{2}$", "description": "ISO 3166 alpha-2"});
    let share = json!({"type": "string", "pattern": "^[0-9]{1,4}(\\.[0-9]{1,9})?(%|‰)$",
        "description": "an exact share, 0 to 100 % (40%, 12.5%, 125‰); above 100 % is refused (400)"});
    let category =
        json!({"type": "string", "enum": ["marketing", "utility", "authentication", "service"]});
    let tally = |extra: Value| {
        let mut v = json!({
            "messages": int.clone(), "charged": int.clone(),
            "free_customer_service": int.clone(), "free_entry_point": int.clone(),
            "free_tier": int.clone(), "amount": decimal.clone(),
        });
        if let (Value::Object(a), Value::Object(b)) = (&mut v, extra) {
            a.extend(b);
        }
        json!({"type": "object", "properties": v})
    };
    let report = json!({
        "type": "object",
        "properties": {
            "month": s("string"), "era": s("string"), "era_start": s("string"),
            "pricing_model": s("string"), "currency": s("string"), "timezone": s("string"),
            "phones": s("integer"),
            "rows": {"type": "array", "items": tally(json!({
                "market": s("string"), "category": s("string"), "currency": s("string"),
                "rates": {"type": "array", "items": {"type": "object", "properties": {
                    "tier": {"type": "string", "nullable": true, "description": "lower:upper of a volume tier; null when untiered"},
                    "rate": decimal.clone(), "messages": int.clone(), "amount": decimal.clone()}}},
            }))},
            "totals": {"type": "array", "items": tally(json!({"currency": s("string"),
                "calls_amount": decimal.clone(), "total_amount": decimal.clone()}))},
            "calls": {"type": "object", "nullable": true,
                "description": "the month's calls (call_minutes), rated by the calling card; null without calls",
                "properties": {
                "market": s("string"), "country": s("string"), "currency": s("string"),
                "calls": int.clone(), "business_initiated": int.clone(), "user_initiated": int.clone(),
                "seconds": int.clone(), "charged_minutes": decimal.clone(), "amount": decimal.clone(),
                "rates": {"type": "array", "items": {"type": "object", "properties": {
                    "tier": {"type": "string", "nullable": true}, "rate_per_minute": decimal.clone(),
                    "calls": int.clone(), "minutes": decimal.clone(), "amount": decimal.clone()}}}}},
            "calls_not_priced": {"type": "string", "description": "compare month only: why its calls are left out (no calling rate then)"},
            "traffic": {"type": "array", "items": {"type": "object", "properties": {
                "target": {"type": "object"}, "country": s("string"), "category": s("string"),
                "messages": int.clone(), "entry_point": int.clone(), "in_window": int.clone(),
                "cold": int.clone()}}},
            "synthetic": {"type": "object", "properties": {
                "users": int.clone(), "inbound": int.clone(), "entry_point_inbound": int.clone(),
                "outbound": int.clone(), "statuses": int.clone(), "calls": int.clone()}},
        },
    });
    let more = json!({
        "EstimateRequest": {
            "type": "object",
            "additionalProperties": false,
            "required": ["month", "traffic"],
            "description": "the options of `wabill estimate` under their flags' names, and the \
                `traffic` of an `--input` JSON file; no field is null",
            "properties": {
                "month": {"type": "string", "pattern": MONTH_PATTERN, "description": "YYYY-MM, from 2023-06"},
                "currency": currency(),
                "timezone": {"type": "string", "description": "an IANA timezone name (default UTC)"},
                "phones": {"type": "integer", "minimum": 1, "maximum": MAX_PHONES, "description": "business phone numbers (default 1)"},
                "primary_country": iso2.clone(),
                "auth_international": {
                    "description": "eligible for authentication-international rates: true (all month), false (default), or from a date",
                    "oneOf": [s("boolean"), date()]},
                "utility_in_window": share.clone(),
                "entry_point_share": share.clone(),
                "compare": {"type": "boolean", "description": "also price the last month before this month's era"},
                "call_minutes": {"type": "integer", "minimum": 0, "maximum": MAX_CALL_MINUTES,
                                 "description": "minutes of WhatsApp calls a month, to users of primary_country (needed with calls); priced with the calling card of the rate data"},
                "business_initiated_share": share,
                "average_call_seconds": {"type": "integer", "minimum": 1, "maximum": MAX_CALL_SECONDS,
                                         "description": "average call length in seconds (default 120)"},
                "traffic": {"type": "array", "maxItems": MAX_TRAFFIC_LINES, "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["category", "messages"],
                    "properties": {
                        "market": {"type": "string", "minLength": 1, "maxLength": MAX_MARKET_CHARS, "pattern": NOT_BLANK,
                                   "description": "a Meta market name (GET /v1/estimate lists them)"},
                        "country": iso2,
                        "category": category,
                        "messages": {"type": "integer", "minimum": 0, "maximum": MAX_MESSAGES,
                                     "description": "a month; the lines' sum at most 2,000,000"},
                    },
                    "oneOf": [{"required": ["market"]}, {"required": ["country"]}],
                }},
            },
        },
        "EstimateReport": {
            "type": "object",
            "required": ["estimate"],
            "description": "`wabill estimate --format json`: the estimate, and with compare the previous era's month and the change per currency",
            "properties": {
                "estimate": report.clone(),
                "compare": report,
                "change": {"type": "array", "items": {"type": "object", "properties": {
                    "currency": s("string"), "amount": decimal}}},
            },
        },
        "EstimateOptions": {
            "type": "object",
            "properties": {
                "markets": {"type": "array", "items": s("string")},
                "currencies": {"type": "array", "items": s("string")},
                "categories": {"type": "array", "items": s("string")},
                "max_messages": s("integer"), "max_traffic_lines": s("integer"),
                "max_phones": s("integer"),
                "call_currencies": {"type": "array", "items": s("string"),
                    "description": "the currencies of the calling cards: call_minutes is priced only in these"},
                "max_call_minutes": s("integer"), "max_call_seconds": s("integer"),
            },
        },
    });
    for (k, v) in more.as_object().expect("an object") {
        all[k] = v.clone();
    }
}

fn base_schemas() -> Value {
    let nullable_instant = json!({"type": "string", "format": "date-time", "nullable": true});
    let s = |t: &str| json!({"type": t});
    let nullable = |t: &str| json!({"type": t, "nullable": true});
    let instant = json!({"type": "string", "format": "date-time"});
    let decimal = json!({"type": "string", "description": "exact decimal"});
    let mut all = json!({
        "TenantSetup": tenant_setup_schema(),
        "LicenceRecord": licence_schema(),
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
            "description": "one event of docs/events.md (or Meta envelope) per line",
        },
        "EventArray": {
            "description": "a JSON array of events of docs/events.md or Meta envelopes, 1 to \
                10,000 of them (an envelope's events counted), each refused alone when it is \
                not one (its error in `errors`); any other JSON value is read as one line, and \
                refused alone in the same way",
            "anyOf": [
                {"type": "array", "minItems": 1, "maxItems": 10000, "items": {}},
                {"not": {"type": "array"}},
            ],
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
                "tier": nullable("string"),
                "rate": {"type": "string", "nullable": true, "description": "exact decimal; null for a message never charged (undelivered)"},
                "amount": decimal.clone(),
                "currency": s("string"),
                "billed_at": {"type": "string", "format": "date-time", "nullable": true, "description": "null when the message was never delivered"},
                "conversation_id": nullable("string"),
                "agent": nullable("string"),
            },
        },
        "Charges": {
            "type": "object",
            "properties": {
                "charges": charges_items(),
                "next": nullable("string"),
            },
        },
        "Unratable": {"type": "object", "properties": {"unratable": {"type": "array", "items": {"type": "object"}}}},
        "SendCheckRequest": send_check_schema(),
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
                "cheapest": {"type": "object", "nullable": true,
                    "description": "the cheapest allowed way to reach the user now when it is not the message asked about (decisions.md D98), else null",
                    "properties": {
                        "type": s("string"), "category": s("string"), "pricing_type": s("string"),
                        "amount": decimal.clone(), "currency": s("string"),
                        "saving": {"type": "string", "nullable": true, "description": "exact decimal; null when the message asked about is not allowed"},
                        "requires": s("string"),
                    }},
                "windows": {"type": "object", "properties": {
                    "customer_service": {"type": "object", "properties": {"open": s("boolean"), "ends_at": nullable_instant.clone()}},
                    "free_entry_point": {"type": "object", "properties": {"open": s("boolean"), "ends_at": nullable_instant.clone(), "opened_by_this_message": s("boolean")}},
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
                "platform_categories": {"type": "array", "description": "messages whose outbound event named another template category than Meta bills; charged in Meta's", "items": {"type": "object", "properties": {
                    "id": s("string"),
                    "differences": {"type": "array", "items": {"type": "object", "properties": {
                        "field": s("string"), "platform": s("string"), "meta": s("string")}}},
                    "note": s("string")}}},
            },
        },
    });
    all["InvoiceLink"] = json!({
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "/invoices/{id}/{month}?expires=..&sig=.."},
            "expires_at": {"type": "string", "format": "date-time"},
        },
    });
    // An all-rejected batch of `POST /v1/events` (decisions.md D96).
    all["RejectedBatch"] = json!({
        "description": "a batch none of whose items was stored: the ingest result and the error",
        "allOf": [schema_ref("Problem"), schema_ref("IngestResult")],
    });
    all
}

/// A date, `YYYY-MM-DD`: the pattern gives days up to the 28th, every calendar date is taken.
const DATE_PATTERN: &str = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$";

fn date() -> Value {
    json!({"type": "string", "pattern": DATE_PATTERN, "description": "YYYY-MM-DD"})
}

/// An exact decimal as a JSON string (`wabill_rating::Decimal`: up to 20 integer digits and 9
/// of fraction).
fn decimal_in() -> Value {
    json!({"type": "string", "pattern": "^-?[0-9]{1,20}(\\.[0-9]{1,9})?$", "description": "exact decimal"})
}

fn currency() -> Value {
    json!({"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code"})
}

/// A string that is not only whitespace, within a bound of `wabill_formats::limits`.
/// A string holding at least one character that is not whitespace as the service reads it
/// (Unicode's White_Space, what Rust's `trim` removes): the parser refuses a value that is
/// blank once trimmed, so the document says the same, character for character.
const NOT_BLANK: &str =
    r"[^\t\n\x0b\x0c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

fn bounded(limit: wabill_formats::limits::Limit) -> Value {
    json!({"type": "string", "maxLength": limit.max_chars, "pattern": NOT_BLANK})
}

/// The send check's request: the fields of an outbound event line (events.md), read by the
/// same parser (decisions.md D77).
fn send_check_schema() -> Value {
    use wabill_formats::limits;
    let phone = json!({"type": "string", "pattern": "^\\+?[1-9][0-9]{0,14}$",
                       "description": "E.164 digits with the country code, a leading + allowed"});
    let mut instant = instant_schema();
    instant["nullable"] = json!(true);
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["waba", "phone", "user", "type"],
        "properties": {
            "waba": bounded(limits::ACCOUNT_ID),
            "phone": phone.clone(),
            "user": phone,
            "type": {"type": "string", "maxLength": limits::MESSAGE_TYPE.max_chars, "pattern": NOT_BLANK,
                     "description": "template, or a non-template type (text, image, ...)"},
            "category": {"type": "string", "nullable": true,
                         "enum": ["marketing", "utility", "authentication", "service", null],
                         "description": "required for a template (marketing, utility or authentication); service or absent otherwise"},
            "api": {"type": "string", "nullable": true, "enum": ["marketing_messages", null]},
            "now": instant,
            "agent": {"type": "string", "nullable": true, "description": "the tenant's agent who would send: without a WhatsApp licence at that instant the answer is license_required"},
        },
        "anyOf": [
            {"required": ["category"], "properties": {
                "type": {"type": "string", "enum": ["template"]},
                "category": {"type": "string", "enum": ["marketing", "utility", "authentication"]}}},
            {"properties": {
                "type": {"type": "string", "not": {"enum": ["template"]}},
                "category": {"type": "string", "nullable": true, "enum": ["service", null]}}},
        ],
    })
}

/// `wabill invoice --setup`'s document (README, Tenant invoices); its rules between fields
/// (references, dates in order, plans from a month's first day) are the service's
/// (decisions.md D77).
fn tenant_setup_schema() -> Value {
    let text = || json!({"type": "string"});
    let opt_text = || json!({"type": "string", "nullable": true});
    let mut opt_date = date();
    opt_date["nullable"] = json!(true);
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["tenant", "plans"],
        "description": "tenant, teams, agents, licences, plans, fx: the set-up document of \
                        `wabill invoice --setup` (README, Tenant invoices); references between \
                        them, dates in order and plans from a month's first day are checked too",
        "properties": {
            "tenant": {"type": "object", "additionalProperties": false,
                "required": ["id", "timezone", "currency", "wabas"],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "name": opt_text(),
                    "timezone": {"type": "string", "description": "an IANA timezone name"},
                    "currency": currency(),
                    "wabas": {"type": "array", "items": text()},
                }},
            "teams": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                "required": ["id"], "properties": {"id": text(), "name": opt_text()}}},
            "agents": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                "required": ["id"], "properties": {"id": text(), "name": opt_text(),
                    "team": opt_text(), "from": opt_date.clone(), "to": opt_date.clone()}}},
            "licences": {"type": "array", "items": licence_schema()},
            "plans": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                "required": ["effective_from"], "properties": {
                    "effective_from": date(),
                    "licence_price": nullable_decimal_in(),
                    "markup_percent": nullable_decimal_in(),
                    "budget": {"type": "object", "nullable": true, "additionalProperties": false,
                        "required": ["per_agents", "amount", "currency"], "properties": {
                            "per_agents": {"type": "integer", "minimum": 0, "maximum": u32::MAX},
                            "amount": decimal_in(), "currency": currency()}},
                    "active_agent_rule": {"type": "string", "enum": ["licensed", "sent"]},
                }}},
            "fx": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                "required": ["date", "from", "to", "rate"], "properties": {
                    "date": date(), "from": currency(), "to": currency(), "rate": decimal_in()}}},
        },
    })
}

fn nullable_decimal_in() -> Value {
    let mut d = decimal_in();
    d["nullable"] = json!(true);
    d
}

/// A dated licence record.
fn licence_schema() -> Value {
    let mut to = date();
    to["nullable"] = json!(true);
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["id", "target", "from"],
        "description": "{\"id\":\"L4\",\"target\":{\"agent\":\"a1\"},\"from\":\"2026-03-01\",\"to\":null}; to (both included) not before from",
        "properties": {
            "id": {"type": "string"},
            "target": {"oneOf": [
                {"type": "object", "additionalProperties": false, "required": ["agent"], "properties": {"agent": {"type": "string"}}},
                {"type": "object", "additionalProperties": false, "required": ["team"], "properties": {"team": {"type": "string"}}},
                {"type": "string", "enum": ["all_agents"]},
            ]},
            "from": date(),
            "to": to,
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
            "additionalProperties": false,
            "required": ["url", "thresholds"],
            "properties": {
                "url": {"type": "string", "description": "an http:// or https:// URL, without credentials"},
                "secret": {"type": "string", "nullable": true, "description": "HMAC-SHA256 key of X-Wabill-Signature-256; required the first time, kept when omitted"},
                "thresholds": {"type": "array", "items": {
                    "description": "{\"percent\":\"80\"} of the included budget, or {\"spend\":\"500\"} in the tenant's currency; positive",
                    "oneOf": [
                        {"type": "object", "additionalProperties": false, "required": ["percent"], "properties": {"percent": decimal_in()}},
                        {"type": "object", "additionalProperties": false, "required": ["spend"], "properties": {"spend": decimal_in()}},
                    ]}},
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
