//! Why an invoice cannot be made: business outcomes with stable snake_case codes. Malformed
//! files are [`crate::SetupError`] and [`crate::ChargeLineError`]; a send refused for want of a
//! licence is [`crate::LicenceRequired`] (`license_required`).

use wabill_rating::{Currency, Date, Decimal, Month};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BillingError {
    #[error("no plan version is in force for {month} (add one with an earlier effective_from)")]
    NoPlan { month: Month },
    #[error("no FX rate {from}→{to} dated on or before {date} in the set-up's fx table (needed for {month})")]
    MissingFxRate {
        from: Currency,
        to: Currency,
        date: Date,
        month: Month,
    },
    #[error("previous invoice {invoice} is a draft: only finalized invoices settle a month")]
    PreviousNotFinal { invoice: String },
    #[error("{month} is already finalized (invoice {invoice}); a finalized invoice never changes: usage that arrives later is billed as an adjustment on the next invoice")]
    AlreadyFinalized { invoice: String, month: Month },
    #[error("previous invoice {invoice} is for {its_month}, which is not before {month}")]
    PreviousAfterMonth {
        invoice: String,
        its_month: Month,
        month: Month,
    },
    #[error("previous invoice {invoice} belongs to tenant '{tenant}'")]
    PreviousOtherTenant { invoice: String, tenant: String },
    #[error("previous invoice {invoice} is in {currency}, but the tenant is billed in {expected}")]
    PreviousCurrency {
        invoice: String,
        currency: Currency,
        expected: Currency,
    },
    #[error("two previous invoices for {month}")]
    DuplicatePrevious { month: Month },
    #[error("charge '{charge}' names agent '{agent}', who is not an agent of the tenant")]
    UnknownAgent { charge: String, agent: String },
    #[error("charge '{id}' appears twice with different content")]
    ConflictingCharge { id: String },
    #[error("charge '{id}' costs {amount} {currency} but has neither sent_at nor billed_at, so it belongs to no month")]
    ChargeWithoutInstant {
        id: String,
        amount: Decimal,
        currency: Currency,
    },
}

impl BillingError {
    /// The stable code, as printed by the CLI (`[missing_fx_rate] ...`).
    pub fn code(&self) -> &'static str {
        match self {
            BillingError::NoPlan { .. } => "no_plan",
            BillingError::MissingFxRate { .. } => "missing_fx_rate",
            BillingError::PreviousNotFinal { .. } => "previous_not_final",
            BillingError::AlreadyFinalized { .. } => "already_finalized",
            BillingError::PreviousAfterMonth { .. } => "previous_after_month",
            BillingError::PreviousOtherTenant { .. } => "previous_other_tenant",
            BillingError::PreviousCurrency { .. } => "previous_currency",
            BillingError::DuplicatePrevious { .. } => "duplicate_previous",
            BillingError::UnknownAgent { .. } => "unknown_agent",
            BillingError::ConflictingCharge { .. } => "conflicting_charge",
            BillingError::ChargeWithoutInstant { .. } => "charge_without_instant",
        }
    }
}
