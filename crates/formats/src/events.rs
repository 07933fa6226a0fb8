//! Reading events: wabill's JSON Lines (`docs/events.md`) and Meta's raw webhook envelopes,
//! one per line, into the rating core's types. Every problem is reported with its line number,
//! the field, and why.

use crate::flat;
use crate::limits::{self, Limit};
use crate::time::parse_instant;
use crate::webhook;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use wabill_rating::templates::{ChangeSource, TemplateChange, TemplateRef};
use wabill_rating::{
    Account, AuthInternational, Bsuid, Category, Currency, DeliveryStatus, EntryPoint, Event,
    IdentityChange, IdentityChangeKind, Inbound, MessageKind, Msisdn, Outbound, Status,
    StatusMessage, UnixMs,
};

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: u64,
    pub field: String,
    pub why: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "line {}: {}", self.line, self.why)
        } else {
            write!(
                f,
                "line {}: field '{}': {}",
                self.line, self.field, self.why
            )
        }
    }
}
impl std::error::Error for LineError {}

/// Pricing information Meta attached to a status webhook, kept to compare with wabill's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaPricing<'a> {
    pub id: Cow<'a, str>,
    pub status: DeliveryStatus,
    pub at: UnixMs,
    pub billable: Option<bool>,
    pub pricing_model: Option<Cow<'a, str>>,
    pub category: Option<Cow<'a, str>>,
    pub pricing_type: Option<Cow<'a, str>>,
    pub conversation_id: Option<Cow<'a, str>>,
    /// Meta's `conversation.expiration_timestamp` (decisions.md D118).
    pub expires_at: Option<UnixMs>,
}

/// Everything read from input lines.
#[derive(Debug, Default)]
pub struct Parsed<'a> {
    pub events: Vec<Event<'a>>,
    /// Line number of each event, in the same order (for messages about it).
    pub lines: Vec<u64>,
    pub meta_pricing: Vec<MetaPricing<'a>>,
    /// Calls (`call` lines and Meta's `calls` webhooks), rated apart from messages.
    pub calls: Vec<wabill_rating::calls::Call<'a>>,
    /// Line number of each call, in the same order.
    pub call_lines: Vec<u64>,
    /// What template lines and Meta's template webhooks say of templates (decisions.md D150).
    pub templates: Vec<wabill_rating::templates::TemplateChange<'a>>,
    /// Line number of each template change, in the same order.
    pub template_lines: Vec<u64>,
    /// Outbound events naming their template instead of a category: the index of the event
    /// in `events` and the template, to be resolved ([`Parsed::resolve_templates`]).
    pub template_refs: Vec<(usize, TemplateRef<'a>)>,
    /// Webhook parts that carry nothing to rate (other `field`s, `warning`/`deleted` statuses),
    /// counted so that nothing disappears without a word.
    pub ignored_webhook_items: u64,
}

impl<'a> Parsed<'a> {
    fn push(&mut self, line: u64, e: Event<'a>) {
        self.events.push(e);
        self.lines.push(line);
    }
}

/// Reads one line (without its newline) into `sink`. Blank lines are skipped. On error nothing
/// from the line is kept.
pub fn parse_line<'a>(text: &'a str, line: u64, sink: &mut Parsed<'a>) -> Result<(), LineError> {
    parse(text, line, sink, false)
}

/// Like [`parse_line`], for one of Meta's webhook envelopes only: wabill's own event lines
/// (an `account` among them) are refused, since what Meta signs is never one of them.
pub fn parse_envelope<'a>(
    text: &'a str,
    line: u64,
    sink: &mut Parsed<'a>,
) -> Result<(), LineError> {
    parse(text, line, sink, true)
}

fn parse<'a>(
    text: &'a str,
    line: u64,
    sink: &mut Parsed<'a>,
    envelopes_only: bool,
) -> Result<(), LineError> {
    if text.trim().is_empty() {
        return Ok(());
    }
    let raw: RawLine<'a> = match flat::scan(text) {
        Some(raw) => raw,
        None => serde_json::from_str(text).map_err(|e| LineError {
            line,
            field: String::new(),
            why: format!("not a JSON object: {e}"),
        })?,
    };
    bounded(&raw, line)?;
    let mark = (
        sink.events.len(),
        sink.meta_pricing.len(),
        sink.ignored_webhook_items,
        sink.calls.len(),
        sink.templates.len(),
        sink.template_refs.len(),
    );
    let r = if raw.object.is_some() || raw.entry.is_some() {
        webhook::read_envelope(raw, line, sink)
    } else if envelopes_only {
        return Err(LineError {
            line,
            field: "object".to_string(),
            why: "is missing: only Meta's webhook envelopes are taken here, not wabill's event \
                  lines"
                .to_string(),
        });
    } else if raw.kind.as_deref() == Some("template") {
        read_template(raw, line).map(|t| {
            sink.templates.push(t);
            sink.template_lines.push(line);
        })
    } else if raw.kind.as_deref() == Some("call") {
        crate::calls::read_call(raw, line).map(|c| {
            sink.calls.push(c);
            sink.call_lines.push(line);
        })
    } else {
        read_event_naming(raw, line).map(|(e, t)| {
            if let Some(t) = t {
                sink.template_refs.push((sink.events.len(), *t));
            }
            sink.push(line, e)
        })
    };
    if r.is_err() {
        sink.events.truncate(mark.0);
        sink.lines.truncate(mark.0);
        sink.meta_pricing.truncate(mark.1);
        sink.ignored_webhook_items = mark.2;
        sink.calls.truncate(mark.3);
        sink.call_lines.truncate(mark.3);
        sink.templates.truncate(mark.4);
        sink.template_lines.truncate(mark.4);
        sink.template_refs.truncate(mark.5);
    }
    r
}

/// Every string of the line within its bound (`limits`), before any is stored or echoed.
fn bounded(raw: &RawLine<'_>, line: u64) -> Result<(), LineError> {
    let text: [(&str, &Option<Cow<'_, str>>, Limit); 27] = [
        ("kind", &raw.kind, limits::WORD),
        ("object", &raw.object, limits::WORD),
        ("id", &raw.id, limits::MESSAGE_ID),
        ("waba", &raw.waba, limits::ACCOUNT_ID),
        ("phone", &raw.phone, limits::PHONE),
        ("user", &raw.user, limits::PHONE),
        ("user_id", &raw.user_id, limits::USER_ID),
        ("system", &raw.system, limits::WORD),
        ("new_user", &raw.new_user, limits::PHONE),
        ("new_user_id", &raw.new_user_id, limits::USER_ID),
        ("entry_point", &raw.entry_point, limits::WORD),
        ("type", &raw.message_type, limits::MESSAGE_TYPE),
        ("category", &raw.category, limits::WORD),
        ("api", &raw.api, limits::WORD),
        ("status", &raw.status, limits::WORD),
        ("agent", &raw.agent, limits::AGENT),
        ("portfolio", &raw.portfolio, limits::ACCOUNT_ID),
        ("timezone", &raw.timezone, limits::TIMEZONE),
        ("currency", &raw.currency, limits::WORD),
        ("direction", &raw.direction, limits::WORD),
        ("outcome", &raw.outcome, limits::WORD),
        ("template_id", &raw.template_id, limits::ACCOUNT_ID),
        ("template", &raw.template, limits::TEMPLATE_NAME),
        ("name", &raw.name, limits::TEMPLATE_NAME),
        ("language", &raw.language, limits::WORD),
        ("previous_category", &raw.previous_category, limits::WORD),
        ("source", &raw.source, limits::WORD),
    ];
    for (field, v, limit) in text {
        if let Some(v) = v {
            limits::check(v, limit).map_err(|why| err(line, field, why))?;
        }
    }
    if let Some(c) = &raw.primary_country {
        limits::check(c, limits::WORD).map_err(|why| err(line, "primary_country", why))?;
    }
    if let Some(ai) = &raw.auth_international {
        let field = "auth_international.exception_countries";
        if ai.exception_countries.len() > limits::EXCEPTION_COUNTRIES {
            return Err(err(
                line,
                field,
                format!(
                    "has {} countries, more than the limit of {} (ISO 3166 has 249)",
                    ai.exception_countries.len(),
                    limits::EXCEPTION_COUNTRIES
                ),
            ));
        }
        for c in ai.exception_countries.keys() {
            limits::check(c, limits::WORD).map_err(|why| err(line, field, why))?;
        }
    }
    Ok(())
}

/// One input line, any kind; fields are checked per kind after parsing.
#[derive(Deserialize, Default)]
pub(crate) struct RawLine<'a> {
    #[serde(borrow)]
    pub(crate) kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) object: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) entry: Option<Vec<webhook::Entry<'a>>>,
    #[serde(borrow)]
    pub(crate) id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) at: Option<TimeValue<'a>>,
    #[serde(borrow)]
    pub(crate) waba: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) phone: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) user: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) system: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) new_user: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) new_user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) entry_point: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    pub(crate) message_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) category: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) api: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) agent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) portfolio: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) timezone: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) currency: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) primary_country: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) auth_international: Option<RawAuthIntl<'a>>,
    #[serde(borrow)]
    pub(crate) direction: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) start: Option<TimeValue<'a>>,
    #[serde(borrow)]
    pub(crate) end: Option<TimeValue<'a>>,
    pub(crate) duration: Option<i64>,
    #[serde(borrow)]
    pub(crate) outcome: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) template_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) template: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) language: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) previous_category: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) source: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub(crate) struct RawAuthIntl<'a> {
    #[serde(borrow)]
    start: Option<TimeValue<'a>>,
    #[serde(borrow, default)]
    exception_countries: BTreeMap<Cow<'a, str>, TimeValue<'a>>,
}

/// A time as a string (RFC 3339 or Unix seconds) or a number (Unix seconds).
pub(crate) enum TimeValue<'a> {
    Text(Cow<'a, str>),
    Seconds(i64),
}

impl<'de: 'a, 'a> Deserialize<'de> for TimeValue<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = TimeValue<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an RFC 3339 time or Unix seconds")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(TimeValue::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(TimeValue::Text(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(TimeValue::Seconds(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v)
                    .map(TimeValue::Seconds)
                    .map_err(|_| E::custom("time out of range"))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl TimeValue<'_> {
    pub(crate) fn instant(&self) -> Result<UnixMs, String> {
        match self {
            TimeValue::Text(s) => {
                limits::check(s, limits::INSTANT_TEXT)?;
                parse_instant(s)
            }
            TimeValue::Seconds(v) => crate::time::unix_seconds(&v.to_string()),
        }
    }
}

pub(crate) fn err(line: u64, field: &str, why: impl Into<String>) -> LineError {
    LineError {
        line,
        field: field.to_string(),
        why: why.into(),
    }
}

fn required<'x, T>(
    v: &'x Option<T>,
    line: u64,
    field: &str,
    kind: &str,
) -> Result<&'x T, LineError> {
    v.as_ref()
        .ok_or_else(|| err(line, field, format!("is required for a {kind} event")))
}

fn non_empty<'a>(
    v: &Option<Cow<'a, str>>,
    line: u64,
    field: &str,
    kind: &str,
) -> Result<Cow<'a, str>, LineError> {
    let s = required(v, line, field, kind)?;
    if s.trim().is_empty() {
        return Err(err(line, field, "is empty"));
    }
    Ok(s.clone())
}

pub(crate) fn msisdn(v: &str, line: u64, field: &str) -> Result<Msisdn, LineError> {
    limits::check(v, limits::PHONE).map_err(|why| err(line, field, why))?;
    Msisdn::parse(v).map_err(|why| err(line, field, format!("'{v}' {why}")))
}

/// A BSUID within its bound and of Meta's form (decisions.md D100).
pub(crate) fn bsuid<'a>(v: &Cow<'a, str>, line: u64, field: &str) -> Result<Bsuid<'a>, LineError> {
    limits::check(v, limits::USER_ID).map_err(|why| err(line, field, why))?;
    Bsuid::parse(v.clone()).map_err(|why| err(line, field, format!("'{v}' {why}")))
}

/// The user of an inbound or outbound line: `user` (the phone number), `user_id` (the BSUID),
/// or both; one is required (decisions.md D101).
fn user_of<'a>(
    raw: &RawLine<'a>,
    line: u64,
    kind: &str,
) -> Result<(Option<Msisdn>, Option<Bsuid<'a>>), LineError> {
    let user = match &raw.user {
        Some(u) => Some(msisdn(u, line, "user")?),
        None => None,
    };
    let user_id = match &raw.user_id {
        Some(b) => Some(bsuid(b, line, "user_id")?),
        None => None,
    };
    if user.is_none() && user_id.is_none() {
        return Err(err(
            line,
            "user",
            format!(
                "is required for {kind} events (the user's phone number), unless user_id \
                 (the user's BSUID) is given"
            ),
        ));
    }
    Ok((user, user_id))
}

/// A status line's message (`waba`, `phone`, `user`/`user_id`, `category`): what Meta's status
/// webhook said of it, so that it is rated without an outbound event (decisions.md D110). All
/// or nothing: a status with some of them and not the others is malformed.
fn status_message<'a>(
    raw: &RawLine<'a>,
    line: u64,
) -> Result<Option<Box<StatusMessage<'a>>>, LineError> {
    let any = raw.waba.is_some()
        || raw.phone.is_some()
        || raw.user.is_some()
        || raw.user_id.is_some()
        || raw.category.is_some();
    if !any {
        return Ok(None);
    }
    let k = "status with its message";
    let waba = non_empty(&raw.waba, line, "waba", k)?;
    let phone = msisdn(required(&raw.phone, line, "phone", k)?, line, "phone")?;
    let (user, user_id) = user_of(raw, line, "status")?;
    let category = match raw.category.as_deref() {
        None => None,
        Some(c) => Some(Category::parse(c).ok_or_else(|| {
            err(
                line,
                "category",
                format!("'{c}' is not one of Meta's pricing categories"),
            )
        })?),
    };
    Ok(Some(Box::new(StatusMessage {
        waba,
        phone,
        user,
        user_id,
        category,
    })))
}

/// An inbound line's identity change (`system`, `new_user`, `new_user_id`), if it is one.
fn change_of<'a>(
    raw: &RawLine<'a>,
    line: u64,
) -> Result<Option<Box<IdentityChange<'a>>>, LineError> {
    let Some(s) = raw.system.as_deref() else {
        for (field, v) in [
            ("new_user", &raw.new_user),
            ("new_user_id", &raw.new_user_id),
        ] {
            if v.is_some() {
                return Err(err(
                    line,
                    field,
                    "is given without system (user_changed_number or user_changed_user_id)",
                ));
            }
        }
        return Ok(None);
    };
    let kind = IdentityChangeKind::parse(s).ok_or_else(|| {
        err(
            line,
            "system",
            format!("'{s}' is not user_changed_number or user_changed_user_id"),
        )
    })?;
    let user = match &raw.new_user {
        Some(u) => Some(msisdn(u, line, "new_user")?),
        None => None,
    };
    let user_id = match &raw.new_user_id {
        Some(b) => Some(bsuid(b, line, "new_user_id")?),
        None => None,
    };
    if user.is_none() && user_id.is_none() {
        return Err(err(
            line,
            "new_user",
            format!("is required for a {s} event (the new number), unless new_user_id (the new BSUID) is given"),
        ));
    }
    Ok(Some(Box::new(IdentityChange {
        kind,
        user,
        user_id,
    })))
}

fn instant(
    v: &Option<TimeValue<'_>>,
    line: u64,
    field: &str,
    kind: &str,
) -> Result<UnixMs, LineError> {
    required(v, line, field, kind)?
        .instant()
        .map_err(|why| err(line, field, why))
}

/// Marketing, utility or authentication: the categories a template has.
pub(crate) fn template_category(c: &str, line: u64, field: &str) -> Result<Category, LineError> {
    match Category::parse(&c.to_ascii_lowercase()) {
        Some(c @ (Category::Marketing | Category::Utility | Category::Authentication)) => Ok(c),
        _ => Err(err(
            line,
            field,
            format!("'{c}' is not a template category (marketing, utility or authentication)"),
        )),
    }
}

/// The template an outbound line names: `template_id`, or `template` (its name) and
/// `language`.
fn template_ref<'a>(
    raw: &RawLine<'a>,
    line: u64,
) -> Result<Option<Box<TemplateRef<'a>>>, LineError> {
    let non_blank = |v: &Option<Cow<'a, str>>, field: &str| match v {
        Some(s) if s.trim().is_empty() => Err(err(line, field, "is empty")),
        v => Ok(v.clone()),
    };
    let id = non_blank(&raw.template_id, "template_id")?;
    let name = non_blank(&raw.template, "template")?;
    let language = non_blank(&raw.language, "language")?;
    Ok(match (id, name, language) {
        (Some(id), None, None) => Some(Box::new(TemplateRef::Id(id))),
        (Some(_), _, _) => {
            return Err(err(
                line,
                "template_id",
                "is given beside template/language: name the template by its id, or by its name and language",
            ))
        }
        (None, Some(name), Some(language)) => {
            Some(Box::new(TemplateRef::NameLanguage { name, language }))
        }
        (None, Some(_), None) => {
            return Err(err(
                line,
                "language",
                "is missing: a template named by its name needs its language (Meta's code, like en_US)",
            ))
        }
        (None, None, Some(_)) => {
            return Err(err(line, "template", "is missing: language is given without a template name"))
        }
        (None, None, None) => None,
    })
}

/// A `template` line: what a template list or a template webhook says of one template.
fn read_template<'a>(raw: RawLine<'a>, line: u64) -> Result<TemplateChange<'a>, LineError> {
    let k = "template";
    let c = required(&raw.category, line, "category", k)?;
    let category = template_category(c, line, "category")?;
    let previous = match raw.previous_category.as_deref() {
        Some(p) => Some(template_category(p, line, "previous_category")?),
        None => None,
    };
    let source = match raw.source.as_deref() {
        None => ChangeSource::Import,
        Some(s) => ChangeSource::parse(s)
            .ok_or_else(|| err(line, "source", format!("'{s}' is not import or webhook")))?,
    };
    Ok(TemplateChange {
        waba: non_empty(&raw.waba, line, "waba", k)?,
        id: non_empty(&raw.id, line, "id", k)?,
        name: non_empty(&raw.name, line, "name", k)?,
        language: non_empty(&raw.language, line, "language", k)?,
        category,
        previous,
        at: instant(&raw.at, line, "at", k)?,
        source,
        status: match raw.status {
            Some(s) if s.trim().is_empty() => return Err(err(line, "status", "is empty")),
            s => s,
        },
    })
}

/// Reads an event line (the template an outbound line names is left out: tests only).
#[cfg(test)]
pub(crate) fn read_event<'a>(raw: RawLine<'a>, line: u64) -> Result<Event<'a>, LineError> {
    read_event_naming(raw, line).map(|(e, _)| e)
}

type Named<'a> = (Event<'a>, Option<Box<TemplateRef<'a>>>);

fn read_event_naming<'a>(raw: RawLine<'a>, line: u64) -> Result<Named<'a>, LineError> {
    let kind = raw
        .kind
        .as_deref()
        .ok_or_else(|| err(line, "kind", "is missing (account, inbound, outbound, status, call or template), and the line is not a Meta webhook envelope"))?;
    match kind {
        "account" => read_account(raw, line).map(|a| (Event::Account(Box::new(a)), None)),
        "inbound" => {
            let k = "inbound";
            let entry_point = match raw.entry_point.as_deref() {
                None => None,
                Some(s) => Some(EntryPoint::parse(s).ok_or_else(|| {
                    err(
                        line,
                        "entry_point",
                        format!("'{s}' is not ctwa or page_cta"),
                    )
                })?),
            };
            let id = non_empty(&raw.id, line, "id", k)?;
            let at = instant(&raw.at, line, "at", k)?;
            let waba = non_empty(&raw.waba, line, "waba", k)?;
            let phone = msisdn(required(&raw.phone, line, "phone", k)?, line, "phone")?;
            let (user, user_id) = user_of(&raw, line, k)?;
            let change = change_of(&raw, line)?;
            if change.is_some() && entry_point.is_some() {
                return Err(err(
                    line,
                    "entry_point",
                    "is given for a system event, which is no message from an entry point",
                ));
            }
            Ok((
                Event::Inbound(Inbound {
                    id,
                    at,
                    waba,
                    phone,
                    user,
                    user_id,
                    entry_point,
                    change,
                }),
                None,
            ))
        }
        "outbound" => {
            let k = "outbound";
            let message_type = required(&raw.message_type, line, "type", k)?;
            let template = template_ref(&raw, line)?;
            if template.is_some() && message_type != "template" {
                return Err(err(
                    line,
                    if raw.template_id.is_some() {
                        "template_id"
                    } else {
                        "template"
                    },
                    format!(
                        "is given for a message of type '{message_type}', which is no template"
                    ),
                ));
            }
            let kind = if let Some(t) = &template {
                if raw.category.is_some() {
                    return Err(err(
                        line,
                        "category",
                        format!("is given beside {t}: give the category or the template, not both (the template's category is the one in force when it is sent)"),
                    ));
                }
                // A placeholder until the registry gives the category in force (D153).
                MessageKind::Template(Category::Marketing)
            } else if message_type == "template" {
                let c = required(
                    &raw.category,
                    line,
                    "category",
                    "template (or template_id, or template and language)",
                )?;
                MessageKind::Template(template_category(c, line, "category")?)
            } else if message_type.trim().is_empty() {
                return Err(err(line, "type", "is empty"));
            } else {
                if let Some(c) = raw.category.as_deref().filter(|c| *c != "service") {
                    return Err(err(
                        line,
                        "category",
                        format!("'{c}' given for a non-template message, which is always the service category"),
                    ));
                }
                MessageKind::NonTemplate
            };
            let marketing_messages_api = match raw.api.as_deref() {
                None => false,
                Some("marketing_messages") => true,
                Some(a) => {
                    return Err(err(line, "api", format!("'{a}' is not marketing_messages")))
                }
            };
            for (field, v) in [
                ("system", &raw.system),
                ("new_user", &raw.new_user),
                ("new_user_id", &raw.new_user_id),
            ] {
                if v.is_some() {
                    return Err(err(line, field, "is only for inbound system events"));
                }
            }
            let id = non_empty(&raw.id, line, "id", k)?;
            let at = instant(&raw.at, line, "at", k)?;
            let waba = non_empty(&raw.waba, line, "waba", k)?;
            let phone = msisdn(required(&raw.phone, line, "phone", k)?, line, "phone")?;
            let (user, user_id) = user_of(&raw, line, k)?;
            let e = Event::Outbound(Outbound {
                id,
                at,
                waba,
                phone,
                user,
                user_id,
                kind,
                marketing_messages_api,
                agent: match raw.agent {
                    Some(a) if a.trim().is_empty() => return Err(err(line, "agent", "is empty")),
                    a => a,
                },
            });
            Ok((e, template))
        }
        "status" => {
            let k = "status";
            let s = required(&raw.status, line, "status", k)?;
            let status = DeliveryStatus::parse(s).ok_or_else(|| {
                err(
                    line,
                    "status",
                    format!("'{s}' is not sent, delivered, read or failed"),
                )
            })?;
            Ok((
                Event::Status(Status {
                    id: non_empty(&raw.id, line, "id", k)?,
                    at: instant(&raw.at, line, "at", k)?,
                    status,
                    message: status_message(&raw, line)?,
                }),
                None,
            ))
        }
        other => Err(err(
            line,
            "kind",
            format!("'{other}' is not account, inbound, outbound, status, call or template"),
        )),
    }
}

fn read_account<'a>(raw: RawLine<'a>, line: u64) -> Result<Account<'a>, LineError> {
    let k = "account";
    let waba = non_empty(&raw.waba, line, "waba", k)?;
    let timezone = match raw.timezone.as_deref() {
        None => chrono_tz::UTC,
        Some(tz) => tz.parse().map_err(|_| {
            err(
                line,
                "timezone",
                format!("'{tz}' is not an IANA timezone name"),
            )
        })?,
    };
    let c = required(&raw.currency, line, "currency", k)?;
    let currency = Currency::parse(c).ok_or_else(|| {
        err(
            line,
            "currency",
            format!("'{c}' is not an ISO 4217 code like USD"),
        )
    })?;
    let country = |c: &Cow<'a, str>, field: &str| {
        if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(c.clone())
        } else {
            Err(err(
                line,
                field,
                format!("'{c}' is not an ISO 3166 alpha-2 code like BR"),
            ))
        }
    };
    let primary_country = raw
        .primary_country
        .as_ref()
        .map(|c| country(c, "primary_country"))
        .transpose()?;
    let auth_international = match &raw.auth_international {
        None => None,
        Some(ai) => Some(AuthInternational {
            start: instant(&ai.start, line, "auth_international.start", k)?,
            exception_countries: ai
                .exception_countries
                .iter()
                .map(|(c, t)| {
                    let field = "auth_international.exception_countries";
                    Ok((
                        country(c, field)?,
                        t.instant().map_err(|why| err(line, field, why))?,
                    ))
                })
                .collect::<Result<_, LineError>>()?,
        }),
    };
    Ok(Account {
        portfolio: raw.portfolio.clone().unwrap_or_else(|| waba.clone()),
        waba,
        timezone,
        currency,
        primary_country,
        auth_international,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Result<Event<'_>, LineError> {
        let mut p = Parsed::default();
        parse_line(line, 7, &mut p)?;
        assert_eq!(p.events.len(), 1);
        Ok(p.events.pop().unwrap())
    }

    #[test]
    fn reads_every_kind_of_events_md() {
        let a = one(r#"{"kind":"account","waba":"W1","portfolio":"B1","timezone":"America/Sao_Paulo","currency":"USD","primary_country":"BR","auth_international":{"start":"2025-03-01T00:00:00Z","exception_countries":{"IN":"2025-05-01T00:00:00Z"}}}"#).unwrap();
        let Event::Account(a) = a else { panic!() };
        assert_eq!(a.portfolio, "B1");
        assert_eq!(a.auth_international.unwrap().exception_countries.len(), 1);
        let Event::Inbound(i) = one(r#"{"kind":"inbound","id":"wamid.IN1","at":"2025-07-01T10:00:00Z","waba":"W1","phone":"15550001111","user":"+5511988887777","entry_point":"ctwa"}"#).unwrap() else { panic!() };
        assert_eq!(i.user.unwrap().get(), 5_511_988_887_777);
        assert_eq!(i.entry_point, Some(EntryPoint::Ctwa));
        let Event::Outbound(o) = one(r#"{"kind":"outbound","id":"wamid.OUT1","at":1751364300,"waba":"W1","phone":"15550001111","user":"5511988887777","type":"template","category":"utility"}"#).unwrap() else { panic!() };
        assert_eq!(o.kind, MessageKind::Template(Category::Utility));
        assert_eq!(o.at, 1_751_364_300_000);
        assert_eq!(o.agent, None);
        let Event::Outbound(o) = one(r#"{"kind":"outbound","id":"wamid.OUT2","at":1751364300,"waba":"W1","phone":"15550001111","user":"5511988887777","type":"text","agent":"a\u00e9"}"#).unwrap() else { panic!() };
        assert_eq!(o.agent.as_deref(), Some("aé"));
        let e = one(r#"{"kind":"outbound","id":"x","at":1751364300,"waba":"W1","phone":"1555","user":"5511","type":"text","agent":" "}"#).unwrap_err();
        assert_eq!(e.field, "agent");
        let Event::Status(s) =
            one(r#"{"kind":"status","id":"wamid.OUT1","at":"1751364302","status":"delivered"}"#)
                .unwrap()
        else {
            panic!()
        };
        assert_eq!(s.status, DeliveryStatus::Delivered);
    }

    #[test]
    fn account_defaults() {
        let Event::Account(a) = one(r#"{"kind":"account","waba":"W9","currency":"EUR"}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(a.portfolio, "W9");
        assert_eq!(a.timezone, chrono_tz::UTC);
    }

    #[test]
    fn errors_name_line_field_and_reason() {
        let e = one(r#"{"kind":"outbound","id":"x","at":"2025-07-01T10:00:00Z","waba":"W1","phone":"15550001111","user":"55119","type":"template"}"#).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (7, "category"));
        let e = one(
            r#"{"kind":"inbound","id":"x","at":"yesterday","waba":"W1","phone":"1","user":"2"}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "at");
        assert!(e.to_string().contains("line 7: field 'at'"), "{e}");
        let e = one(r#"{"kind":"inbound","id":"x","at":"2025-07-01T10:00:00Z","waba":"W1","phone":"1555","user":"55-11"}"#).unwrap_err();
        assert_eq!(e.field, "user");
        let e = one(r#"{"kind":"account","waba":"W1","currency":"USD","timezone":"Mars/Olympus"}"#)
            .unwrap_err();
        assert_eq!(e.field, "timezone");
        let e = one(r#"{"kind":"account","waba":"W1"}"#).unwrap_err();
        assert_eq!(e.field, "currency");
        let e = one(r#"{"kind":"message"}"#).unwrap_err();
        assert_eq!(e.field, "kind");
        let e = one("{not json").unwrap_err();
        assert!(e.why.contains("not a JSON object"));
        let e = one(r#"{"kind":"outbound","id":"x","at":"2025-07-01T10:00:00Z","waba":"W1","phone":"1555","user":"5511","type":"text","category":"marketing"}"#).unwrap_err();
        assert_eq!(e.field, "category");
    }

    #[test]
    fn instants_out_of_range_too_precise_or_leap_are_refused_by_field() {
        for at in [
            r#""0000-01-01T00:00:00Z""#,
            r#""9999-12-31T23:59:59Z""#,
            r#""1969-12-31T23:59:59Z""#,
            "-1",
            r#""2025-07-01T10:00:60Z""#,
            r#""2025-07-01T10:00:00.0001Z""#,
        ] {
            let line = format!(
                r#"{{"kind":"inbound","id":"x","at":{at},"waba":"W1","phone":"1555","user":"5511"}}"#
            );
            let e = one(&line).unwrap_err();
            assert_eq!((e.line, e.field.as_str()), (7, "at"), "{at}: {e}");
        }
        // Two events 0.1 ms apart can no longer tie: the finer one is refused, not cut.
        let a =
            one(r#"{"kind":"status","id":"x","at":"2025-07-01T10:00:00.000Z","status":"read"}"#);
        assert!(a.is_ok());
    }

    #[test]
    fn every_string_is_bounded_and_the_error_names_field_and_limit() {
        let long = "x".repeat(300_000);
        let base = r#"{"kind":"outbound","id":"o","at":"2025-07-01T10:05:00Z","waba":"W1","phone":"1555","user":"5511","type":"text","agent":"ana"}"#;
        for (field, max) in [
            ("id", 256),
            ("waba", 64),
            ("phone", 32),
            ("user", 32),
            ("type", 64),
            ("agent", 256),
            ("at", 40),
            ("kind", 64),
        ] {
            let mut v: serde_json::Value = serde_json::from_str(base).unwrap();
            v[field] = serde_json::Value::String(long.clone());
            let line = v.to_string();
            let e = one(&line).unwrap_err();
            assert_eq!(e.field, field);
            assert_eq!(
                e.why,
                format!("is 300000 characters long, more than the limit of {max} characters")
            );
        }
        let e = one(&format!(
            r#"{{"kind":"account","waba":"W1","currency":"USD","portfolio":"{long}"}}"#
        ))
        .unwrap_err();
        assert_eq!(e.field, "portfolio");
        let e = one(&format!(
            r#"{{"kind":"account","waba":"W1","currency":"USD","timezone":"{long}"}}"#
        ))
        .unwrap_err();
        assert_eq!(e.field, "timezone");
        // At the limit, taken.
        let ok = base.replace(r#""id":"o""#, &format!(r#""id":"{}""#, "i".repeat(256)));
        assert!(one(&ok).is_ok());
    }

    #[test]
    fn escaped_strings_are_read() {
        let Event::Status(s) = one(r#"{"kind":"status","id":"wamid.\u0041\"q","at":"2025-07-01T10:00:00Z","status":"read"}"#).unwrap() else { panic!() };
        assert_eq!(s.id, "wamid.A\"q");
    }
}

/// Writes an event as one events.md JSON line (without a newline), the canonical form wabill
/// stores: reading it back with [`parse_line`] gives the same event.
/// Writes a template change as one `template` line (no newline), which reads back the same.
pub fn write_template(out: &mut Vec<u8>, t: &TemplateChange<'_>) {
    use crate::charges::json_str;
    let field = |out: &mut Vec<u8>, name: &str, v: &str| {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        json_str(out, v);
    };
    out.extend_from_slice(b"{\"kind\":\"template\"");
    field(out, "waba", &t.waba);
    field(out, "id", &t.id);
    field(out, "name", &t.name);
    field(out, "language", &t.language);
    field(out, "category", t.category.as_str());
    if let Some(p) = t.previous {
        field(out, "previous_category", p.as_str());
    }
    out.extend_from_slice(b",\"at\":\"");
    crate::time::write_instant(out, t.at);
    out.push(b'"');
    field(out, "source", t.source.as_str());
    if let Some(s) = &t.status {
        field(out, "status", s);
    }
    out.push(b'}');
}

pub fn write_event(out: &mut Vec<u8>, e: &Event<'_>) {
    use crate::charges::json_str;
    use crate::time::write_instant;
    let mut n = itoa::Buffer::new();
    let at = |out: &mut Vec<u8>, ms: UnixMs| {
        out.extend_from_slice(b",\"at\":\"");
        write_instant(out, ms);
        out.push(b'"');
    };
    let field = |out: &mut Vec<u8>, name: &str, v: &str| {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        json_str(out, v);
    };
    match e {
        Event::Account(a) => {
            out.extend_from_slice(b"{\"kind\":\"account\"");
            field(out, "waba", &a.waba);
            field(out, "portfolio", &a.portfolio);
            field(out, "timezone", a.timezone.name());
            field(out, "currency", a.currency.as_str());
            if let Some(c) = &a.primary_country {
                field(out, "primary_country", c);
            }
            if let Some(ai) = &a.auth_international {
                out.extend_from_slice(b",\"auth_international\":{\"start\":\"");
                write_instant(out, ai.start);
                out.extend_from_slice(b"\"");
                if !ai.exception_countries.is_empty() {
                    out.extend_from_slice(b",\"exception_countries\":{");
                    for (i, (c, t)) in ai.exception_countries.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        json_str(out, c);
                        out.extend_from_slice(b":\"");
                        write_instant(out, *t);
                        out.push(b'"');
                    }
                    out.push(b'}');
                }
                out.push(b'}');
            }
        }
        Event::Inbound(i) => {
            out.extend_from_slice(b"{\"kind\":\"inbound\"");
            field(out, "id", &i.id);
            at(out, i.at);
            field(out, "waba", &i.waba);
            field(out, "phone", n.format(i.phone.get()));
            if let Some(u) = i.user {
                field(out, "user", n.format(u.get()));
            }
            if let Some(b) = &i.user_id {
                field(out, "user_id", b.as_str());
            }
            if let Some(ep) = i.entry_point {
                field(out, "entry_point", ep.as_str());
            }
            if let Some(c) = &i.change {
                field(out, "system", c.kind.as_str());
                if let Some(u) = c.user {
                    field(out, "new_user", n.format(u.get()));
                }
                if let Some(b) = &c.user_id {
                    field(out, "new_user_id", b.as_str());
                }
            }
        }
        Event::Outbound(o) => {
            out.extend_from_slice(b"{\"kind\":\"outbound\"");
            field(out, "id", &o.id);
            at(out, o.at);
            field(out, "waba", &o.waba);
            field(out, "phone", n.format(o.phone.get()));
            if let Some(u) = o.user {
                field(out, "user", n.format(u.get()));
            }
            if let Some(b) = &o.user_id {
                field(out, "user_id", b.as_str());
            }
            match o.kind {
                MessageKind::Template(c) => {
                    field(out, "type", "template");
                    field(out, "category", c.as_str());
                }
                MessageKind::NonTemplate => field(out, "type", "text"),
            }
            if o.marketing_messages_api {
                field(out, "api", "marketing_messages");
            }
            if let Some(a) = &o.agent {
                field(out, "agent", a);
            }
        }
        Event::Status(s) => {
            out.extend_from_slice(b"{\"kind\":\"status\"");
            field(out, "id", &s.id);
            at(out, s.at);
            field(out, "status", s.status.as_str());
            if let Some(m) = &s.message {
                field(out, "waba", &m.waba);
                field(out, "phone", n.format(m.phone.get()));
                if let Some(u) = m.user {
                    field(out, "user", n.format(u.get()));
                }
                if let Some(b) = &m.user_id {
                    field(out, "user_id", b.as_str());
                }
                if let Some(c) = m.category {
                    field(out, "category", c.as_str());
                }
            }
        }
    }
    out.push(b'}');
}

#[cfg(test)]
mod write_tests {
    use super::*;

    #[test]
    fn written_events_read_back_the_same() {
        let lines = [
            r#"{"kind":"account","waba":"W1","portfolio":"B1","timezone":"America/Sao_Paulo","currency":"USD","primary_country":"BR","auth_international":{"start":"2025-03-01T00:00:00Z","exception_countries":{"IN":"2025-05-01T00:00:00Z"}}}"#,
            r#"{"kind":"account","waba":"W2","currency":"EUR"}"#,
            r#"{"kind":"inbound","id":"wamid.\"q","at":"2025-07-01T10:00:00.250Z","waba":"W1","phone":"15550001111","user":"5511988887777","entry_point":"page_cta"}"#,
            r#"{"kind":"outbound","id":"o1","at":1751364300,"waba":"W1","phone":"15550001111","user":"5511988887777","type":"template","category":"marketing","api":"marketing_messages","agent":"ana"}"#,
            r#"{"kind":"outbound","id":"o2","at":"2025-07-01T10:05:00Z","waba":"W1","phone":"15550001111","user":"5511988887777","type":"image"}"#,
            r#"{"kind":"status","id":"o1","at":"2025-07-01T10:05:02Z","status":"failed"}"#,
            r#"{"kind":"inbound","id":"i2","at":"2026-08-03T10:00:00Z","waba":"W1","phone":"15550001111","user_id":"BR.1502576394655843","entry_point":"ctwa"}"#,
            r#"{"kind":"outbound","id":"o3","at":"2026-08-03T10:05:00Z","waba":"W1","phone":"15550001111","user":"5511988887777","user_id":"US.ENT.11815799212886844830","type":"text"}"#,
            r#"{"kind":"status","id":"o9","at":"2026-08-03T10:05:02Z","status":"sent","waba":"W1","phone":"15550001111","user_id":"BR.1","category":"utility"}"#,
            r#"{"kind":"inbound","id":"s1","at":"2026-08-03T10:30:00Z","waba":"W1","phone":"15550001111","user":"5511988887777","user_id":"BR.1","system":"user_changed_number","new_user":"5521977776666","new_user_id":"BR.2"}"#,
        ];
        for l in lines {
            let mut p = Parsed::default();
            parse_line(l, 1, &mut p).unwrap();
            let mut out = Vec::new();
            write_event(&mut out, &p.events[0]);
            let text = String::from_utf8(out).unwrap();
            let mut q = Parsed::default();
            parse_line(&text, 1, &mut q).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(p.events, q.events, "{text}");
        }
    }

    fn one(line: &str) -> Result<(Event<'_>, Option<TemplateRef<'_>>), LineError> {
        let mut p = Parsed::default();
        parse_line(line, 7, &mut p)?;
        assert_eq!(p.events.len(), 1);
        let t = p.template_refs.pop().map(|(i, t)| {
            assert_eq!(i, 0);
            t
        });
        Ok((p.events.pop().unwrap(), t))
    }

    #[test]
    fn outbound_events_name_their_template_or_a_category_never_both() {
        use wabill_rating::templates::TemplateRef;
        let base = r#"{"kind":"outbound","id":"m","at":"2026-08-03T10:05:00Z","waba":"W1","phone":"15550001111","user":"5511988887777","type":"template""#;
        let l1 = format!(r#"{base},"template_id":"111"}}"#);
        let l2 = format!(r#"{base},"template":"promo","language":"pt_BR"}}"#);
        let l3 = format!(r#"{base},"category":"utility"}}"#);
        let (Event::Outbound(_), t) = one(&l1).unwrap() else {
            panic!()
        };
        assert_eq!(t, Some(TemplateRef::Id("111".into())));
        let (Event::Outbound(_), t) = one(&l2).unwrap() else {
            panic!()
        };
        assert_eq!(
            t,
            Some(TemplateRef::NameLanguage {
                name: "promo".into(),
                language: "pt_BR".into()
            })
        );
        let (Event::Outbound(o), t) = one(&l3).unwrap() else {
            panic!()
        };
        assert_eq!(
            (t, o.kind),
            (None, MessageKind::Template(Category::Utility))
        );
        for (tail, field) in [
            (r#","template_id":"111","category":"utility"}"#, "category"),
            (r#","template":"promo"}"#, "language"),
            (r#","language":"pt_BR"}"#, "template"),
            (
                r#","template_id":"111","template":"promo","language":"pt_BR"}"#,
                "template_id",
            ),
            (r#","template_id":" "}"#, "template_id"),
            (r#"}"#, "category"),
        ] {
            let e = one(&format!("{base}{tail}")).unwrap_err();
            assert_eq!(e.field, field, "{tail}: {e}");
        }
        let e = one(r#"{"kind":"outbound","id":"m","at":"2026-08-03T10:05:00Z","waba":"W1","phone":"15550001111","user":"5511988887777","type":"text","template_id":"1"}"#).unwrap_err();
        assert_eq!(e.field, "template_id");
        let long = "x".repeat(513);
        let e = one(&format!(r#"{base},"template":"{long}","language":"en"}}"#)).unwrap_err();
        assert_eq!(e.field, "template");
        assert!(e.why.contains("512"), "{}", e.why);
    }

    #[test]
    fn template_lines_and_metas_template_webhooks_are_read_and_written_back() {
        use wabill_rating::templates::ChangeSource;
        let mut p = Parsed::default();
        let lines = [
            r#"{"kind":"template","waba":"W1","id":"111","name":"order_update","language":"en_US","category":"utility","at":"2026-08-01T00:00:00Z","source":"import","status":"APPROVED"}"#,
            r#"{"object":"whatsapp_business_account","entry":[{"id":"W1","time":1785888000,"changes":[{"field":"template_category_update","value":{"message_template_id":111,"message_template_name":"order_update","message_template_language":"en_US","previous_category":"UTILITY","new_category":"MARKETING"}}]}]}"#,
            r#"{"object":"whatsapp_business_account","entry":[{"id":"W1","time":1785801600,"changes":[{"field":"message_template_status_update","value":{"event":"APPROVED","message_template_id":222,"message_template_name":"otp","message_template_language":"en","reason":"NONE","message_template_category":"AUTHENTICATION","unknown_field":{"x":1}}}]}]}"#,
        ];
        for (i, l) in lines.iter().enumerate() {
            parse_line(l, i as u64 + 1, &mut p).unwrap_or_else(|e| panic!("{l}: {e}"));
        }
        assert_eq!(p.templates.len(), 3);
        assert_eq!(p.template_lines, vec![1, 2, 3]);
        let c = &p.templates[1];
        assert_eq!(
            (c.id.as_ref(), c.category, c.previous, c.at, c.source),
            (
                "111",
                Category::Marketing,
                Some(Category::Utility),
                1_785_888_000_000,
                ChangeSource::Webhook
            )
        );
        let c = &p.templates[2];
        assert_eq!(
            (c.category, c.status.as_deref()),
            (Category::Authentication, Some("APPROVED"))
        );
        for t in &p.templates {
            let mut out = Vec::new();
            write_template(&mut out, t);
            let text = String::from_utf8(out).unwrap();
            let mut q = Parsed::default();
            parse_line(&text, 1, &mut q).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(&q.templates[0], t, "{text}");
        }

        // An impending change (no previous_category) and a status change naming no category
        // change nothing: counted as ignored items.
        let mut p = Parsed::default();
        parse_line(r#"{"object":"whatsapp_business_account","entry":[{"id":"W1","time":1785888000,"changes":[{"field":"template_category_update","value":{"message_template_id":111,"message_template_name":"a","message_template_language":"en","correct_category":"UTILITY","new_category":"MARKETING","category_update_timestamp":1786492800}},{"field":"message_template_status_update","value":{"event":"PENDING_DELETION","message_template_id":3,"message_template_name":"b","message_template_language":"en","reason":null}}]}]}"#, 1, &mut p).unwrap();
        assert_eq!((p.templates.len(), p.ignored_webhook_items), (0, 2));

        for (line, field) in [
            (
                r#"{"object":"whatsapp_business_account","entry":[{"id":"W1","changes":[{"field":"template_category_update","value":{"message_template_id":1,"message_template_name":"a","message_template_language":"en","previous_category":"UTILITY","new_category":"MARKETING"}}]}]}"#,
                "entry[0].time",
            ),
            (
                r#"{"object":"whatsapp_business_account","entry":[{"id":"W1","time":1,"changes":[{"field":"template_category_update","value":{"message_template_name":"a","message_template_language":"en","previous_category":"UTILITY","new_category":"MARKETING"}}]}]}"#,
                "entry[0].changes[0].value.message_template_id",
            ),
            (
                r#"{"object":"whatsapp_business_account","entry":[{"id":"W1","time":1,"changes":[{"field":"template_category_update","value":{"message_template_id":1,"message_template_name":"a","message_template_language":"en","previous_category":"UTILITY","new_category":"SERVICE"}}]}]}"#,
                "entry[0].changes[0].value.new_category",
            ),
            (
                r#"{"object":"whatsapp_business_account","entry":[{"id":"W1","time":1,"changes":[{"field":"message_template_status_update","value":{"event":"APPROVED","message_template_id":1,"message_template_language":"en","message_template_category":"UTILITY"}}]}]}"#,
                "entry[0].changes[0].value.message_template_name",
            ),
            (
                r#"{"kind":"template","waba":"W1","id":"1","name":"a","language":"en","category":"utility","at":"2026-08-01T00:00:00Z","source":"guess"}"#,
                "source",
            ),
            (
                r#"{"kind":"template","waba":"W1","id":"1","name":"a","category":"utility","at":"2026-08-01T00:00:00Z"}"#,
                "language",
            ),
        ] {
            let mut p = Parsed::default();
            let e = parse_line(line, 1, &mut p).unwrap_err();
            assert_eq!(e.field, field, "{line}: {e}");
            assert!(p.templates.is_empty());
        }
    }
}
