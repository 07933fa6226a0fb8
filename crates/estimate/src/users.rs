//! Who the synthetic users are: real numbers of the requested country or market.
//!
//! The market table only answers "which country is this number?" (longest calling-code prefix),
//! so the countries are found by asking it about every four-digit prefix: `0000000` appended to
//! each of 1000..=9999 gives a number whose country the table decides exactly as it will decide
//! for a user's number. That finds every country that owns a calling code (territories sharing
//! their owner's code own none) with whatever table `--rates DIR` brings, and needs no list of
//! countries of our own. Every number handed out is checked with the same lookup, so a longer
//! prefix inside a probe (a table with five-digit codes) can never put a user in the wrong
//! country: such numbers are skipped.

use crate::error::EstimateError;
use crate::input::Target;
use wabill_rating::{CountryId, Date, MarketId, MarketTable, Msisdn};

/// Digits after a four-digit probe: numbers have 11 digits, the length of a NANP number and
/// within E.164's 15 for every country.
const SUBSCRIBER_DIGITS: u32 = 7;
const SUBSCRIBERS: u64 = 10u64.pow(SUBSCRIBER_DIGITS);

/// Every country that owns numbers, with its four-digit probes in ascending order.
pub struct NumberPlan {
    /// (country, probes), in order of each country's first probe.
    countries: Vec<(CountryId, Vec<u64>)>,
}

impl NumberPlan {
    pub fn scan(markets: &MarketTable) -> NumberPlan {
        let mut countries: Vec<(CountryId, Vec<u64>)> = Vec::new();
        for probe in 1000..=9999u64 {
            if let Some(c) = markets.country_of(probe * SUBSCRIBERS) {
                match countries.iter_mut().find(|(id, _)| *id == c) {
                    Some((_, probes)) => probes.push(probe),
                    None => countries.push((c, vec![probe])),
                }
            }
        }
        NumberPlan { countries }
    }

    fn probes(&self, c: CountryId) -> Option<&[u64]> {
        self.countries
            .iter()
            .find(|(id, _)| *id == c)
            .map(|(_, p)| p.as_slice())
    }

    /// Countries with numbers whose market on `date` is `market`, in calling-code order.
    pub fn countries_in(
        &self,
        markets: &MarketTable,
        market: MarketId,
        date: Date,
    ) -> Vec<CountryId> {
        self.countries
            .iter()
            .map(|(c, _)| *c)
            .filter(|&c| markets.market_on(c, date) == Some(market))
            .collect()
    }

    /// The country a line's users are in. A market's users are in the primary country when it
    /// belongs to that market (a business's home traffic), else in the market's first country
    /// by calling code (decisions.md D21).
    pub fn resolve(
        &self,
        markets: &MarketTable,
        target: &Target,
        primary: Option<CountryId>,
        date: Date,
    ) -> Result<CountryId, EstimateError> {
        match target {
            Target::Country(iso) => {
                let c = markets.country(&iso.to_ascii_uppercase()).ok_or_else(|| {
                    EstimateError::UnknownCountry {
                        country: iso.clone(),
                    }
                })?;
                if self.probes(c).is_none() {
                    return Err(EstimateError::NoCallingCode {
                        country: markets.iso2(c).to_string(),
                    });
                }
                if markets.market_on(c, date).is_none() {
                    return Err(EstimateError::NoMarket {
                        country: markets.iso2(c).to_string(),
                        date,
                    });
                }
                Ok(c)
            }
            Target::Market(name) => {
                let market = find_market(markets, name)?;
                let members = self.countries_in(markets, market, date);
                match primary.filter(|p| members.contains(p)) {
                    Some(p) => Ok(p),
                    None => members
                        .first()
                        .copied()
                        .ok_or_else(|| EstimateError::EmptyMarket {
                            market: markets.market_name(market).to_string(),
                            date,
                        }),
                }
            }
        }
    }

    /// Hands out distinct numbers of one country, in a fixed order.
    pub fn numbers<'p>(&'p self, markets: &'p MarketTable, c: CountryId) -> Numbers<'p> {
        Numbers {
            markets,
            country: c,
            probes: self.probes(c).unwrap_or(&[]),
            probe: 0,
            next: 0,
        }
    }
}

/// A market by its exact name, or by a unique case-insensitive match (`brazil`).
pub fn find_market(markets: &MarketTable, name: &str) -> Result<MarketId, EstimateError> {
    let name = name.trim();
    if let Some(m) = markets.market(name) {
        return Ok(m);
    }
    let matches: Vec<&str> = markets
        .market_names()
        .filter(|m| m.eq_ignore_ascii_case(name))
        .collect();
    if let [one] = matches.as_slice() {
        return Ok(markets.market(one).expect("listed by the table"));
    }
    let mut known: Vec<&str> = markets.market_names().collect();
    known.sort_unstable();
    Err(EstimateError::UnknownMarket {
        market: name.to_string(),
        known: known.join(", "),
    })
}

/// Distinct numbers of one country: probe × 10⁷ + 0, 1, 2, ..., then the next probe.
pub struct Numbers<'p> {
    markets: &'p MarketTable,
    country: CountryId,
    probes: &'p [u64],
    probe: usize,
    next: u64,
}

impl Iterator for Numbers<'_> {
    type Item = Msisdn;
    fn next(&mut self) -> Option<Msisdn> {
        while let Some(&probe) = self.probes.get(self.probe) {
            while self.next < SUBSCRIBERS {
                let n = probe * SUBSCRIBERS + self.next;
                self.next += 1;
                if self.markets.country_of(n) == Some(self.country) {
                    return Msisdn::from_u64(n);
                }
            }
            self.probe += 1;
            self.next = 0;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wabill_rating::Tariff;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    #[test]
    fn every_market_has_numbers_that_map_back_to_it() {
        let t = Tariff::bundled();
        let m = &t.markets;
        let plan = NumberPlan::scan(m);
        for date in [d("2023-06-01"), d("2026-11-01")] {
            for name in m.market_names() {
                let market = m.market(name).unwrap();
                let members = plan.countries_in(m, market, date);
                if members.is_empty() {
                    // Markets that start later (Kazakhstan, Poland, ...) have no country yet.
                    assert_eq!(date, d("2023-06-01"), "{name}");
                    continue;
                }
                let c = plan
                    .resolve(m, &Target::Market(name.to_string()), None, date)
                    .unwrap();
                for n in plan.numbers(m, c).take(50) {
                    let got = m.country_of(n.get()).unwrap();
                    assert_eq!(got, c, "{n}");
                    assert_eq!(m.market_on(got, date), Some(market), "{n} in {name}");
                }
            }
        }
    }

    #[test]
    fn the_primary_country_is_the_home_of_its_market() {
        let t = Tariff::bundled();
        let m = &t.markets;
        let plan = NumberPlan::scan(m);
        let na = Target::Market("North America".into());
        let date = d("2026-11-01");
        let first = plan.resolve(m, &na, None, date).unwrap();
        assert_eq!(m.iso2(first), "US");
        let ca = m.country("CA");
        assert_eq!(plan.resolve(m, &na, ca, date).unwrap(), ca.unwrap());
        let br = m.country("BR");
        assert_eq!(plan.resolve(m, &na, br, date).unwrap(), first);
    }

    #[test]
    fn countries_and_markets_are_checked() {
        let t = Tariff::bundled();
        let m = &t.markets;
        let plan = NumberPlan::scan(m);
        let date = d("2026-11-01");
        let e = plan
            .resolve(m, &Target::Market("Atlantis".into()), None, date)
            .unwrap_err();
        assert!(e.to_string().contains("'Atlantis'") && e.to_string().contains("Brazil"));
        assert_eq!(
            plan.resolve(m, &Target::Market("brazil".into()), None, date)
                .map(|c| m.iso2(c).to_string()),
            Ok("BR".to_string())
        );
        let e = plan
            .resolve(m, &Target::Country("XX".into()), None, date)
            .unwrap_err();
        assert_eq!(e.code(), "unknown_country");
        let e = plan
            .resolve(m, &Target::Country("GG".into()), None, date)
            .unwrap_err();
        assert_eq!(e.code(), "no_calling_code");
        let e = plan
            .resolve(
                m,
                &Target::Market("Kazakhstan".into()),
                None,
                d("2026-09-01"),
            )
            .unwrap_err();
        assert!(e.to_string().contains("2026-09-01"), "{e}");
        let kz = plan
            .resolve(m, &Target::Country("KZ".into()), None, date)
            .unwrap();
        let n = plan.numbers(m, kz).next().unwrap();
        assert_eq!(m.iso2(m.country_of(n.get()).unwrap()), "KZ");
    }
}
