//! wabill's rating core: what each WhatsApp Business Platform message costs under Meta's rules
//! of its date.
//!
//! This crate is pure: no IO, no async, no clock, no randomness. Accounts and events come in,
//! charges come out, and the same set of events always gives the same charges byte for byte,
//! whatever their order (see `rater`). The rules implemented are `docs/rules.md`.

pub mod calls;
pub mod changes;
pub mod data;
pub mod event;
mod identity;
pub mod listing;
pub mod markets;
pub mod model;
pub mod money;
pub mod rater;
pub mod rates;
pub mod tariff;
pub mod templates;
pub mod time;

pub use event::{
    Account, AuthInternational, Bsuid, DeliveryStatus, Event, IdentityChange, IdentityChangeKind,
    Inbound, MessageKind, Msisdn, Outbound, Status, StatusMessage,
};
pub use markets::{CountryId, MarketId, MarketTable};
pub use model::{Category, EntryPoint, Era, PricingModel, PricingType};
pub use money::{Currency, Decimal};
pub use rater::{
    rate, rate_chunks, rate_keyed_chunks, Charge, ChunkKeys, Notes, RateOptions, Rated,
    RatingError, StateStats,
};
pub use rates::{RateBook, RateKey, RateVersion, TierRange};
pub use tariff::Tariff;
pub use time::{Date, Month, UnixMs};
