//! Meta's WhatsApp webhook envelopes (`{"object":"whatsapp_business_account","entry":[...]}`):
//! `messages[]` become inbound events (a `referral` from an ad or a post marks a free entry
//! point), `statuses[]` become status events, and the `pricing`/`conversation` objects Meta
//! attached are kept for reconciliation. Webhooks carry no template category, so outbound
//! messages come from wabill's own `outbound` events.

use crate::events::{err, msisdn, LineError, MetaPricing, Parsed, RawLine, TimeValue};
use crate::limits::{self, Limit};
use serde::Deserialize;
use std::borrow::Cow;
use wabill_rating::{DeliveryStatus, EntryPoint, Event, Inbound, Msisdn, Status};

#[derive(Deserialize)]
pub(crate) struct Entry<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    changes: Vec<Change<'a>>,
}

#[derive(Deserialize)]
struct Change<'a> {
    #[serde(borrow)]
    field: Option<Cow<'a, str>>,
    #[serde(borrow)]
    value: Option<Value<'a>>,
}

#[derive(Deserialize)]
struct Value<'a> {
    #[serde(borrow)]
    metadata: Option<Metadata<'a>>,
    #[serde(borrow, default)]
    messages: Vec<Message<'a>>,
    #[serde(borrow, default)]
    statuses: Vec<WebhookStatus<'a>>,
    #[serde(borrow, default)]
    calls: Vec<crate::calls::WebhookCall<'a>>,
}

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(borrow)]
    display_phone_number: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    from: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    timestamp: Option<TimeValue<'a>>,
    #[serde(borrow)]
    referral: Option<Referral<'a>>,
}

#[derive(Deserialize)]
struct Referral<'a> {
    #[serde(borrow)]
    source_type: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct WebhookStatus<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    timestamp: Option<TimeValue<'a>>,
    #[serde(borrow)]
    conversation: Option<Conversation<'a>>,
    #[serde(borrow)]
    pricing: Option<Pricing<'a>>,
}

#[derive(Deserialize)]
struct Conversation<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Pricing<'a> {
    billable: Option<bool>,
    #[serde(borrow)]
    pricing_model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    category: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    pricing_type: Option<Cow<'a, str>>,
}

pub(crate) fn read_envelope<'a>(
    raw: RawLine<'a>,
    line: u64,
    sink: &mut Parsed<'a>,
) -> Result<(), LineError> {
    match raw.object.as_deref() {
        Some("whatsapp_business_account") => {}
        Some(o) => {
            return Err(err(
                line,
                "object",
                format!("'{o}' is not whatsapp_business_account"),
            ))
        }
        None => return Err(err(line, "object", "is missing from the webhook envelope")),
    }
    // Within its bound (`limits`), or the envelope is refused naming the field.
    let bound = |v: Option<&str>, limit: Limit, field: &dyn Fn() -> String| match v {
        Some(v) => limits::check(v, limit).map_err(|why| err(line, &field(), why)),
        None => Ok(()),
    };
    let entries = raw.entry.unwrap_or_default();
    for (ei, entry) in entries.into_iter().enumerate() {
        bound(entry.id.as_deref(), limits::ACCOUNT_ID, &|| {
            format!("entry[{ei}].id")
        })?;
        let waba = entry
            .id
            .filter(|w| !w.trim().is_empty())
            .ok_or_else(|| err(line, &format!("entry[{ei}].id"), "is missing (the WABA id)"))?;
        for (ci, change) in entry.changes.into_iter().enumerate() {
            let at = |f: &str| format!("entry[{ei}].changes[{ci}].{f}");
            bound(change.field.as_deref(), limits::WORD, &|| at("field"))?;
            let field = change.field.as_deref();
            if field != Some("messages") && field != Some("calls") {
                sink.ignored_webhook_items += 1;
                continue;
            }
            let Some(value) = change.value else {
                return Err(err(line, &at("value"), "is missing"));
            };
            let phone: Option<Msisdn> = match value.metadata.and_then(|m| m.display_phone_number) {
                Some(p) => {
                    bound(Some(&p), limits::PHONE, &|| {
                        at("value.metadata.display_phone_number")
                    })?;
                    let digits: String = p.chars().filter(char::is_ascii_digit).collect();
                    Some(msisdn(
                        &digits,
                        line,
                        &at("value.metadata.display_phone_number"),
                    )?)
                }
                None => None,
            };
            if field == Some("calls") {
                let before = sink.calls.len();
                crate::calls::read_webhook_calls(
                    value.calls,
                    waba.clone(),
                    phone,
                    line,
                    &at,
                    &mut sink.calls,
                    &mut sink.ignored_webhook_items,
                )?;
                for _ in before..sink.calls.len() {
                    sink.call_lines.push(line);
                }
                continue;
            }
            for (mi, m) in value.messages.into_iter().enumerate() {
                let f = |x: &str| at(&format!("value.messages[{mi}].{x}"));
                let phone = phone.ok_or_else(|| {
                    err(
                        line,
                        &at("value.metadata.display_phone_number"),
                        "is missing",
                    )
                })?;
                bound(m.id.as_deref(), limits::MESSAGE_ID, &|| f("id"))?;
                let entry_point = match m.referral.as_ref().and_then(|r| r.source_type.as_deref()) {
                    Some("ad") => Some(EntryPoint::Ctwa),
                    Some("post") => Some(EntryPoint::PageCta),
                    _ => None,
                };
                let inbound = Inbound {
                    id: m
                        .id
                        .filter(|i| !i.is_empty())
                        .ok_or_else(|| err(line, &f("id"), "is missing"))?,
                    at: m
                        .timestamp
                        .as_ref()
                        .ok_or_else(|| err(line, &f("timestamp"), "is missing"))?
                        .instant()
                        .map_err(|why| err(line, &f("timestamp"), why))?,
                    waba: waba.clone(),
                    phone,
                    user: msisdn(
                        m.from
                            .as_deref()
                            .ok_or_else(|| err(line, &f("from"), "is missing"))?,
                        line,
                        &f("from"),
                    )?,
                    entry_point,
                };
                sink.events.push(Event::Inbound(inbound));
                sink.lines.push(line);
            }
            for (si, s) in value.statuses.into_iter().enumerate() {
                let f = |x: &str| at(&format!("value.statuses[{si}].{x}"));
                bound(s.status.as_deref(), limits::WORD, &|| f("status"))?;
                bound(s.id.as_deref(), limits::MESSAGE_ID, &|| f("id"))?;
                let conversation = s.conversation.and_then(|c| c.id);
                bound(conversation.as_deref(), limits::CONVERSATION_ID, &|| {
                    f("conversation.id")
                })?;
                if let Some(p) = &s.pricing {
                    bound(p.pricing_model.as_deref(), limits::WORD, &|| {
                        f("pricing.pricing_model")
                    })?;
                    bound(p.category.as_deref(), limits::WORD, &|| {
                        f("pricing.category")
                    })?;
                    bound(p.pricing_type.as_deref(), limits::WORD, &|| {
                        f("pricing.type")
                    })?;
                }
                let name = s
                    .status
                    .as_deref()
                    .ok_or_else(|| err(line, &f("status"), "is missing"))?;
                let Some(status) = DeliveryStatus::parse(name) else {
                    // `deleted`, `warning`: nothing to rate.
                    sink.ignored_webhook_items += 1;
                    continue;
                };
                let id =
                    s.id.filter(|i| !i.is_empty())
                        .ok_or_else(|| err(line, &f("id"), "is missing"))?;
                let at_ms = s
                    .timestamp
                    .as_ref()
                    .ok_or_else(|| err(line, &f("timestamp"), "is missing"))?
                    .instant()
                    .map_err(|why| err(line, &f("timestamp"), why))?;
                if let Some(p) = s.pricing {
                    sink.meta_pricing.push(MetaPricing {
                        id: id.clone(),
                        status,
                        at: at_ms,
                        billable: p.billable,
                        pricing_model: p.pricing_model,
                        category: p.category,
                        pricing_type: p.pricing_type,
                        conversation_id: conversation,
                    });
                }
                sink.events.push(Event::Status(Status {
                    id,
                    at: at_ms,
                    status,
                }));
                sink.lines.push(line);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::events::{parse_line, Parsed};
    use wabill_rating::{DeliveryStatus, EntryPoint, Event};

    #[test]
    fn reads_messages_and_statuses_of_a_cbp_envelope() {
        let line = r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001111","phone_number_id":"100000000000001"},"contacts":[{"profile":{"name":"A"},"wa_id":"5511988887777"}],"messages":[{"from":"5511988887777","id":"wamid.IN","timestamp":"1717236000","type":"text","text":{"body":"hi"},"referral":{"source_url":"https://fb.me/x","source_id":"1","source_type":"ad","headline":"h","ctwa_clid":"c"}}],"statuses":[{"id":"wamid.AAA","status":"sent","timestamp":"1717236000","recipient_id":"5511988887777","conversation":{"id":"c0nv0001","expiration_timestamp":"1717322400","origin":{"type":"utility"}},"pricing":{"billable":true,"pricing_model":"CBP","category":"utility"}},{"id":"wamid.AAA","status":"warning","timestamp":"1717236001"}]}}]}]}"#;
        let mut p = Parsed::default();
        parse_line(line, 1, &mut p).unwrap();
        assert_eq!(p.events.len(), 2);
        let Event::Inbound(i) = &p.events[0] else {
            panic!()
        };
        assert_eq!(i.entry_point, Some(EntryPoint::Ctwa));
        assert_eq!(i.waba, "102290129340398");
        assert_eq!(i.phone.get(), 15_550_001_111);
        let Event::Status(s) = &p.events[1] else {
            panic!()
        };
        assert_eq!(s.status, DeliveryStatus::Sent);
        assert_eq!(
            p.meta_pricing[0].conversation_id.as_deref(),
            Some("c0nv0001")
        );
        assert_eq!(p.meta_pricing[0].pricing_model.as_deref(), Some("CBP"));
        assert_eq!(p.ignored_webhook_items, 1);
    }

    #[test]
    fn a_bad_item_rejects_the_whole_envelope_and_says_where() {
        let line = r#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"metadata":{"display_phone_number":"15550001111"},"statuses":[{"id":"wamid.A","status":"delivered","timestamp":"1752400100","pricing":{"billable":true,"pricing_model":"PMP","type":"regular","category":"marketing"}},{"id":"wamid.B","status":"read"}]}}]}]}"#;
        let mut p = Parsed::default();
        let e = parse_line(line, 3, &mut p).unwrap_err();
        assert_eq!(e.field, "entry[0].changes[0].value.statuses[1].timestamp");
        assert!(p.events.is_empty() && p.meta_pricing.is_empty());
    }
}

#[cfg(test)]
mod bounds {
    use crate::events::{parse_line, Parsed};

    fn envelope(status: &str) -> String {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{"metadata":{{"display_phone_number":"15550001111"}},"statuses":[{status}]}}}}]}}]}}"#
        )
    }

    #[test]
    fn a_long_id_or_pricing_word_is_refused_naming_the_field_and_the_limit() {
        let long = "A".repeat(300_000);
        for (status, field, max) in [
            (
                format!(r#"{{"id":"wamid.{long}","status":"read","timestamp":"1752400000"}}"#),
                "entry[0].changes[0].value.statuses[0].id",
                256,
            ),
            (
                format!(
                    r#"{{"id":"wamid.A","status":"read","timestamp":"1752400000","conversation":{{"id":"{long}"}},"pricing":{{"billable":true}}}}"#
                ),
                "entry[0].changes[0].value.statuses[0].conversation.id",
                256,
            ),
            (
                format!(
                    r#"{{"id":"wamid.A","status":"read","timestamp":"1752400000","pricing":{{"billable":true,"category":"{long}"}}}}"#
                ),
                "entry[0].changes[0].value.statuses[0].pricing.category",
                64,
            ),
            (
                format!(r#"{{"id":"wamid.A","status":"read","timestamp":"{long}"}}"#),
                "entry[0].changes[0].value.statuses[0].timestamp",
                40,
            ),
        ] {
            let text = envelope(&status);
            let mut p = Parsed::default();
            let e = parse_line(&text, 1, &mut p).unwrap_err();
            assert_eq!(e.field, field);
            assert!(
                e.why
                    .contains(&format!("more than the limit of {max} bytes")),
                "{e}"
            );
            assert!(e.to_string().len() < 300, "the value is not echoed");
            assert!(p.events.is_empty() && p.meta_pricing.is_empty());
        }
        let line = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{long}","changes":[]}}]}}"#
        );
        let e = parse_line(&line, 1, &mut Parsed::default()).unwrap_err();
        assert_eq!(e.field, "entry[0].id");
        let line = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"metadata":{{"display_phone_number":"1555"}},"messages":[{{"from":"{long}","id":"i","timestamp":"1752400000"}}]}}}}]}}]}}"#
        );
        let e = parse_line(&line, 1, &mut Parsed::default()).unwrap_err();
        assert_eq!(e.field, "entry[0].changes[0].value.messages[0].from");
        assert!(e.to_string().len() < 300, "{e}");
    }
}

#[cfg(test)]
mod era_shapes {
    //! Status payload shapes of each era, as Meta's documentation shows them
    //! (docs/pricing-rules.md §7): what is kept for reconciliation, and that none is lost.
    use crate::events::{parse_line, Parsed};
    use wabill_rating::{DeliveryStatus, Event};

    fn envelope(statuses: &[&str]) -> String {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W1","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550001111","phone_number_id":"1"}},"statuses":[{}]}}}}]}}]}}"#,
            statuses.join(",")
        )
    }

    #[test]
    fn every_era_reads_and_keeps_what_meta_said() {
        let cbp_sent = r#"{"id":"wamid.AAA","status":"sent","timestamp":"1717236000","recipient_id":"5511988887777","conversation":{"id":"c0nv0001","expiration_timestamp":"1717322400","origin":{"type":"utility"}},"pricing":{"billable":true,"pricing_model":"CBP","category":"utility"}}"#;
        let pmp_v23 = r#"{"id":"wamid.BBB","status":"delivered","timestamp":"1752400000","recipient_id":"919800000001","conversation":{"id":"m5g0001","origin":{"type":"utility"}},"pricing":{"billable":false,"pricing_model":"PMP","type":"free_customer_service","category":"utility"}}"#;
        let pmp_v24 = r#"{"id":"wamid.CCC","status":"delivered","timestamp":"1752400100","recipient_id":"5215500000002","pricing":{"billable":true,"pricing_model":"PMP","type":"regular","category":"marketing"}}"#;
        let fep = r#"{"id":"wamid.DDD","status":"sent","timestamp":"1752400200","recipient_id":"6281200000003","conversation":{"id":"fep-win-77","expiration_timestamp":"1752659400","origin":{"type":"referral_conversion"}},"pricing":{"billable":false,"pricing_model":"PMP","type":"free_entry_point","category":"referral_conversion"}}"#;
        let no_pricing = r#"{"id":"wamid.EEE","status":"read","timestamp":"1791000000","recipient_id":"5511977776666"}"#;
        let failed = r#"{"id":"wamid.FFF","status":"failed","timestamp":"1791000001","recipient_id":"5511977776666","errors":[{"code":131049,"title":"This message was not delivered to maintain healthy ecosystem engagement."}]}"#;
        let line = envelope(&[cbp_sent, pmp_v23, pmp_v24, fep, no_pricing, failed]);
        let mut p = Parsed::default();
        parse_line(&line, 1, &mut p).unwrap();
        let statuses: Vec<(String, DeliveryStatus)> = p
            .events
            .iter()
            .map(|e| match e {
                Event::Status(s) => (s.id.to_string(), s.status),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            statuses.len(),
            6,
            "every status is an event, with or without pricing"
        );
        assert_eq!(statuses[5], ("wamid.FFF".into(), DeliveryStatus::Failed));
        // (id, pricing_model, type, conversation id)
        type Kept<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);
        let kept: Vec<Kept> = p
            .meta_pricing
            .iter()
            .map(|m| {
                (
                    m.id.as_ref(),
                    m.pricing_model.as_deref(),
                    m.pricing_type.as_deref(),
                    m.conversation_id.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            kept,
            vec![
                ("wamid.AAA", Some("CBP"), None, Some("c0nv0001")),
                (
                    "wamid.BBB",
                    Some("PMP"),
                    Some("free_customer_service"),
                    Some("m5g0001")
                ),
                ("wamid.CCC", Some("PMP"), Some("regular"), None),
                (
                    "wamid.DDD",
                    Some("PMP"),
                    Some("free_entry_point"),
                    Some("fep-win-77")
                ),
            ]
        );
    }

    #[test]
    fn a_batch_of_many_entries_keeps_every_item_in_order() {
        let entries: Vec<String> = (0..50)
            .map(|i| {
                format!(
                    r#"{{"id":"W{i}","changes":[{{"field":"messages","value":{{"metadata":{{"display_phone_number":"1555000{i:04}"}},"messages":[{{"from":"5511988887777","id":"in{i}","timestamp":"1752400000","type":"text"}}],"statuses":[{{"id":"out{i}","status":"delivered","timestamp":"1752400001"}}]}}}},{{"field":"account_update","value":{{}}}}]}}"#
                )
            })
            .collect();
        let line = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{}]}}"#,
            entries.join(",")
        );
        let mut p = Parsed::default();
        parse_line(&line, 1, &mut p).unwrap();
        assert_eq!(p.events.len(), 100);
        assert_eq!(
            p.ignored_webhook_items, 50,
            "the account_update changes are counted"
        );
        let Event::Inbound(first) = &p.events[0] else {
            panic!()
        };
        assert_eq!((first.waba.as_ref(), first.id.as_ref()), ("W0", "in0"));
        let Event::Status(last) = &p.events[99] else {
            panic!()
        };
        assert_eq!(last.id, "out49");
    }
}
