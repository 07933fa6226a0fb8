//! The rate data bundled into the binary at build time, from the repository's `data/`.

pub const MARKETS_CSV: &str = include_str!("../../../data/markets.csv");
pub const RATES_CSV: &str = include_str!("../../../data/rates.csv");
