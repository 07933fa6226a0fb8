//! A tenant's invoice for one calendar month of its timezone, in its currency: licence lines,
//! usage lines by category × market, the included budget applied, the previous month's
//! overage and adjustments for usage that arrived after an earlier month was finalized.
//!
//! [`invoice`] is a pure function of the set-up, the month, the charges and the tenant's
//! finalized invoices of earlier months. Every line keeps its exact value (to 10⁻⁹, see
//! [`crate::exact`]) and its amount rounded once to the currency's minor unit, half away from
//! zero; the total is the sum of the rounded amounts and is never rounded again
//! (docs/decisions.md D31-D39).

use crate::charges::{CallUsage, UsageCharge};
use crate::error::BillingError;
use crate::exact::{convert, prorate};
use crate::serde_text::{opt_text, text};
use crate::setup::{ActiveAgentRule, Agent, TenantSetup};
use serde::{Deserialize, Serialize};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use wabill_rating::time::local_date;
use wabill_rating::{Currency, Date, Decimal, Month};

/// The version of the invoice document written by this code.
pub const INVOICE_VERSION: u32 = 1;

/// What to invoice.
#[derive(Clone, Copy, Debug)]
pub struct InvoiceInput<'a> {
    pub setup: &'a TenantSetup,
    pub month: Month,
    /// Charge lines of any WABAs and months: only the tenant's WABAs count; the month's lines
    /// are billed, earlier months' lines are compared with the finalized invoices.
    pub charges: &'a [UsageCharge],
    /// The tenant's finalized invoices of earlier months (at least the previous month's, for
    /// its overage, and those of any month whose late usage should be billed now).
    pub previous: &'a [Invoice],
    pub finalize: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    Final,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// One agent's licence for the days held in the month.
    Licence,
    /// Meta's cost of one category × market (× WABA currency), converted and marked up.
    Usage,
    /// Meta's cost of the charged calls of one market (× WABA currency), converted and marked
    /// up like messages.
    CallUsage,
    /// The included budget, up to the month's usage (negative).
    BudgetApplied,
    /// Usage above the included budget, moved to next month's invoice (negative).
    OverageDeferred,
    /// The previous month's usage above its included budget, at cost.
    Overage,
    /// Usage of a finalized month that arrived or changed after finalization.
    Adjustment,
    /// The finalized month's included budget applied to (or released by) its adjustments.
    AdjustmentBudget,
}

impl LineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Licence => "licence",
            LineKind::Usage => "usage",
            LineKind::CallUsage => "call_usage",
            LineKind::BudgetApplied => "budget_applied",
            LineKind::OverageDeferred => "overage_deferred",
            LineKind::Overage => "overage",
            LineKind::Adjustment => "adjustment",
            LineKind::AdjustmentBudget => "adjustment_budget",
        }
    }
}

/// One invoice line. `amount` = `exact` rounded to the currency's minor unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub kind: LineKind,
    /// The month the line is about (the invoice's; the earlier month of an overage or
    /// adjustment).
    #[serde(with = "text")]
    pub month: Month,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Licence records held (licence lines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licences: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market: Option<String>,
    /// Charged messages (usage), changed charges (adjustment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u64>,
    /// Billed minutes (pulses / 10) of the charged calls (call lines only).
    #[serde(default, with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub minutes: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_in_month: Option<u32>,
    /// Price per licence per whole month.
    #[serde(default, with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Decimal>,
    /// Meta's exact cost, in `cost_currency`.
    #[serde(default, with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub cost: Option<Decimal>,
    #[serde(default, with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub cost_currency: Option<Currency>,
    #[serde(default, with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub fx_rate: Option<Decimal>,
    #[serde(default, with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub markup_percent: Option<Decimal>,
    /// The exact value, to 10⁻⁹ (truncated where the fraction does not end there).
    #[serde(with = "text")]
    pub exact: Decimal,
    /// The amount billed: `exact` rounded to the minor unit, half away from zero.
    #[serde(with = "text")]
    pub amount: Decimal,
}

/// How the month's included budget was worked out and used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetSummary {
    pub active_agent_rule: ActiveAgentRule,
    pub active_agents: u32,
    pub per_agents: u32,
    pub blocks: u32,
    #[serde(with = "text")]
    pub amount_per_block: Decimal,
    #[serde(with = "text")]
    pub budget_currency: Currency,
    #[serde(default, with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub fx_rate: Option<Decimal>,
    /// The budget in the invoice's currency, rounded.
    #[serde(with = "text")]
    pub included: Decimal,
    /// The month's usage at cost (the sum of its usage lines).
    #[serde(with = "text")]
    pub used: Decimal,
    #[serde(with = "text")]
    pub applied: Decimal,
    /// Usage above the budget, billed on the next month's invoice.
    #[serde(with = "text")]
    pub overage: Decimal,
}

/// A month's budget and usage as settled so far (the month's own invoice, then each invoice
/// that adjusted it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetSettlement {
    #[serde(with = "text")]
    pub month: Month,
    #[serde(with = "text")]
    pub included: Decimal,
    #[serde(with = "text")]
    pub used: Decimal,
}

/// An FX rate the invoice used, as printed on it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FxUsed {
    /// The month whose amounts it converted.
    #[serde(with = "text")]
    pub month: Month,
    #[serde(with = "text")]
    pub from: Currency,
    #[serde(with = "text")]
    pub to: Currency,
    /// The date of the FX table row.
    #[serde(with = "text")]
    pub date: Date,
    #[serde(with = "text")]
    pub rate: Decimal,
}

/// Something the reader should know that is not an error (stable `code`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub code: String,
    pub message: String,
}

/// An exact decimal written as a string, for maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount(#[serde(with = "text")] pub Decimal);

/// A tenant's invoice for a month. Its JSON form is the record kept once finalized.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub version: u32,
    /// `TENANT-YYYY-MM`.
    pub id: String,
    pub tenant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_name: Option<String>,
    #[serde(with = "text")]
    pub month: Month,
    #[serde(with = "text")]
    pub period_start: Date,
    #[serde(with = "text")]
    pub period_end: Date,
    pub timezone: String,
    #[serde(with = "text")]
    pub currency: Currency,
    pub status: Status,
    #[serde(with = "text")]
    pub plan_effective_from: Date,
    pub lines: Vec<Line>,
    /// The sum of the lines' amounts.
    #[serde(with = "text")]
    pub total: Decimal,
    #[serde(default)]
    pub fx_rates: Vec<FxUsed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetSummary>,
    #[serde(default)]
    pub budget_settlements: Vec<BudgetSettlement>,
    #[serde(default)]
    pub notes: Vec<Note>,
    /// What this invoice billed per charge id (Meta's cost in the charge's currency): the
    /// month's charged lines and the new amounts of adjusted ones. Later invoices compare
    /// charges with it to find late usage.
    #[serde(default)]
    pub billed_charges: BTreeMap<String, Amount>,
}

impl Invoice {
    /// Reads an invoice document (as written by [`crate::render::json`]).
    pub fn from_json(text: &str) -> Result<Invoice, String> {
        let inv: Invoice = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if inv.version != INVOICE_VERSION {
            return Err(format!(
                "invoice version {} is not supported (expected {INVOICE_VERSION})",
                inv.version
            ));
        }
        Ok(inv)
    }

    /// The sum of the lines' amounts (what `total` holds).
    pub fn sum_of_lines(&self) -> Decimal {
        self.lines.iter().map(|l| l.amount).sum()
    }
}

/// The invoice of `input.month` for the tenant.
pub fn invoice(input: &InvoiceInput<'_>) -> Result<Invoice, BillingError> {
    let InvoiceInput {
        setup,
        month,
        charges,
        previous,
        finalize,
    } = *input;
    let tenant = &setup.tenant;
    let plan = setup
        .plan_for(month)
        .ok_or(BillingError::NoPlan { month })?;
    let first = month.first_day();
    let last = last_day(month);
    let days_in_month = (last.0 - first.0 + 1) as u32;
    let prev = check_previous(setup, month, previous)?;
    let mut b = Builder {
        setup,
        digits: tenant.currency.minor_digits(),
        lines: Vec::new(),
        fx_used: BTreeSet::new(),
        notes: Vec::new(),
        billed: BTreeMap::new(),
        settlements: Vec::new(),
    };

    // Licences: one line per agent holding a licence on at least one day of the month.
    let mut agents: Vec<&Agent> = setup.agents.iter().collect();
    agents.sort_by(|a, b| a.id.cmp(&b.id));
    let mut licensed: BTreeSet<&str> = BTreeSet::new();
    for agent in agents {
        let held = setup.licensed_days(agent, month);
        if held.days.is_empty() {
            continue;
        }
        licensed.insert(&agent.id);
        let Some(price) = plan.licence_price else {
            continue;
        };
        let days = held.days.len() as u32;
        let period = if days == days_in_month {
            "whole month".to_string()
        } else {
            let ranges: Vec<String> = held
                .ranges()
                .iter()
                .map(|&(a, z)| {
                    if a == z {
                        a.to_string()
                    } else {
                        format!("{a} to {z}")
                    }
                })
                .collect();
            ranges.join(", ")
        };
        let exact = prorate(price, days, days_in_month);
        b.push(Line {
            agent: Some(agent.id.clone()),
            licences: held.via,
            days: Some(days),
            days_in_month: Some(days_in_month),
            unit_price: Some(price),
            ..b.line(
                LineKind::Licence,
                month,
                format!("WhatsApp licence: {}, {period}", agent.label()),
                exact,
            )
        });
    }

    // Usage: the tenant's charges, each once, placed in a month of the tenant's calendar.
    let owned: BTreeSet<&str> = tenant.wabas.iter().map(String::as_str).collect();
    let mut by_id: BTreeMap<&str, &UsageCharge> = BTreeMap::new();
    let mut other_wabas = 0u64;
    for c in charges {
        if !owned.contains(c.waba.as_str()) {
            other_wabas += 1;
            continue;
        }
        match by_id.entry(&c.id) {
            Entry::Vacant(v) => {
                v.insert(c);
            }
            Entry::Occupied(o) if *o.get() != c => {
                return Err(BillingError::ConflictingCharge { id: c.id.clone() })
            }
            Entry::Occupied(_) => {}
        }
    }
    let mut current: Vec<&UsageCharge> = Vec::new();
    let mut late: BTreeMap<Month, Vec<&UsageCharge>> = BTreeMap::new();
    let (mut no_instant, mut unsettled, mut later) = (0u64, 0u64, 0u64);
    for &c in by_id.values() {
        let Some(at) = c.instant() else {
            if !c.amount.is_zero() {
                return Err(BillingError::ChargeWithoutInstant {
                    id: c.id.clone(),
                    amount: c.amount,
                    currency: c.currency,
                });
            }
            no_instant += 1;
            continue;
        };
        let m = local_date(tenant.timezone, at).month();
        if m == month {
            current.push(c);
        } else if m > month {
            later += 1;
        } else if prev.contains_key(&m) {
            late.entry(m).or_default().push(c);
        } else {
            unsettled += 1;
        }
    }

    let markup = if plan.budget.is_some() {
        None
    } else {
        plan.markup_percent.filter(|m| !m.is_zero())
    };
    let mut used = Decimal::ZERO;
    for ((is_call, category, market, cur), g) in group(&current, |c| Some(c.amount)) {
        if g.count == 0 {
            continue;
        }
        for id in &g.ids {
            b.billed.insert(id.to_string(), Amount(by_id[id].amount));
        }
        let rate = b.fx(cur, month)?;
        let (kind, description) = if is_call {
            (
                LineKind::CallUsage,
                format!("WhatsApp calls: {market}, {} billed minutes", g.minutes),
            )
        } else {
            (
                LineKind::Usage,
                format!("WhatsApp usage: {category}, {market}"),
            )
        };
        let line = b.usage_line(
            kind,
            month,
            description,
            (is_call, category, market, cur),
            &g,
            rate,
            markup,
        );
        used += line.amount;
        b.push(line);
    }

    // The included budget.
    let mut budget_summary = None;
    if let Some(budget) = &plan.budget {
        let active: BTreeSet<&str> = match plan.active_agent_rule {
            ActiveAgentRule::Licensed => licensed.clone(),
            ActiveAgentRule::Sent => {
                let mut senders = BTreeSet::new();
                let mut anonymous = 0u64;
                for c in current.iter().filter(|c| c.call.is_none()) {
                    match &c.agent {
                        Some(a) if setup.agent(a).is_some() => {
                            senders.insert(a.as_str());
                        }
                        Some(a) => {
                            return Err(BillingError::UnknownAgent {
                                charge: c.id.clone(),
                                agent: a.clone(),
                            })
                        }
                        None => anonymous += 1,
                    }
                }
                if anonymous > 0 {
                    b.note(
                        "charges_without_agent",
                        format!(
                            "{} of {month} without an agent: counted for no active agent",
                            charge_lines(anonymous)
                        ),
                    );
                }
                senders
            }
        };
        let active_agents = active.len() as u32;
        let blocks = active_agents.div_ceil(budget.per_agents);
        let rate = b.fx(budget.currency, month)?;
        let exact = convert(budget.amount.times(blocks as u64), rate, None);
        let included = b.round(exact);
        let applied = used.min(included).max(Decimal::ZERO);
        let overage = (used - applied).max(Decimal::ZERO);
        let cur = tenant.currency;
        b.push(b.line(
            LineKind::BudgetApplied,
            month,
            format!(
                "Included WhatsApp budget: {blocks} × {} {} for {active_agents} active agents, up to {} {cur}",
                budget.amount,
                budget.currency,
                fixed(included, b.digits),
            ),
            -applied,
        ));
        if overage.is_positive() {
            b.push(b.line(
                LineKind::OverageDeferred,
                month,
                format!(
                    "WhatsApp usage above the included budget, billed at cost on the {} invoice",
                    month.next()
                ),
                -overage,
            ));
        }
        b.settlements.push(BudgetSettlement {
            month,
            included,
            used,
        });
        budget_summary = Some(BudgetSummary {
            active_agent_rule: plan.active_agent_rule,
            active_agents,
            per_agents: budget.per_agents,
            blocks,
            amount_per_block: budget.amount,
            budget_currency: budget.currency,
            fx_rate: rate,
            included,
            used,
            applied,
            overage,
        });
    }

    // Last month's overage, as its finalized invoice carried it.
    let prev_month = Month(month.0 - 1);
    match prev.get(&prev_month) {
        Some(p) => {
            if let Some(over) = p.budget.as_ref().map(|s| s.overage) {
                if over.is_positive() {
                    b.push(b.line(
                        LineKind::Overage,
                        prev_month,
                        format!(
                            "WhatsApp usage above the included budget of {prev_month}, at cost"
                        ),
                        over,
                    ));
                }
            }
        }
        None => {
            if setup
                .plan_for(prev_month)
                .is_some_and(|p| p.budget.is_some())
            {
                b.note(
                    "previous_invoice_missing",
                    format!("the finalized invoice of {prev_month} was not given: its usage above the included budget, if any, is not billed here"),
                );
            }
        }
    }

    // Late usage of finalized months: charges new or changed since those invoices.
    let mut snapshot: BTreeMap<&str, Decimal> = BTreeMap::new();
    let mut settled: BTreeMap<Month, &BudgetSettlement> = BTreeMap::new();
    for p in prev.values() {
        for (id, a) in &p.billed_charges {
            snapshot.insert(id, a.0);
        }
        for s in &p.budget_settlements {
            settled.insert(s.month, s);
        }
    }
    for (m, cs) in late {
        let plan_m = setup.plan_for(m).ok_or(BillingError::NoPlan { month: m })?;
        let delta = |c: &UsageCharge| {
            let before = snapshot.get(c.id.as_str()).copied().unwrap_or_default();
            Some(c.amount - before).filter(|d| !d.is_zero())
        };
        let groups = group(&cs, delta);
        if groups.is_empty() {
            continue;
        }
        let markup_m = if plan_m.budget.is_some() {
            None
        } else {
            plan_m.markup_percent.filter(|m| !m.is_zero())
        };
        let mut delta_sum = Decimal::ZERO;
        for ((is_call, category, market, cur), g) in groups {
            for id in &g.ids {
                b.billed.insert(id.to_string(), Amount(by_id[id].amount));
            }
            let rate = b.fx(cur, m)?;
            let description = if is_call {
                format!("Late WhatsApp calls of {m}: {market}")
            } else {
                format!("Late WhatsApp usage of {m}: {category}, {market}")
            };
            let line = b.usage_line(
                LineKind::Adjustment,
                m,
                description,
                (is_call, category, market, cur),
                &g,
                rate,
                markup_m,
            );
            delta_sum += line.amount;
            b.push(line);
        }
        if plan_m.budget.is_some() {
            if let Some(s) = settled.get(&m) {
                let over = |u: Decimal| (u - s.included).max(Decimal::ZERO);
                let new_used = s.used + delta_sum;
                let budget_part = (over(new_used) - over(s.used)) - delta_sum;
                if !budget_part.is_zero() {
                    b.push(b.line(
                        LineKind::AdjustmentBudget,
                        m,
                        format!(
                            "Included WhatsApp budget of {m} ({} {}) applied to its late usage",
                            fixed(s.included, b.digits),
                            tenant.currency
                        ),
                        budget_part,
                    ));
                }
                b.settlements.push(BudgetSettlement {
                    month: m,
                    included: s.included,
                    used: new_used,
                });
            } else {
                b.note(
                    "budget_not_settled",
                    format!("no given invoice settled the included budget of {m}: its late usage is billed at cost"),
                );
            }
        }
    }

    let mut count_note = |n: u64, code: &str, what: String| {
        if n > 0 {
            b.note(code, format!("{} {what}", charge_lines(n)));
        }
    };
    count_note(
        other_wabas,
        "charges_of_other_wabas",
        "of WABAs the tenant does not own: ignored".into(),
    );
    count_note(
        no_instant,
        "charges_without_instant",
        "without sent_at or billed_at (undelivered, free): in no month".into(),
    );
    count_note(
        unsettled,
        "charges_of_months_not_given",
        format!("of months before {month} whose finalized invoice was not given: not billed (give those invoices to bill their late usage)"),
    );
    count_note(
        later,
        "charges_after_month",
        format!("after {month}: for later invoices"),
    );

    let total = b.lines.iter().map(|l| l.amount).sum();
    Ok(Invoice {
        version: INVOICE_VERSION,
        id: format!("{}-{month}", tenant.id),
        tenant: tenant.id.clone(),
        tenant_name: tenant.name.clone(),
        month,
        period_start: first,
        period_end: last,
        timezone: tenant.timezone.name().to_string(),
        currency: tenant.currency,
        status: if finalize {
            Status::Final
        } else {
            Status::Draft
        },
        plan_effective_from: plan.effective_from,
        lines: b.lines,
        total,
        fx_rates: b.fx_used.into_iter().collect(),
        budget: budget_summary,
        budget_settlements: b.settlements,
        notes: b.notes,
        billed_charges: b.billed,
    })
}

/// The last day of a month.
pub fn last_day(month: Month) -> Date {
    Date(month.next().first_day().0 - 1)
}

/// Checks the previous invoices and indexes them by month.
fn check_previous<'a>(
    setup: &TenantSetup,
    month: Month,
    previous: &'a [Invoice],
) -> Result<BTreeMap<Month, &'a Invoice>, BillingError> {
    // A finalized invoice of the month itself is the answer whatever else is wrong.
    if let Some(p) = previous
        .iter()
        .find(|p| p.month == month && p.tenant == setup.tenant.id && p.status == Status::Final)
    {
        return Err(BillingError::AlreadyFinalized {
            invoice: p.id.clone(),
            month,
        });
    }
    let mut prev = BTreeMap::new();
    for p in previous {
        if p.tenant != setup.tenant.id {
            return Err(BillingError::PreviousOtherTenant {
                invoice: p.id.clone(),
                tenant: p.tenant.clone(),
            });
        }
        if p.status != Status::Final {
            return Err(BillingError::PreviousNotFinal {
                invoice: p.id.clone(),
            });
        }
        if p.month == month {
            return Err(BillingError::AlreadyFinalized {
                invoice: p.id.clone(),
                month,
            });
        }
        if p.month > month {
            return Err(BillingError::PreviousAfterMonth {
                invoice: p.id.clone(),
                its_month: p.month,
                month,
            });
        }
        if p.currency != setup.tenant.currency {
            return Err(BillingError::PreviousCurrency {
                invoice: p.id.clone(),
                currency: p.currency,
                expected: setup.tenant.currency,
            });
        }
        if prev.insert(p.month, p).is_some() {
            return Err(BillingError::DuplicatePrevious { month: p.month });
        }
    }
    Ok(prev)
}

/// (a call?, category, market, currency): message lines sort before call lines.
type GroupKey<'a> = (bool, &'a str, &'a str, Currency);

/// Charges of one category × market × currency: the sum of their (delta) amounts.
struct Group<'a> {
    cost: Decimal,
    count: u64,
    /// Billed minutes of the calls counted (zero for messages).
    minutes: Decimal,
    ids: Vec<&'a str>,
}

/// Groups charges by category × market × currency; `amount` gives what a charge contributes
/// (`None`: nothing). Charges contributing a non-zero amount are counted and listed.
fn group<'a>(
    charges: &[&'a UsageCharge],
    amount: impl Fn(&UsageCharge) -> Option<Decimal>,
) -> BTreeMap<GroupKey<'a>, Group<'a>> {
    let mut out: BTreeMap<GroupKey<'a>, Group<'a>> = BTreeMap::new();
    for &c in charges {
        let Some(a) = amount(c) else { continue };
        let g = out
            .entry((
                c.call.is_some(),
                c.category.as_str(),
                c.market.as_str(),
                c.currency,
            ))
            .or_insert(Group {
                cost: Decimal::ZERO,
                count: 0,
                minutes: Decimal::ZERO,
                ids: Vec::new(),
            });
        g.cost += a;
        if !a.is_zero() {
            g.count += 1;
            g.minutes += c.call.map_or(Decimal::ZERO, CallUsage::minutes);
            g.ids.push(&c.id);
        }
    }
    out
}

struct Builder<'a> {
    setup: &'a TenantSetup,
    digits: u32,
    lines: Vec<Line>,
    fx_used: BTreeSet<FxUsed>,
    notes: Vec<Note>,
    billed: BTreeMap<String, Amount>,
    settlements: Vec<BudgetSettlement>,
}

impl Builder<'_> {
    fn round(&self, exact: Decimal) -> Decimal {
        exact.round_to_scale(self.digits)
    }

    /// A line with its exact value and rounded amount; the other fields empty.
    fn line(&self, kind: LineKind, month: Month, description: String, exact: Decimal) -> Line {
        Line {
            kind,
            month,
            description,
            agent: None,
            licences: Vec::new(),
            category: None,
            market: None,
            quantity: None,
            minutes: None,
            days: None,
            days_in_month: None,
            unit_price: None,
            cost: None,
            cost_currency: None,
            fx_rate: None,
            markup_percent: None,
            exact,
            amount: self.round(exact),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn usage_line(
        &self,
        kind: LineKind,
        month: Month,
        description: String,
        (is_call, category, market, cur): GroupKey<'_>,
        g: &Group<'_>,
        rate: Option<Decimal>,
        markup: Option<Decimal>,
    ) -> Line {
        Line {
            category: Some(category.to_string()),
            market: Some(market.to_string()),
            quantity: Some(g.count),
            minutes: (is_call && kind == LineKind::CallUsage).then_some(g.minutes),
            cost: Some(g.cost),
            cost_currency: Some(cur),
            fx_rate: rate,
            markup_percent: markup,
            ..self.line(kind, month, description, convert(g.cost, rate, markup))
        }
    }

    fn push(&mut self, line: Line) {
        debug_assert_eq!(line.amount, self.round(line.exact));
        self.lines.push(line);
    }

    fn note(&mut self, code: &str, message: String) {
        self.notes.push(Note {
            code: code.to_string(),
            message,
        });
    }

    /// The rate converting `from` into the tenant's currency for `month` (the newest row on or
    /// before its last day), recorded for printing; `None` when no conversion is needed.
    fn fx(&mut self, from: Currency, month: Month) -> Result<Option<Decimal>, BillingError> {
        let to = self.setup.tenant.currency;
        if from == to {
            return Ok(None);
        }
        let on = last_day(month);
        let row = self
            .setup
            .fx_rate(from, to, on)
            .ok_or(BillingError::MissingFxRate {
                from,
                to,
                date: on,
                month,
            })?;
        self.fx_used.insert(FxUsed {
            month,
            from,
            to,
            date: row.date,
            rate: row.rate,
        });
        Ok(Some(row.rate))
    }
}

/// `1 charge line`, `3 charge lines`.
fn charge_lines(n: u64) -> String {
    format!("{n} charge line{}", if n == 1 { "" } else { "s" })
}

/// A rounded amount with exactly `digits` decimals (`150.00`, `1452`, `0.002`).
pub fn fixed(d: Decimal, digits: u32) -> String {
    let s = d.to_string();
    if digits == 0 {
        return s;
    }
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    let mut frac = frac.to_string();
    while frac.len() < digits as usize {
        frac.push('0');
    }
    format!("{int}.{frac}")
}
