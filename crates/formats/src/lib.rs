//! wabill's public formats (`docs/events.md`): events and Meta webhooks in, charges out, and
//! Meta's published rate-card CSV files. The rating core never sees a byte of these.

pub mod body;
pub mod calls;
pub mod charges;
pub mod events;
mod flat;
pub mod limits;
pub mod meta_call_csv;
pub mod meta_csv;
pub mod templates;
pub mod time;
pub mod webhook;

pub use events::{parse_envelope, parse_line, LineError, MetaPricing, Parsed};
pub use webhook::{parse_envelope_within, EnvelopeError};
