//! wabill's tenant billing: what a platform that resells WhatsApp bills each of its customers
//! (tenants) per month. Licences per agent (prorated by day), Meta's usage passed through at
//! cost or with a markup, an included budget per block of active agents with the usage above
//! it billed at cost the next month, FX conversion with the operator's dated rates, and
//! adjustments for usage that arrives after a month was finalized.
//!
//! Pure, like the rating core: no IO, no async, no clock. A set-up ([`TenantSetup`]), the
//! month, its charge lines ([`UsageCharge`]) and the tenant's finalized invoices go in; an
//! [`Invoice`] comes out, the same bytes for the same inputs whatever their order. Rules and
//! their reasons: docs/decisions.md D31-D40.
//!
//! - `setup`: tenants, teams, agents, dated licence records, plan versions, the FX table;
//!   licence coverage and [`TenantSetup::may_send`] (`license_required`).
//! - `charges`: charge lines as `wabill rate` writes them.
//! - `invoice`: the invoice of a month ([`invoice()`]).
//! - `exact`: the exact prorations and conversions behind each line.
//! - `render`: JSON, CSV and printable HTML.
//! - `alerts`: which budget alerts to emit, once each per month.

pub mod alerts;
pub mod charges;
pub mod error;
pub mod exact;
pub mod invoice;
pub mod render;
mod serde_text;
pub mod setup;

pub use alerts::{alerts_due, Alert, AlertState, Threshold};
pub use charges::{parse_charges, CallUsage, ChargeLineError, UsageCharge, CALL_CATEGORY};
pub use error::BillingError;
pub use invoice::{
    invoice, BudgetSettlement, BudgetSummary, FxUsed, Invoice, InvoiceInput, Line, LineKind, Note,
    Status,
};
pub use setup::{
    ActiveAgentRule, Agent, Budget, FxRate, LicenceAssignment, LicenceRequired, LicenceTarget,
    PlanVersion, SetupError, Team, Tenant, TenantSetup,
};
