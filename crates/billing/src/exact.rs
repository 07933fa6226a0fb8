//! Exact arithmetic for invoice lines: prorations, currency conversions and markups, computed
//! from the exact inputs in one step and given to 10⁻⁹, then rounded once.
//!
//! A prorated price (`10 × 7 / 30`) or a converted, marked-up cost (`cost × rate × 1.125`) is a
//! fraction that may not end within nine decimals. The value kept on the line (`exact`) is that
//! fraction truncated toward zero to 10⁻⁹, computed from the inputs in one step with a 256-bit
//! intermediate, never from an earlier truncated result. Rounding it to the currency's minor
//! unit with [`Decimal::round_to_scale`] (half away from zero) gives exactly the rounding of the
//! true fraction: the half-way points of a 0-, 2- or 3-digit minor unit are multiples of 10⁻⁹,
//! and truncation moves a value by less than 10⁻⁹ toward zero without crossing one of them.

use wabill_rating::Decimal;

const NANO: u128 = 1_000_000_000;

/// `price × days / days_in_month`, truncated toward zero to 10⁻⁹.
pub fn prorate(price: Decimal, days: u32, days_in_month: u32) -> Decimal {
    mul_div(price, &[days as u128], days_in_month as u128)
}

/// `cost × rate × (1 + markup_percent / 100)`, truncated toward zero to 10⁻⁹. No rate means the
/// cost is already in the invoice's currency; no markup means at cost.
pub fn convert(cost: Decimal, rate: Option<Decimal>, markup_percent: Option<Decimal>) -> Decimal {
    let rate = rate.map_or(NANO, |r| positive(r, "rate"));
    let factor = 100 * NANO as i128 + markup_percent.map_or(0, Decimal::nanos);
    let factor = u128::try_from(factor).expect("markup above -100 %");
    mul_div(cost, &[rate, factor], NANO * 100 * NANO)
}

/// `amount × percent / 100` (percent ≥ 0), truncated toward zero to 10⁻⁹.
pub fn percent_of(amount: Decimal, percent: Decimal) -> Decimal {
    mul_div(amount, &[positive(percent, "percent")], 100 * NANO)
}

/// Whether `spend ≥ budget × percent / 100`, exactly.
pub fn reaches_percent(spend: Decimal, budget: Decimal, percent: Decimal) -> bool {
    let lhs = U256::from_i128(spend.nanos()).mul(100 * NANO);
    let rhs = U256::from_i128(budget.nanos()).mul(positive(percent, "percent"));
    match (spend.nanos() < 0, budget.nanos() < 0) {
        (true, false) => false,
        (false, true) => true,
        (false, false) => lhs >= rhs,
        (true, true) => lhs <= rhs,
    }
}

fn positive(d: Decimal, what: &str) -> u128 {
    u128::try_from(d.nanos()).unwrap_or_else(|_| panic!("negative {what} {d}"))
}

/// `x × Π factors / divisor`, truncated toward zero, with the 10⁻⁹ scale of `x` kept.
fn mul_div(x: Decimal, factors: &[u128], divisor: u128) -> Decimal {
    let mut n = U256::from_i128(x.nanos());
    for &f in factors {
        n = n.mul(f);
    }
    let q = n.div(divisor).to_u128();
    let q = i128::try_from(q).expect("money overflow");
    Decimal::from_nanos(if x.nanos() < 0 { -q } else { q })
}

/// An unsigned 256-bit integer (four little-endian 64-bit limbs), for the intermediate
/// products only. Overflow is a bug (amounts beyond any invoice) and panics.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct U256([u64; 4]);

impl U256 {
    fn from_i128(v: i128) -> U256 {
        let a = v.unsigned_abs();
        U256([a as u64, (a >> 64) as u64, 0, 0])
    }

    fn mul(self, m: u128) -> U256 {
        let ml = [m as u64, (m >> 64) as u64];
        let mut out = [0u64; 6];
        for (i, &a) in self.0.iter().enumerate() {
            let mut carry: u128 = 0;
            for (j, &b) in ml.iter().enumerate() {
                let t = out[i + j] as u128 + a as u128 * b as u128 + carry;
                out[i + j] = t as u64;
                carry = t >> 64;
            }
            let mut k = i + 2;
            while carry != 0 {
                let t = out[k] as u128 + carry;
                out[k] = t as u64;
                carry = t >> 64;
                k += 1;
            }
        }
        assert!(out[4] == 0 && out[5] == 0, "money overflow");
        U256([out[0], out[1], out[2], out[3]])
    }

    /// Quotient by a divisor below 2¹²⁶ (shift-and-subtract long division).
    fn div(self, d: u128) -> U256 {
        assert!(d != 0 && d < 1 << 126);
        let mut q = [0u64; 4];
        let mut r: u128 = 0;
        for bit in (0..256).rev() {
            r = (r << 1) | ((self.0[bit / 64] >> (bit % 64)) & 1) as u128;
            if r >= d {
                r -= d;
                q[bit / 64] |= 1 << (bit % 64);
            }
        }
        U256(q)
    }

    fn to_u128(self) -> u128 {
        assert!(self.0[2] == 0 && self.0[3] == 0, "money overflow");
        self.0[0] as u128 | (self.0[1] as u128) << 64
    }
}

impl PartialOrd for U256 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for U256 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.iter().rev().cmp(other.0.iter().rev())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn prorations_truncate_to_nanos() {
        assert_eq!(prorate(d("10"), 7, 30), d("2.333333333"));
        assert_eq!(prorate(d("10"), 14, 28), d("5"));
        assert_eq!(prorate(d("-10"), 7, 30), d("-2.333333333"));
    }

    #[test]
    fn conversions_are_one_step() {
        assert_eq!(convert(d("12.3456"), None, None), d("12.3456"));
        assert_eq!(convert(d("100"), Some(d("0.92")), None), d("92"));
        assert_eq!(convert(d("100"), None, Some(d("12.5"))), d("112.5"));
        // 0.000000001 × 0.5 × 1.5 = 0.00000000075, truncated.
        assert_eq!(
            convert(d("0.000000001"), Some(d("0.5")), Some(d("50"))),
            d("0")
        );
        // A large product that needs more than 128 bits in between.
        assert_eq!(
            convert(
                d("123456789012.123456789"),
                Some(d("16000.5")),
                Some(d("7.25"))
            ),
            d("2118584703151146.269702943")
        );
    }

    #[test]
    fn truncation_never_changes_the_rounding() {
        // 1/3 of 0.015 = 0.005 exactly: half way, rounds away from zero.
        assert_eq!(prorate(d("0.015"), 1, 3).round_to_scale(2), d("0.01"));
        // Just under half way stays under after truncation.
        let x = prorate(d("0.014999999"), 1, 3);
        assert_eq!(x.round_to_scale(2), d("0"));
    }

    #[test]
    fn percentages_compare_exactly() {
        assert!(reaches_percent(d("25"), d("50"), d("50")));
        assert!(!reaches_percent(d("24.999999999"), d("50"), d("50")));
        assert!(reaches_percent(
            d("33.333333334"),
            d("100"),
            d("33.333333333")
        ));
    }
}
