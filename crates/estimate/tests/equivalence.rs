//! An estimate is a bill: the synthetic month, written as `docs/events.md` JSON lines, read
//! back with the public parser and rated by the core, gives per market × category exactly the
//! counts and amounts the estimate reports. Summed here independently of the estimate crate's
//! own aggregation, in every pricing era.

use std::collections::BTreeMap;
use wabill_estimate::{
    estimate, synthesize, AuthIntl, EstimateInput, Share, Target, TrafficCategory, TrafficLine,
};
use wabill_formats::{parse_line, Parsed};
use wabill_rating::{
    rate, Category, Currency, Event, MessageKind, Month, PricingType, RateOptions, Tariff,
};

fn line(target: Target, category: TrafficCategory, messages: u64) -> TrafficLine {
    TrafficLine {
        target,
        category,
        messages,
    }
}

fn mixed_input(month: &str) -> EstimateInput {
    use TrafficCategory::*;
    let mut input = EstimateInput::new(
        Month::parse(month).unwrap(),
        Currency::parse("USD").unwrap(),
    );
    input.timezone = "America/Sao_Paulo".parse().unwrap();
    input.phones = 2;
    input.primary_country = Some("BR".into());
    input.auth_international = AuthIntl::Yes;
    input.utility_in_window = Share::parse("share", "40%").unwrap();
    input.entry_point_share = Share::parse("share", "125‰").unwrap();
    let brazil = Target::Market("Brazil".into());
    let india = Target::Country("IN".into());
    input.traffic = vec![
        line(brazil.clone(), Marketing, 900),
        line(brazil.clone(), Utility, 700),
        line(brazil.clone(), Authentication, 300),
        line(brazil, Service, 2600),
        line(india.clone(), Authentication, 800),
        line(india, Marketing, 150),
        line(Target::Market("Rest of Africa".into()), Utility, 400),
        line(Target::Country("KZ".into()), Marketing, 120),
    ];
    input
}

#[derive(Default, Debug, PartialEq, Eq)]
struct Sum {
    messages: u64,
    charged: u64,
    free_customer_service: u64,
    free_entry_point: u64,
    free_tier: u64,
    amount: String,
}

#[test]
fn estimating_equals_rating_the_generated_stream_in_every_era() {
    let tariff = Tariff::bundled();
    // CBP with a free service tier, CBP with free service, PMP, PMP with charged service.
    for month in ["2024-08", "2025-03", "2025-12", "2026-11"] {
        let input = mixed_input(month);
        let est = estimate(&tariff, &input).unwrap_or_else(|e| panic!("{month}: {e}"));
        let synthetic = synthesize(&tariff, &input, input.month).unwrap();
        let jsonl = synthetic.to_jsonl();

        let mut parsed = Parsed::default();
        for (i, l) in jsonl.lines().enumerate() {
            parse_line(l, i as u64 + 1, &mut parsed).unwrap();
        }
        let categories: BTreeMap<&str, Category> = parsed
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Outbound(o) => Some((
                    o.id.as_ref(),
                    match o.kind {
                        MessageKind::Template(c) => c,
                        MessageKind::NonTemplate => Category::Service,
                    },
                )),
                _ => None,
            })
            .collect();
        let rated = rate(&tariff, &[], &parsed.events, RateOptions::default());
        assert!(rated.errors.is_empty(), "{month}: {:?}", rated.errors);
        assert_eq!(rated.notes.non_template_outside_window, 0, "{month}");
        assert_eq!(rated.notes.orphan_statuses, 0, "{month}");

        let mut by_row: BTreeMap<(String, &str), (Sum, wabill_rating::Decimal)> = BTreeMap::new();
        for c in &rated.charges {
            // A free entry point line is reported under the category the message was sent as.
            let category = if c.category == Category::ReferralConversion {
                categories[c.id]
            } else {
                c.category
            };
            let (s, amount) = by_row
                .entry((
                    tariff.markets.market_name(c.market).to_string(),
                    category.as_str(),
                ))
                .or_default();
            s.messages += 1;
            match c.pricing_type {
                PricingType::Regular => s.charged += 1,
                PricingType::FreeCustomerService => s.free_customer_service += 1,
                PricingType::FreeEntryPoint => s.free_entry_point += 1,
                PricingType::FreeTier => s.free_tier += 1,
                PricingType::Undelivered => panic!("{month}: undelivered {}", c.id),
            }
            *amount += c.amount;
        }
        let from_stream: BTreeMap<(String, &str), Sum> = by_row
            .into_iter()
            .map(|(k, (mut s, amount))| {
                s.amount = amount.to_string();
                (k, s)
            })
            .collect();
        let from_estimate: BTreeMap<(String, &str), Sum> = est
            .rows
            .iter()
            .map(|r| {
                (
                    (r.market.clone(), r.category.as_str()),
                    Sum {
                        messages: r.tally.messages,
                        charged: r.tally.charged,
                        free_customer_service: r.tally.free_customer_service,
                        free_entry_point: r.tally.free_entry_point,
                        free_tier: r.tally.free_tier,
                        amount: r.tally.amount.to_string(),
                    },
                )
            })
            .collect();
        assert_eq!(from_estimate, from_stream, "{month}");

        let total: wabill_rating::Decimal = rated.charges.iter().map(|c| c.amount).sum();
        assert_eq!(est.totals.len(), 1);
        assert_eq!(est.totals[0].tally.amount, total, "{month}");
        assert!(total.is_positive(), "{month}");
        assert_eq!(est.totals[0].tally.messages, 5970, "{month}");
        // The price breakdown adds up to each row's amount.
        for r in &est.rows {
            let sum: wabill_rating::Decimal = r.prices.iter().map(|p| p.amount).sum();
            assert_eq!(sum, r.tally.amount, "{month} {} {:?}", r.market, r.category);
        }
    }
}

#[test]
fn the_synthetic_month_is_deterministic_and_shaped_as_documented() {
    let tariff = Tariff::bundled();
    let input = mixed_input("2026-11");
    let a = synthesize(&tariff, &input, input.month).unwrap();
    let b = synthesize(&tariff, &input, input.month).unwrap();
    assert_eq!(a.to_jsonl(), b.to_jsonl());

    // Every message goes to its own user, in the market its line asked for.
    let mut users = std::collections::BTreeSet::new();
    let tz: wabill_estimate::Tz = "America/Sao_Paulo".parse().unwrap();
    let start = wabill_rating::time::local_day_start(tz, input.month.first_day());
    let end = wabill_rating::time::local_day_start(tz, input.month.next().first_day());
    let entry_point_users: std::collections::BTreeSet<u64> = a
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Inbound(i) if i.entry_point.is_some() => Some(i.user.unwrap().get()),
            _ => None,
        })
        .collect();
    // (phone, from an entry point) -> service messages
    let mut per_phone: BTreeMap<(u64, bool), u64> = BTreeMap::new();
    for e in &a.events {
        if let Event::Outbound(o) = e {
            assert!(users.insert(o.user), "user {:?} reused", o.user);
            assert!(start <= o.at && o.at < end, "{} outside the month", o.id);
            if o.kind == MessageKind::NonTemplate {
                let ep = entry_point_users.contains(&o.user.unwrap().get());
                *per_phone.entry((o.phone.get(), ep)).or_default() += 1;
            }
        }
    }
    assert_eq!(a.stats.outbound, 5970);
    assert_eq!(a.stats.statuses, 5970);
    // Service messages of each kind are dealt evenly to the two phones: 2275 answering a plain
    // inbound (these use the free allowance), 325 from an entry point.
    let counts: Vec<((u64, bool), u64)> = per_phone.into_iter().collect();
    assert_eq!(
        counts,
        vec![
            ((15550100001, false), 1138),
            ((15550100001, true), 163),
            ((15550100002, false), 1137),
            ((15550100002, true), 162),
        ]
    );

    // Shares: floor(n × share), entry points of every line, windows of utility and service.
    let utility = &a.lines[1];
    assert_eq!(
        (utility.entry_point, utility.in_window, utility.cold),
        (87, 280, 333)
    );
    let service = &a.lines[3];
    assert_eq!(
        (service.entry_point, service.in_window, service.cold),
        (325, 2275, 0)
    );
    assert_eq!(a.lines[7].country, "KZ");
    assert_eq!(
        a.lines[6].country, "SS",
        "first country of Rest of Africa by calling code (+211)"
    );
}

#[test]
fn compare_prices_the_same_users_under_the_markets_of_their_month() {
    // Kazakhstan is its own market from 2026-10-01; the same Kazakh users in 2026-09 are in
    // Rest of Central & Eastern Europe.
    let tariff = Tariff::bundled();
    let mut input = EstimateInput::new(
        Month::parse("2026-11").unwrap(),
        Currency::parse("USD").unwrap(),
    );
    input.traffic = vec![line(
        Target::Market("Kazakhstan".into()),
        TrafficCategory::Marketing,
        10,
    )];
    let c = wabill_estimate::estimate_with_compare(&tariff, &input).unwrap();
    assert_eq!(c.estimate.rows[0].market, "Kazakhstan");
    assert_eq!(c.previous.month.to_string(), "2026-09");
    assert_eq!(
        c.previous.rows[0].market,
        "Rest of Central & Eastern Europe"
    );
    // data/rates.csv: 2026-10-01 PMP USD Kazakhstan marketing 0.0604; 2026-07-01 PMP USD
    // Rest of Central & Eastern Europe marketing 0.0860.
    assert_eq!(c.estimate.totals[0].tally.amount.to_string(), "0.604");
    assert_eq!(c.previous.totals[0].tally.amount.to_string(), "0.86");
    assert_eq!(c.change()[0].1.to_string(), "-0.256");
}
