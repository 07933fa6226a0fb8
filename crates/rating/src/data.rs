//! The rate data bundled into the binary at build time, from the repository's `data/`.

pub const MARKETS_CSV: &str = include_str!("../../../data/markets.csv");
pub const RATES_CSV: &str = include_str!("../../../data/rates.csv");
/// Known gaps: versions Meta published for which no public source gives the bundled currency's
/// values (`effective_from,pricing_model,currency,market,category,reason`).
pub const RATE_GAPS_CSV: &str = include_str!("../../../data/rate_gaps.csv");
/// Meta's effective dates and what each changed, from its pricing page's change log
/// (`effective_from,pricing_model,market,category,change,source`). Not read by rating: the
/// tests check the bundled rates against it.
pub const META_CHANGES_CSV: &str = include_str!("../../../data/meta_changes.csv");
/// Meta's calling rate cards (`effective_from,currency,market,tier_min,tier_max,rate_per_minute,
/// source`). Empty: no public source gives a row of any card (data/SOURCES.md, "Calling";
/// decisions.md D124), so a charged call is an error until a card is given with `--rates`.
pub const CALL_RATES_CSV: &str = include_str!("../../../data/call_rates.csv");
/// The billing currencies Meta publishes its cards in (messaging and calling alike): 16 since
/// 2026-07-01 (eight added on 2026-04-01, BRL on 2026-07-01; data/SOURCES.md M1 and
/// "Calling"). `wabill rates check` reports the ones the rate data has no card in.
pub const META_CURRENCIES: [&str; 16] = [
    "USD", "AED", "ARS", "AUD", "BRL", "CLP", "COP", "EUR", "GBP", "IDR", "INR", "MXN", "MYR",
    "PEN", "SAR", "SGD",
];

/// The newest effective date of a bundled rate card per currency, `(currency, YYYY-MM-DD)` in
/// order of currency: what `wabill --version` reports. Read from the text of `rates.csv` (its
/// `effective_from` and `currency` columns) without building the rate book, so that it costs
/// nothing at start-up; a known gap is no card and does not count. The rating crate's tests
/// check it against the rate book.
pub fn newest_rate_cards() -> Vec<(&'static str, &'static str)> {
    let mut lines = RATES_CSV.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let column = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(date), Some(currency)) = (column("effective_from"), column("currency")) else {
        return Vec::new();
    };
    let mut newest = std::collections::BTreeMap::<&str, &str>::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        if let (Some(d), Some(c)) = (fields.get(date), fields.get(currency)) {
            let entry = newest.entry(c.trim()).or_insert(d.trim());
            // YYYY-MM-DD: text order is date order.
            if d.trim() > *entry {
                *entry = d.trim();
            }
        }
    }
    newest.into_iter().collect()
}
