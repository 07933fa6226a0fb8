//! Who the users are and where the businesses sit: the calling-code table users' numbers are
//! built from, and the business profiles (primary country, timezone) WABAs are given.
//!
//! Every number is calling code + a real mobile prefix of that country + random digits, so that
//! the rater's longest-prefix lookup always finds the intended country (a unit test checks it
//! against `data/markets.csv`). Shares lean towards the markets where WhatsApp Business
//! traffic is large (India, Brazil, Indonesia, Mexico, ...).

use crate::rng::mix64;

/// One market users come from.
pub(crate) struct Country {
    pub(crate) iso2: &'static str,
    /// The E.164 calling code, digits only (`1` for the whole NANP; the area code in
    /// `prefixes` then tells the United States, Canada and the Caribbean apart).
    cc: u64,
    /// National mobile prefixes (area code, operator code...), each `prefix_digits` long.
    prefixes: &'static [u32],
    prefix_digits: u32,
    /// Random subscriber digits after the prefix.
    rest_digits: u32,
    /// Share of users, in 1/10,000.
    weight: u32,
}

const fn c(
    iso2: &'static str,
    cc: u64,
    prefixes: &'static [u32],
    prefix_digits: u32,
    rest_digits: u32,
    weight: u32,
) -> Country {
    Country {
        iso2,
        cc,
        prefixes,
        prefix_digits,
        rest_digits,
        weight,
    }
}

#[rustfmt::skip]
pub(crate) static COUNTRIES: &[Country] = &[
    c("IN", 91, &[6, 7, 8, 9], 1, 9, 1900),
    c("BR", 55, &[119, 219, 279, 319, 419, 479, 489, 519, 619, 719, 819, 859], 3, 8, 1500),
    c("ID", 62, &[811, 812, 813, 821, 822, 852, 853, 857, 858, 877, 878, 895, 896], 3, 8, 940),
    // Mexico's WhatsApp ids keep the mobile "1" after 52.
    c("MX", 52, &[155, 133, 181, 122, 166, 199], 3, 8, 650),
    c("CO", 57, &[300, 301, 304, 310, 311, 312, 313, 315, 316, 318, 320, 321, 350], 3, 7, 300),
    c("NG", 234, &[701, 703, 706, 802, 803, 805, 806, 807, 808, 810, 813, 814, 816, 902, 903], 3, 7, 300),
    c("EG", 20, &[10, 11, 12, 15], 2, 8, 250),
    c("ZA", 27, &[60, 61, 62, 63, 64, 71, 72, 73, 74, 76, 78, 79, 81, 82, 83, 84], 2, 7, 200),
    c("SA", 966, &[50, 53, 54, 55, 56, 58, 59], 2, 7, 250),
    c("AE", 971, &[50, 52, 54, 55, 56, 58], 2, 7, 150),
    c("DE", 49, &[151, 152, 157, 159, 160, 162, 163, 170, 171, 172, 173, 174, 175, 176, 177, 178, 179], 3, 8, 250),
    c("FR", 33, &[6, 7], 1, 8, 150),
    c("IT", 39, &[320, 328, 329, 330, 333, 334, 335, 338, 339, 340, 345, 347, 348, 349, 351, 366, 380, 388, 392, 393], 3, 7, 200),
    c("ES", 34, &[6, 7], 1, 8, 200),
    c("GB", 44, &[74, 75, 77, 78, 79], 2, 8, 200),
    c("NL", 31, &[6], 1, 8, 100),
    c("TR", 90, &[501, 505, 506, 507, 530, 532, 533, 535, 536, 541, 542, 543, 544, 545, 552, 553, 554, 555], 3, 7, 200),
    // Russia's mobiles are +7 9xx; +76/+77 would be Kazakhstan.
    c("RU", 7, &[903, 905, 906, 909, 910, 915, 916, 917, 919, 920, 925, 926, 929, 950, 960, 962, 977, 985, 999], 3, 7, 150),
    c("KZ", 7, &[771, 775, 776, 777, 778], 3, 7, 50),
    // United States area codes that are not Canadian or Caribbean.
    c("US", 1, &[202, 212, 213, 214, 305, 310, 312, 404, 415, 617, 646, 702, 713, 718, 786], 3, 7, 300),
    c("CA", 1, &[403, 416, 514, 604, 613, 647], 3, 7, 50),
    c("DO", 1, &[809, 829, 849], 3, 7, 50),
    c("PR", 1, &[787, 939], 3, 7, 30),
    // Argentina's WhatsApp ids carry the mobile "9" before the area code.
    c("AR", 54, &[9111, 9112, 9113, 9115, 9116, 9221, 9261, 9341, 9351, 9381], 4, 7, 250),
    c("CL", 56, &[9], 1, 8, 100),
    c("PE", 51, &[9], 1, 8, 100),
    c("IL", 972, &[50, 52, 53, 54, 55, 58], 2, 7, 50),
    c("MY", 60, &[11, 12, 13, 14, 16, 17, 18, 19], 2, 7, 150),
    c("PK", 92, &[300, 301, 303, 304, 305, 310, 312, 315, 321, 331, 333, 334, 336, 340, 345], 3, 7, 200),
    c("BD", 880, &[13, 14, 15, 16, 17, 18, 19], 2, 8, 50),
    c("PL", 48, &[50, 51, 53, 57, 60, 66, 69, 72, 73, 78, 79, 88], 2, 7, 50),
    c("SG", 65, &[8, 9], 1, 7, 50),
    c("HK", 852, &[5, 6, 9], 1, 7, 50),
    c("PH", 63, &[905, 915, 917, 918, 920, 927, 939, 945, 956, 977, 995, 998], 3, 7, 100),
    c("VN", 84, &[32, 33, 34, 35, 36, 37, 38, 39, 90, 91, 93, 94, 96, 97, 98], 2, 7, 60),
    c("KE", 254, &[70, 71, 72, 74, 79], 2, 7, 60),
    c("GH", 233, &[20, 24, 26, 27, 50, 54, 55, 59], 2, 7, 40),
    c("PT", 351, &[91, 92, 93, 96], 2, 7, 40),
    c("EC", 593, &[98, 99], 2, 7, 40),
    c("TH", 66, &[6, 8, 9], 1, 8, 40),
    c("UA", 380, &[50, 63, 66, 67, 68, 73, 93, 95, 96, 97, 98, 99], 2, 7, 30),
    c("RO", 40, &[72, 73, 74, 75, 76, 77, 78], 2, 7, 30),
    c("QA", 974, &[3, 5, 6, 7], 1, 7, 20),
    c("KW", 965, &[5, 6, 9], 1, 7, 20),
    c("IQ", 964, &[75, 77, 78, 79], 2, 8, 20),
    c("OM", 968, &[7, 9], 1, 7, 20),
    c("HU", 36, &[20, 30, 70], 2, 7, 20),
    c("LK", 94, &[70, 71, 72, 74, 75, 76, 77, 78], 2, 7, 20),
    c("NP", 977, &[98], 2, 8, 20),
];

/// What a WABA is set up as: where the business is and the timezone it bills in.
pub(crate) struct WabaProfile {
    pub(crate) iso2: &'static str,
    pub(crate) timezone: &'static str,
}

const fn w(iso2: &'static str, timezone: &'static str) -> WabaProfile {
    WabaProfile { iso2, timezone }
}

/// Taken in turn (WABA `i` gets profile `i % len`), so that even a handful of WABAs covers the
/// big markets and timezones on both sides of UTC.
pub(crate) static WABA_PROFILES: &[WabaProfile] = &[
    w("BR", "America/Sao_Paulo"),
    w("IN", "Asia/Kolkata"),
    w("ID", "Asia/Jakarta"),
    w("MX", "America/Mexico_City"),
    w("DE", "Europe/Berlin"),
    w("NG", "Africa/Lagos"),
    w("AE", "Asia/Dubai"),
    w("US", "America/New_York"),
    w("IN", "Asia/Kolkata"),
    w("BR", "America/Sao_Paulo"),
    w("CO", "America/Bogota"),
    w("ES", "Europe/Madrid"),
    w("GB", "Europe/London"),
    w("SA", "Asia/Riyadh"),
    w("TR", "Europe/Istanbul"),
    w("AR", "America/Argentina/Buenos_Aires"),
    w("EG", "Africa/Cairo"),
    w("IT", "Europe/Rome"),
    w("ZA", "Africa/Johannesburg"),
    w("SG", "Asia/Singapore"),
    w("MY", "Asia/Kuala_Lumpur"),
    w("PK", "Asia/Karachi"),
];

/// Markets with an authentication-international rate in the bundled data: the countries worth
/// naming in an account's `exception_countries`.
pub(crate) static AUTH_INTERNATIONAL_COUNTRIES: &[&str] =
    &["IN", "ID", "EG", "MY", "NG", "PK", "SA", "ZA", "AE"];

/// Index of a country in [`COUNTRIES`].
pub(crate) fn country_index(iso2: &str) -> Option<usize> {
    COUNTRIES.iter().position(|c| c.iso2 == iso2)
}

/// Maps a user index to the user's number and country. It depends on the index only (not on
/// the seed), so user 17 is the same person in every stream.
pub(crate) struct UserBook {
    /// One slot per 1/10,000 of weight, holding a country index: an O(1) weighted pick.
    slots: Vec<u8>,
}

impl UserBook {
    pub(crate) fn new() -> UserBook {
        let mut slots = Vec::new();
        for (i, c) in COUNTRIES.iter().enumerate() {
            slots.resize(slots.len() + c.weight as usize, i as u8);
        }
        UserBook { slots }
    }

    /// (number, country index) of user `index`.
    #[inline]
    pub(crate) fn user(&self, index: u64) -> (u64, usize) {
        const SALT: u64 = 0x05EE_D0F0_5E55;
        let h = mix64(index ^ SALT);
        let slot = ((u128::from(h) * self.slots.len() as u128) >> 64) as usize;
        let ci = usize::from(self.slots[slot]);
        let c = &COUNTRIES[ci];
        let h2 = mix64(h);
        let prefix = u64::from(c.prefixes[(h2 >> 40) as usize % c.prefixes.len()]);
        let rest_space = 10u64.pow(c.rest_digits);
        let rest = (h2 & 0xFF_FFFF_FFFF) % rest_space;
        let number = (c.cc * 10u64.pow(c.prefix_digits) + prefix) * rest_space + rest;
        (number, ci)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every calling code in `markets.csv`, as (digits, iso2).
    fn market_prefixes() -> Vec<(String, String)> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/markets.csv");
        let mut rdr = csv::Reader::from_path(path).expect("data/markets.csv");
        let headers = rdr.headers().unwrap().clone();
        let col = |n: &str| headers.iter().position(|h| h == n).unwrap();
        let (iso, code) = (col("country_iso2"), col("calling_code"));
        let mut out = Vec::new();
        for row in rdr.records() {
            let row = row.unwrap();
            for p in row[code].split('|') {
                out.push((p.replace('-', "").trim().to_string(), row[iso].to_string()));
            }
        }
        out
    }

    #[test]
    fn table_is_well_formed() {
        let total: u32 = COUNTRIES.iter().map(|c| c.weight).sum();
        assert_eq!(total, 10_000, "weights are in 1/10,000");
        for c in COUNTRIES {
            for &p in c.prefixes {
                let digits = p.to_string().len() as u32;
                assert_eq!(digits, c.prefix_digits, "{} prefix {p}", c.iso2);
            }
            let len = c.cc.to_string().len() as u32 + c.prefix_digits + c.rest_digits;
            assert!(
                (10..=13).contains(&len),
                "{} numbers have {len} digits",
                c.iso2
            );
        }
        for p in WABA_PROFILES {
            assert!(country_index(p.iso2).is_some(), "{}", p.iso2);
        }
        for iso2 in AUTH_INTERNATIONAL_COUNTRIES {
            assert!(country_index(iso2).is_some(), "{iso2}");
        }
    }

    #[test]
    fn every_prefix_maps_to_its_country_by_longest_match() {
        let markets = market_prefixes();
        for c in COUNTRIES {
            for &p in c.prefixes {
                let number = format!("{}{}{}", c.cc, p, "0".repeat(c.rest_digits as usize));
                let best = markets
                    .iter()
                    .filter(|(code, _)| number.starts_with(code.as_str()))
                    .map(|(code, _)| code.len())
                    .max()
                    .unwrap_or_else(|| panic!("{number} matches no calling code"));
                let owners: Vec<&str> = markets
                    .iter()
                    .filter(|(code, _)| code.len() == best && number.starts_with(code.as_str()))
                    .map(|(_, iso)| iso.as_str())
                    .collect();
                assert!(
                    owners.contains(&c.iso2),
                    "{number}: {owners:?}, want {}",
                    c.iso2
                );
            }
        }
    }

    #[test]
    fn users_are_stable_and_spread() {
        let book = UserBook::new();
        assert_eq!(book.user(17), UserBook::new().user(17));
        let mut per_country = vec![0u32; COUNTRIES.len()];
        let mut numbers = std::collections::HashSet::new();
        for i in 0..100_000 {
            let (n, ci) = book.user(i);
            per_country[ci] += 1;
            numbers.insert(n);
            let s = n.to_string();
            assert!((10..=13).contains(&s.len()), "{s}");
            assert!(s.starts_with(&COUNTRIES[ci].cc.to_string()));
        }
        // India is weighted 19%.
        let india = per_country[country_index("IN").unwrap()];
        assert!((17_000..21_000).contains(&india), "{india}");
        assert!(per_country.iter().all(|&n| n > 0));
        assert!(numbers.len() > 99_900, "{}", numbers.len());
    }
}
