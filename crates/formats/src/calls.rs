//! Calls in: wabill's `call` event line and the `calls` field of Meta's webhook envelope
//! (`connect` and `terminate`), into the rating core's [`Call`] (docs/events.md). Every
//! problem names its line, field and why; fields Meta documents that rating does not use
//! (`session`, `biz_opaque_callback_data`, `errors`, ...) and unknown fields are accepted.

use crate::events::{err, msisdn, LineError, RawLine, TimeValue};
use crate::limits;
use serde::Deserialize;
use std::borrow::Cow;
use wabill_rating::calls::{Call, CallDirection, CallOutcome};
use wabill_rating::{Msisdn, UnixMs};

fn direction(s: &str, line: u64, field: &str) -> Result<CallDirection, LineError> {
    CallDirection::parse(s).ok_or_else(|| {
        err(
            line,
            field,
            format!("'{s}' is not business_initiated or user_initiated"),
        )
    })
}

fn outcome(s: &str, line: u64, field: &str) -> Result<CallOutcome, LineError> {
    CallOutcome::parse(s).ok_or_else(|| {
        err(
            line,
            field,
            format!("'{s}' is not completed, failed, rejected or unanswered"),
        )
    })
}

fn seconds(v: Option<i64>, line: u64, field: &str) -> Result<Option<u64>, LineError> {
    match v {
        None => Ok(None),
        Some(d) if (0..=limits::CALL_SECONDS_MAX).contains(&d) => Ok(Some(d as u64)),
        Some(d) => Err(err(
            line,
            field,
            format!(
                "{d} is not a whole number of seconds between 0 and {}",
                limits::CALL_SECONDS_MAX
            ),
        )),
    }
}

fn time(v: &Option<TimeValue<'_>>, line: u64, field: &str) -> Result<Option<UnixMs>, LineError> {
    v.as_ref()
        .map(|t| t.instant().map_err(|why| err(line, field, why)))
        .transpose()
}

fn text<'a>(v: &Option<Cow<'a, str>>, line: u64, field: &str) -> Result<Cow<'a, str>, LineError> {
    match v {
        None => Err(err(line, field, "is required for a call event")),
        Some(s) if s.trim().is_empty() => Err(err(line, field, "is empty")),
        Some(s) => Ok(s.clone()),
    }
}

/// Checks what every call must hold, whatever its source.
fn checked<'a>(c: Call<'a>, line: u64, at: &dyn Fn(&str) -> String) -> Result<Call<'a>, LineError> {
    if c.user.is_none() && c.user_id.is_none() {
        return Err(err(
            line,
            &at("user"),
            "is required (the user's number, or user_id, the BSUID)",
        ));
    }
    if let Some(end) = c.end {
        if end < c.start {
            return Err(err(line, &at("end"), "is before the call's start"));
        }
    }
    if c.outcome == Some(CallOutcome::Completed) && c.end.is_none() && c.duration_s.is_none() {
        return Err(err(
            line,
            &at("duration"),
            "is required for a completed call (or its end)",
        ));
    }
    Ok(c)
}

/// A wabill `call` line.
pub(crate) fn read_call<'a>(raw: RawLine<'a>, line: u64) -> Result<Call<'a>, LineError> {
    let user = raw
        .user
        .as_deref()
        .map(|u| msisdn(u, line, "user"))
        .transpose()?;
    let user_id = match raw.user_id.clone() {
        Some(u) if u.trim().is_empty() => return Err(err(line, "user_id", "is empty")),
        u => u,
    };
    let start = time(&raw.start, line, "start")?
        .ok_or_else(|| err(line, "start", "is required for a call event"))?;
    let call = Call {
        id: text(&raw.id, line, "id")?,
        waba: text(&raw.waba, line, "waba")?,
        phone: msisdn(&text(&raw.phone, line, "phone")?, line, "phone")?,
        user,
        user_id,
        direction: direction(&text(&raw.direction, line, "direction")?, line, "direction")?,
        start,
        end: time(&raw.end, line, "end")?,
        duration_s: seconds(raw.duration, line, "duration")?,
        outcome: raw
            .outcome
            .as_deref()
            .map(|o| outcome(o, line, "outcome"))
            .transpose()?,
        agent: match raw.agent {
            Some(a) if a.trim().is_empty() => return Err(err(line, "agent", "is empty")),
            a => a,
        },
    };
    checked(call, line, &|f| f.to_string())
}

/// One item of `value.calls[]` of a `calls` change, as Meta's calling webhook reference
/// documents it.
#[derive(Deserialize)]
pub(crate) struct WebhookCall<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    from: Option<Cow<'a, str>>,
    #[serde(borrow)]
    to: Option<Cow<'a, str>>,
    #[serde(borrow)]
    from_user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    to_user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow)]
    timestamp: Option<TimeValue<'a>>,
    #[serde(borrow)]
    direction: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    start_time: Option<TimeValue<'a>>,
    #[serde(borrow)]
    end_time: Option<TimeValue<'a>>,
    duration: Option<i64>,
}

/// Reads the calls of one `calls` change. `phone` is the change's business number, `at` names
/// a field of the change. Events other than `connect` and `terminate` carry nothing to rate and
/// are counted in `ignored`.
pub(crate) fn read_webhook_calls<'a>(
    items: Vec<WebhookCall<'a>>,
    waba: Cow<'a, str>,
    phone: Option<Msisdn>,
    line: u64,
    at: &dyn Fn(&str) -> String,
    out: &mut Vec<Call<'a>>,
    ignored: &mut u64,
) -> Result<(), LineError> {
    for (i, c) in items.into_iter().enumerate() {
        let f = |x: &str| at(&format!("value.calls[{i}].{x}"));
        for (name, v, limit) in [
            ("id", &c.id, limits::MESSAGE_ID),
            ("from", &c.from, limits::PHONE),
            ("to", &c.to, limits::PHONE),
            ("from_user_id", &c.from_user_id, limits::MESSAGE_ID),
            ("to_user_id", &c.to_user_id, limits::MESSAGE_ID),
            ("event", &c.event, limits::WORD),
            ("direction", &c.direction, limits::WORD),
            ("status", &c.status, limits::WORD),
        ] {
            if let Some(v) = v {
                limits::check(v, limit).map_err(|why| err(line, &f(name), why))?;
            }
        }
        let event = c
            .event
            .as_deref()
            .ok_or_else(|| err(line, &f("event"), "is missing"))?;
        if event != "connect" && event != "terminate" {
            *ignored += 1;
            continue;
        }
        let phone = phone.ok_or_else(|| {
            err(
                line,
                &at("value.metadata.display_phone_number"),
                "is missing",
            )
        })?;
        let dir = direction(
            c.direction
                .as_deref()
                .ok_or_else(|| err(line, &f("direction"), "is missing"))?,
            line,
            &f("direction"),
        )?;
        // The user is the callee of a business-initiated call, the caller of a user-initiated one.
        let (number, number_field, bsuid) = match dir {
            CallDirection::BusinessInitiated => (&c.to, "to", &c.to_user_id),
            CallDirection::UserInitiated => (&c.from, "from", &c.from_user_id),
        };
        let user = number
            .as_deref()
            .map(|u| msisdn(u, line, &f(number_field)))
            .transpose()?;
        let timestamp = time(&c.timestamp, line, &f("timestamp"))?;
        let start = match time(&c.start_time, line, &f("start_time"))? {
            Some(s) => s,
            None => timestamp.ok_or_else(|| err(line, &f("timestamp"), "is missing"))?,
        };
        let outcome = match (event, c.status.as_deref()) {
            ("connect", _) => None,
            (_, Some(s)) => Some(outcome(s, line, &f("status"))?),
            (_, None) => return Err(err(line, &f("status"), "is missing from a terminate")),
        };
        let call = Call {
            id: c
                .id
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| err(line, &f("id"), "is missing"))?,
            waba: waba.clone(),
            phone,
            user,
            user_id: bsuid.clone().filter(|s| !s.trim().is_empty()),
            direction: dir,
            start,
            end: time(&c.end_time, line, &f("end_time"))?,
            duration_s: seconds(c.duration, line, &f("duration"))?,
            outcome,
            agent: None,
        };
        out.push(checked(call, line, &|x: &str| {
            f(match x {
                "user" => number_field,
                "end" => "end_time",
                other => other,
            })
        })?);
    }
    Ok(())
}

/// Writes a call event as a wabill `call` line (with its newline-free JSON object): the
/// canonical form the service stores, whatever the source (a `call` line or one of Meta's
/// webhooks), read back by [`crate::parse_line`] into the same [`Call`].
pub fn write_call_event(out: &mut Vec<u8>, c: &Call<'_>) {
    use crate::charges::json_str;
    use crate::time::write_instant;
    let field = |out: &mut Vec<u8>, name: &str, v: &str| {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        json_str(out, v);
    };
    let instant = |out: &mut Vec<u8>, name: &str, ms: UnixMs| {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":\"");
        write_instant(out, ms);
        out.push(b'"');
    };
    out.extend_from_slice(b"{\"kind\":\"call\"");
    field(out, "id", &c.id);
    field(out, "waba", &c.waba);
    field(out, "phone", &c.phone.to_string());
    if let Some(u) = c.user {
        field(out, "user", &u.to_string());
    }
    if let Some(u) = &c.user_id {
        field(out, "user_id", u);
    }
    field(out, "direction", c.direction.as_str());
    instant(out, "start", c.start);
    if let Some(end) = c.end {
        instant(out, "end", end);
    }
    if let Some(d) = c.duration_s {
        out.extend_from_slice(b",\"duration\":");
        out.extend_from_slice(itoa::Buffer::new().format(d).as_bytes());
    }
    if let Some(o) = c.outcome {
        field(out, "outcome", o.as_str());
    }
    if let Some(a) = &c.agent {
        field(out, "agent", a);
    }
    out.push(b'}');
}

/// Column order of a call charge line, in both formats (JSON lines omit `agent` when there is
/// none); docs/events.md "Call charges".
pub const CALL_FIELDS: [&str; 22] = [
    "unit",
    "id",
    "waba",
    "phone",
    "user",
    "user_id",
    "country",
    "market",
    "direction",
    "type",
    "billable",
    "seconds",
    "pulses",
    "tier_minutes",
    "tier",
    "rate",
    "amount",
    "currency",
    "start",
    "recording",
    "transcription",
    "agent",
];

/// The values of one call line, JSON-encoded (`null` where absent), in [`CALL_FIELDS`] order.
fn call_values(
    c: &wabill_rating::calls::CallCharge<'_>,
    tariff: &wabill_rating::Tariff,
) -> Vec<(&'static str, Option<String>)> {
    use crate::charges::{json_str, write_decimal};
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
    crate::time::write_instant(&mut start, c.start);
    start.push(b'"');
    vec![
        ("unit", Some(s("call"))),
        ("id", Some(s(&c.id))),
        ("waba", Some(s(&c.waba))),
        ("phone", Some(s(&c.phone.to_string()))),
        ("user", c.user.map(|u| s(&u.to_string()))),
        ("user_id", c.user_id.as_deref().map(s)),
        ("country", c.country.map(|k| s(tariff.markets.iso2(k)))),
        ("market", c.market.map(|m| s(tariff.markets.market_name(m)))),
        ("direction", Some(s(c.direction.as_str()))),
        ("type", Some(s(c.call_type.as_str()))),
        ("billable", Some(c.billable().to_string())),
        ("seconds", Some(c.seconds.to_string())),
        ("pulses", Some(c.pulses.to_string())),
        (
            "tier_minutes",
            c.tier_tenths
                .map(|t| s(&wabill_rating::calls::tenths_as_minutes(t).to_string())),
        ),
        ("tier", c.tier.map(|t| s(&t.to_string()))),
        ("rate", c.rate.map(d)),
        ("amount", Some(d(c.amount))),
        ("currency", Some(s(c.currency.as_str()))),
        ("start", Some(String::from_utf8(start).expect("utf-8"))),
        ("recording", Some(d(c.recording))),
        ("transcription", Some(d(c.transcription))),
        ("agent", c.agent.as_deref().map(s)),
    ]
}

/// Appends one call charge as a JSON line (with its newline).
pub fn write_call_json(
    out: &mut Vec<u8>,
    c: &wabill_rating::calls::CallCharge<'_>,
    tariff: &wabill_rating::Tariff,
) {
    out.push(b'{');
    let mut first = true;
    for (k, v) in call_values(c, tariff) {
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
    out.extend_from_slice(b"}\n");
}

/// The CSV header of the call table (D128).
pub fn call_csv_header() -> String {
    let mut h = CALL_FIELDS.join(",");
    h.push('\n');
    h
}

/// Appends one call charge as a CSV row: strings unquoted from their JSON form, empty where
/// absent.
pub fn write_call_csv(
    out: &mut Vec<u8>,
    c: &wabill_rating::calls::CallCharge<'_>,
    tariff: &wabill_rating::Tariff,
) {
    for (i, (_, v)) in call_values(c, tariff).into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if let Some(v) = v {
            let text = match serde_json::from_str::<serde_json::Value>(&v) {
                Ok(serde_json::Value::String(s)) => s,
                _ => v,
            };
            crate::charges::csv_cell(out, &text);
        }
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use crate::events::{parse_line, Parsed};
    use wabill_rating::calls::{rate_calls, CallRates, CALL_RATES_HEADER};
    use wabill_rating::{Event, Tariff};

    fn rate(lines: &[&str]) -> Vec<wabill_rating::calls::CallCharge<'static>> {
        let tariff = Tariff::bundled();
        let mut r = CallRates::default();
        r.add_csv(
            &tariff.markets,
            "t",
            &format!("{CALL_RATES_HEADER}\n2026-04-01,USD,Brazil,,,0.0100,scenario-only\n"),
        )
        .unwrap();
        let text: &'static str = Box::leak(lines.join("\n").into_boxed_str());
        let mut p = Parsed::default();
        for (i, l) in text.lines().enumerate() {
            parse_line(l, i as u64 + 1, &mut p).unwrap();
        }
        let accounts: Vec<&wabill_rating::Account<'_>> = p
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Account(a) => Some(&**a),
                _ => None,
            })
            .collect();
        let out = rate_calls(&tariff.markets, &r, &accounts, &p.calls);
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        out.charges
    }

    /// Meta's documented terminate and connect payloads and the same call as a wabill event
    /// give the same charge (issue 15 point 7).
    #[test]
    fn a_call_as_meta_webhooks_and_as_a_wabill_event_gives_the_same_charge() {
        let account =
            r#"{"kind":"account","waba":"102290129340398","timezone":"UTC","currency":"USD"}"#;
        let connect = r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"calls","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001111","phone_number_id":"106540352242922"},"calls":[{"id":"wacid.ABGGFjFVU2AfAgo6V","to":"5511988887777","from":"15550001111","event":"connect","timestamp":"1793700000","direction":"BUSINESS_INITIATED","session":{"sdp_type":"answer","sdp":"v=0"}}]}}]}]}"#;
        let terminate = r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"calls","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001111","phone_number_id":"106540352242922"},"calls":[{"id":"wacid.ABGGFjFVU2AfAgo6V","to":"5511988887777","from":"15550001111","event":"terminate","direction":"BUSINESS_INITIATED","biz_opaque_callback_data":"TRx","timestamp":"1793700060","status":"COMPLETED","start_time":"1793700002","end_time":"1793700058","duration":56}],"errors":[]}}]}]}"#;
        let event = r#"{"kind":"call","id":"wacid.ABGGFjFVU2AfAgo6V","waba":"102290129340398","phone":"15550001111","user":"5511988887777","direction":"business_initiated","start":1793700002,"end":1793700058,"duration":56,"outcome":"completed"}"#;
        let from_meta = rate(&[account, terminate, connect, terminate]);
        let from_event = rate(&[account, event]);
        assert_eq!(from_meta, from_event);
        assert_eq!(from_event[0].amount.to_string(), "0.01");
        assert_eq!(from_event[0].pulses, 10);
    }

    #[test]
    fn webhook_call_errors_name_the_field() {
        let bad = r#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"calls","value":{"metadata":{"display_phone_number":"15550001111"},"calls":[{"id":"wacid.1","to":"5511988887777","event":"terminate","direction":"BUSINESS_INITIATED","timestamp":"1793700060"}]}}]}]}"#;
        let e = parse_line(bad, 2, &mut Parsed::default()).unwrap_err();
        assert_eq!(e.field, "entry[0].changes[0].value.calls[0].status");
        let other = r#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"calls","value":{"metadata":{"display_phone_number":"15550001111"},"calls":[{"id":"wacid.1","event":"media_update","timestamp":"1793700060"}]}}]}]}"#;
        let mut p = Parsed::default();
        parse_line(other, 2, &mut p).unwrap();
        assert_eq!((p.calls.len(), p.ignored_webhook_items), (0, 1));
    }

    /// The canonical line of a call reads back into the same call, from a `call` line (with
    /// milliseconds, a BSUID and an agent) and from Meta's connect webhook.
    #[test]
    fn a_written_call_event_reads_back_the_same() {
        let sources = [
            r#"{"kind":"call","id":"wacid.1","waba":"W1","phone":"15550001111","user":"5511988887777","user_id":"BR.1a","direction":"business_initiated","start":"2026-11-03T10:00:00.250Z","end":1793700056,"duration":55,"outcome":"completed","agent":"ana \"b\""}"#,
            r#"{"object":"whatsapp_business_account","entry":[{"id":"W1","changes":[{"field":"calls","value":{"metadata":{"display_phone_number":"15550001111"},"calls":[{"id":"wacid.2","to":"5511988887777","from":"15550001111","event":"connect","timestamp":"1793700000","direction":"BUSINESS_INITIATED"}]}}]}]}"#,
        ];
        for src in sources {
            let mut p = Parsed::default();
            parse_line(src, 1, &mut p).unwrap();
            let call = p.calls.pop().unwrap();
            let mut line = Vec::new();
            super::write_call_event(&mut line, &call);
            let line = String::from_utf8(line).unwrap();
            let mut again = Parsed::default();
            parse_line(&line, 1, &mut again).unwrap();
            assert_eq!(again.calls, vec![call], "{line}");
        }
    }
}
