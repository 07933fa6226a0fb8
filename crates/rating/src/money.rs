//! Exact money: a fixed-point decimal with nine fractional digits, and currency codes.
//!
//! Rates on Meta's cards have at most six decimals (INR, IDR cards use fewer); nine leave room
//! for tier discounts and conversions without ever rounding. Rounding to a currency's minor
//! unit happens in one place, [`Decimal::round_to_scale`], and only where invoices need it.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Mul, Neg, Sub};
use std::str::FromStr;

/// Number of fractional digits kept exactly.
pub const SCALE: u32 = 9;
const ONE: i128 = 1_000_000_000;

/// An exact decimal number, stored as an integer count of 10^-9 units.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Decimal {
    nanos: i128,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("'{0}' is not a decimal number (expected digits with an optional '.' and sign)")]
    Syntax(String),
    #[error("'{0}' has more than {SCALE} decimal places")]
    TooPrecise(String),
    #[error("'{0}' is out of range")]
    Overflow(String),
}

impl Decimal {
    pub const ZERO: Decimal = Decimal { nanos: 0 };

    pub const fn from_nanos(nanos: i128) -> Self {
        Decimal { nanos }
    }
    pub const fn nanos(self) -> i128 {
        self.nanos
    }
    pub fn from_int(v: i64) -> Self {
        Decimal {
            nanos: v as i128 * ONE,
        }
    }
    pub fn is_zero(self) -> bool {
        self.nanos == 0
    }
    pub fn is_positive(self) -> bool {
        self.nanos > 0
    }
    /// Multiplies by an integer count (e.g. a rate times a number of messages).
    pub fn times(self, n: u64) -> Self {
        Decimal {
            nanos: self.nanos.checked_mul(n as i128).expect("money overflow"),
        }
    }

    /// Rounds to `digits` fractional digits, half away from zero. The only rounding in wabill.
    pub fn round_to_scale(self, digits: u32) -> Self {
        assert!(digits <= SCALE);
        let unit = 10i128.pow(SCALE - digits);
        let q = self.nanos / unit;
        let r = self.nanos % unit;
        let q = if r.abs() * 2 >= unit {
            q + self.nanos.signum()
        } else {
            q
        };
        Decimal { nanos: q * unit }
    }
}

impl FromStr for Decimal {
    type Err = DecimalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let (neg, body) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(DecimalError::Syntax(s.to_string()));
        }
        let frac_trim = frac.trim_end_matches('0');
        if frac_trim.len() > SCALE as usize {
            return Err(DecimalError::TooPrecise(s.to_string()));
        }
        if int.len() > 20 {
            return Err(DecimalError::Overflow(s.to_string()));
        }
        let mut v: i128 = 0;
        for b in int.bytes() {
            v = v * 10 + (b - b'0') as i128;
        }
        let mut f: i128 = 0;
        for i in 0..SCALE as usize {
            let d = frac_trim
                .as_bytes()
                .get(i)
                .map_or(0, |b| (b - b'0') as i128);
            f = f * 10 + d;
        }
        let nanos = v * ONE + f;
        Ok(Decimal {
            nanos: if neg { -nanos } else { nanos },
        })
    }
}

impl fmt::Display for Decimal {
    /// Shortest exact form: `0`, `0.0618`, `-12.5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.nanos < 0;
        let a = self.nanos.unsigned_abs();
        let int = a / ONE as u128;
        let mut frac = a % ONE as u128;
        if neg {
            f.write_str("-")?;
        }
        write!(f, "{int}")?;
        if frac != 0 {
            let mut digits = SCALE as usize;
            while frac.is_multiple_of(10) {
                frac /= 10;
                digits -= 1;
            }
            write!(f, ".{frac:0digits$}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Add for Decimal {
    type Output = Decimal;
    fn add(self, o: Decimal) -> Decimal {
        Decimal {
            nanos: self.nanos.checked_add(o.nanos).expect("money overflow"),
        }
    }
}
impl AddAssign for Decimal {
    fn add_assign(&mut self, o: Decimal) {
        *self = *self + o;
    }
}
impl Sub for Decimal {
    type Output = Decimal;
    fn sub(self, o: Decimal) -> Decimal {
        Decimal {
            nanos: self.nanos.checked_sub(o.nanos).expect("money overflow"),
        }
    }
}
impl Neg for Decimal {
    type Output = Decimal;
    fn neg(self) -> Decimal {
        Decimal { nanos: -self.nanos }
    }
}
impl Mul for Decimal {
    type Output = Decimal;
    /// Exact product; panics if the product needs more than nine decimals (a bug: callers
    /// multiply money by rates or percentages they have validated).
    fn mul(self, o: Decimal) -> Decimal {
        let p = self.nanos.checked_mul(o.nanos).expect("money overflow");
        assert!(p % ONE == 0, "inexact decimal product {self} * {o}");
        Decimal { nanos: p / ONE }
    }
}
impl Sum for Decimal {
    fn sum<I: Iterator<Item = Decimal>>(iter: I) -> Decimal {
        iter.fold(Decimal::ZERO, |a, b| a + b)
    }
}

/// An ISO 4217 currency code, three upper-case ASCII letters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(s: &str) -> Option<Currency> {
        let b = s.as_bytes();
        if b.len() == 3 && b.iter().all(|c| c.is_ascii_uppercase()) {
            Some(Currency([b[0], b[1], b[2]]))
        } else {
            None
        }
    }
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ascii")
    }
    /// Digits of the currency's minor unit (ISO 4217), for invoice rounding.
    pub fn minor_digits(&self) -> u32 {
        match self.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints_shortest_exact_form() {
        for (input, shown) in [
            ("0", "0"),
            ("0.0618", "0.0618"),
            ("00.50", "0.5"),
            ("-12.500", "-12.5"),
            ("1000", "1000"),
            (".5", "0.5"),
            ("0.000000001", "0.000000001"),
        ] {
            assert_eq!(d(input).to_string(), shown, "{input}");
        }
    }

    #[test]
    fn rejects_what_is_not_an_exact_decimal() {
        assert!(matches!(
            "1e3".parse::<Decimal>(),
            Err(DecimalError::Syntax(_))
        ));
        assert!(matches!(
            "".parse::<Decimal>(),
            Err(DecimalError::Syntax(_))
        ));
        assert!(matches!(
            "1.2.3".parse::<Decimal>(),
            Err(DecimalError::Syntax(_))
        ));
        assert!(matches!(
            "0.0000000001".parse::<Decimal>(),
            Err(DecimalError::TooPrecise(_))
        ));
    }

    #[test]
    fn sums_are_exact_where_floats_are_not() {
        let total: Decimal = std::iter::repeat_n(d("0.1"), 10).sum();
        assert_eq!(total, d("1"));
        assert_eq!(d("0.0618").times(1_000_000), d("61800"));
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(d("0.125").round_to_scale(2), d("0.13"));
        assert_eq!(d("0.124").round_to_scale(2), d("0.12"));
        assert_eq!(d("-0.125").round_to_scale(2), d("-0.13"));
        assert_eq!(d("2.5").round_to_scale(0), d("3"));
        assert_eq!(d("1.0005").round_to_scale(3), d("1.001"));
    }

    #[test]
    fn currency_minor_units() {
        assert_eq!(Currency::parse("USD").unwrap().minor_digits(), 2);
        assert_eq!(Currency::parse("CLP").unwrap().minor_digits(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().minor_digits(), 3);
        assert!(Currency::parse("usd").is_none());
    }
}
