//! The bundled rates against Meta's change log (`data/meta_changes.csv`): every version Meta
//! published is in `data/rates.csv` for every currency the data prices, or is a known gap of
//! `data/rate_gaps.csv` with its reason, so that no bill rests on a price Meta replaced
//! (decisions.md D60-D62).

use wabill_rating::changes::{self, MetaChange};
use wabill_rating::{data, Category, Currency, Date, MarketTable, RateBook, RateKey, Tariff};

fn changes(markets: &MarketTable) -> Vec<MetaChange> {
    changes::parse_changes(markets, "data/meta_changes.csv", data::META_CHANGES_CSV).unwrap()
}

fn book(rates_csv: &str, gaps_csv: &str) -> (MarketTable, RateBook) {
    let t = Tariff::from_csv(data::MARKETS_CSV, &[("rates.csv", rates_csv)])
        .unwrap()
        .with_gaps("rate_gaps.csv", gaps_csv)
        .unwrap();
    (t.markets, t.rates)
}

fn describe(markets: &MarketTable, s: &changes::Stale<'_>) -> String {
    format!(
        "{} {} {} {}: Meta changed it on {} (meta_changes.csv line {}), the data still has only the version of {}",
        s.currency,
        s.change.model.as_str(),
        markets.market_name(s.change.market),
        s.change.category.as_str(),
        s.change.effective_from,
        s.change.line,
        s.in_force.effective_from
    )
}

#[test]
fn every_version_meta_lists_is_bundled_for_every_currency_or_a_known_gap() {
    let t = Tariff::bundled();
    let list = changes(&t.markets);
    let currencies = changes::currencies(&t.rates);
    assert!(currencies.len() >= 4, "{currencies:?}");
    let stale: Vec<String> = changes::stale(&t.rates, &list, &currencies)
        .iter()
        .map(|s| describe(&t.markets, s))
        .collect();
    assert!(
        stale.is_empty(),
        "versions missing from data/rates.csv (add the rows, or list them in data/rate_gaps.csv with the reason):\n  {}",
        stale.join("\n  ")
    );
}

#[test]
fn the_check_fails_when_a_listed_version_is_removed_from_the_data() {
    // Without the 2026-04-01 Pakistan utility row, May 2026 would be billed at 2026-01-01's
    // 0.0054: the check names that key, currency and date.
    let rates: String = data::RATES_CSV
        .lines()
        .filter(|l| !l.starts_with("2026-04-01,PMP,USD,Pakistan,utility,"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(rates.len(), data::RATES_CSV.len(), "the row exists");
    let (markets, book) = book(&rates, data::RATE_GAPS_CSV);
    let list = changes(&markets);
    let found: Vec<String> = changes::stale(&book, &list, &changes::currencies(&book))
        .iter()
        .map(|s| describe(&markets, s))
        .collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("USD PMP Pakistan utility: Meta changed it on 2026-04-01")
            && found[0].ends_with("only the version of 2026-01-01"),
        "{}",
        found[0]
    );
    // And without the gaps, every gap's key is reported.
    let (markets, book) = book_without_gaps();
    let list = changes(&markets);
    let n = changes::stale(&book, &list, &changes::currencies(&book)).len();
    let gaps = data::RATE_GAPS_CSV
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .count();
    assert_eq!(n, gaps);
}

fn book_without_gaps() -> (MarketTable, RateBook) {
    book(
        data::RATES_CSV,
        "effective_from,pricing_model,currency,market,category,reason\n",
    )
}

#[test]
fn every_gap_is_a_change_meta_lists_and_no_row_fills_it() {
    let markets = MarketTable::from_csv(data::MARKETS_CSV).unwrap();
    let list = changes(&markets);
    let (_, plain) = book_without_gaps();
    for (i, l) in data::RATE_GAPS_CSV.lines().enumerate().skip(1) {
        let f: Vec<&str> = l.splitn(6, ',').collect();
        let (date, market) = (Date::parse(f[0]).unwrap(), markets.market(f[3]).unwrap());
        let category = Category::parse(f[4]).unwrap();
        assert!(
            list.iter().any(|c| c.effective_from == date
                && c.model.as_str() == f[1]
                && c.market == market
                && c.category == category),
            "rate_gaps.csv line {}: not a change of meta_changes.csv",
            i + 1
        );
        let key = RateKey {
            currency: Currency::parse(f[2]).unwrap(),
            model: wabill_rating::PricingModel::parse(f[1]).unwrap(),
            market,
            category,
        };
        assert!(
            !plain
                .versions(&key)
                .iter()
                .any(|v| v.effective_from == date),
            "rate_gaps.csv line {}: rates.csv has this version; remove the gap",
            i + 1
        );
    }
}

#[test]
fn every_source_key_of_the_new_tables_is_described_in_sources_md() {
    let sources = include_str!("../../../data/SOURCES.md");
    let markets = MarketTable::from_csv(data::MARKETS_CSV).unwrap();
    for c in changes(&markets) {
        for key in c.source.split(';') {
            assert!(
                sources.contains(&format!("| {key} ")) || sources.contains(&format!("`{key}`")),
                "meta_changes.csv line {}: source '{key}' is not in data/SOURCES.md",
                c.line
            );
        }
    }
    for l in data::RATES_CSV
        .lines()
        .filter(|l| l.starts_with("2026-04-01,"))
    {
        let source = l.trim_end().rsplit(',').next().unwrap();
        for key in source.split(';') {
            assert!(
                sources.contains(&format!("`{key}`")),
                "rates.csv '{l}': source '{key}' is not in data/SOURCES.md"
            );
        }
    }
}

#[test]
fn a_gap_makes_the_lookup_find_the_gap_and_a_row_of_the_same_date_fills_it() {
    let t = Tariff::bundled();
    let key = RateKey {
        currency: Currency::parse("USD").unwrap(),
        model: wabill_rating::PricingModel::Cbp,
        market: t.markets.market("Nigeria").unwrap(),
        category: Category::AuthenticationInternational,
    };
    let may = t
        .rates
        .lookup(&key, Date::parse("2025-05-15").unwrap())
        .unwrap();
    assert_eq!(may.effective_from.to_string(), "2025-04-01");
    assert!(may.steps.is_empty() && may.price(1).is_none());
    assert!(may.gap_detail().unwrap().contains("2025-04-01"));
    let march = t
        .rates
        .lookup(&key, Date::parse("2025-03-31").unwrap())
        .unwrap();
    assert_eq!(march.steps[0].1.to_string(), "0.0998");
    // An imported row of the gap's date replaces it, whichever file is read first.
    let row =
        "effective_from,pricing_model,currency,market,category,tier_min,tier_max,rate,source\n\
               2025-04-01,CBP,USD,Nigeria,authentication_international,,,0.07,imported\n";
    for gaps_first in [false, true] {
        let mut b = RateBook::default();
        if gaps_first {
            b.add_gaps_csv(&t.markets, "g", data::RATE_GAPS_CSV)
                .unwrap();
            b.add_csv(&t.markets, "r", row).unwrap();
        } else {
            b.add_csv(&t.markets, "r", row).unwrap();
            b.add_gaps_csv(&t.markets, "g", data::RATE_GAPS_CSV)
                .unwrap();
        }
        let v = b.lookup(&key, Date::parse("2025-05-15").unwrap()).unwrap();
        assert!(v.gap.is_none());
        assert_eq!(v.steps[0].1.to_string(), "0.07");
        assert_eq!(v.source, "imported");
    }
}

#[test]
fn bad_gap_rows_name_the_file_line_and_reason() {
    let markets = MarketTable::from_csv(data::MARKETS_CSV).unwrap();
    let head = "effective_from,pricing_model,currency,market,category,reason\n";
    for (row, why) in [
        ("2026-04-01,PMP,USD,Atlantis,utility,x", "Atlantis"),
        ("2026-04-01,PMP,USD,Pakistan,utility,", "reason"),
        ("2026-13-01,PMP,USD,Pakistan,utility,x", "effective_from"),
    ] {
        let e = RateBook::default()
            .add_gaps_csv(&markets, "g.csv", &format!("{head}{row}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("g.csv line 2") && e.contains(why), "{e}");
    }
    let e = RateBook::default()
        .add_gaps_csv(
            &markets,
            "g.csv",
            &format!("{head}2026-04-01,PMP,USD,Pakistan,utility,x\n2026-04-01,PMP,USD,Pakistan,utility,y\n"),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 3") && e.contains("line 2"), "{e}");
}

#[test]
fn the_listing_shows_the_version_in_force_those_starting_in_the_month_gaps_and_missing_rates() {
    use wabill_rating::listing::{self, What};
    use wabill_rating::Month;
    // Made-up rows: India's utility tiered from 2025-07-01, a flat rate from 2025-08-15.
    let rates =
        "effective_from,pricing_model,currency,market,category,tier_min,tier_max,rate,source\n\
                 2025-07-01,PMP,USD,India,marketing,,,0.0107,a\n\
                 2025-07-01,PMP,USD,India,utility,1,1000,0.0014,b\n\
                 2025-07-01,PMP,USD,India,utility,1001,,0.0012,b\n\
                 2025-08-15,PMP,USD,India,utility,,,0.001,c\n";
    let gaps = "effective_from,pricing_model,currency,market,category,reason\n\
                2025-08-01,PMP,USD,India,marketing,not found\n";
    let t = Tariff::from_csv(data::MARKETS_CSV, &[("r", rates)])
        .unwrap()
        .with_gaps("g", gaps)
        .unwrap();
    let usd = Currency::parse("USD").unwrap();
    let india = t.markets.market("India").unwrap();
    let entries = listing::list(&t, usd, Month::parse("2025-08").unwrap());
    let of = |c: Category| -> Vec<&listing::What<'_>> {
        entries
            .iter()
            .filter(|e| e.market == india && e.category == c)
            .map(|e| &e.what)
            .collect()
    };
    match of(Category::Marketing)[..] {
        [What::Gap(v)] => assert_eq!(v.gap.as_deref(), Some("not found")),
        ref other => panic!("{other:?}"),
    }
    match of(Category::Utility)[..] {
        [What::Rate(a), What::Rate(b)] => {
            assert!(a.is_tiered() && a.source == "b" && a.steps.len() == 2);
            assert_eq!(
                (b.effective_from.to_string(), b.source.as_str()),
                ("2025-08-15".into(), "c")
            );
        }
        ref other => panic!("{other:?}"),
    }
    assert!(matches!(of(Category::Authentication)[..], [What::Missing]));
    // No authentication-international row is not a missing rate (the market bills authentication).
    assert!(of(Category::AuthenticationInternational).is_empty());
    // Every market in force that month is listed, Brazil too (nothing but missing rates).
    let brazil = t.markets.market("Brazil").unwrap();
    assert!(entries
        .iter()
        .any(|e| e.market == brazil && matches!(e.what, What::Missing)));
}
