//! The rater's input: accounts and message events, already parsed and trusted.
//! Wire formats (JSON Lines, Meta webhooks) are read by `wabill-formats`, which builds these.

use crate::model::{Category, EntryPoint};
use crate::money::Currency;
use crate::time::UnixMs;
use chrono_tz::Tz;
use std::borrow::Cow;
use std::fmt;
use std::num::NonZeroU64;

/// A phone number as digits with its country code (Meta's `wa_id`), stored as a number: E.164
/// numbers have at most 15 digits and never start with 0, so the digits round-trip exactly
/// (and an absent number, `Option<Msisdn>`, takes no more room than a number).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Msisdn(NonZeroU64);

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
        let v: u64 = digits.parse().expect("checked digits");
        Ok(Msisdn(
            NonZeroU64::new(v).expect("starts with a non-zero digit"),
        ))
    }
    pub fn from_u64(v: u64) -> Option<Msisdn> {
        if v >= 1_000_000_000_000_000 {
            return None;
        }
        NonZeroU64::new(v).map(Msisdn)
    }
    pub fn get(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A business-scoped user id (BSUID, Meta's `user_id`): a WhatsApp user as one business
/// portfolio knows them, given beside or instead of the phone number (a user with a username may
/// withhold it). Two uppercase letters (the ISO 3166 country of the user's number), a dot, and
/// 1 to 128 ASCII letters and digits (`BR.1502576394655843`); a parent BSUID, shared by the
/// portfolios of one enterprise, has `ENT.` after the country (`US.ENT.11815799212886844830`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Bsuid<'a>(Cow<'a, str>);

/// Most characters after the country and the dot (after `ENT.` for a parent BSUID).
pub const BSUID_MAX_ALPHANUMERICS: usize = 128;

impl<'a> Bsuid<'a> {
    /// Checks Meta's form; the error says what is wrong, without the value.
    pub fn parse(s: Cow<'a, str>) -> Result<Bsuid<'a>, &'static str> {
        let b = s.as_bytes();
        if b.len() < 4 || !b[0].is_ascii_uppercase() || !b[1].is_ascii_uppercase() || b[2] != b'.' {
            return Err(
                "must start with a two-letter ISO country code and a dot, like BR.1502576394655843",
            );
        }
        let rest = s[3..].strip_prefix("ENT.").unwrap_or(&s[3..]);
        if rest.is_empty() || rest.len() > BSUID_MAX_ALPHANUMERICS {
            return Err("must have 1 to 128 letters and digits after the country code");
        }
        if !rest.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err("must have only letters and digits after the country code");
        }
        Ok(Bsuid(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The ISO 3166 alpha-2 country the id starts with.
    pub fn country(&self) -> &str {
        &self.0[..2]
    }
    /// A parent BSUID (`CC.ENT.…`), shared across an enterprise's portfolios.
    pub fn is_parent(&self) -> bool {
        self.0[3..].starts_with("ENT.")
    }
}

impl fmt::Display for Bsuid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Meta's system messages that announce a change of the user's identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum IdentityChangeKind {
    /// `user_changed_number`: a new phone number (and with it a new BSUID).
    UserChangedNumber,
    /// `user_changed_user_id`: a new BSUID only.
    UserChangedUserId,
}

impl IdentityChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityChangeKind::UserChangedNumber => "user_changed_number",
            IdentityChangeKind::UserChangedUserId => "user_changed_user_id",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user_changed_number" => Some(IdentityChangeKind::UserChangedNumber),
            "user_changed_user_id" => Some(IdentityChangeKind::UserChangedUserId),
            _ => None,
        }
    }
}

/// The identity a user changed to (decisions.md D103): the same person as the inbound event's
/// `user`/`user_id`, which are the old identity.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct IdentityChange<'a> {
    pub kind: IdentityChangeKind,
    pub user: Option<Msisdn>,
    pub user_id: Option<Bsuid<'a>>,
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
/// The user is known by phone number, by BSUID, or both (at least one): an event with both
/// links them, and every event of either follows the same person (decisions.md D101).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Inbound<'a> {
    pub id: Cow<'a, str>,
    pub at: UnixMs,
    pub waba: Cow<'a, str>,
    pub phone: Msisdn,
    pub user: Option<Msisdn>,
    pub user_id: Option<Bsuid<'a>>,
    pub entry_point: Option<EntryPoint>,
    /// A system message announcing a new number or BSUID: it links the old identity (`user`,
    /// `user_id`) with the new one and opens no window (it is not the user writing).
    pub change: Option<Box<IdentityChange<'a>>>,
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
    /// The user's phone number and BSUID, at least one (as for [`Inbound`]).
    pub user: Option<Msisdn>,
    pub user_id: Option<Bsuid<'a>>,
    /// For a message naming its template instead of a category (kept beside the events, so
    /// that other messages pay nothing for it), the category in force at `at` once
    /// [`crate::templates::resolve`] has run (decisions.md D153); until then a placeholder.
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
    /// What Meta's status webhook says of the message itself, when it says enough to rate a
    /// message known from its statuses alone (decisions.md D110).
    pub message: Option<Box<StatusMessage<'a>>>,
}

/// The message a status webhook is about: its WABA (the entry's id), business phone
/// (`metadata`), recipient (`recipient_id`, `recipient_user_id`, at least one) and the category
/// Meta bills it in (`pricing.category`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StatusMessage<'a> {
    pub waba: Cow<'a, str>,
    pub phone: Msisdn,
    pub user: Option<Msisdn>,
    pub user_id: Option<Bsuid<'a>>,
    pub category: Option<Category>,
}

/// One input line.
#[derive(Clone, PartialEq, Debug)]
pub enum Event<'a> {
    Account(Box<Account<'a>>),
    Inbound(Inbound<'a>),
    Outbound(Outbound<'a>),
    Status(Status<'a>),
}
