//! Meta's WhatsApp webhook envelopes (`{"object":"whatsapp_business_account","entry":[...]}`):
//! `messages[]` become inbound events (a `referral` from an ad or a post marks a free entry
//! point), `statuses[]` become status events, and the `pricing`/`conversation` objects Meta
//! attached are kept for reconciliation. The template webhooks (`template_category_update`,
//! `message_template_status_update`) become template changes (decisions.md D150-D155).
//!
//! The user of a message is its `from` (phone number) and `from_user_id` (BSUID), either of
//! which may be absent, completed from the `contacts[]` entry of the same user (`wa_id`,
//! `user_id`). System messages `user_changed_number` and `user_changed_user_id` become identity
//! changes (decisions.md D103); other system messages open nothing and are counted as ignored.

use crate::events::{bsuid, err, msisdn, LineError, MetaPricing, Parsed, RawLine, TimeValue};
use crate::limits::{self, Limit};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use wabill_rating::templates::{ChangeSource, TemplateChange};
use wabill_rating::{
    Bsuid, Category, DeliveryStatus, EntryPoint, Event, IdentityChange, IdentityChangeKind,
    Inbound, Msisdn, Status, StatusMessage,
};

#[derive(Deserialize)]
pub(crate) struct Entry<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    /// When Meta triggered the webhook: the instant of a template change (D154).
    #[serde(borrow)]
    time: Option<TimeValue<'a>>,
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
    contacts: Vec<Contact<'a>>,
    #[serde(borrow, default, deserialize_with = "counted")]
    messages: Vec<Message<'a>>,
    #[serde(borrow, default, deserialize_with = "counted")]
    statuses: Vec<WebhookStatus<'a>>,
    #[serde(borrow, default)]
    calls: Vec<crate::calls::WebhookCall<'a>>,
    // `message_template_status_update` and `template_category_update` (D150).
    #[serde(borrow)]
    event: Option<Cow<'a, str>>,
    /// A number in Meta's payloads; a string is taken too.
    #[serde(borrow)]
    message_template_id: Option<TimeValue<'a>>,
    #[serde(borrow)]
    message_template_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message_template_language: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message_template_category: Option<Cow<'a, str>>,
    #[serde(borrow)]
    previous_category: Option<Cow<'a, str>>,
    #[serde(borrow)]
    new_category: Option<Cow<'a, str>>,
}

thread_local! {
    /// Messages and statuses an envelope being read may still hold (`None`: no bound), and
    /// whether one was refused for it: set by [`parse_envelope_within`] around its reading.
    static BUDGET: Cell<Option<usize>> = const { Cell::new(None) };
    static OVER: Cell<bool> = const { Cell::new(false) };
}

/// A `messages` or `statuses` array, each element counted against [`BUDGET`] as it is read:
/// the element after the budget stops the reading, so an envelope never costs more than its
/// limit of items whatever the arrays hold (decisions.md D75).
fn counted<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    struct Counted<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Counted<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element()? {
                match BUDGET.get() {
                    Some(0) => {
                        OVER.set(true);
                        return Err(de::Error::custom("too many messages and statuses"));
                    }
                    Some(n) => BUDGET.set(Some(n - 1)),
                    None => {}
                }
                out.push(item);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Counted(PhantomData))
}

/// Why [`parse_envelope_within`] refused an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// It holds more than `limit` messages and statuses (the reading stopped at the one after).
    TooManyEvents { limit: usize },
    /// It cannot be read (a field, and why).
    Invalid(LineError),
}

/// Like [`crate::parse_envelope`] (one of Meta's envelopes, the signed webhook's body), with at
/// most `max_items` messages and statuses counted while the envelope is read: the reading stops
/// at the one after, before it is built, and so before any event of it is (decisions.md D75).
pub fn parse_envelope_within<'a>(
    text: &'a str,
    max_items: usize,
    sink: &mut Parsed<'a>,
) -> Result<(), EnvelopeError> {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            BUDGET.set(None);
            OVER.set(false);
        }
    }
    let _reset = Reset;
    BUDGET.set(Some(max_items));
    OVER.set(false);
    crate::parse_envelope(text, 1, sink).map_err(|e| {
        if OVER.get() {
            EnvelopeError::TooManyEvents { limit: max_items }
        } else {
            EnvelopeError::Invalid(e)
        }
    })
}

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(borrow)]
    display_phone_number: Option<Cow<'a, str>>,
}

/// A user of the change's messages: phone number (absent when the user withholds it), BSUID
/// and parent BSUID.
#[derive(Deserialize)]
struct Contact<'a> {
    #[serde(borrow)]
    wa_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    parent_user_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    from: Option<Cow<'a, str>>,
    #[serde(borrow)]
    from_user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    from_parent_user_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    message_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    system: Option<System<'a>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    timestamp: Option<TimeValue<'a>>,
    #[serde(borrow)]
    referral: Option<Referral<'a>>,
}

/// A system message's body: what changed, and the user's new number and BSUID.
#[derive(Deserialize)]
struct System<'a> {
    #[serde(borrow, rename = "type")]
    change: Option<Cow<'a, str>>,
    #[serde(borrow)]
    wa_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    parent_user_id: Option<Cow<'a, str>>,
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
    recipient_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    recipient_user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    recipient_parent_user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    recipient_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    conversation: Option<Conversation<'a>>,
    #[serde(borrow)]
    pricing: Option<Pricing<'a>>,
}

#[derive(Deserialize)]
struct Conversation<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    /// When the conversation (or free entry point window) ends, as Meta says (decisions.md
    /// D118): on the `sent` status of the message that opened it.
    #[serde(borrow)]
    expiration_timestamp: Option<TimeValue<'a>>,
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

/// The user of a message: its own `from` and `from_user_id`, each completed from the contact
/// that shares the other (or from the only contact, when the message names neither).
fn complete_user<'a>(
    from: Option<Msisdn>,
    from_user_id: Option<Bsuid<'a>>,
    contacts: &[(Option<Msisdn>, Option<Bsuid<'a>>)],
) -> (Option<Msisdn>, Option<Bsuid<'a>>) {
    let contact = contacts
        .iter()
        .find(|(w, b)| {
            (from.is_some() && *w == from) || (from_user_id.is_some() && *b == from_user_id)
        })
        .or(match (&from, &from_user_id, contacts) {
            (None, None, [only]) => Some(only),
            _ => None,
        });
    match contact {
        Some((w, b)) => (from.or(*w), from_user_id.or_else(|| b.clone())),
        None => (from, from_user_id),
    }
}

/// A template webhook's change: `None` for one that changes no category (an impending
/// re-categorisation, a status change that names no category; D155).
fn read_template_change<'a>(
    value: Value<'a>,
    category_update: bool,
    waba: &Cow<'a, str>,
    time: Option<&TimeValue<'a>>,
    line: u64,
    at: &dyn Fn(&str) -> String,
    time_field: &dyn Fn() -> String,
) -> Result<Option<TemplateChange<'a>>, LineError> {
    let word = |v: &Option<Cow<'a, str>>,
                f: &str,
                limit: Limit|
     -> Result<Option<Cow<'a, str>>, LineError> {
        match v {
            Some(s) => {
                limits::check(s, limit).map_err(|why| err(line, &at(f), why))?;
                if s.trim().is_empty() {
                    return Err(err(line, &at(f), "is empty"));
                }
                Ok(Some(s.clone()))
            }
            None => Ok(None),
        }
    };
    let category = |v: &Option<Cow<'a, str>>, f: &str| -> Result<Option<Category>, LineError> {
        match word(v, f, limits::WORD)? {
            Some(c) => crate::events::template_category(&c, line, &at(f)).map(Some),
            None => Ok(None),
        }
    };
    let event = word(&value.event, "value.event", limits::WORD)?;
    let (new, previous) = if category_update {
        // Only a completed change names the previous category; an impending one (with
        // `correct_category` and `category_update_timestamp`) is announced again when done.
        let previous = category(&value.previous_category, "value.previous_category")?;
        let new = category(&value.new_category, "value.new_category")?;
        match (new, previous) {
            (Some(n), Some(p)) => (n, Some(p)),
            (Some(_), None) => return Ok(None),
            (None, _) => return Err(err(line, &at("value.new_category"), "is missing")),
        }
    } else {
        match category(
            &value.message_template_category,
            "value.message_template_category",
        )? {
            Some(c) => (c, None),
            None => return Ok(None),
        }
    };
    let id = match &value.message_template_id {
        Some(TimeValue::Seconds(n)) if *n > 0 => Cow::Owned(n.to_string()),
        Some(TimeValue::Text(s)) if !s.trim().is_empty() => {
            limits::check(s, limits::ACCOUNT_ID)
                .map_err(|why| err(line, &at("value.message_template_id"), why))?;
            s.clone()
        }
        Some(_) => {
            return Err(err(
                line,
                &at("value.message_template_id"),
                "is not a template id",
            ))
        }
        None => return Err(err(line, &at("value.message_template_id"), "is missing")),
    };
    let name = word(
        &value.message_template_name,
        "value.message_template_name",
        limits::TEMPLATE_NAME,
    )?
    .ok_or_else(|| err(line, &at("value.message_template_name"), "is missing"))?;
    let language = word(
        &value.message_template_language,
        "value.message_template_language",
        limits::WORD,
    )?
    .ok_or_else(|| err(line, &at("value.message_template_language"), "is missing"))?;
    let when = time
        .ok_or_else(|| {
            err(
                line,
                &time_field(),
                "is missing (the instant of the template change)",
            )
        })?
        .instant()
        .map_err(|why| err(line, &time_field(), why))?;
    Ok(Some(TemplateChange {
        waba: waba.clone(),
        id,
        name,
        language,
        category: new,
        previous,
        at: when,
        source: ChangeSource::Webhook,
        status: event,
    }))
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
            if field == Some("template_category_update")
                || field == Some("message_template_status_update")
            {
                let Some(value) = change.value else {
                    return Err(err(line, &at("value"), "is missing"));
                };
                let t = read_template_change(
                    value,
                    field == Some("template_category_update"),
                    &waba,
                    entry.time.as_ref(),
                    line,
                    &|f| at(f),
                    &|| format!("entry[{ei}].time"),
                )?;
                match t {
                    Some(t) => {
                        sink.templates.push(t);
                        sink.template_lines.push(line);
                    }
                    None => sink.ignored_webhook_items += 1,
                }
                continue;
            }
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
            let mut contacts = Vec::with_capacity(value.contacts.len());
            for (ci, c) in value.contacts.iter().enumerate() {
                let cf = |x: &str| at(&format!("value.contacts[{ci}].{x}"));
                bound(c.wa_id.as_deref(), limits::PHONE, &|| cf("wa_id"))?;
                let wa_id = c
                    .wa_id
                    .as_deref()
                    .map(|w| msisdn(w, line, &cf("wa_id")))
                    .transpose()?;
                let user_id = c
                    .user_id
                    .as_ref()
                    .map(|b| bsuid(b, line, &cf("user_id")))
                    .transpose()?;
                if let Some(b) = &c.parent_user_id {
                    bsuid(b, line, &cf("parent_user_id"))?;
                }
                contacts.push((wa_id, user_id));
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
                bound(m.message_type.as_deref(), limits::MESSAGE_TYPE, &|| {
                    f("type")
                })?;
                let from = m
                    .from
                    .as_deref()
                    .map(|u| msisdn(u, line, &f("from")))
                    .transpose()?;
                let from_user_id = m
                    .from_user_id
                    .as_ref()
                    .map(|b| bsuid(b, line, &f("from_user_id")))
                    .transpose()?;
                if let Some(b) = &m.from_parent_user_id {
                    bsuid(b, line, &f("from_parent_user_id"))?;
                }
                let (user, user_id) = complete_user(from, from_user_id, &contacts);
                if user.is_none() && user_id.is_none() {
                    return Err(err(
                        line,
                        &f("from"),
                        "is missing, and so are from_user_id and a contact with wa_id or user_id",
                    ));
                }
                let change = match (m.message_type.as_deref(), &m.system) {
                    (Some("system"), None) => {
                        return Err(err(line, &f("system"), "is missing for a system message"))
                    }
                    (Some("system"), Some(sys)) => {
                        let sf = |x: &str| f(&format!("system.{x}"));
                        bound(sys.change.as_deref(), limits::WORD, &|| sf("type"))?;
                        let name = sys
                            .change
                            .as_deref()
                            .ok_or_else(|| err(line, &sf("type"), "is missing"))?;
                        let Some(kind) = IdentityChangeKind::parse(name) else {
                            // Not an identity change (`customer_identity_changed`, ...): the
                            // user wrote nothing, so it opens no window.
                            sink.ignored_webhook_items += 1;
                            continue;
                        };
                        bound(sys.wa_id.as_deref(), limits::PHONE, &|| sf("wa_id"))?;
                        let new_user = sys
                            .wa_id
                            .as_deref()
                            .map(|u| msisdn(u, line, &sf("wa_id")))
                            .transpose()?;
                        let new_user_id = sys
                            .user_id
                            .as_ref()
                            .map(|b| bsuid(b, line, &sf("user_id")))
                            .transpose()?;
                        if let Some(b) = &sys.parent_user_id {
                            bsuid(b, line, &sf("parent_user_id"))?;
                        }
                        match (kind, &new_user, &new_user_id) {
                            (IdentityChangeKind::UserChangedNumber, None, None) => {
                                return Err(err(line, &sf("wa_id"), "is missing (the new number)"))
                            }
                            (IdentityChangeKind::UserChangedUserId, _, None) => {
                                return Err(err(line, &sf("user_id"), "is missing (the new BSUID)"))
                            }
                            _ => {}
                        }
                        Some(Box::new(IdentityChange {
                            kind,
                            user: new_user,
                            user_id: new_user_id,
                        }))
                    }
                    _ => None,
                };
                let entry_point = match m.referral.as_ref().and_then(|r| r.source_type.as_deref()) {
                    _ if change.is_some() => None,
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
                    user,
                    user_id,
                    entry_point,
                    change,
                };
                sink.events.push(Event::Inbound(inbound));
                sink.lines.push(line);
            }
            for (si, s) in value.statuses.into_iter().enumerate() {
                let f = |x: &str| at(&format!("value.statuses[{si}].{x}"));
                bound(s.status.as_deref(), limits::WORD, &|| f("status"))?;
                bound(s.id.as_deref(), limits::MESSAGE_ID, &|| f("id"))?;
                // The recipient, bounded and, for BSUIDs, of Meta's form.
                bound(s.recipient_id.as_deref(), limits::PHONE, &|| {
                    f("recipient_id")
                })?;
                bound(s.recipient_type.as_deref(), limits::WORD, &|| {
                    f("recipient_type")
                })?;
                let recipient_user_id = s
                    .recipient_user_id
                    .as_ref()
                    .map(|b| bsuid(b, line, &f("recipient_user_id")))
                    .transpose()?;
                if let Some(b) = &s.recipient_parent_user_id {
                    bsuid(b, line, &f("recipient_parent_user_id"))?;
                }
                let expires_at = s
                    .conversation
                    .as_ref()
                    .and_then(|c| c.expiration_timestamp.as_ref())
                    .map(|t| {
                        t.instant()
                            .map_err(|why| err(line, &f("conversation.expiration_timestamp"), why))
                    })
                    .transpose()?;
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
                // What the status says of its message, so that it is rated without an
                // outbound event (D110): not for a group's messages (recipient_type "group",
                // not rated in v1), nor when the recipient is no number and no BSUID.
                let message = match phone {
                    Some(phone) if s.recipient_type.as_deref() != Some("group") => {
                        let user = s
                            .recipient_id
                            .as_deref()
                            .and_then(|r| Msisdn::parse(r).ok());
                        (user.is_some() || recipient_user_id.is_some()).then(|| {
                            Box::new(StatusMessage {
                                waba: waba.clone(),
                                phone,
                                user,
                                user_id: recipient_user_id,
                                category: s
                                    .pricing
                                    .as_ref()
                                    .and_then(|p| p.category.as_deref())
                                    .and_then(Category::parse),
                            })
                        })
                    }
                    _ => None,
                };
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
                        expires_at,
                    });
                }
                sink.events.push(Event::Status(Status {
                    id,
                    at: at_ms,
                    status,
                    message,
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
        assert_eq!(p.meta_pricing[0].expires_at, Some(1_717_322_400_000));
        assert_eq!(p.ignored_webhook_items, 1);
        // An expiry that is no instant rejects the envelope, naming the field.
        let bad = line.replace(
            r#""expiration_timestamp":"1717322400""#,
            r#""expiration_timestamp":"soon""#,
        );
        let e = parse_line(&bad, 2, &mut Parsed::default()).unwrap_err();
        assert_eq!(
            e.field,
            "entry[0].changes[0].value.statuses[0].conversation.expiration_timestamp"
        );
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
mod usernames {
    //! Meta's payloads for users with usernames and business-scoped user ids (BSUIDs), as the
    //! "Business-scoped user IDs" and system messages references show them (decisions.md D100).
    use crate::events::{parse_line, Parsed};
    use wabill_rating::{Event, IdentityChangeKind};

    fn envelope(value: &str) -> String {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550001111","phone_number_id":"1"}},{value}}}}}]}}]}}"#
        )
    }

    #[test]
    fn a_message_without_from_is_its_from_user_id_and_the_contact_completes_either() {
        let line = envelope(
            r#""contacts":[{"profile":{"name":"A","username":"ana"},"user_id":"BR.1502576394655843","parent_user_id":"BR.ENT.99"}],"messages":[{"from_user_id":"BR.1502576394655843","from_parent_user_id":"BR.ENT.99","id":"wamid.A","timestamp":"1785751200","type":"text","text":{"body":"hi"}}]"#,
        );
        let mut p = Parsed::default();
        parse_line(&line, 1, &mut p).unwrap();
        let Event::Inbound(i) = &p.events[0] else {
            panic!()
        };
        assert_eq!(
            (i.user, i.user_id.as_ref().map(|b| b.as_str())),
            (None, Some("BR.1502576394655843"))
        );
        // The number from the contact, the BSUID from the message's `from` match.
        let line = envelope(
            r#""contacts":[{"profile":{"name":"A"},"wa_id":"5511988887777","user_id":"BR.15"}],"messages":[{"from":"5511988887777","id":"wamid.B","timestamp":"1785751200","type":"text"}]"#,
        );
        let mut p = Parsed::default();
        parse_line(&line, 1, &mut p).unwrap();
        let Event::Inbound(i) = &p.events[0] else {
            panic!()
        };
        assert_eq!(i.user.map(|u| u.get()), Some(5_511_988_887_777));
        assert_eq!(i.user_id.as_ref().map(|b| b.as_str()), Some("BR.15"));
    }

    #[test]
    fn statuses_with_recipient_user_ids_are_read_and_a_bad_one_is_refused_naming_it() {
        let ok = envelope(
            r#""statuses":[{"id":"wamid.A","status":"delivered","timestamp":"1785751200","recipient_user_id":"BR.15","recipient_parent_user_id":"BR.ENT.99","pricing":{"billable":true,"pricing_model":"PMP","type":"regular","category":"marketing"}},{"id":"wamid.B","status":"read","timestamp":"1785751201","recipient_id":"5511988887777","recipient_user_id":"BR.15"}]"#,
        );
        let mut p = Parsed::default();
        parse_line(&ok, 1, &mut p).unwrap();
        assert_eq!(p.events.len(), 2);
        let bad = envelope(
            r#""statuses":[{"id":"wamid.A","status":"delivered","timestamp":"1785751200","recipient_user_id":"15"}]"#,
        );
        let e = parse_line(&bad, 1, &mut Parsed::default()).unwrap_err();
        assert_eq!(
            e.field,
            "entry[0].changes[0].value.statuses[0].recipient_user_id"
        );
        assert!(e.why.contains("two-letter ISO country code"), "{e}");
    }

    #[test]
    fn system_messages_are_identity_changes_or_ignored() {
        let line = envelope(
            r#""messages":[{"from":"16505551234","from_user_id":"US.1","id":"wamid.S1","timestamp":"1739321024","type":"system","system":{"body":"User A changed from 16505551234 to 12195555358","wa_id":"12195555358","user_id":"US.2","type":"user_changed_number"}},{"from_user_id":"US.3","id":"wamid.S2","timestamp":"1739321025","type":"system","system":{"body":"changed","user_id":"US.4","type":"user_changed_user_id"}},{"from":"16505551234","id":"wamid.S3","timestamp":"1739321026","type":"system","system":{"body":"security code changed","type":"customer_identity_changed"}}]"#,
        );
        let mut p = Parsed::default();
        parse_line(&line, 1, &mut p).unwrap();
        assert_eq!(p.events.len(), 2);
        assert_eq!(
            p.ignored_webhook_items, 1,
            "customer_identity_changed is counted"
        );
        let Event::Inbound(a) = &p.events[0] else {
            panic!()
        };
        let c = a.change.as_ref().unwrap();
        assert_eq!(c.kind, IdentityChangeKind::UserChangedNumber);
        assert_eq!(c.user.map(|u| u.get()), Some(12_195_555_358));
        assert_eq!(a.entry_point, None);
        let bad = envelope(
            r#""messages":[{"from_user_id":"US.3","id":"wamid.S2","timestamp":"1739321025","type":"system","system":{"type":"user_changed_user_id"}}]"#,
        );
        let e = parse_line(&bad, 1, &mut Parsed::default()).unwrap_err();
        assert_eq!(
            e.field,
            "entry[0].changes[0].value.messages[0].system.user_id"
        );
    }

    #[test]
    fn a_message_naming_no_user_at_all_is_refused() {
        let line =
            envelope(r#""messages":[{"id":"wamid.A","timestamp":"1785751200","type":"text"}]"#);
        let e = parse_line(&line, 1, &mut Parsed::default()).unwrap_err();
        assert_eq!(e.field, "entry[0].changes[0].value.messages[0].from");
        assert!(e.why.contains("from_user_id"), "{e}");
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
                    .contains(&format!("more than the limit of {max} characters")),
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
