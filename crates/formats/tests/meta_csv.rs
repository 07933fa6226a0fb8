//! Behaviour of the Meta rate-card importers (`wabill_formats::meta_csv`): parsing Meta's two
//! CSV layouts from the fixtures in `tests/fixtures/meta/`, the errors a bad file gets, and
//! merging the rows into a `rates.csv` that `wabill_rating::RateBook` loads.

use wabill_formats::meta_csv::{
    detect, merge_into_rates_csv, parse_rate_card, parse_tier_card, write_rates_csv, CardKind,
    ImportError, RateRow,
};
use wabill_rating::{
    data, Category, Currency, Date, Decimal, MarketTable, PricingModel, RateBook, RateKey,
    TierRange,
};

const RATE_CARD: &str = include_str!("fixtures/meta/rate_card_usd_2026-10.csv");
const TIER_CARD: &str = include_str!("fixtures/meta/tier_card_usd_2026-10.csv");

fn table() -> MarketTable {
    MarketTable::from_csv(data::MARKETS_CSV).unwrap()
}

fn date(s: &str) -> Date {
    Date::parse(s).unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn oct() -> Date {
    date("2026-10-01")
}

fn rate_card(text: &str) -> Result<Vec<RateRow>, ImportError> {
    let t = table();
    let markets: Vec<&str> = t.market_names().collect();
    parse_rate_card(text, oct(), "rate_card_usd_2026-10.csv", &markets)
}

fn tier_card(text: &str) -> Result<Vec<RateRow>, ImportError> {
    let t = table();
    let markets: Vec<&str> = t.market_names().collect();
    parse_tier_card(text, oct(), "tier_card_usd_2026-10.csv", &markets)
}

/// (tier_min, tier_max, rate) of one market and category, in file order.
fn tiers(
    rows: &[RateRow],
    market: &str,
    category: Category,
) -> Vec<(Option<u64>, Option<u64>, String)> {
    rows.iter()
        .filter(|r| r.market == market && r.category == category)
        .map(|r| (r.tier_min, r.tier_max, r.rate.to_string()))
        .collect()
}

fn flat(rows: &[RateRow], market: &str, category: Category) -> Option<String> {
    match tiers(rows, market, category).as_slice() {
        [] => None,
        [(None, None, rate)] => Some(rate.clone()),
        other => panic!("{market} {category:?} is not one flat rate: {other:?}"),
    }
}

fn t(min: u64, max: Option<u64>, rate: &str) -> (Option<u64>, Option<u64>, String) {
    (Some(min), max, rate.to_string())
}

#[test]
fn detects_both_layouts_by_their_header_rows() {
    assert_eq!(detect(RATE_CARD), Some(CardKind::RateCard));
    assert_eq!(detect(TIER_CARD), Some(CardKind::TierCard));
    assert_eq!(detect("date,amount\n2026-10-01,3\n"), None);
    assert_eq!(detect(""), None);
}

#[test]
fn rate_card_fixture_gives_one_pmp_row_per_priced_cell() {
    let rows = rate_card(RATE_CARD).unwrap();
    // 9 markets x 5 columns, minus 5 n/a cells.
    assert_eq!(rows.len(), 40);
    for r in &rows {
        assert_eq!(r.effective_from, oct());
        assert_eq!(r.pricing_model, PricingModel::Pmp);
        assert_eq!(r.currency, Currency::parse("USD").unwrap());
        assert_eq!((r.tier_min, r.tier_max), (None, None));
        assert_eq!(r.source, "rate_card_usd_2026-10.csv");
    }
    assert_eq!(
        flat(&rows, "Brazil", Category::Marketing).as_deref(),
        Some("0.0625")
    );
    assert_eq!(
        flat(&rows, "Brazil", Category::Utility).as_deref(),
        Some("0.0068")
    );
    assert_eq!(
        flat(&rows, "Brazil", Category::Service).as_deref(),
        Some("0.0068")
    );
    // `n/a` gives no row.
    assert_eq!(
        flat(&rows, "Brazil", Category::AuthenticationInternational),
        None
    );
    // The two-line "Authentication-⏎International" header is found.
    assert_eq!(
        flat(&rows, "Kazakhstan", Category::AuthenticationInternational).as_deref(),
        Some("0.16")
    );
    // Meta's market names are kept as written, '&' included.
    assert_eq!(
        flat(&rows, "Rest of Central & Eastern Europe", Category::Utility).as_deref(),
        Some("0.0212")
    );
    assert_eq!(
        flat(&rows, "Germany", Category::Utility).as_deref(),
        Some("0.055")
    );
}

#[test]
fn rate_card_fixture_agrees_with_the_bundled_rates() {
    // The fixture's values were copied from data/rates.csv; parsing must give them back.
    let bundled = merge_into_rates_csv(data::RATES_CSV, &[]).unwrap();
    for r in rate_card(RATE_CARD).unwrap() {
        let line = format!(
            "2026-10-01,PMP,USD,{},{},,,{},",
            r.market,
            r.category.as_str(),
            r.rate
        );
        assert!(bundled.contains(&line), "{line} not in data/rates.csv");
    }
}

#[test]
fn rate_card_accepts_currency_tokens_symbols_and_thousands_separators() {
    let text = "\u{feff}\"Cost per message in IDR, effective October 1, 2026\",,,,,,\r\n\
                Market , CURRENCY,marketing,Utility,AUTHENTICATION,Authentication International,Service,Meta Business Agent\r\n\
                Indonesia,Rp,\"Rp 1,234.5\",Rp 356,356 IDR,n/a,N/A,$0.50 USD / 1 M (million) tokens\r\n";
    let rows = rate_card(text).unwrap();
    assert!(rows.iter().all(|r| r.currency.as_str() == "IDR"));
    assert_eq!(
        flat(&rows, "Indonesia", Category::Marketing).as_deref(),
        Some("1234.5")
    );
    assert_eq!(
        flat(&rows, "Indonesia", Category::Utility).as_deref(),
        Some("356")
    );
    assert_eq!(
        flat(&rows, "Indonesia", Category::Authentication).as_deref(),
        Some("356")
    );
    assert_eq!(
        rows.len(),
        3,
        "n/a, N/A and the unknown extra column give no row"
    );

    for (currency, cell, iso, rate) in [
        ("$US", "0.0411", "USD", "0.0411"),
        ("US$", "$0.0411", "USD", "0.0411"),
        ("$", "$.5", "USD", "0.5"),
        ("€", "€0.0523", "EUR", "0.0523"),
        ("EUR", "0.0523 €", "EUR", "0.0523"),
        ("₹", "₹0.8631", "INR", "0.8631"),
        ("INR", "₹ 2.4971", "INR", "2.4971"),
        // A bare '$' in a rate cell is the card's own dollar/peso sign.
        ("MXN", "$1.25", "MXN", "1.25"),
    ] {
        let text = format!(
            "Market,Currency,Marketing,Utility,Authentication\nIndia,{currency},{cell},n/a,n/a\n"
        );
        let rows = rate_card(&text).unwrap_or_else(|e| panic!("{currency} {cell}: {e}"));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].currency.as_str(), iso, "{currency}");
        assert_eq!(rows[0].rate, dec(rate), "{cell}");
    }
}

#[test]
fn tier_card_fixture_gives_one_row_per_tier() {
    let rows = tier_card(TIER_CARD).unwrap();
    // Brazil 4+3, Kazakhstan 3+3+1, North America 4+3, RoCEE 2+2, Saudi Arabia 3+3+2.
    assert_eq!(rows.len(), 33);
    for r in &rows {
        assert_eq!(r.effective_from, oct());
        assert_eq!(r.pricing_model, PricingModel::Pmp);
        assert_eq!(r.currency.as_str(), "USD");
        assert_eq!(r.source, "tier_card_usd_2026-10.csv");
        assert_ne!(r.category, Category::Marketing);
    }
    // Continuation rows belong to the market above; "250,000" is 250000; "--" is unbounded.
    assert_eq!(
        tiers(&rows, "Brazil", Category::Utility),
        [
            t(0, Some(250_000), "0.0068"),
            t(250_001, Some(2_000_000), "0.00646"),
            t(2_000_001, Some(20_000_000), "0.00612"),
            t(20_000_001, None, "0.0051"),
        ]
    );
    // An empty group ends a market's tiers for that category while the other group goes on.
    assert_eq!(
        tiers(&rows, "Brazil", Category::Authentication),
        [
            t(0, Some(250_000), "0.0068"),
            t(250_001, Some(2_000_000), "0.00646"),
            t(2_000_001, None, "0.00612"),
        ]
    );
    // Continuation rows with an empty Currency cell take the market's currency.
    assert_eq!(
        tiers(&rows, "Kazakhstan", Category::Utility),
        [
            t(0, Some(80_000), "0.018"),
            t(80_001, Some(1_000_000), "0.0171"),
            t(1_000_001, None, "0.0162"),
        ]
    );
    assert_eq!(
        tiers(&rows, "Kazakhstan", Category::AuthenticationInternational),
        [t(0, None, "0.16")]
    );
    assert_eq!(
        tiers(&rows, "North America", Category::Utility).last(),
        Some(&t(100_000_001, None, "0.00272"))
    );
    assert_eq!(
        tiers(&rows, "Saudi Arabia", Category::AuthenticationInternational),
        [t(0, Some(500_000), "0.0598"), t(500_001, None, "0.05681")]
    );
    assert_eq!(
        tiers(
            &rows,
            "Rest of Central & Eastern Europe",
            Category::Authentication
        )
        .len(),
        2
    );
    // n/a groups give no rows: not for Brazil's Authentication-International, not for the UK.
    assert!(tiers(&rows, "Brazil", Category::AuthenticationInternational).is_empty());
    assert!(rows.iter().all(|r| r.market != "United Kingdom"));
}

#[test]
fn tier_card_without_currency_column_takes_the_title_currency() {
    let text = "Volume tiers: cost per message in EUR on the WhatsApp Business Platform,,,,,\n\
                ,Utility,,,,\n\
                Market,From,To,Rate type,Rate,vs. List rate\n\
                Italy,\"0\",\"100,000\",List rate,€0.0248,0%\n\
                ,\"100,001\",--,Tier rate 1,€0.02356,-5%\n";
    let rows = tier_card(text).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|r| r.currency.as_str() == "EUR" && r.market == "Italy"));
    assert_eq!(rows[1].tier_min, Some(100_001));
    assert_eq!(rows[1].rate, dec("0.02356"));
}

#[test]
fn a_bad_number_is_reported_with_its_line_and_column() {
    // Line 9 of the rate card: Kuwait. Its Utility cell gets a decimal comma, which must not be
    // read as a thousands separator (0,0440 would otherwise become 440).
    let text = RATE_CARD.replace("Kuwait,USD,0.0792,0.0440", "Kuwait,USD,0.0792,\"0,0440\"");
    let err = rate_card(&text).unwrap_err();
    match &err {
        ImportError::BadValue {
            line,
            column,
            value,
            ..
        } => {
            assert_eq!(*line, 9);
            assert_eq!(column.index, 4);
            assert_eq!(column.name, "Utility");
            assert_eq!(value, "0,0440");
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.starts_with("line 9, column 4 (Utility): '0,0440' is not a rate"),
        "{msg}"
    );

    // Same with Windows line endings, as Meta serves them.
    let msg = rate_card(&text.replace('\n', "\r\n"))
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("line 9, column 4 (Utility)"), "{msg}");
    // Lines are physical lines whatever the line endings (old Mac CR included), blank lines
    // and the header's quoted line break counted.
    let msg = rate_card(&text.replace('\n', "\r"))
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("line 9, column 4 (Utility)"), "{msg}");
    let msg = rate_card(&text.replace("Brazil,", "\r\nBrazil,"))
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("line 10, column 4 (Utility)"), "{msg}");

    let text = RATE_CARD.replace("Germany,USD,0.1365", "Germany,USD,0.13x5");
    let msg = rate_card(&text).unwrap_err().to_string();
    assert!(
        msg.contains("line 7, column 3 (Marketing)") && msg.contains("0.13x5"),
        "{msg}"
    );

    // Tier card: line 12 is Kazakhstan's second row; its Utility To cell is column 4. The
    // header's quoted line break counts as a line.
    let text = TIER_CARD.replace("\"80,001\",\"1,000,000\"", "\"80,001\",\"1,000.000\"");
    let msg = tier_card(&text).unwrap_err().to_string();
    assert!(
        msg.starts_with("line 12, column 4 (Utility To): '1,000.000'"),
        "{msg}"
    );

    let text = TIER_CARD.replace(
        ",0.00612,-10%,\"2,000,001\",--",
        ",0.006.12,-10%,\"2,000,001\",--",
    );
    let msg = tier_card(&text).unwrap_err().to_string();
    assert!(
        msg.starts_with("line 9, column 6 (Utility Rate): '0.006.12'"),
        "{msg}"
    );
}

#[test]
fn an_unknown_market_is_reported_with_its_line_and_column() {
    let text = RATE_CARD.replace("Germany,USD", "Atlantis,USD");
    match rate_card(&text).unwrap_err() {
        ImportError::UnknownMarket {
            line,
            column,
            market,
        } => {
            assert_eq!((line, column.index, column.name.as_str()), (7, 1, "Market"));
            assert_eq!(market, "Atlantis");
        }
        other => panic!("{other:?}"),
    }
    let text = TIER_CARD.replace("Saudi Arabia,USD", "Saudi Arabie,USD");
    let msg = tier_card(&text).unwrap_err().to_string();
    assert!(
        msg.starts_with("line 20, column 1 (Market): unknown market 'Saudi Arabie'"),
        "{msg}"
    );

    // Matching ignores case and a footnote asterisk, and gives the table's spelling back.
    let text = RATE_CARD.replace("Kazakhstan,USD", "KAZAKHSTAN*,USD");
    let rows = rate_card(&text).unwrap();
    assert_eq!(
        flat(&rows, "Kazakhstan", Category::Marketing).as_deref(),
        Some("0.0604")
    );
}

#[test]
fn an_unknown_currency_token_is_named() {
    let text = RATE_CARD.replace("Kuwait,USD", "Kuwait,KD");
    let err = rate_card(&text).unwrap_err();
    assert!(
        matches!(&err, ImportError::UnknownCurrency { line: 9, token, .. } if token == "KD"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("line 9, column 2 (Currency): unknown currency token 'KD'"),
        "{err}"
    );

    let text = RATE_CARD.replace("Brazil,USD,0.0625", "Brazil,USD,¤0.0625");
    let err = rate_card(&text).unwrap_err();
    assert!(
        matches!(&err, ImportError::UnknownCurrency { line: 6, token, .. } if token == "¤"),
        "{err:?}"
    );
    assert!(err.to_string().contains("column 3 (Marketing)"), "{err}");

    // A known token of another currency than the row's is an error, not a conversion.
    let text = RATE_CARD.replace("Brazil,USD,0.0625", "Brazil,USD,€0.0625");
    let msg = rate_card(&text).unwrap_err().to_string();
    assert!(
        msg.starts_with("line 6, column 3 (Marketing)") && msg.contains("EUR"),
        "{msg}"
    );

    // One card, one currency.
    let text = RATE_CARD.replace("Kuwait,USD", "Kuwait,EUR");
    let msg = rate_card(&text).unwrap_err().to_string();
    assert!(msg.starts_with("line 9, column 2 (Currency)"), "{msg}");

    let text = TIER_CARD.replace(",USD,\"5,000,001\"", ",XYZ,\"5,000,001\"");
    let msg = tier_card(&text).unwrap_err().to_string();
    assert!(
        msg.starts_with("line 22, column 2 (Currency): unknown currency token 'XYZ'"),
        "{msg}"
    );
}

#[test]
fn overlapping_tiers_are_reported_with_both_lines() {
    // Brazil's second utility tier starts inside the first one.
    let text = TIER_CARD.replace(
        ",USD,\"250,001\",\"2,000,000\",Tier rate 1",
        ",USD,\"200,001\",\"2,000,000\",Tier rate 1",
    );
    let err = tier_card(&text).unwrap_err();
    match &err {
        ImportError::OverlappingTiers {
            line,
            column,
            overlap,
        } => {
            assert_eq!((*line, overlap.other_line), (8, 7));
            assert_eq!((column.index, column.name.as_str()), (3, "Utility From"));
            assert_eq!(
                (overlap.market.as_str(), overlap.category),
                ("Brazil", Category::Utility)
            );
            assert_eq!(
                overlap.tier,
                TierRange {
                    min: 200_001,
                    max: Some(2_000_000)
                }
            );
            assert_eq!(
                overlap.other,
                TierRange {
                    min: 0,
                    max: Some(250_000)
                }
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .contains("Brazil utility tier 200001:2000000 overlaps tier 0:250000 of line 7"),
        "{err}"
    );

    // A tier after the open-ended one overlaps it too.
    let text = TIER_CARD.replace(
        ",USD,\"100,001\",--,Tier rate 1,0.02014,-5%,\"300,001\",--,Tier rate 1,0.02014,-5%,,,,,",
        ",USD,\"100,001\",--,Tier rate 1,0.02014,-5%,\"300,001\",--,Tier rate 1,0.02014,-5%,,,,,\n,USD,\"900,001\",--,Tier rate 2,0.019,-10%,,,,,,,,,,",
    );
    match tier_card(&text).unwrap_err() {
        ImportError::OverlappingTiers { line, overlap, .. } => {
            assert_eq!((line, overlap.other_line), (20, 19));
            assert_eq!(
                overlap.other,
                TierRange {
                    min: 100_001,
                    max: None
                }
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn tiers_must_price_every_message_of_the_month() {
    // A gap between tiers.
    let text = TIER_CARD.replace("\"80,001\",\"1,000,000\"", "\"80,002\",\"1,000,000\"");
    let msg = tier_card(&text).unwrap_err().to_string();
    assert!(
        msg.starts_with("line 12, column 3 (Utility From)") && msg.contains("80001..80001"),
        "{msg}"
    );
    // A last tier with an upper bound.
    let text = TIER_CARD.replace(
        "\"20,000,001\",--,Tier rate 3",
        "\"20,000,001\",\"99,000,000\",Tier rate 3",
    );
    let msg = tier_card(&text).unwrap_err().to_string();
    assert!(msg.starts_with("line 10, column 4 (Utility To)"), "{msg}");
    // A tier ending before it starts.
    let text = TIER_CARD.replace(
        "\"250,001\",\"2,000,000\",Tier rate 1,0.00646,-5%,\"250,001\"",
        "\"250,001\",\"2,000\",Tier rate 1,0.00646,-5%,\"250,001\"",
    );
    let msg = tier_card(&text).unwrap_err().to_string();
    assert!(msg.starts_with("line 8, column 4 (Utility To)"), "{msg}");
}

#[test]
fn the_wrong_parser_or_a_conversation_card_is_refused() {
    let msg = rate_card(TIER_CARD).unwrap_err().to_string();
    assert!(msg.contains("volume-tier card"), "{msg}");
    let msg = tier_card(RATE_CARD).unwrap_err().to_string();
    assert!(msg.contains("rate card"), "{msg}");
    let msg = rate_card("a,b\n1,2\n").unwrap_err().to_string();
    assert!(
        msg.starts_with("line 1, column 1 (Market): no header row"),
        "{msg}"
    );

    // Meta's 2023 card, as copied in SOURCES.md G6: per conversation, so not PMP.
    let cbp = "\"Cost per conversation in USD, effective June 1, 2023\",,,,,,\n\
               Market,Currency,Marketing,Utility,Authentication,Authentication-International,Service\n\
               Indonesia,$US,0.0411,0.0200,0.0300,0.1360,0.0190\n";
    let msg = rate_card(cbp).unwrap_err().to_string();
    assert!(
        msg.starts_with("line 1, column 1: this card prices conversations (CBP)"),
        "{msg}"
    );
}

#[test]
fn merge_replaces_rows_of_the_same_key_and_sorts() {
    let existing =
        "effective_from,pricing_model,currency,market,category,tier_min,tier_max,rate,source\n\
                    2026-10-01,PMP,USD,United Kingdom,utility,,,0.0199,OLD\n\
                    2026-10-01,PMP,USD,Brazil,utility,,,0.0070,OLD\n\
                    2026-07-01,PMP,USD,Brazil,utility,,,0.0068,KEEP\n\
                    2026-10-01,PMP,EUR,Brazil,utility,,,0.0057,KEEP\n\
                    2026-10-01,PMP,USD,Egypt,utility,,,0.0036,KEEP\n";
    let mut rows = rate_card(RATE_CARD).unwrap();
    rows.extend(tier_card(TIER_CARD).unwrap());
    let merged = merge_into_rates_csv(existing, &rows).unwrap();
    let lines: Vec<&str> = merged.lines().collect();
    assert_eq!(lines[0], wabill_rating::rates::RATES_HEADER);
    // Old rows of a key the import covers are gone; rows of other dates, currencies and
    // markets stay.
    assert!(!merged.contains("OLD"), "{merged}");
    assert_eq!(merged.matches("KEEP").count(), 3);
    assert!(merged
        .contains("2026-10-01,PMP,USD,United Kingdom,utility,,,0.022,rate_card_usd_2026-10.csv"));
    // Brazil utility: the rate card's flat 0.0068 yields to the tier card's tiers, which
    // start with the same list rate.
    let brazil: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("2026-10-01,PMP,USD,Brazil,utility,"))
        .collect();
    assert_eq!(
        brazil,
        [
            "2026-10-01,PMP,USD,Brazil,utility,0,250000,0.0068,tier_card_usd_2026-10.csv",
            "2026-10-01,PMP,USD,Brazil,utility,250001,2000000,0.00646,tier_card_usd_2026-10.csv",
            "2026-10-01,PMP,USD,Brazil,utility,2000001,20000000,0.00612,tier_card_usd_2026-10.csv",
            "2026-10-01,PMP,USD,Brazil,utility,20000001,,0.0051,tier_card_usd_2026-10.csv",
        ]
    );
    // Sorted by (date, model, currency, market, category in Meta's order, tier_min).
    let first_fields: Vec<String> = lines[1..5]
        .iter()
        .map(|l| l.split(',').take(5).collect::<Vec<_>>().join(","))
        .collect();
    assert_eq!(
        first_fields,
        [
            "2026-07-01,PMP,USD,Brazil,utility",
            "2026-10-01,PMP,EUR,Brazil,utility",
            "2026-10-01,PMP,USD,Brazil,marketing",
            "2026-10-01,PMP,USD,Brazil,utility",
        ]
    );
    let pos = |needle: &str| lines.iter().position(|l| l.starts_with(needle)).unwrap();
    assert!(pos("2026-10-01,PMP,USD,Brazil,service") < pos("2026-10-01,PMP,USD,Egypt,utility"));
    assert!(
        pos("2026-10-01,PMP,USD,Brazil,authentication,2000001")
            < pos("2026-10-01,PMP,USD,Brazil,service")
    );
    assert_eq!(
        lines.len(),
        1 + 3 + (40 - 12) + 33,
        "3 kept, 40 flat minus 12 replaced by tiers, 33 tiers"
    );
}

#[test]
fn merging_nothing_only_reorders_and_writing_round_trips() {
    let merged = merge_into_rates_csv(data::RATES_CSV, &[]).unwrap();
    let mut before: Vec<&str> = data::RATES_CSV.lines().collect();
    let mut after: Vec<&str> = merged.lines().collect();
    assert_eq!(after[0], before[0]);
    before.sort_unstable();
    after.sort_unstable();
    assert_eq!(before, after);
    assert_eq!(merge_into_rates_csv(&merged, &[]).unwrap(), merged);

    let rows = tier_card(TIER_CARD).unwrap();
    let written = write_rates_csv(&rows);
    assert_eq!(written.lines().count(), 1 + rows.len());
    assert_eq!(
        merge_into_rates_csv("", &rows).unwrap(),
        merge_into_rates_csv(&written, &[]).unwrap()
    );
}

#[test]
fn tiers_survive_a_later_import_of_the_rate_card_alone() {
    let with_tiers = merge_into_rates_csv("", &tier_card(TIER_CARD).unwrap()).unwrap();
    let after = merge_into_rates_csv(&with_tiers, &rate_card(RATE_CARD).unwrap()).unwrap();
    assert!(after.contains("2026-10-01,PMP,USD,Brazil,utility,250001,2000000,0.00646,"));
    assert!(!after.contains("2026-10-01,PMP,USD,Brazil,utility,,,"));
    assert!(after.contains("2026-10-01,PMP,USD,Brazil,marketing,,,0.0625,"));
    // A rate card with a different list rate replaces the (now stale) tiers.
    let changed = RATE_CARD.replace("Brazil,USD,0.0625,0.0068", "Brazil,USD,0.0625,0.0070");
    let after = merge_into_rates_csv(&with_tiers, &rate_card(&changed).unwrap()).unwrap();
    assert!(after.contains("2026-10-01,PMP,USD,Brazil,utility,,,0.007,"));
    assert!(!after.contains("2026-10-01,PMP,USD,Brazil,utility,250001"));
}

#[test]
fn merge_refuses_new_rows_that_disagree() {
    let changed = RATE_CARD.replace("Brazil,USD,0.0625,0.0068", "Brazil,USD,0.0625,0.0070");
    let mut rows = rate_card(&changed).unwrap();
    rows.extend(tier_card(TIER_CARD).unwrap());
    let msg = merge_into_rates_csv("", &rows).unwrap_err().to_string();
    assert!(
        msg.starts_with("2026-10-01 PMP USD Brazil utility: flat rate 0.007"),
        "{msg}"
    );

    let mut rows = rate_card(RATE_CARD).unwrap();
    rows.extend(rate_card(&changed).unwrap());
    let msg = merge_into_rates_csv("", &rows).unwrap_err().to_string();
    assert!(msg.contains("two rates"), "{msg}");

    // The same card twice is harmless.
    let mut rows = tier_card(TIER_CARD).unwrap();
    rows.extend(tier_card(TIER_CARD).unwrap());
    assert!(merge_into_rates_csv("", &rows).is_ok());

    let bad =
        "effective_from,pricing_model,currency,market,category,tier_min,tier_max,rate,source\n\
               2026-10-01,PMP,USD,Brazil,utility,,,0.0070,x\n\
               2026-10-01,PMP,USD,Brazil,utlity,,,0.0070,x\n";
    let msg = merge_into_rates_csv(bad, &[]).unwrap_err().to_string();
    assert!(
        msg.starts_with("line 3, column 5 (category): 'utlity'"),
        "{msg}"
    );
}

#[test]
fn merged_rates_load_into_the_rate_book_with_tiered_prices() {
    let mut rows = rate_card(RATE_CARD).unwrap();
    rows.extend(tier_card(TIER_CARD).unwrap());
    let merged = merge_into_rates_csv(data::RATES_CSV, &rows).unwrap();

    let markets = table();
    let mut book = RateBook::default();
    book.add_csv(&markets, "rates.csv", &merged).unwrap();
    let key = |market: &str, category| RateKey {
        currency: Currency::parse("USD").unwrap(),
        model: PricingModel::Pmp,
        market: markets.market(market).unwrap(),
        category,
    };

    let v = book
        .lookup(&key("Brazil", Category::Utility), date("2026-10-15"))
        .unwrap();
    assert_eq!(v.effective_from, oct());
    assert!(v.is_tiered());
    assert_eq!(
        v.price(1),
        Some((
            Some(TierRange {
                min: 0,
                max: Some(250_000)
            }),
            dec("0.0068")
        ))
    );
    assert_eq!(v.price(250_000).unwrap().1, dec("0.0068"));
    assert_eq!(v.price(250_001).unwrap().1, dec("0.00646"));
    assert_eq!(
        v.price(50_000_000),
        Some((
            Some(TierRange {
                min: 20_000_001,
                max: None
            }),
            dec("0.0051")
        ))
    );
    let kz = book
        .lookup(
            &key("Kazakhstan", Category::AuthenticationInternational),
            oct(),
        )
        .unwrap();
    assert_eq!(kz.price(u64::MAX).unwrap().1, dec("0.16"));

    // Flat rows from the rate card, and older versions untouched.
    let mkt = book
        .lookup(&key("Brazil", Category::Marketing), oct())
        .unwrap();
    assert!(!mkt.is_tiered());
    assert_eq!(mkt.price(1), Some((None, dec("0.0625"))));
    let before = book
        .lookup(&key("Brazil", Category::Utility), date("2026-09-30"))
        .unwrap();
    assert!(before.effective_from < oct());
    assert!(!before.is_tiered());
}
