//! wabill's own rate data (data/markets.csv and data/rates.csv, or `--rates FILE`): any text
//! loads or is refused with a reason, never a panic. The input is a markets table and a rates
//! file separated by a NUL byte; without one, the rates file is read beside the bundled
//! markets.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wabill_rating::{data, Tariff};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (markets, rates) = match text.split_once('\0') {
        Some((m, r)) => (m, r),
        None => (data::MARKETS_CSV, text),
    };
    let _ = Tariff::from_csv(markets, &[("fuzz.csv", rates)]);
});
