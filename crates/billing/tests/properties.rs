//! The algebra of invoices, over random set-ups and charges: the total is the sum of the
//! lines; each line is rounded once from a value computed exactly from its inputs (nothing
//! rounded before); the invoice does not depend on the order or repetition of charge lines;
//! late charges are billed exactly once; each budget alert fires at most once a month.

use proptest::prelude::*;
use wabill_billing::exact::{convert, prorate};
use wabill_billing::{
    alerts_due, invoice, render, ActiveAgentRule, Agent, AlertState, Budget, CallUsage, FxRate,
    Invoice, InvoiceInput, LicenceAssignment, LicenceTarget, LineKind, PlanVersion, Team, Tenant,
    TenantSetup, Threshold, UsageCharge,
};
use wabill_rating::time::local_day_start;
use wabill_rating::{Currency, Date, Decimal, Month};

const MONTH: &str = "2026-02";

fn cur(s: &str) -> Currency {
    Currency::parse(s).unwrap()
}

/// A decimal `units / 10^scale`.
fn dec(units: i64, scale: u32) -> Decimal {
    Decimal::from_nanos(units as i128 * 10i128.pow(9 - scale))
}

#[derive(Debug, Clone)]
struct Case {
    setup: TenantSetup,
    charges: Vec<UsageCharge>,
}

fn setup_strategy() -> impl Strategy<Value = TenantSetup> {
    let tenant = (
        prop::sample::select(vec!["USD", "EUR", "CLP", "KWD"]),
        prop::sample::select(vec!["UTC", "America/Sao_Paulo", "Asia/Tokyo"]),
    );
    let agents = prop::collection::vec((any::<bool>(), prop::option::of(0i32..40)), 0..8);
    let licences = prop::collection::vec(
        (0u8..3, 0usize..8, 0i32..70, prop::option::of(0i32..40)),
        0..10,
    );
    let plan = (
        prop::option::of(0i64..100_000),
        prop::option::of(0i64..5_000),
        prop::option::of((1u32..12, 0i64..100_000, any::<bool>(), any::<bool>())),
    );
    (tenant, agents, licences, plan).prop_map(|((c, tz), agents, licences, plan)| {
        let jan1 = Date::parse("2026-01-01").unwrap();
        let currency = cur(c);
        let agents: Vec<Agent> = agents
            .iter()
            .enumerate()
            .map(|(i, (in_team, left))| Agent {
                id: format!("a{i}"),
                name: None,
                team: in_team.then(|| "t".to_string()),
                from: None,
                to: left.map(|d| Date(jan1.0 + 25 + d)),
            })
            .collect();
        let licences = licences
            .iter()
            .enumerate()
            .filter_map(|(i, &(kind, who, from, len))| {
                let target = match kind {
                    0 => LicenceTarget::Agent(agents.get(who % agents.len().max(1))?.id.clone()),
                    1 => LicenceTarget::Team("t".into()),
                    _ => LicenceTarget::AllAgents,
                };
                let from = Date(jan1.0 + from);
                Some(LicenceAssignment {
                    id: format!("L{i}"),
                    target,
                    from,
                    to: len.map(|l| Date(from.0 + l)),
                })
            })
            .collect();
        let (price, markup, budget) = plan;
        let budget = budget.map(|(per, amount, usd, sent)| {
            (
                Budget {
                    per_agents: per,
                    amount: dec(amount, 2),
                    currency: if usd { cur("USD") } else { currency },
                },
                if sent {
                    ActiveAgentRule::Sent
                } else {
                    ActiveAgentRule::Licensed
                },
            )
        });
        let mut fx = Vec::new();
        for from in ["USD", "EUR"] {
            if cur(from) != currency {
                fx.push(FxRate {
                    date: Date::parse("2026-01-15").unwrap(),
                    from: cur(from),
                    to: currency,
                    rate: Decimal::from_nanos(1_234_567_891),
                });
            }
        }
        let mut setup = TenantSetup {
            tenant: Tenant {
                id: "t".into(),
                name: None,
                timezone: tz.parse().unwrap(),
                currency,
                wabas: vec!["W1".into(), "W2".into()],
            },
            teams: vec![Team {
                id: "t".into(),
                name: None,
            }],
            agents,
            licences,
            plans: vec![PlanVersion {
                effective_from: jan1,
                licence_price: price.map(|p| dec(p, 2)),
                markup_percent: if budget.is_some() {
                    None
                } else {
                    markup.map(|m| dec(m, 2))
                },
                active_agent_rule: budget.as_ref().map_or(ActiveAgentRule::Licensed, |b| b.1),
                budget: budget.map(|b| b.0),
            }],
            fx,
        };
        setup.validate().expect("generated set-ups are valid");
        setup
    })
}

fn case_strategy() -> impl Strategy<Value = Case> {
    setup_strategy().prop_flat_map(|setup| {
        let n_agents = setup.agents.len();
        let charge = (
            0u8..4,
            0u8..3,
            0i64..10_000_000,
            -3i64..32,
            0i64..86_400,
            prop::option::of(0usize..8),
            any::<bool>(),
        );
        prop::collection::vec(charge, 0..30).prop_map(move |raw| {
            let tz = setup.tenant.timezone;
            let feb1 = Month::parse(MONTH).unwrap().first_day();
            let charges = raw
                .iter()
                .enumerate()
                .map(|(i, &(cat, c, amount, day, sec, agent, w2))| {
                    let at = local_day_start(tz, Date(feb1.0 + day as i32)) + sec * 1000;
                    // Category 3: a call (its instant is its start), to one of two markets.
                    let is_call = cat == 3;
                    UsageCharge {
                        id: format!("{}{i}", if is_call { "c" } else { "m" }),
                        waba: if w2 { "W2" } else { "W1" }.into(),
                        category: [
                            "marketing",
                            "utility",
                            "service",
                            wabill_billing::CALL_CATEGORY,
                        ][cat as usize]
                            .into(),
                        market: if is_call && sec % 2 == 0 {
                            "India"
                        } else {
                            "Brazil"
                        }
                        .into(),
                        amount: dec(amount, 6),
                        currency: cur(["USD", "EUR", setup.tenant.currency.as_str()][c as usize]),
                        sent_at: is_call.then_some(at),
                        billed_at: (!is_call).then_some(at),
                        agent: agent.filter(|&a| a < n_agents).map(|a| format!("a{a}")),
                        call: is_call.then_some(CallUsage {
                            pulses: (sec % 600) as u64 + 1,
                        }),
                    }
                })
                .collect();
            Case {
                setup: setup.clone(),
                charges,
            }
        })
    })
}

fn bill(case: &Case, charges: &[UsageCharge], month: &str, previous: &[Invoice]) -> Invoice {
    invoice(&InvoiceInput {
        setup: &case.setup,
        month: Month::parse(month).unwrap(),
        charges,
        previous,
        finalize: true,
    })
    .expect("generated cases can be invoiced")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn totals_are_sums_of_lines_rounded_once(case in case_strategy()) {
        let inv = bill(&case, &case.charges, MONTH, &[]);
        let digits = inv.currency.minor_digits();
        let unit = Decimal::from_nanos(10i128.pow(9 - digits));
        let mut sum = Decimal::ZERO;
        for l in &inv.lines {
            prop_assert_eq!(l.amount, l.exact.round_to_scale(digits));
            prop_assert_eq!(l.amount.nanos() % unit.nanos(), 0);
            sum += l.amount;
            // Nothing rounded before the line: its exact value comes from the exact inputs.
            match l.kind {
                LineKind::Licence => prop_assert_eq!(
                    l.exact,
                    prorate(l.unit_price.unwrap(), l.days.unwrap(), l.days_in_month.unwrap())
                ),
                LineKind::Usage | LineKind::CallUsage => {
                    prop_assert_eq!(l.exact, convert(l.cost.unwrap(), l.fx_rate, l.markup_percent));
                    let is_call = l.kind == LineKind::CallUsage;
                    let of_line: Vec<&UsageCharge> = case.charges.iter()
                        .filter(|c| inv.billed_charges.contains_key(&c.id)
                            && c.call.is_some() == is_call
                            && Some(c.category.as_str()) == l.category.as_deref()
                            && Some(c.market.as_str()) == l.market.as_deref()
                            && Some(c.currency) == l.cost_currency)
                        .collect();
                    let cost: Decimal = of_line.iter().map(|c| c.amount).sum();
                    prop_assert_eq!(l.cost.unwrap(), cost);
                    prop_assert_eq!(l.quantity, Some(of_line.len() as u64));
                    // A call line's minutes are its calls' pulses / 10; a message line has none.
                    let pulses: u64 = of_line.iter().map(|c| c.call.map_or(0, |k| k.pulses)).sum();
                    prop_assert_eq!(l.minutes, is_call.then(|| Decimal::from_nanos(pulses as i128 * 100_000_000)));
                }
                _ => prop_assert_eq!(l.exact, l.amount),
            }
        }
        prop_assert_eq!(inv.total, sum);
        // The included budget covers usage, never more, and usage above it is deferred.
        if let Some(b) = &inv.budget {
            prop_assert_eq!(b.applied + b.overage, b.used);
            prop_assert!(b.applied <= b.included);
            // Calls count against the included budget as messages do.
            let usage: Decimal = inv.lines.iter()
                .filter(|l| matches!(l.kind, LineKind::Usage | LineKind::CallUsage))
                .map(|l| l.amount)
                .sum();
            prop_assert_eq!(usage, b.used);
        }
    }

    #[test]
    fn a_month_without_charged_calls_renders_as_before(case in case_strategy()) {
        // Messages alone, then the same messages with the month's calls of the tenant made free
        // (user-initiated or unanswered): the same JSON, CSV and HTML bytes. (Calls of other
        // months or WABAs are counted in notes, as messages are.)
        let month = Month::parse(MONTH).unwrap();
        let tz = case.setup.tenant.timezone;
        let of_month = |c: &&UsageCharge| case.setup.tenant.wabas.contains(&c.waba)
            && wabill_rating::time::local_date(tz, c.instant().unwrap()).month() == month;
        let messages: Vec<UsageCharge> = case.charges.iter().filter(|c| c.call.is_none()).cloned().collect();
        let mut with_free_calls = messages.clone();
        with_free_calls.extend(case.charges.iter().filter(|c| c.call.is_some()).filter(of_month).map(|c| UsageCharge {
            amount: Decimal::ZERO,
            ..c.clone()
        }));
        let before = bill(&case, &messages, MONTH, &[]);
        let after = bill(&case, &with_free_calls, MONTH, &[]);
        prop_assert_eq!(render::json(&after), render::json(&before));
        prop_assert_eq!(render::csv(&after), render::csv(&before));
        prop_assert_eq!(render::html(&after), render::html(&before));
        prop_assert!(!render::json(&before).contains("minutes"));
    }

    #[test]
    fn order_and_repetition_of_charges_do_not_matter(case in case_strategy(), seed in any::<u64>()) {
        let inv = bill(&case, &case.charges, MONTH, &[]);
        let mut shuffled = case.charges.clone();
        shuffled.extend(case.charges.iter().step_by(3).cloned());
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(bill(&case, &shuffled, MONTH, &[]), inv);
    }

    #[test]
    fn late_charges_are_billed_exactly_once(case in case_strategy(), split in 0usize..30) {
        // February is finalized with the charges that had arrived; the rest of February's
        // charges arrive later and are adjusted on March's invoice, never again on April's.
        let split = split.min(case.charges.len());
        let (early, _) = case.charges.split_at(split);
        let feb = bill(&case, early, MONTH, &[]);
        let mar = bill(&case, &case.charges, "2026-03", std::slice::from_ref(&feb));
        let adjusted: Decimal = mar.lines.iter()
            .filter(|l| l.kind == LineKind::Adjustment)
            .map(|l| l.cost.unwrap())
            .sum();
        let feb_month = Month::parse(MONTH).unwrap();
        let tz = case.setup.tenant.timezone;
        let late: Decimal = case.charges[split..].iter()
            .filter(|c| case.setup.tenant.wabas.contains(&c.waba)
                && wabill_rating::time::local_date(tz, c.instant().unwrap()).month() == feb_month)
            .map(|c| c.amount)
            .sum();
        // Costs of several currencies add up here; each is exact, so the sums agree exactly.
        prop_assert_eq!(adjusted, late);
        let apr = bill(&case, &case.charges, "2026-04", &[feb, mar]);
        prop_assert!(apr.lines.iter().all(|l| l.kind != LineKind::Adjustment));
    }

    #[test]
    fn alerts_fire_at_most_once_a_month(
        spends in prop::collection::vec((0i64..20_000, any::<bool>()), 1..30),
        budget in prop::option::of(1i64..10_000),
    ) {
        let thresholds = [
            Threshold::Percent(dec(50, 0)),
            Threshold::Percent(dec(80, 0)),
            Threshold::Percent(dec(100, 0)),
            Threshold::Spend(dec(7_500, 2)),
        ];
        let budget = budget.map(|b| dec(b, 2));
        let mut month = Month::parse(MONTH).unwrap();
        let mut state = AlertState::default();
        let mut seen = std::collections::BTreeSet::new();
        let mut max_spend = Decimal::ZERO;
        for (spend, next_month) in spends {
            if next_month {
                month = month.next();
                max_spend = Decimal::ZERO;
            }
            let spend = dec(spend, 2);
            max_spend = max_spend.max(spend);
            let (alerts, s) = alerts_due(&thresholds, budget, &state, month, spend);
            for a in &alerts {
                prop_assert!(seen.insert(a.key()), "{} emitted twice", a.key());
            }
            // Everything reached so far this month has been emitted.
            for t in &thresholds {
                let limit = match t {
                    Threshold::Percent(p) => budget.map(|b| wabill_billing::exact::percent_of(b, *p)),
                    Threshold::Spend(x) => Some(*x),
                };
                if let Some(limit) = limit {
                    if max_spend >= limit && !matches!(t, Threshold::Percent(_) if budget.is_none()) {
                        let key = format!("{month}/{}", t.key());
                        prop_assert!(seen.contains(&key), "{key} not emitted at {max_spend}");
                    }
                }
            }
            state = s;
        }
    }
}
