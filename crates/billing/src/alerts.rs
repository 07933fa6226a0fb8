//! Budget alerts, the pure part: given the thresholds, what was already emitted this month and
//! the current spend, which alerts to emit now. Each threshold fires at most once per month of
//! the tenant's calendar (docs/decisions.md D40). Delivering them (a webhook signed with
//! HMAC-SHA256, retried until acknowledged, deduplicated by [`Alert::key`]) is the service's
//! job (`wabill-server`'s `alerts` module, D42).

use crate::exact::{percent_of, reaches_percent};
use crate::serde_text::{opt_text, text};
use serde::{Deserialize, Serialize};
use wabill_rating::{Decimal, Month};

/// When to alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Threshold {
    /// A percentage of the month's included budget: `{"percent":"80"}`.
    Percent(#[serde(with = "text")] Decimal),
    /// An absolute spend in the tenant's currency: `{"spend":"500"}`.
    Spend(#[serde(with = "text")] Decimal),
}

impl Threshold {
    /// `percent:80`, `spend:500`.
    pub fn key(&self) -> String {
        match self {
            Threshold::Percent(p) => format!("percent:{p}"),
            Threshold::Spend(s) => format!("spend:{s}"),
        }
    }
}

/// What was emitted so far, kept by the caller between calls.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    /// The month the fired thresholds belong to.
    #[serde(default, with = "opt_text")]
    pub month: Option<Month>,
    /// Thresholds emitted in that month, sorted.
    #[serde(default)]
    pub fired: Vec<Threshold>,
}

/// An alert to emit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    #[serde(with = "text")]
    pub month: Month,
    pub threshold: Threshold,
    /// The spend that reached it.
    #[serde(with = "text")]
    pub spend: Decimal,
    /// The included budget, for percentage thresholds.
    #[serde(default, with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub budget: Option<Decimal>,
}

impl Alert {
    /// A key unique per tenant and month, for delivering the alert exactly once:
    /// `2026-02/percent:80`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.month, self.threshold.key())
    }
}

/// The alerts to emit for `spend` (the month's usage at cost so far, in the tenant's currency)
/// and the state to keep.
///
/// - A threshold is reached when `spend ≥ limit` exactly (`limit` = `budget × percent / 100`
///   or the absolute spend). Percentage thresholds need a positive `budget`; without one they
///   never fire.
/// - Each reached threshold not yet emitted in `month` is emitted once, lowest limit first;
///   several may be emitted by one call when spend jumps.
/// - A state of an earlier month is forgotten (a new month re-arms every threshold); a state
///   of a later month means this evaluation is stale: nothing is emitted and the state is
///   returned unchanged.
/// - Spend going down (a re-rating) does not re-arm a threshold within the month.
pub fn alerts_due(
    thresholds: &[Threshold],
    budget: Option<Decimal>,
    state: &AlertState,
    month: Month,
    spend: Decimal,
) -> (Vec<Alert>, AlertState) {
    if state.month.is_some_and(|m| m > month) {
        return (Vec::new(), state.clone());
    }
    let mut fired: Vec<Threshold> = if state.month == Some(month) {
        state.fired.clone()
    } else {
        Vec::new()
    };
    let budget = budget.filter(|b| b.is_positive());
    let mut due: Vec<(Decimal, Threshold)> = Vec::new();
    for &t in thresholds {
        if fired.contains(&t) || due.iter().any(|(_, d)| *d == t) {
            continue;
        }
        let (reached, limit) = match t {
            Threshold::Percent(p) => match budget {
                Some(_) if !p.is_positive() => (true, Decimal::ZERO),
                Some(b) => (reaches_percent(spend, b, p), percent_of(b, p)),
                None => (false, Decimal::ZERO),
            },
            Threshold::Spend(s) => (spend >= s, s),
        };
        if reached {
            due.push((limit, t));
        }
    }
    due.sort();
    let alerts = due
        .iter()
        .map(|&(_, threshold)| Alert {
            month,
            threshold,
            spend,
            budget: matches!(threshold, Threshold::Percent(_))
                .then_some(budget)
                .flatten(),
        })
        .collect();
    fired.extend(due.iter().map(|&(_, t)| t));
    fired.sort();
    (
        alerts,
        AlertState {
            month: Some(month),
            fired,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }
    fn pct(s: &str) -> Threshold {
        Threshold::Percent(d(s))
    }

    #[test]
    fn each_threshold_fires_once_per_month() {
        let th = [pct("50"), pct("80"), pct("100"), Threshold::Spend(d("120"))];
        let feb = Month::parse("2026-02").unwrap();
        let budget = Some(d("150"));
        let s0 = AlertState::default();
        let (a, s1) = alerts_due(&th, budget, &s0, feb, d("74.99"));
        assert!(a.is_empty());
        let (a, s2) = alerts_due(&th, budget, &s1, feb, d("75"));
        assert_eq!(
            a.iter().map(Alert::key).collect::<Vec<_>>(),
            ["2026-02/percent:50"]
        );
        // A jump past two thresholds emits both, lowest first; a repeat emits nothing.
        let (a, s3) = alerts_due(&th, budget, &s2, feb, d("125"));
        assert_eq!(
            a.iter().map(Alert::key).collect::<Vec<_>>(),
            ["2026-02/percent:80", "2026-02/spend:120"]
        );
        let (a, s4) = alerts_due(&th, budget, &s3, feb, d("125"));
        assert!(a.is_empty());
        // Spend going down and up again does not re-arm.
        let (_, s5) = alerts_due(&th, budget, &s4, feb, d("10"));
        let (a, s6) = alerts_due(&th, budget, &s5, feb, d("149.99"));
        assert!(a.is_empty());
        let (a, s7) = alerts_due(&th, budget, &s6, feb, d("150"));
        assert_eq!(
            a.iter().map(Alert::key).collect::<Vec<_>>(),
            ["2026-02/percent:100"]
        );
        // A new month re-arms; a stale evaluation of the old month emits nothing.
        let mar = feb.next();
        let (a, s8) = alerts_due(&th, budget, &s7, mar, d("80"));
        assert_eq!(
            a.iter().map(Alert::key).collect::<Vec<_>>(),
            ["2026-03/percent:50"]
        );
        let (a, s9) = alerts_due(&th, budget, &s8, feb, d("1000"));
        assert!(a.is_empty());
        assert_eq!(s9, s8);
    }

    #[test]
    fn percentages_need_a_budget() {
        let th = [pct("50"), Threshold::Spend(d("10"))];
        let m = Month::parse("2026-02").unwrap();
        let (a, _) = alerts_due(&th, None, &AlertState::default(), m, d("1000"));
        assert_eq!(
            a.iter().map(Alert::key).collect::<Vec<_>>(),
            ["2026-02/spend:10"]
        );
        let (a, _) = alerts_due(&th, Some(d("0")), &AlertState::default(), m, d("1000"));
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn state_round_trips_as_json() {
        let th = [pct("80")];
        let m = Month::parse("2026-02").unwrap();
        let (_, s) = alerts_due(&th, Some(d("100")), &AlertState::default(), m, d("80"));
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(j, r#"{"month":"2026-02","fired":[{"percent":"80"}]}"#);
        assert_eq!(serde_json::from_str::<AlertState>(&j).unwrap(), s);
    }
}
