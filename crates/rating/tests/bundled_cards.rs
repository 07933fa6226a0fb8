//! The newest bundled card per currency that `wabill --version` prints is the rate book's.

use std::collections::BTreeMap;
use wabill_rating::{data, Tariff};

#[test]
fn newest_rate_cards_are_the_rate_books_newest_version_per_currency() {
    let tariff = Tariff::bundled();
    let mut newest: BTreeMap<String, String> = BTreeMap::new();
    for (key, version) in tariff.rates.iter() {
        if version.gap.is_some() {
            continue;
        }
        let date = version.effective_from.to_string();
        let entry = newest.entry(key.currency.to_string()).or_default();
        if date > *entry {
            *entry = date;
        }
    }
    let listed: BTreeMap<String, String> = data::newest_rate_cards()
        .into_iter()
        .map(|(c, d)| (c.to_string(), d.to_string()))
        .collect();
    assert!(!listed.is_empty());
    assert_eq!(listed, newest);
}
