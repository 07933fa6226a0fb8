//! A fast path for the common line: one flat JSON object of strings, whole numbers and nulls,
//! with no escapes. Anything else (nesting, escapes, fractions, repeated keys, odd bytes) returns
//! `None` and the line goes through serde_json, which gives the same result or the error
//! message. Only the speed differs: this scanner reads a line in one pass without allocating.

use crate::events::{RawLine, TimeValue};
use std::borrow::Cow;

/// Scans `text` as a flat object into a [`RawLine`], or `None` to let serde_json decide.
pub(crate) fn scan(text: &str) -> Option<RawLine<'_>> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    let mut raw = RawLine::default();
    let mut seen: u32 = 0;
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            let (key, after) = string(text, i)?;
            i = skip_ws(b, after);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(b, i + 1);
            let (value, after) = value(text, i)?;
            i = skip_ws(b, after);
            let bit = assign(&mut raw, key, value)?;
            if seen & bit != 0 {
                return None; // a repeated key: serde_json reports it
            }
            seen |= bit;
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_ws(b, i) == b.len()).then_some(raw)
}

enum Value<'a> {
    Str(&'a str),
    Int(i64),
    Null,
    Other,
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// A string without escapes or control bytes, starting at the quote at `i`.
fn string(text: &str, i: usize) -> Option<(&str, usize)> {
    let b = text.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let len = b[start..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    if b[start + len] != b'"' {
        return None;
    }
    Some((&text[start..start + len], start + len + 1))
}

fn value(text: &str, i: usize) -> Option<(Value<'_>, usize)> {
    let b = text.as_bytes();
    match *b.get(i)? {
        b'"' => string(text, i).map(|(s, end)| (Value::Str(s), end)),
        b'n' if b[i..].starts_with(b"null") => Some((Value::Null, i + 4)),
        b't' if b[i..].starts_with(b"true") => Some((Value::Other, i + 4)),
        b'f' if b[i..].starts_with(b"false") => Some((Value::Other, i + 5)),
        b'-' | b'0'..=b'9' => {
            let neg = b[i] == b'-';
            let start = i + usize::from(neg);
            let len = b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
            let end = start + len;
            // Leading zeros, fractions and exponents: leave to serde_json.
            if len == 0
                || len > 18
                || (len > 1 && b[start] == b'0')
                || matches!(b.get(end), Some(b'.' | b'e' | b'E'))
            {
                return None;
            }
            let v: i64 = text[start..end].parse().ok()?;
            Some((Value::Int(if neg { -v } else { v }), end))
        }
        _ => None,
    }
}

/// Stores a known key's value; unknown keys are ignored, as serde does. Returns the key's bit
/// (for repeat detection), or `None` when the value's type needs serde_json's verdict.
fn assign<'a>(raw: &mut RawLine<'a>, key: &str, v: Value<'a>) -> Option<u32> {
    fn text<'a>(slot: &mut Option<Cow<'a, str>>, v: Value<'a>) -> Option<()> {
        match v {
            Value::Str(s) => *slot = Some(Cow::Borrowed(s)),
            Value::Null => *slot = None,
            _ => return None,
        }
        Some(())
    }
    fn instant<'a>(slot: &mut Option<TimeValue<'a>>, v: Value<'a>) -> Option<()> {
        match v {
            Value::Str(s) => *slot = Some(TimeValue::Text(Cow::Borrowed(s))),
            Value::Int(n) => *slot = Some(TimeValue::Seconds(n)),
            Value::Null => *slot = None,
            Value::Other => return None,
        }
        Some(())
    }
    let (bit, r) = match key {
        "kind" => (1, text(&mut raw.kind, v)),
        "id" => (1 << 1, text(&mut raw.id, v)),
        "waba" => (1 << 2, text(&mut raw.waba, v)),
        "phone" => (1 << 3, text(&mut raw.phone, v)),
        "user" => (1 << 4, text(&mut raw.user, v)),
        "entry_point" => (1 << 5, text(&mut raw.entry_point, v)),
        "type" => (1 << 6, text(&mut raw.message_type, v)),
        "category" => (1 << 7, text(&mut raw.category, v)),
        "api" => (1 << 8, text(&mut raw.api, v)),
        "status" => (1 << 9, text(&mut raw.status, v)),
        "portfolio" => (1 << 10, text(&mut raw.portfolio, v)),
        "timezone" => (1 << 11, text(&mut raw.timezone, v)),
        "currency" => (1 << 12, text(&mut raw.currency, v)),
        "primary_country" => (1 << 13, text(&mut raw.primary_country, v)),
        "agent" => (1 << 15, text(&mut raw.agent, v)),
        "at" => (1 << 14, instant(&mut raw.at, v)),
        "user_id" => (1 << 16, text(&mut raw.user_id, v)),
        "system" => (1 << 17, text(&mut raw.system, v)),
        "new_user" => (1 << 18, text(&mut raw.new_user, v)),
        "new_user_id" => (1 << 19, text(&mut raw.new_user_id, v)),
        "direction" => (1 << 20, text(&mut raw.direction, v)),
        "outcome" => (1 << 21, text(&mut raw.outcome, v)),
        "start" => (1 << 22, instant(&mut raw.start, v)),
        "end" => (1 << 23, instant(&mut raw.end, v)),
        "duration" => (
            1 << 24,
            match v {
                Value::Int(n) => {
                    raw.duration = Some(n);
                    Some(())
                }
                Value::Null => {
                    raw.duration = None;
                    Some(())
                }
                _ => None,
            },
        ),
        "template_id" => (1 << 25, text(&mut raw.template_id, v)),
        "template" => (1 << 26, text(&mut raw.template, v)),
        "language" => (1 << 27, text(&mut raw.language, v)),
        "name" => (1 << 28, text(&mut raw.name, v)),
        "previous_category" => (1 << 29, text(&mut raw.previous_category, v)),
        "source" => (1 << 30, text(&mut raw.source, v)),
        // Webhook envelopes and nested accounts are serde_json's.
        "object" | "entry" | "auth_international" => return None,
        _ => (0, Some(())),
    };
    r.map(|()| bit)
}

#[cfg(test)]
mod tests {
    use crate::events::{parse_line, read_event, Parsed, RawLine};

    /// The fast path and serde_json must agree on every line: same events, same errors.
    #[test]
    fn agrees_with_serde_json() {
        let lines = [
            r#"{"kind":"outbound","id":"wamid.1","at":"2025-07-01T10:05:00Z","waba":"W1","phone":"15550001111","user":"5511988887777","type":"template","category":"utility"}"#,
            r#" { "kind" : "status" , "id":"wamid.1", "at": 1751364302, "status":"read", "extra": true } "#,
            r#"{"kind":"inbound","id":"i","at":"2025-07-01T10:00:00Z","waba":"W1","phone":"1555","user":"5511","entry_point":null}"#,
            r#"{"kind":"inbound","id":"i","id":"j","at":"2025-07-01T10:00:00Z","waba":"W1","phone":"1555","user":"5511"}"#,
            r#"{"kind":"status","id":"x","at":1.5,"status":"read"}"#,
            r#"{"kind":"status","id":"x","at":"1751364302","status":"read"} trailing"#,
            r#"{"kind":"status","id":7,"at":"1751364302","status":"read"}"#,
            r#"{"kind":"status","id":"a\"b","at":"1751364302","status":"read"}"#,
            r#"{"kind":"status","id":"x","at":01751364302,"status":"read"}"#,
            r#"{"kind":"status","id":"x","at":-5,"status":"read"}"#,
            r#"{}"#,
            r#"{"kind":"outbound","id":"o","at":"2025-07-01T10:05:00Z","waba":"W1","phone":"1555","user":"5511","type":"text","agent":"ana"}"#,
            r#"{"kind":"outbound","id":"o","at":"2025-07-01T10:05:00Z","waba":"W1","phone":"1555","user":"5511","type":"text","agent":null}"#,
            r#"{"kind":"outbound","id":"o","at":"2025-07-01T10:05:00Z","waba":"W1","phone":"1555","user":"5511","type":"text","agent":""}"#,
            r#"{"kind":"outbound","id":"o","at":"2025-07-01T10:05:00Z","waba":"W1","phone":"1555","user":"5511","type":"text","agent":7}"#,
            r#"{"kind":"account","waba":"W1","currency":"USD","auth_international":{"start":"2025-01-01T00:00:00Z"}}"#,
        ];
        let mut fast_taken = 0;
        for (n, l) in lines.iter().enumerate() {
            let serde: Result<RawLine, _> = serde_json::from_str(l);
            match super::scan(l) {
                Some(fast) => {
                    fast_taken += 1;
                    let serde = serde
                        .unwrap_or_else(|e| panic!("line {n}: only the fast path accepts it: {e}"));
                    assert_eq!(read_event(fast, 1), read_event(serde, 1), "line {n}");
                }
                None => {
                    // Falls back: parse_line then says what serde_json says.
                    let mut p = Parsed::default();
                    let r = parse_line(l, 1, &mut p);
                    assert_eq!(
                        serde.is_err(),
                        r.as_ref()
                            .is_err_and(|e| e.why.starts_with("not a JSON object")),
                        "line {n}: {r:?}"
                    );
                }
            }
        }
        assert_eq!(fast_taken, 8, "the plain lines take the fast path");
    }

    /// Call lines: the fast path reads every call field as serde_json does (a field it did not
    /// know would be silently dropped).
    #[test]
    fn call_lines_agree_with_serde_json() {
        for l in [
            r#"{"kind":"call","id":"wacid.1","waba":"W1","phone":"1555","user":"5511","user_id":"BR.1","direction":"business_initiated","start":"2026-11-03T10:00:00Z","end":1793700056,"duration":56,"outcome":"completed","agent":"ana"}"#,
            r#"{"kind":"call","id":"wacid.2","waba":"W1","phone":"1555","user":"5511","direction":"user_initiated","start":1793700000,"duration":-1}"#,
            r#"{"kind":"call","id":"wacid.3","waba":"W1","phone":"1555","user_id":"BR.9","direction":"BUSINESS_INITIATED","start":1793700000,"outcome":"COMPLETED"}"#,
        ] {
            let fast = super::scan(l).expect("a flat line");
            let serde: RawLine = serde_json::from_str(l).unwrap();
            let (a, b) = (
                crate::calls::read_call(fast, 1),
                crate::calls::read_call(serde, 1),
            );
            assert_eq!(a, b, "{l}");
        }
        let ok = crate::calls::read_call(super::scan(r#"{"kind":"call","id":"wacid.1","waba":"W1","phone":"1555","user":"5511","direction":"business_initiated","start":"2026-11-03T10:00:00Z","end":1793700056,"duration":56,"outcome":"completed"}"#).unwrap(), 1).unwrap();
        assert_eq!((ok.duration_s, ok.end), (Some(56), Some(1_793_700_056_000)));
        let e = crate::calls::read_call(super::scan(r#"{"kind":"call","id":"wacid.2","waba":"W1","phone":"1555","user":"5511","direction":"user_initiated","start":1793700000,"duration":-1}"#).unwrap(), 4).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (4, "duration"));
        let e = crate::calls::read_call(super::scan(r#"{"kind":"call","id":"wacid.3","waba":"W1","phone":"1555","direction":"business_initiated","start":1793700000,"outcome":"completed"}"#).unwrap(), 4).unwrap_err();
        assert_eq!(e.field, "user");
        let e = crate::calls::read_call(super::scan(r#"{"kind":"call","id":"wacid.3","waba":"W1","phone":"1555","user":"5511","direction":"sideways","start":1793700000}"#).unwrap(), 4).unwrap_err();
        assert_eq!(e.field, "direction");
    }
}
