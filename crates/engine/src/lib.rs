//! wabill's service domain, with no HTTP in it: what `wabill serve` does between a request and
//! its answer, and what `wabill reconcile` and `wabill tenants` share with it.
//!
//! - [`engine`]: events stored before they are acknowledged, then the (portfolio, month)s they
//!   touch re-rated by the pure rating core, kept in memory between rounds ([`months`]);
//! - [`working_set`]: the last week of events and the month's counters in memory, from which
//!   [`check`] answers "may this be sent now, and at what price";
//! - [`caller`]: who asks and the tenant scope of every read and write;
//! - [`tenants`], [`alerts`], [`reconcile`], [`usage`]: tenant billing, budget alerts (delivered
//!   through the [`alerts::AlertPoster`] port), Meta's figures against ours, Meta-shaped usage;
//! - [`clock`]: the one way the present comes in.
//!
//! The HTTP crate (`wabill-server`) maps requests to these calls and their results to answers.

pub mod alerts;
pub mod audit;
pub mod cache;
pub mod caller;
pub mod charges;
pub mod check;
pub mod clock;
pub mod destinations;
pub mod engine;
pub mod links;
pub mod meta;
pub mod metrics;
pub mod months;
pub mod reconcile;
pub mod secrets;
pub mod tenants;
pub mod usage;
pub mod workers;
pub mod working_set;

/// How far back the service reads events for a decision: a month's re-rating reads from this
/// long before the month's start, and a send check reads the pair's events of this long before
/// its instant. Windows and conversations open at an instant depend on at most 96 hours before
/// it (decisions.md D23); a week leaves room.
pub const LOOKBACK_MS: wabill_rating::UnixMs = 7 * 24 * 3_600_000;

pub use caller::{hash_key, Caller};
pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::Engine;
