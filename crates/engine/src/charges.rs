//! Stored charges written out exactly as `wabill rate` writes its charges (docs/events.md), in
//! JSON and CSV, so that the service's answers and the command line's files are the same bytes.

use wabill_formats::charges::json_str;
use wabill_store::ChargeRow;

/// A stored charge in exactly the JSON of `wabill rate` (docs/events.md field order).
pub fn write_row_json(out: &mut Vec<u8>, r: &ChargeRow) {
    let s = |out: &mut Vec<u8>, k: &str, v: &str| {
        out.extend_from_slice(b"\"");
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
        json_str(out, v);
        out.push(b',');
    };
    let opt = |out: &mut Vec<u8>, k: &str, v: Option<&str>| {
        out.extend_from_slice(b"\"");
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
        match v {
            Some(v) => json_str(out, v),
            None => out.extend_from_slice(b"null"),
        }
    };
    out.push(b'{');
    s(out, "id", &r.id);
    s(out, "waba", &r.waba);
    s(out, "phone", &r.phone);
    s(out, "user", &r.user);
    s(out, "country", &r.country);
    s(out, "market", &r.market);
    s(out, "pricing_model", &r.pricing_model);
    s(out, "category", &r.category);
    s(out, "type", &r.pricing_type);
    out.extend_from_slice(if r.billable {
        b"\"billable\":true,"
    } else {
        b"\"billable\":false,"
    });
    opt(out, "tier", r.tier.as_deref());
    out.push(b',');
    opt(out, "rate", r.rate.map(|d| d.to_string()).as_deref());
    out.push(b',');
    s(out, "amount", &r.amount.to_string());
    s(out, "currency", &r.currency);
    opt(
        out,
        "billed_at",
        r.billed_at_ms
            .map(wabill_formats::time::format_instant)
            .as_deref(),
    );
    out.push(b',');
    opt(out, "conversation_id", r.conversation_id.as_deref());
    // As `wabill rate` writes it: `agent` only when the message named one (D44).
    if let Some(a) = r.agent.as_deref() {
        out.push(b',');
        opt(out, "agent", Some(a));
    }
    out.push(b'}');
}

/// A stored charge as one row of `wabill rate --format csv`.
pub fn write_row_csv(out: &mut Vec<u8>, r: &ChargeRow) {
    let cells = [
        r.id.clone(),
        r.waba.clone(),
        r.phone.clone(),
        r.user.clone(),
        r.country.clone(),
        r.market.clone(),
        r.pricing_model.clone(),
        r.category.clone(),
        r.pricing_type.clone(),
        r.billable.to_string(),
        r.tier.clone().unwrap_or_default(),
        r.rate.map(|d| d.to_string()).unwrap_or_default(),
        r.amount.to_string(),
        r.currency.clone(),
        r.billed_at_ms
            .map(wabill_formats::time::format_instant)
            .unwrap_or_default(),
        r.conversation_id.clone().unwrap_or_default(),
        r.agent.clone().unwrap_or_default(),
    ];
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if c.contains([',', '"', '\n', '\r']) {
            out.push(b'"');
            out.extend_from_slice(c.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        } else {
            out.extend_from_slice(c.as_bytes());
        }
    }
    out.push(b'\n');
}
