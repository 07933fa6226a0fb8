//! Writing charges: one JSON object per line, or CSV, with exactly the fields and order of
//! `docs/events.md` ("Output: charges"). Written by hand: this is the hot path of `wabill rate`.

use crate::time::write_instant;
use wabill_rating::{Charge, Decimal, Tariff};

/// Column order of both formats (JSON lines omit `agent` when there is none).
pub const FIELDS: [&str; 17] = [
    "id",
    "waba",
    "phone",
    "user",
    "country",
    "market",
    "pricing_model",
    "category",
    "type",
    "billable",
    "tier",
    "rate",
    "amount",
    "currency",
    "billed_at",
    "conversation_id",
    "agent",
];

/// Appends one charge as a JSON line (with its newline).
pub fn write_json(out: &mut Vec<u8>, c: &Charge<'_>, tariff: &Tariff) {
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(b"{\"id\":");
    json_str(out, c.id);
    out.extend_from_slice(b",\"waba\":");
    json_str(out, c.waba);
    out.extend_from_slice(b",\"phone\":\"");
    out.extend_from_slice(n.format(c.phone.get()).as_bytes());
    out.extend_from_slice(b"\",\"user\":");
    // The phone number when the message named one, else its BSUID (decisions.md D104).
    match (c.user, c.user_id) {
        (Some(u), _) => {
            out.push(b'"');
            out.extend_from_slice(n.format(u.get()).as_bytes());
            out.push(b'"');
        }
        (None, b) => json_str(out, b.unwrap_or("")),
    }
    out.extend_from_slice(b",\"country\":");
    json_str(out, tariff.markets.iso2(c.country));
    out.extend_from_slice(b",\"market\":");
    json_str(out, tariff.markets.market_name(c.market));
    out.extend_from_slice(b",\"pricing_model\":\"");
    out.extend_from_slice(c.pricing_model.as_str().as_bytes());
    out.extend_from_slice(b"\",\"category\":\"");
    out.extend_from_slice(c.category.as_str().as_bytes());
    out.extend_from_slice(b"\",\"type\":\"");
    out.extend_from_slice(c.pricing_type.as_str().as_bytes());
    out.extend_from_slice(if c.billable() {
        b"\",\"billable\":true,\"tier\":"
    } else {
        b"\",\"billable\":false,\"tier\":"
    });
    match c.tier {
        Some(t) => {
            out.push(b'"');
            out.extend_from_slice(t.to_string().as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"rate\":");
    match c.rate {
        Some(r) if c.billable() => {
            out.push(b'"');
            write_decimal(out, r);
            out.push(b'"');
        }
        _ => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"amount\":\"");
    write_decimal(out, c.amount);
    out.extend_from_slice(b"\",\"currency\":\"");
    out.extend_from_slice(c.currency.as_str().as_bytes());
    out.extend_from_slice(b"\",\"billed_at\":");
    match c.billed_at {
        Some(t) => {
            out.push(b'"');
            write_instant(out, t);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"conversation_id\":");
    match c.conversation_id {
        Some(id) => json_str(out, id),
        None => out.extend_from_slice(b"null"),
    }
    // `agent` is an extension for tenant billing (docs/decisions.md D44): written only when the
    // outbound event named one, so lines without it are exactly those of docs/events.md.
    if let Some(a) = c.agent {
        out.extend_from_slice(b",\"agent\":");
        json_str(out, a);
    }
    out.extend_from_slice(b"}\n");
}

/// Appends a decimal in its shortest exact form (as `Decimal`'s `Display`), without the
/// formatting machinery.
pub fn write_decimal(out: &mut Vec<u8>, d: Decimal) {
    let nanos = d.nanos();
    if nanos < 0 {
        out.push(b'-');
    }
    let a = nanos.unsigned_abs();
    let unit = 10u128.pow(wabill_rating::money::SCALE);
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(n.format(a / unit).as_bytes());
    let mut frac = a % unit;
    if frac != 0 {
        let mut digits = wabill_rating::money::SCALE as usize;
        while frac.is_multiple_of(10) {
            frac /= 10;
            digits -= 1;
        }
        out.push(b'.');
        let f = n.format(frac);
        out.extend(std::iter::repeat_n(b'0', digits - f.len()));
        out.extend_from_slice(f.as_bytes());
    }
}

/// The CSV header line (with its newline).
pub fn csv_header() -> String {
    let mut s = FIELDS.join(",");
    s.push('\n');
    s
}

/// Appends one charge as a CSV record (with its newline). Empty cells stand for null.
pub fn write_csv(out: &mut Vec<u8>, c: &Charge<'_>, tariff: &Tariff) {
    let tier = c.tier.map(|t| t.to_string()).unwrap_or_default();
    let rate = c
        .rate
        .filter(|_| c.billable())
        .map(|r| r.to_string())
        .unwrap_or_default();
    let billed_at = c
        .billed_at
        .map(crate::time::format_instant)
        .unwrap_or_default();
    let cells: [&str; 17] = [
        c.id,
        c.waba,
        &c.phone.to_string(),
        &c.user_text(),
        tariff.markets.iso2(c.country),
        tariff.markets.market_name(c.market),
        c.pricing_model.as_str(),
        c.category.as_str(),
        c.pricing_type.as_str(),
        if c.billable() { "true" } else { "false" },
        &tier,
        &rate,
        &c.amount.to_string(),
        c.currency.as_str(),
        &billed_at,
        c.conversation_id.unwrap_or(""),
        c.agent.unwrap_or(""),
    ];
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        csv_cell(out, cell);
    }
    out.push(b'\n');
}

/// One CSV cell, quoted when it holds a comma, a quote or a line break.
pub fn csv_cell(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.push(b'"');
        out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// Appends a JSON string literal.
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.extend_from_slice(s.as_bytes());
    } else {
        for ch in s.chars() {
            match ch {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                c if (c as u32) < 0x20 => {
                    out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
                }
                c => {
                    let mut b = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                }
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_as_display_writes_them() {
        for s in [
            "0",
            "0.0618",
            "-12.5",
            "1000",
            "0.000000001",
            "123456789.000000009",
            "-0.1",
        ] {
            let d: Decimal = s.parse().unwrap();
            let mut v = Vec::new();
            write_decimal(&mut v, d);
            assert_eq!(String::from_utf8(v).unwrap(), d.to_string());
            assert_eq!(d.to_string(), s);
        }
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut v = Vec::new();
        json_str(&mut v, "a\"b\\c\nd\u{1}é");
        let s = String::from_utf8(v).unwrap();
        assert_eq!(
            serde_json::from_str::<String>(&s).unwrap(),
            "a\"b\\c\nd\u{1}é"
        );
    }
}
