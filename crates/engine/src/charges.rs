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

/// The values of a stored call charge, JSON-encoded (`null` where absent), in the order of
/// `wabill_formats::calls::CALL_FIELDS`: the line `wabill rate` writes for the call.
fn call_row_values(r: &wabill_store::CallChargeRow) -> Vec<(&'static str, Option<String>)> {
    use wabill_formats::charges::write_decimal;
    let s = |v: &str| {
        let mut o = Vec::new();
        json_str(&mut o, v);
        String::from_utf8(o).expect("utf-8")
    };
    let d = |v: wabill_rating::Decimal| {
        let mut o = vec![b'"'];
        write_decimal(&mut o, v);
        o.push(b'"');
        String::from_utf8(o).expect("utf-8")
    };
    let mut start = vec![b'"'];
    wabill_formats::time::write_instant(&mut start, r.start_ms);
    start.push(b'"');
    vec![
        ("unit", Some(s("call"))),
        ("id", Some(s(&r.id))),
        ("waba", Some(s(&r.waba))),
        ("phone", Some(s(&r.phone))),
        ("user", r.user.as_deref().map(s)),
        ("user_id", r.user_id.as_deref().map(s)),
        ("country", r.country.as_deref().map(s)),
        ("market", r.market.as_deref().map(s)),
        ("direction", Some(s(&r.direction))),
        ("type", Some(s(&r.call_type))),
        ("billable", Some(r.billable.to_string())),
        ("seconds", Some(r.seconds.to_string())),
        ("pulses", Some(r.pulses.to_string())),
        ("tier_minutes", r.tier_minutes.map(|t| s(&t.to_string()))),
        ("tier", r.tier.as_deref().map(s)),
        ("rate", r.rate.map(d)),
        ("amount", r.amount.map(d)),
        ("currency", Some(s(&r.currency))),
        ("start", Some(String::from_utf8(start).expect("utf-8"))),
        ("recording", Some(d(r.recording))),
        ("transcription", Some(d(r.transcription))),
        ("agent", r.agent.as_deref().map(s)),
    ]
}

/// A stored call charge in exactly the JSON line `wabill rate` writes for the call (`agent`
/// only when named); a call that could not be priced has a null `amount` and its `error`.
pub fn write_call_row_json(out: &mut Vec<u8>, r: &wabill_store::CallChargeRow) {
    out.push(b'{');
    let mut first = true;
    let values = call_row_values(r);
    let error = r.error.as_deref().map(|e| {
        let mut o = Vec::new();
        json_str(&mut o, e);
        String::from_utf8(o).expect("utf-8")
    });
    for (k, v) in values.into_iter().chain(error.map(|e| ("error", Some(e)))) {
        if k == "agent" && v.is_none() {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
        out.extend_from_slice(v.as_deref().unwrap_or("null").as_bytes());
    }
    out.push(b'}');
}

/// A stored call charge as one row of the call table of `wabill rate --format csv` (D128).
pub fn write_call_row_csv(out: &mut Vec<u8>, r: &wabill_store::CallChargeRow) {
    for (i, (_, v)) in call_row_values(r).into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if let Some(v) = v {
            let text = match serde_json::from_str::<serde_json::Value>(&v) {
                Ok(serde_json::Value::String(s)) => s,
                _ => v,
            };
            wabill_formats::charges::csv_cell(out, &text);
        }
    }
    out.push(b'\n');
}
