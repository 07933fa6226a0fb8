//! Behaviour of the calling-card importer (`wabill_formats::meta_call_csv`): the layout wabill
//! accepts (decisions.md D145) read from `tests/fixtures/meta/call_card_usd_2026-07.csv`, the
//! errors a bad card gets (line, column, why), and merging into a `call_rates.csv` that the
//! rating core's `CallRates` loads and prices calls with.

use wabill_formats::meta_call_csv::{
    merge_into_call_rates_csv, parse_call_card, write_call_rates_csv, CallRateRow,
};
use wabill_formats::meta_csv::{detect, CardKind, ImportError};
use wabill_rating::calls::{CallRates, CALL_RATES_HEADER};
use wabill_rating::{data, Currency, Date, Decimal, MarketTable};

const CALL_CARD: &str = include_str!("fixtures/meta/call_card_usd_2026-07.csv");
const RATE_CARD: &str = include_str!("fixtures/meta/rate_card_usd_2026-10.csv");
const TIER_CARD: &str = include_str!("fixtures/meta/tier_card_usd_2026-10.csv");

fn table() -> MarketTable {
    MarketTable::from_csv(data::MARKETS_CSV).unwrap()
}

fn july() -> Date {
    Date::parse("2026-07-01").unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn card(text: &str) -> Result<Vec<CallRateRow>, ImportError> {
    let t = table();
    let markets: Vec<&str> = t.market_names().collect();
    parse_call_card(text, july(), "card.csv", &markets)
}

/// (tier_min, tier_max, rate) of one market, in file order.
fn tiers(rows: &[CallRateRow], market: &str) -> Vec<(Option<u64>, Option<u64>, Decimal)> {
    rows.iter()
        .filter(|r| r.market == market)
        .map(|r| (r.tier_min, r.tier_max, r.rate_per_minute))
        .collect()
}

/// The error's text, which is what the person fixing the file reads.
fn err(text: &str) -> String {
    card(text).expect_err("the card is refused").to_string()
}

/// A minimal tiered card: header, then `rows`.
fn tiered(rows: &str) -> String {
    format!(
        "Cost per minute in USD on the WhatsApp Business Calling API,,,\n\
         Market,Currency,From,To,Rate per minute\n{rows}"
    )
}

#[test]
fn the_calling_card_is_told_apart_from_both_messaging_cards() {
    assert_eq!(detect(CALL_CARD), Some(CardKind::CallCard));
    assert_eq!(detect(RATE_CARD), Some(CardKind::RateCard));
    assert_eq!(detect(TIER_CARD), Some(CardKind::TierCard));
    assert_eq!(
        detect("Market,Currency,Rate per minute\nBrazil,USD,0.02\n"),
        Some(CardKind::CallCard)
    );
    // A plain "Rate" column is a calling card's only under a title about minutes.
    assert_eq!(
        detect("Calling rates in USD\nMarket,Currency,From,To,Rate\nBrazil,USD,0,--,0.02\n"),
        Some(CardKind::CallCard)
    );
    assert_eq!(detect("Market,Currency,Rate\nBrazil,USD,0.02\n"), None);
    // The messaging parsers refuse the calling card, and the calling parser theirs.
    let t = table();
    let m: Vec<&str> = t.market_names().collect();
    assert!(wabill_formats::meta_csv::parse_rate_card(CALL_CARD, july(), "c", &m).is_err());
    assert!(wabill_formats::meta_csv::parse_tier_card(CALL_CARD, july(), "c", &m).is_err());
    for messaging in [RATE_CARD, TIER_CARD] {
        let e = err(messaging);
        assert!(e.contains("messaging cards"), "{e}");
    }
}

#[test]
fn the_fixture_gives_one_row_per_tier_in_minutes() {
    let rows = card(CALL_CARD).unwrap();
    // The fixture's tier rows: Brazil 3, India 2, Mexico 1, Rest of Latin America 2; North
    // America is n/a and the footnote is no market.
    let per_market: Vec<(&str, usize)> = ["Brazil", "India", "Mexico", "Rest of Latin America"]
        .iter()
        .map(|m| (*m, tiers(&rows, m).len()))
        .collect();
    assert_eq!(
        per_market,
        [
            ("Brazil", 3),
            ("India", 2),
            ("Mexico", 1),
            ("Rest of Latin America", 2)
        ]
    );
    assert_eq!(rows.len(), 8);
    assert!(tiers(&rows, "North America").is_empty());
    assert_eq!(
        tiers(&rows, "Brazil"),
        [
            (Some(0), Some(50_000), dec("0.02")),
            (Some(50_001), Some(250_000), dec("0.019")),
            (Some(250_001), None, dec("0.018")),
        ]
    );
    // `$US` and `$0.0300` are USD.
    assert_eq!(
        tiers(&rows, "Rest of Latin America")[0],
        (Some(0), Some(50_000), dec("0.03"))
    );
    for r in &rows {
        assert_eq!(r.currency, Currency::parse("USD").unwrap());
        assert_eq!(r.effective_from, july());
        assert_eq!(r.source, "card.csv");
    }
}

#[test]
fn imported_rows_load_into_the_call_rate_table_and_price_by_tier() {
    let rows = card(CALL_CARD).unwrap();
    let text = write_call_rates_csv(&rows).unwrap();
    assert!(text.starts_with(&format!("{CALL_RATES_HEADER}\n")));
    let t = table();
    let mut rates = CallRates::default();
    rates.add_csv(&t, "imported", &text).unwrap();
    let usd = Currency::parse("USD").unwrap();
    let brazil = t.market("Brazil").unwrap();
    let v = rates.lookup(usd, brazil, july()).unwrap();
    let brazil_rows = tiers(&rows, "Brazil");
    // The month's counter in tenths of a minute: through 50,000 minutes the first tier, one
    // pulse more the second (decisions.md D123), above 250,000 the third.
    assert_eq!(v.price(500_000).1, brazil_rows[0].2);
    assert_eq!(v.price(500_001).1, brazil_rows[1].2);
    assert_eq!(v.price(2_500_001).1, brazil_rows[2].2);
    // No version before the card's date; none for the n/a market.
    let day_before = Date::parse("2026-06-30").unwrap();
    assert!(rates.lookup(usd, brazil, day_before).is_none());
    let na = t.market("North America").unwrap();
    assert!(rates.lookup(usd, na, july()).is_none());
}

#[test]
fn a_flat_card_gives_one_untiered_rate_per_market() {
    let rows = card(
        "Cost per minute in INR on the WhatsApp Business Calling API\n\
         Market,Rate per minute,Country code\nIndia,₹0.3885,+91\nIndonesia,n/a,+62\n",
    )
    .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].currency, Currency::parse("INR").unwrap());
    assert_eq!(tiers(&rows, "India"), [(None, None, dec("0.3885"))]);
    let mut rates = CallRates::default();
    rates
        .add_csv(&table(), "flat", &write_call_rates_csv(&rows).unwrap())
        .unwrap();
}

#[test]
fn bad_cards_name_line_column_and_why() {
    let cases: [(&str, &[&str]); 12] = [
        (
            "Brazil,USD,0,--,0.02\nAtlantis,USD,0,--,0.02\n",
            &["line 4, column 1 (Market)", "unknown market 'Atlantis'"],
        ),
        (
            "Brazil,USD,0,--,0.012345678\n",
            &["line 3, column 5 (Rate per minute)", "more than 8 decimals"],
        ),
        (
            "Brazil,USD,0,\"50,000\",0.02\n,USD,\"60,001\",--,0.019\n",
            &["line 4, column 3 (From)", "gap", "50001..60000"],
        ),
        (
            "Brazil,USD,0,\"50,000\",0.02\n,USD,\"40,000\",--,0.019\n",
            &["line 4, column 3 (From)", "overlaps"],
        ),
        (
            "Brazil,USD,0,\"50,000\",0.02\n",
            &["line 3, column 4 (To)", "last tier ends at 50000"],
        ),
        (
            "Brazil,USD,100,--,0.02\n",
            &["line 3, column 3 (From)", "starts at 100 minutes"],
        ),
        (
            "Brazil,USD,n/a,n/a,n/a\n,USD,0,--,0.02\n",
            &["line 4, column 5 (Rate per minute)", "after its n/a row"],
        ),
        (
            "Brazil,USD,0,--,\"0,02\"\n",
            &["line 3, column 5 (Rate per minute)", "decimal comma"],
        ),
        (
            "Brazil,USD,0,--,0.02\nIndia,EUR,0,--,0.02\n",
            &[
                "line 4, column 2 (Currency)",
                "differs from the card's currency USD",
            ],
        ),
        (
            "Brazil,USD,0,--,0.02\nBrazil,USD,0,--,0.02\n",
            &[
                "line 4, column 1 (Market)",
                "listed twice (first on line 3)",
            ],
        ),
        (
            "Brazil,USD,0,--,\n",
            &["line 3, column 5 (Rate per minute)", "empty rate"],
        ),
        (
            "Brazil,USD,0,--,€0.02\n",
            &[
                "line 3, column 5 (Rate per minute)",
                "in EUR but the row's currency is USD",
            ],
        ),
    ];
    for (rows, wanted) in cases {
        let e = err(&tiered(rows));
        for w in wanted {
            assert!(e.contains(w), "{rows:?}: '{e}' lacks '{w}'");
        }
    }
    // Without a Currency column the title must name it.
    let e = err("Calling card\nMarket,Rate per minute\nBrazil,0.02\n");
    assert!(
        e.contains("line 2, column 1 (Market)") && e.contains("no Currency column"),
        "{e}"
    );
    // A card titled per message is a messaging card, whatever its columns.
    let e = err("Cost per message in USD\nMarket,Currency,Rate per minute\nBrazil,USD,0.02\n");
    assert!(
        e.contains("line 1, column 1") && e.contains("prices messages"),
        "{e}"
    );
    // One file, one card: a messaging header above the calling card's is refused (and
    // detect() names the first header, the messaging one).
    let two = "Market,Currency,Marketing,Utility,Authentication\nMarket,Currency,Rate per minute\nBrazil,USD,0.02\n";
    assert_eq!(detect(two), Some(CardKind::RateCard));
    let e = err(two);
    assert!(
        e.contains("line 1, column 1") && e.contains("one file, one card"),
        "{e}"
    );
    // A flat card has no continuation rows.
    let e = err("Market,Currency,Rate per minute\nBrazil,USD,0.02\n,USD,0.01\n");
    assert!(e.contains("line 3, column 1 (Market)"), "{e}");
    let e = err("Market,Currency,From,Rate per minute\nBrazil,USD,0,0.02\n");
    assert!(
        e.contains("line 1, column 3 (From)") && e.contains("To column"),
        "{e}"
    );
}

#[test]
fn merging_replaces_the_versions_given_and_keeps_the_rest() {
    let rows = card(CALL_CARD).unwrap();
    let first = merge_into_call_rates_csv("", &rows).unwrap();
    // A later card for India only: July's India is replaced, the other markets stay, and a
    // new version of another date is added beside them.
    let t = table();
    let m: Vec<&str> = t.market_names().collect();
    let india = "Market,Currency,Rate per minute\nIndia,USD,0.011\n";
    let july_india = parse_call_card(india, july(), "india.csv", &m).unwrap();
    let oct = Date::parse("2026-10-01").unwrap();
    let oct_india = parse_call_card(india, oct, "india-oct.csv", &m).unwrap();
    let merged = merge_into_call_rates_csv(&first, &[july_india, oct_india].concat()).unwrap();
    let lines: Vec<&str> = merged.lines().collect();
    assert_eq!(lines[0], CALL_RATES_HEADER);
    let india_lines: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains(",India,"))
        .collect();
    assert_eq!(
        india_lines,
        [
            "2026-07-01,USD,India,,,0.011,india.csv",
            "2026-10-01,USD,India,,,0.011,india-oct.csv"
        ]
    );
    let brazil = |s: &str| s.lines().filter(|l| l.contains(",Brazil,")).count();
    assert_eq!(brazil(&merged), brazil(&first));
    assert_eq!(brazil(&first), 3);
    // Sorted: a re-merge of the same rows changes nothing.
    assert_eq!(merge_into_call_rates_csv(&merged, &[]).unwrap(), merged);
    let mut rates = CallRates::default();
    rates.add_csv(&t, "merged", &merged).unwrap();

    // Two cards giving one version differently are refused.
    let other = parse_call_card(
        "Market,Currency,Rate per minute\nIndia,USD,0.012\n",
        july(),
        "other.csv",
        &m,
    )
    .unwrap();
    let same = parse_call_card(india, july(), "india.csv", &m).unwrap();
    let e = merge_into_call_rates_csv("", &[same, other].concat())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("2026-07-01 USD India") && e.contains("different rates"),
        "{e}"
    );
}

/// Writes a number of minutes as a card may: plain or with thousands separators.
fn minutes(n: u64, grouped: bool) -> String {
    if !grouped {
        return n.to_string();
    }
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    format!("\"{out}\"")
}

proptest::proptest! {
    /// Any contiguous tier set is read back exactly and prices each minute count at the tier
    /// holding it; moving one tier's start opens a gap or an overlap, which is refused at
    /// that tier's line.
    #[test]
    fn tiers_read_back_and_holes_are_refused(
        start in 0u64..2,
        // At least 4 minutes wide, so that a shift of 3 keeps the tiers in their order.
        widths in proptest::collection::vec(4u64..3_000_000, 0..5),
        rates in proptest::collection::vec(1u64..100_000_000, 5),
        grouped: bool,
        probe in 0u64..40_000_000,
        shift in proptest::prelude::prop_oneof![-3i64..0, 1i64..4],
    ) {
        // Bounds: [start, b1], [b1 + 1, b2], ..., [b_n + 1, --].
        let mut ranges = Vec::new();
        let mut min = start;
        for w in &widths {
            let max = min + w;
            ranges.push((min, Some(max)));
            min = max + 1;
        }
        ranges.push((min, None));
        // Rates with at most 8 decimals (nanos / 10).
        let rate = |i: usize| Decimal::from_nanos(i128::from(rates[i]) * 10);
        let body = |ranges: &[(u64, Option<u64>)]| -> String {
            ranges
                .iter()
                .enumerate()
                .map(|(i, (lo, hi))| {
                    let hi = hi.map_or("--".to_string(), |h| minutes(h, grouped));
                    let market = if i == 0 { "Brazil" } else { "" };
                    format!("{market},USD,{},{hi},{}\n", minutes(*lo, grouped), rate(i))
                })
                .collect()
        };
        let rows = card(&tiered(&body(&ranges))).unwrap();
        let read: Vec<(Option<u64>, Option<u64>, Decimal)> =
            ranges.iter().enumerate().map(|(i, (lo, hi))| (Some(*lo), *hi, rate(i))).collect();
        proptest::prop_assert_eq!(tiers(&rows, "Brazil"), read);
        let t = table();
        let mut book = CallRates::default();
        book.add_csv(&t, "p", &write_call_rates_csv(&rows).unwrap()).unwrap();
        let v = book
            .lookup(Currency::parse("USD").unwrap(), t.market("Brazil").unwrap(), july())
            .unwrap();
        let tenths = probe * 10 + 1;
        let holding = ranges
            .iter()
            .position(|(_, hi)| hi.is_none_or(|h| tenths <= h * 10))
            .unwrap();
        proptest::prop_assert_eq!(v.price(tenths).1, rate(holding));

        if ranges.len() > 1 {
            let k = ranges.len() - 1;
            let mut bad = ranges.clone();
            bad[k].0 = bad[k].0.checked_add_signed(shift).unwrap();
            let e = err(&tiered(&body(&bad)));
            // The header is line 2; tier k is on line 3 + k.
            let at = format!("line {}, column 3 (From)", 3 + k);
            proptest::prop_assert!(e.contains(&at), "{}", e);
            proptest::prop_assert!(
                e.contains(if shift > 0 { "gap" } else { "overlaps" }),
                "{}",
                e
            );
        }
    }
}
