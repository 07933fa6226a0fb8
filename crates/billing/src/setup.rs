//! A tenant's billing set-up: the tenant (timezone, currency, WABAs), its teams and agents, the
//! WhatsApp licences assigned to them as dated records, its plan versions and the operator's
//! FX table. Read from one JSON document ([`TenantSetup::from_json`]) and checked once
//! ([`TenantSetup::validate`]); afterwards every reference inside it is trusted.
//!
//! Licences are dated records: a licence is held from its `from` date to its `to` date, both
//! local dates of the tenant's calendar and both included; `to: null` means still held. Ending
//! a licence sets its `to`; a record is never deleted, so past months can always be
//! recomputed. An agent holds a licence on a date when any record covering that date names
//! the agent, the agent's team, or all agents, and the agent is a member of the tenant on that
//! date (docs/decisions.md D31, D32).

use crate::serde_text::{opt_text, text};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use wabill_rating::time::local_date;
use wabill_rating::{Currency, Date, Decimal, Month, UnixMs};

/// Everything needed to bill one tenant, apart from its usage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSetup {
    pub tenant: Tenant,
    #[serde(default)]
    pub teams: Vec<Team>,
    #[serde(default)]
    pub agents: Vec<Agent>,
    #[serde(default)]
    pub licences: Vec<LicenceAssignment>,
    pub plans: Vec<PlanVersion>,
    /// The operator's FX table (no rate is ever fetched).
    #[serde(default)]
    pub fx: Vec<FxRate>,
}

/// A customer of the platform, billed monthly in its own timezone and currency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// IANA timezone: invoice months and licence dates are in this calendar.
    #[serde(with = "text")]
    pub timezone: Tz,
    /// The currency of its invoices (and of its plans' licence prices).
    #[serde(with = "text")]
    pub currency: Currency,
    /// The WABAs it owns: their charges are its usage.
    pub wabas: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Team {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A user of the platform. Membership of the tenant may be dated (`from`/`to`, both included,
/// absent = open); the team is the agent's current team (membership of a team is not dated).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub from: Option<Date>,
    #[serde(default, with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub to: Option<Date>,
}

impl Agent {
    /// A member of the tenant on `date`.
    pub fn member_on(&self, date: Date) -> bool {
        self.from.is_none_or(|f| f <= date) && self.to.is_none_or(|t| date <= t)
    }
    /// `Name (id)`, or the id.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("{n} ({})", self.id),
            None => self.id.clone(),
        }
    }
}

/// Who a licence record is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenceTarget {
    /// `{"agent":"a1"}`
    Agent(String),
    /// `{"team":"sales"}`: every agent of the team.
    Team(String),
    /// `"all_agents"`: every agent of the tenant.
    AllAgents,
}

/// A WhatsApp licence, held from `from` to `to` (tenant-local dates, both included).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenceAssignment {
    pub id: String,
    pub target: LicenceTarget,
    #[serde(with = "text")]
    pub from: Date,
    #[serde(default, with = "opt_text")]
    pub to: Option<Date>,
}

impl LicenceAssignment {
    pub fn covers_date(&self, date: Date) -> bool {
        self.from <= date && self.to.is_none_or(|t| date <= t)
    }
    /// Whether the record names this agent (directly, by team, or as all agents).
    pub fn names(&self, agent: &Agent) -> bool {
        match &self.target {
            LicenceTarget::Agent(a) => *a == agent.id,
            LicenceTarget::Team(t) => agent.team.as_ref() == Some(t),
            LicenceTarget::AllAgents => true,
        }
    }
}

/// Which agents count as active for the included budget (docs/decisions.md D36).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActiveAgentRule {
    /// Held a licence on at least one day of the month.
    #[default]
    Licensed,
    /// Named on at least one charge line of the month.
    Sent,
}

impl ActiveAgentRule {
    pub fn as_str(self) -> &'static str {
        match self {
            ActiveAgentRule::Licensed => "licensed",
            ActiveAgentRule::Sent => "sent",
        }
    }
}

/// An included monthly WhatsApp budget: `amount` (in `currency`) per started block of
/// `per_agents` active agents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub per_agents: u32,
    #[serde(with = "text")]
    pub amount: Decimal,
    #[serde(with = "text")]
    pub currency: Currency,
}

/// A version of the tenant's plan, in force from `effective_from` (the first day of a month)
/// until the next version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanVersion {
    #[serde(with = "text")]
    pub effective_from: Date,
    /// Price of one licence for a whole month, in the tenant's currency; absent = licences are
    /// not billed.
    #[serde(default, with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub licence_price: Option<Decimal>,
    /// Markup on Meta's cost, in percent (`"12.5"`); absent = at cost.
    #[serde(default, with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub markup_percent: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    #[serde(default)]
    pub active_agent_rule: ActiveAgentRule,
}

/// One unit of `from` is worth `rate` units of `to`, from `date` until a newer row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FxRate {
    #[serde(with = "text")]
    pub date: Date,
    #[serde(with = "text")]
    pub from: Currency,
    #[serde(with = "text")]
    pub to: Currency,
    #[serde(with = "text")]
    pub rate: Decimal,
}

/// A problem with the set-up document: where (`licences[2].target`) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {why}")]
pub struct SetupError {
    pub at: String,
    pub why: String,
}

/// `license_required`: the agent holds no WhatsApp licence at that instant, so may only read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("agent '{agent}' holds no WhatsApp licence on {date} and may only read messages")]
pub struct LicenceRequired {
    pub agent: String,
    pub date: Date,
}

impl LicenceRequired {
    pub fn code(&self) -> &'static str {
        "license_required"
    }
}

impl TenantSetup {
    /// Parses and validates a set-up document.
    pub fn from_json(text: &str) -> Result<TenantSetup, SetupError> {
        let mut setup: TenantSetup = serde_json::from_str(text).map_err(|e| SetupError {
            at: format!("line {} column {}", e.line(), e.column()),
            why: e.to_string(),
        })?;
        setup.validate()?;
        Ok(setup)
    }

    /// Checks every reference and range, and sorts plans and FX rows by date. Called by
    /// [`TenantSetup::from_json`]; call it after building a set-up by hand.
    pub fn validate(&mut self) -> Result<(), SetupError> {
        let err = |at: String, why: &str| {
            Err(SetupError {
                at,
                why: why.into(),
            })
        };
        if self.tenant.id.is_empty() {
            return err("tenant.id".into(), "is empty");
        }
        unique(self.tenant.wabas.iter(), "tenant.wabas")?;
        unique(self.teams.iter().map(|t| &t.id), "teams")?;
        unique(self.agents.iter().map(|a| &a.id), "agents")?;
        unique(self.licences.iter().map(|l| &l.id), "licences")?;
        let teams: BTreeSet<&str> = self.teams.iter().map(|t| t.id.as_str()).collect();
        let agents: BTreeSet<&str> = self.agents.iter().map(|a| a.id.as_str()).collect();
        for (i, a) in self.agents.iter().enumerate() {
            if let Some(t) = &a.team {
                if !teams.contains(t.as_str()) {
                    return err(format!("agents[{i}].team"), "names no team of the set-up");
                }
            }
            if let (Some(f), Some(t)) = (a.from, a.to) {
                if t < f {
                    return err(format!("agents[{i}].to"), "is before 'from'");
                }
            }
        }
        for (i, l) in self.licences.iter().enumerate() {
            match &l.target {
                LicenceTarget::Agent(a) if !agents.contains(a.as_str()) => {
                    return err(
                        format!("licences[{i}].target"),
                        "names no agent of the set-up",
                    )
                }
                LicenceTarget::Team(t) if !teams.contains(t.as_str()) => {
                    return err(
                        format!("licences[{i}].target"),
                        "names no team of the set-up",
                    )
                }
                _ => {}
            }
            if l.to.is_some_and(|t| t < l.from) {
                return err(format!("licences[{i}].to"), "is before 'from'");
            }
        }
        self.plans.sort_by_key(|p| p.effective_from);
        for (i, p) in self.plans.iter().enumerate() {
            let at = |f: &str| format!("plans (effective {}).{f}", p.effective_from);
            if p.effective_from.month().first_day() != p.effective_from {
                return err(
                    at("effective_from"),
                    "is not the first day of a month: a plan applies to whole months",
                );
            }
            if i > 0 && self.plans[i - 1].effective_from == p.effective_from {
                return err(at("effective_from"), "two plan versions start on this date");
            }
            if p.licence_price.is_some_and(|x| x.nanos() < 0) {
                return err(at("licence_price"), "is negative");
            }
            if p.markup_percent.is_some_and(|x| x.nanos() < 0) {
                return err(at("markup_percent"), "is negative");
            }
            if let Some(b) = &p.budget {
                if b.per_agents == 0 {
                    return err(at("budget.per_agents"), "must be at least 1");
                }
                if b.amount.nanos() < 0 {
                    return err(at("budget.amount"), "is negative");
                }
                if p.markup_percent.is_some_and(|m| !m.is_zero()) {
                    return err(
                        at("markup_percent"),
                        "a plan with an included budget bills usage at cost (no markup)",
                    );
                }
            }
        }
        self.fx.sort_by_key(|r| (r.from, r.to, r.date));
        for (i, r) in self.fx.iter().enumerate() {
            let at = format!("fx ({} {}→{})", r.date, r.from, r.to);
            if !r.rate.is_positive() {
                return err(at, "rate must be positive");
            }
            if r.from == r.to {
                return err(at, "converts a currency to itself");
            }
            if i > 0 {
                let p = &self.fx[i - 1];
                if (p.from, p.to, p.date) == (r.from, r.to, r.date) {
                    return err(at, "two rates for the same date and currencies");
                }
            }
        }
        Ok(())
    }

    pub fn agent(&self, id: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.id == id)
    }

    /// The plan version in force for `month` (the newest starting on or before its first day).
    pub fn plan_for(&self, month: Month) -> Option<&PlanVersion> {
        let first = month.first_day();
        self.plans.iter().rev().find(|p| p.effective_from <= first)
    }

    /// The newest FX row for exactly `from → to` dated on or before `on`.
    pub fn fx_rate(&self, from: Currency, to: Currency, on: Date) -> Option<&FxRate> {
        self.fx
            .iter()
            .rev()
            .find(|r| r.from == from && r.to == to && r.date <= on)
    }

    /// The licence records under which `agent` holds a licence on `date`.
    pub fn licences_held<'a>(
        &'a self,
        agent: &'a Agent,
        date: Date,
    ) -> impl Iterator<Item = &'a LicenceAssignment> + 'a {
        let member = agent.member_on(date);
        self.licences
            .iter()
            .filter(move |l| member && l.covers_date(date) && l.names(agent))
    }

    /// Whether `agent` holds a licence on the local `date`.
    pub fn holds_licence(&self, agent: &Agent, date: Date) -> bool {
        self.licences_held(agent, date).next().is_some()
    }

    /// Whether `agent` may send a WhatsApp message at `at`: only licensed agents may send;
    /// the others, and ids that are no agent of the tenant, may only read.
    pub fn may_send(&self, agent: &str, at: UnixMs) -> Result<(), LicenceRequired> {
        let date = local_date(self.tenant.timezone, at);
        match self.agent(agent) {
            Some(a) if self.holds_licence(a, date) => Ok(()),
            _ => Err(LicenceRequired {
                agent: agent.to_string(),
                date,
            }),
        }
    }

    /// The days of `month` (tenant calendar) on which `agent` holds a licence, and the ids of
    /// the records it holds them under.
    pub fn licensed_days(&self, agent: &Agent, month: Month) -> LicensedDays {
        let first = month.first_day();
        let end = month.next().first_day();
        let relevant: Vec<&LicenceAssignment> = self
            .licences
            .iter()
            .filter(|l| l.names(agent) && l.from < end && l.to.is_none_or(|t| t >= first))
            .collect();
        let mut days = Vec::new();
        let mut via = BTreeSet::new();
        for d in first.0..end.0 {
            let date = Date(d);
            if !agent.member_on(date) {
                continue;
            }
            let mut held = false;
            for l in relevant.iter().filter(|l| l.covers_date(date)) {
                held = true;
                via.insert(l.id.clone());
            }
            if held {
                days.push(date);
            }
        }
        LicensedDays {
            days,
            via: via.into_iter().collect(),
        }
    }
}

/// The licensed days of one agent in one month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LicensedDays {
    /// Tenant-local dates, ascending.
    pub days: Vec<Date>,
    /// Ids of the licence records held on some of them.
    pub via: Vec<String>,
}

impl LicensedDays {
    /// The days as runs of consecutive dates: `[(2026-02-01, 2026-02-05), ...]`.
    pub fn ranges(&self) -> Vec<(Date, Date)> {
        let mut out: Vec<(Date, Date)> = Vec::new();
        for &d in &self.days {
            match out.last_mut() {
                Some((_, end)) if end.0 + 1 == d.0 => *end = d,
                _ => out.push((d, d)),
            }
        }
        out
    }
}

fn unique<'a>(ids: impl Iterator<Item = &'a String>, what: &str) -> Result<(), SetupError> {
    let mut seen = BTreeSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(SetupError {
                at: what.to_string(),
                why: format!("id '{id}' appears twice"),
            });
        }
    }
    Ok(())
}

impl fmt::Display for LicenceTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LicenceTarget::Agent(a) => write!(f, "agent {a}"),
            LicenceTarget::Team(t) => write!(f, "team {t}"),
            LicenceTarget::AllAgents => f.write_str("all agents"),
        }
    }
}
