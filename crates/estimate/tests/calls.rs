//! Calls in the estimate (`--call-minutes`): the synthetic month's calls, written as
//! `docs/events.md` lines, read back with the public parser and rated as `wabill rate` rates
//! them (the core's call rater, the calls' windows given to the message walk), cost exactly
//! what the estimate reports; counts follow from the input; no calling rate is an error naming
//! currency, market and date, except in the comparison month, which leaves its calls out.

use wabill_estimate::{
    estimate, estimate_with_compare, parse_request, parse_traffic_calls, render, synthesize,
    CallTraffic, EstimateInput, Format, Share, Target, TrafficCategory, TrafficLine,
};
use wabill_formats::{parse_line, Parsed};
use wabill_rating::calls::{
    rate_calls, window_openers, CallDirection, CallType, CALL_RATES_HEADER,
};
use wabill_rating::{rate, Account, Currency, Decimal, Event, Month, RateOptions, Tariff};

/// Brazil in USD from 2026-10-01, tiered in minutes: 0-1000 and 1001 up.
fn card() -> String {
    format!(
        "{CALL_RATES_HEADER}\n\
         2026-10-01,USD,Brazil,0,1000,0.0320,test-only\n\
         2026-10-01,USD,Brazil,1001,,0.0250,test-only\n"
    )
}

fn tariff() -> Tariff {
    Tariff::bundled().with_call_rates("test", &card()).unwrap()
}

fn input(month: &str, calls: Option<CallTraffic>) -> EstimateInput {
    let mut input = EstimateInput::new(
        Month::parse(month).unwrap(),
        Currency::parse("USD").unwrap(),
    );
    input.timezone = "America/Sao_Paulo".parse().unwrap();
    input.phones = 3;
    input.primary_country = Some("BR".into());
    input.traffic = vec![
        TrafficLine {
            target: Target::Market("Brazil".into()),
            category: TrafficCategory::Marketing,
            messages: 500,
        },
        TrafficLine {
            target: Target::Market("Brazil".into()),
            category: TrafficCategory::Service,
            messages: 300,
        },
    ];
    input.calls = calls;
    input
}

fn calls(minutes: u64, share: &str, average_seconds: u64) -> Option<CallTraffic> {
    Some(CallTraffic {
        minutes,
        business_initiated: Share::parse("share", share).unwrap(),
        average_seconds,
    })
}

#[test]
fn the_calls_cost_what_rating_the_written_month_gives() {
    let tariff = tariff();
    for (minutes, share, average) in [(3000, "80%", 150), (7, "100%", 50), (2500, "33.3%", 61)] {
        let input = input("2026-11", calls(minutes, share, average));
        let est = estimate(&tariff, &input).unwrap();
        let without = estimate(&tariff, &input_without_calls(&input)).unwrap();

        let jsonl = synthesize(&tariff, &input, input.month).unwrap().to_jsonl();
        let mut parsed = Parsed::default();
        for (i, l) in jsonl.lines().enumerate() {
            parse_line(l, i as u64 + 1, &mut parsed).unwrap();
        }
        let accounts: Vec<&Account<'_>> = parsed
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Account(a) => Some(&**a),
                _ => None,
            })
            .collect();
        let rated = rate_calls(
            &tariff.markets,
            &tariff.call_rates,
            &accounts,
            &parsed.calls,
        );
        assert!(rated.errors.is_empty(), "{:?}", rated.errors);

        // Counts follow from the input: ceil(minutes × 60 / average) calls of the minutes'
        // seconds in all, floor(calls × share) of them business-initiated.
        let n = (minutes * 60).div_ceil(average);
        let business = Share::parse("share", share).unwrap().of(n);
        assert_eq!(rated.charges.len() as u64, n);
        let seconds: u64 = rated.charges.iter().map(|c| c.seconds).sum();
        assert_eq!(seconds, minutes * 60);
        let bi = rated
            .charges
            .iter()
            .filter(|c| c.direction == CallDirection::BusinessInitiated)
            .count() as u64;
        assert_eq!(bi, business);
        assert!(rated
            .charges
            .iter()
            .all(|c| (c.call_type == CallType::Regular)
                == (c.direction == CallDirection::BusinessInitiated)));

        let amount: Decimal = rated.charges.iter().map(|c| c.amount).sum();
        let pulses: u64 = rated
            .charges
            .iter()
            .filter(|c| c.call_type == CallType::Regular)
            .map(|c| c.pulses)
            .sum();
        let row = est.calls.as_ref().expect("calls priced");
        assert_eq!(row.amount, amount);
        assert!(amount.is_positive());
        assert_eq!(row.calls, n);
        assert_eq!(row.business_initiated, business);
        assert_eq!(row.user_initiated, n - business);
        assert_eq!(row.seconds, minutes * 60);
        assert_eq!(row.charged_pulses, pulses);
        assert_eq!(row.market, "Brazil");
        assert_eq!(row.prices.iter().map(|p| p.amount).sum::<Decimal>(), amount);

        // The messages of the written month, with the calls' windows, as `wabill rate` rates
        // them: exactly the estimate's messages, which the calls leave as they were.
        let mut events = parsed.events.clone();
        events.extend(window_openers(&parsed.calls));
        let messages = rate(&tariff, &[], &events, RateOptions::default());
        assert!(messages.errors.is_empty(), "{:?}", messages.errors);
        let message_amount: Decimal = messages.charges.iter().map(|c| c.amount).sum();
        let total = &est.totals[0];
        assert_eq!(total.tally.amount, message_amount);
        assert_eq!(total.tally, without.totals[0].tally);
        assert_eq!(total.calls, amount);
        assert_eq!(total.amount(), message_amount + amount);
        assert_eq!(est.rows, without.rows);
    }
}

fn input_without_calls(input: &EstimateInput) -> EstimateInput {
    let mut i = input.clone();
    i.calls = None;
    i
}

#[test]
fn a_tier_boundary_crossed_prices_the_crossing_call_at_the_tier_it_reaches() {
    // 1200 business-initiated calls of 60 s: 1200 minutes, the 1001st minute and on in tier 2.
    let est = estimate(&tariff(), &input("2026-11", calls(1200, "100%", 60))).unwrap();
    let row = est.calls.unwrap();
    let rates: Vec<(String, u64)> = row
        .prices
        .iter()
        .map(|p| (p.rate.to_string(), p.calls))
        .collect();
    // Calls 1..=1000 end at or below 1000 minutes; 1001..=1200 reach tier 2.
    assert_eq!(
        rates,
        [("0.032".to_string(), 1000), ("0.025".to_string(), 200)]
    );
    let expect = "0.032".parse::<Decimal>().unwrap().times(1000)
        + "0.025".parse::<Decimal>().unwrap().times(200);
    assert_eq!(row.amount, expect);
}

#[test]
fn no_calling_rate_is_an_error_naming_currency_market_and_date() {
    let e = estimate(&Tariff::bundled(), &input("2026-11", calls(100, "50%", 60))).unwrap_err();
    assert_eq!(e.code(), "missing_rate");
    assert!(e.is_unratable());
    let text = e.to_string();
    for part in [
        "USD",
        "'Brazil'",
        "2026-11-01",
        "50 business-initiated calls",
        "--rates DIR",
    ] {
        assert!(text.contains(part), "{text}");
    }
    // Only user-initiated calls: free, no rate needed.
    let est = estimate(&Tariff::bundled(), &input("2026-11", calls(100, "0%", 60))).unwrap();
    assert_eq!(est.calls.unwrap().amount, Decimal::ZERO);
}

#[test]
fn calls_need_the_primary_country_and_sane_bounds() {
    let mut i = input("2026-11", calls(100, "50%", 60));
    i.primary_country = None;
    assert_eq!(
        estimate(&tariff(), &i).unwrap_err().code(),
        "missing_primary_country"
    );
    let i = input("2026-11", calls(100, "50%", 0));
    assert_eq!(estimate(&tariff(), &i).unwrap_err().code(), "invalid_input");
    let i = input(
        "2026-11",
        calls(wabill_estimate::MAX_CALL_MINUTES + 1, "50%", 60),
    );
    assert_eq!(estimate(&tariff(), &i).unwrap_err().code(), "invalid_input");
    // Calls alone are traffic enough.
    let mut i = input("2026-11", calls(10, "100%", 60));
    i.traffic.clear();
    let est = estimate(&tariff(), &i).unwrap();
    assert!(est.rows.is_empty());
    assert_eq!(est.totals[0].amount(), est.calls.unwrap().amount);
}

#[test]
fn the_comparison_shows_calls_only_where_they_were_priced() {
    let tariff = tariff();
    let input = input("2026-11", calls(600, "100%", 60));
    let c = estimate_with_compare(&tariff, &input).unwrap();
    assert!(c.estimate.calls.is_some());
    assert!(c.previous.calls.is_none());
    let why = c.previous.calls_not_priced.clone().unwrap();
    assert!(
        why.contains("2026-09-01") && why.contains("Brazil"),
        "{why}"
    );
    // Like with like: the change is the messages' change alone.
    let messages_only = estimate_with_compare(&tariff, &input_without_calls(&input)).unwrap();
    assert_eq!(c.change(), messages_only.change());
    let table = render(&c.estimate, Some(&c.previous), Format::Table);
    assert!(table.contains("calls not priced in 2026-09"), "{table}");
    let json: serde_json::Value =
        serde_json::from_str(&render(&c.estimate, Some(&c.previous), Format::Json)).unwrap();
    assert_eq!(json["compare"]["calls"], serde_json::Value::Null);
    assert_eq!(
        json["estimate"]["calls"]["amount"],
        c.estimate.calls.as_ref().unwrap().amount.to_string()
    );
    // With a card in force in both months, both show calls and the change counts them.
    let both = Tariff::bundled()
        .with_call_rates(
            "t",
            &format!("{CALL_RATES_HEADER}\n2025-07-01,USD,Brazil,,,0.0400,t\n2026-10-01,USD,Brazil,,,0.0300,t\n"),
        )
        .unwrap();
    let c = estimate_with_compare(&both, &input).unwrap();
    let (now, then) = (
        c.estimate.calls.as_ref().unwrap().amount,
        c.previous.calls.as_ref().unwrap().amount,
    );
    assert_eq!(now, "0.03".parse::<Decimal>().unwrap().times(600));
    assert_eq!(then, "0.04".parse::<Decimal>().unwrap().times(600));
    let messages = c.estimate.totals[0].tally.amount - c.previous.totals[0].tally.amount;
    assert_eq!(c.change()[0].1, messages + now - then);
}

#[test]
fn the_request_and_the_traffic_file_carry_calls() {
    let body = serde_json::json!({
        "month": "2026-11", "primary_country": "BR", "traffic": [],
        "call_minutes": 90, "business_initiated_share": "75%", "average_call_seconds": 45,
    });
    let r = parse_request(&body).unwrap();
    assert_eq!(r.input.calls, calls(90, "75%", 45));
    let r =
        parse_request(&serde_json::json!({"month": "2026-11", "traffic": [], "call_minutes": 5}))
            .unwrap();
    assert_eq!(r.input.calls, calls(5, "100%", 120));
    for bad in [
        serde_json::json!({"month": "2026-11", "traffic": [], "average_call_seconds": 5}),
        serde_json::json!({"month": "2026-11", "traffic": [], "call_minutes": 5, "average_call_seconds": 0}),
        serde_json::json!({"month": "2026-11", "traffic": [], "call_minutes": 5, "business_initiated_share": "101%"}),
    ] {
        assert!(parse_request(&bad).is_err(), "{bad}");
    }
    let file = r#"{"traffic":[],"call_minutes":"1,000","business_initiated_share":"10%"}"#;
    assert_eq!(parse_traffic_calls(file).unwrap(), calls(1000, "10%", 120));
    assert_eq!(
        parse_traffic_calls("market,category,messages\n").unwrap(),
        None
    );
    assert!(parse_traffic_calls(r#"{"traffic":[],"call_minutes":-1}"#).is_err());
}
