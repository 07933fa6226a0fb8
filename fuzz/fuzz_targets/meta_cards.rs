//! Meta's downloadable rate, volume-tier and calling cards (`wabill rates import`): any text
//! is read or refused with a reason, and what is read writes out as a rates.csv (or
//! call_rates.csv) the rating core loads.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use wabill_formats::meta_call_csv;
use wabill_formats::meta_csv::{self, CardKind};
use wabill_rating::calls::CallRates;
use wabill_rating::{data, Date, MarketTable, Tariff};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The bundled markets, read once: each run then costs the card alone.
    static MARKETS: OnceLock<MarketTable> = OnceLock::new();
    let markets =
        MARKETS.get_or_init(|| MarketTable::from_csv(data::MARKETS_CSV).expect("bundled markets"));
    let names: Vec<&str> = markets.market_names().collect();
    let effective = Date::from_ymd(2026, 10, 1).unwrap();
    let kind = meta_csv::detect(text);
    for parse in [meta_csv::parse_rate_card, meta_csv::parse_tier_card] {
        let Ok(rows) = parse(text, effective, "fuzz.csv", &names) else {
            continue;
        };
        assert!(
            kind.is_some(),
            "read a card that detect() does not recognise"
        );
        if rows.is_empty() {
            continue;
        }
        let written = meta_csv::write_rates_csv(&rows);
        if let Err(e) = Tariff::from_csv(data::MARKETS_CSV, &[("fuzz.csv", &written)]) {
            // Tier rows alone (without list rates) may be refused by the rating core, but
            // never list rates that were just read.
            assert_ne!(kind, Some(CardKind::RateCard), "{e}\n{written}");
        }
    }
    // A calling card that is read is one detect() names, and loads whole: every tier set it
    // passes prices every minute (D146) and every rate has at most 8 decimals.
    if let Ok(rows) = meta_call_csv::parse_call_card(text, effective, "fuzz.csv", &names) {
        assert_eq!(kind, Some(CardKind::CallCard), "read a calling card detect() does not name");
        let written = meta_call_csv::write_call_rates_csv(&rows).expect("known market names");
        let mut rates = CallRates::default();
        if let Err(e) = rates.add_csv(markets, "fuzz.csv", &written) {
            panic!("{e}\n{written}");
        }
    }
});
