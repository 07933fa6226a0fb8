//! The rater's input: accounts and message events, already parsed and trusted.
//! Wire formats (JSON Lines, Meta webhooks) are read by `wabill-formats`, which builds these.

use crate::model::{Category, EntryPoint};
use crate::money::Currency;
use crate::time::UnixMs;
use chrono_tz::Tz;
use std::borrow::Cow;
use std::fmt;

/// A phone number as digits with its country code (Meta's `wa_id`), stored as a number: E.164
/// numbers have at most 15 digits and never start with 0, so the digits round-trip exactly.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Msisdn(u64);

impl Msisdn {
    /// Parses digits with an optional leading `+`.
    pub fn parse(s: &str) -> Result<Msisdn, &'static str> {
        let digits = s.strip_prefix('+').unwrap_or(s);
        if digits.is_empty() {
            return Err("is empty");
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("must be digits only, with the country code (a leading + is allowed)");
        }
        if digits.len() > 15 {
            return Err("has more than 15 digits");
        }
        if digits.starts_with('0') {
            return Err("must start with the country code, not 0");
        }
        Ok(Msisdn(digits.parse().expect("checked digits")))
    }
    pub fn from_u64(v: u64) -> Option<Msisdn> {
        (v > 0 && v < 1_000_000_000_000_000).then_some(Msisdn(v))
    }
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Authentication-international eligibility of a WABA.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AuthInternational<'a> {
    pub start: UnixMs,
    /// Country (ISO 3166 alpha-2) → its own start instant.
    pub exception_countries: Vec<(Cow<'a, str>, UnixMs)>,
}

/// A WhatsApp Business Account and what its rating depends on.
#[derive(Clone, PartialEq, Debug)]
pub struct Account<'a> {
    pub waba: Cow<'a, str>,
    /// Business portfolio; volume tiers are pooled per portfolio.
    pub portfolio: Cow<'a, str>,
    pub timezone: Tz,
    pub currency: Currency,
    pub primary_country: Option<Cow<'a, str>>,
    pub auth_international: Option<AuthInternational<'a>>,
}

/// A message from a user to the business: opens or refreshes the customer service window.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Inbound<'a> {
    pub id: Cow<'a, str>,
    pub at: UnixMs,
    pub waba: Cow<'a, str>,
    pub phone: Msisdn,
    pub user: Msisdn,
    pub entry_point: Option<EntryPoint>,
}

/// What the business sent: a template of a category, or a non-template (service) message.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MessageKind {
    /// Marketing, utility or authentication.
    Template(Category),
    NonTemplate,
}

/// A message the business sent.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Outbound<'a> {
    pub id: Cow<'a, str>,
    pub at: UnixMs,
    pub waba: Cow<'a, str>,
    pub phone: Msisdn,
    pub user: Msisdn,
    pub kind: MessageKind,
    /// Sent through the Marketing Messages API (`"api":"marketing_messages"`).
    pub marketing_messages_api: bool,
    /// The platform's agent who sent the message, for tenant billing; not used for rating.
    pub agent: Option<Cow<'a, str>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sent" => DeliveryStatus::Sent,
            "delivered" => DeliveryStatus::Delivered,
            "read" => DeliveryStatus::Read,
            "failed" => DeliveryStatus::Failed,
            _ => return None,
        })
    }
}

/// A delivery status of an outbound message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Status<'a> {
    pub id: Cow<'a, str>,
    pub at: UnixMs,
    pub status: DeliveryStatus,
}

/// One input line.
#[derive(Clone, PartialEq, Debug)]
pub enum Event<'a> {
    Account(Box<Account<'a>>),
    Inbound(Inbound<'a>),
    Outbound(Outbound<'a>),
    Status(Status<'a>),
}
