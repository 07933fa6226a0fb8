//! Meta's calling rate card (WhatsApp Business Calling API: per-minute rates of
//! business-initiated calls by market, with volume tiers in minutes per month), read into rows
//! of wabill's own `data/call_rates.csv` layout (`effective_from,currency,market,tier_min,
//! tier_max,rate_per_minute,source`, see `data/SOURCES.md` "Calling"), and merged into an
//! existing file. No IO here: `wabill rates import` reads and writes the files. Every error
//! names the 1-based line, the column and the reason, as for the messaging cards
//! ([`crate::meta_csv`], whose cell readers this module shares).
//!
//! # The layout (decisions.md D145)
//!
//! Meta's "Calling API Pricing" page links one card per currency, as CSV and PDF ("Rates
//! (CSV)", "Rates (PDF)"), holding "the current rates and volume tiers". No stored public copy
//! of any of these files was found (data/SOURCES.md, "Calling"), so their columns are not
//! confirmed. wabill reads the layout below, which is the one of Meta's messaging cards
//! (title line, header row, markets by Meta's market names, `n/a`, the volume-tier card's
//! `From` / `To` / `--` / continuation rows) with the per-minute rate in place of the
//! categories; columns are found by name, in any order, and unknown columns are ignored:
//!
//! * optional title and note lines (`Cost per minute in USD on the WhatsApp Business Calling
//!   API, effective July 1, 2026`), and an optional group row (`,,Minutes per month,,What we
//!   charge`);
//! * the header row: `Market` (or `Market (per rate card)`), `Currency` (optional when the
//!   title names the currency: `... in USD ...`), and the rate column `Rate per minute` (or
//!   `Cost per minute`, `Per-minute rate`; plain `Rate` under a title or group row that speaks
//!   of minutes or calling); for a card with volume tiers also `From` and `To` (minutes per
//!   calendar month, inclusive bounds, `--` for the open-ended last tier); `Rate type`,
//!   `vs. List rate`, `Country code` and any other column are informational;
//! * one row per market, or per tier with continuation rows leaving `Market` empty; `n/a` in
//!   the rate where a market has no price (business-initiated calling not offered there).
//!
//! A header that names a messaging category (Marketing, Utility, ...) is a messaging card,
//! never this one.
//!
//! # Checks
//!
//! * Rates are exact decimals with at most 8 places: a 6-second pulse is a tenth of the
//!   per-minute rate and must stay exact (docs/rules.md "Calls").
//! * Per market, the tiers must price every minute of the month: start at 0 or 1, follow each
//!   other without gap or overlap, end open-ended (D146). A market is flat (one row, no
//!   `From`) or tiered, never both.

use std::collections::{BTreeMap, HashMap, HashSet};

use wabill_rating::calls::CALL_RATES_HEADER;
use wabill_rating::{Currency, Date, Decimal, TierRange};

use crate::meta_csv::{
    category_of_header, check_card_currency, count, currency_cell, currency_from_title, is_na,
    is_rate_card_header, is_tier_card_header, is_unbounded, money, norm, read_rows, shown, At,
    ImportError, KnownMarkets, Row,
};

/// One row of `data/call_rates.csv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRateRow {
    pub effective_from: Date,
    pub currency: Currency,
    /// Meta's market name, spelled as in the market table.
    pub market: String,
    /// Both `None` for one rate for every call; `tier_max: None` with a `tier_min` is the
    /// open-ended last tier. In minutes per calendar month.
    pub tier_min: Option<u64>,
    pub tier_max: Option<u64>,
    pub rate_per_minute: Decimal,
    pub source: String,
}

/// A per-minute rate column, by its normalised header.
fn is_per_minute(n: &str) -> bool {
    [
        "rateperminute",
        "costperminute",
        "perminuterate",
        "priceperminute",
    ]
    .iter()
    .any(|p| n.starts_with(p))
}

fn mentions_minutes(cell: &str) -> bool {
    let l = cell.to_lowercase();
    l.contains("minute") || l.contains("calling")
}

/// Whether `rows[i]` is the header row of a calling card (see the module notes).
pub(crate) fn is_call_card_header(rows: &[Row], i: usize) -> bool {
    let names: Vec<String> = rows[i].cells.iter().map(|c| norm(c)).collect();
    if !names.iter().any(|n| n.starts_with("market")) {
        return false;
    }
    if names.iter().any(|n| category_of_header(n).is_some()) {
        return false; // a messaging rate card
    }
    if names.iter().any(|n| is_per_minute(n)) {
        return true;
    }
    let above = &rows[..i];
    names.iter().any(|n| n == "rate")
        && !above.iter().any(|r| {
            r.cells
                .iter()
                .any(|c| category_of_header(&norm(c)).is_some())
        })
        && above
            .iter()
            .any(|r| r.cells.iter().any(|c| mentions_minutes(c)))
}

/// The header's columns.
struct Columns {
    market: usize,
    currency: Option<usize>,
    from: Option<usize>,
    to: Option<usize>,
    rate: usize,
}

fn columns(header: &Row, names: &[String]) -> Result<Columns, ImportError> {
    let at = |col: usize| At {
        line: header.line,
        col,
        name: names.get(col).map_or("", String::as_str),
    };
    let mut market = None;
    let mut currency = None;
    let mut from = None;
    let mut to = None;
    let mut rate = None;
    for (i, cell) in header.cells.iter().enumerate() {
        let n = norm(cell);
        let slot = if n.starts_with("market") {
            &mut market
        } else if n == "currency" {
            &mut currency
        } else if n == "from" {
            &mut from
        } else if n == "to" {
            &mut to
        } else if n == "rate" || is_per_minute(&n) {
            &mut rate
        } else {
            continue; // informational (Rate type, vs. List rate, Country code, ...)
        };
        if slot.replace(i).is_some() {
            return Err(at(i).invalid("this column appears twice"));
        }
    }
    let (Some(market), Some(rate)) = (market, rate) else {
        unreachable!("is_call_card_header found a Market and a rate column");
    };
    match (from, to) {
        (Some(f), None) => Err(at(f).invalid("a From column needs a To column beside it")),
        (None, Some(t)) => Err(at(t).invalid("a To column needs a From column beside it")),
        _ => Ok(Columns {
            market,
            currency,
            from,
            to,
            rate,
        }),
    }
}

/// A market's tier, remembered for the coverage check.
struct Tier {
    line: u64,
    range: TierRange,
}

/// Reads Meta's calling card (layout in the module notes) into `call_rates.csv` rows dated
/// `effective`. `source` goes into every row; `markets` are the known market names.
pub fn parse_call_card(
    text: &str,
    effective: Date,
    source: &str,
    markets: &[&str],
) -> Result<Vec<CallRateRow>, ImportError> {
    let rows = read_rows(text)?;
    let known = KnownMarkets::new(markets);
    let Some(h) = (0..rows.len()).find(|&i| is_call_card_header(&rows, i)) else {
        let first = rows.first().map_or(1, |r| r.line);
        if let Some(r) = rows
            .iter()
            .find(|r| is_rate_card_header(r) || is_tier_card_header(r))
        {
            return Err(At {
                line: r.line,
                col: 0,
                name: "",
            }
            .invalid(
                "this is one of Meta's messaging cards (rates per message), not the calling card",
            ));
        }
        return Err(At {
            line: first,
            col: 0,
            name: "",
        }
        .invalid(
            "no header row with the columns Market and Rate per minute (or From, To and Rate \
             under a title that speaks of minutes) was found",
        ));
    };
    for row in &rows[..h] {
        if is_rate_card_header(row) || is_tier_card_header(row) {
            return Err(At {
                line: row.line,
                col: 0,
                name: "",
            }
            .invalid(
                "a messaging card's header row above the calling card's: one file, one card",
            ));
        }
        for (i, cell) in row.cells.iter().enumerate() {
            let l = cell.to_lowercase();
            if l.contains("per message") || l.contains("per conversation") {
                return Err(At {
                    line: row.line,
                    col: i,
                    name: "",
                }
                .invalid(
                    "the title prices messages or conversations: this is not the calling card",
                ));
            }
        }
    }
    let header = &rows[h];
    let names: Vec<String> = header.cells.iter().map(|c| shown(c)).collect();
    let cols = columns(header, &names)?;
    let title_currency = currency_from_title(&rows[..h]);
    if cols.currency.is_none() && title_currency.is_none() {
        return Err(At {
            line: header.line,
            col: cols.market,
            name: &names[cols.market],
        }
        .invalid(
            "no Currency column, and the title does not name the currency ('... in USD ...')",
        ));
    }
    let tiered = cols.from.is_some();

    let mut out = Vec::new();
    let mut seen: HashMap<&str, u64> = HashMap::new();
    // The market whose rows are being read; None after an n/a row or a footnote.
    let mut current: Option<(&str, Currency)> = None;
    let mut card_currency = None;
    let mut tiers: Vec<(&str, Vec<Tier>)> = Vec::new();
    let mut closed: HashSet<&str> = HashSet::new();
    for row in &rows[h + 1..] {
        if row.is_blank() || norm(row.get(cols.market)).starts_with("market") {
            continue; // spacing, or the header repeated after a page break
        }
        let at = |col: usize| At {
            line: row.line,
            col,
            name: names.get(col).map_or("", String::as_str),
        };
        let market_cell = row.get(cols.market);
        let row_currency = match cols.currency.map(|c| (c, row.get(c))) {
            Some((c, cell)) if !cell.is_empty() => Some(currency_cell(cell, at(c))?),
            _ => None,
        };
        let (market, currency) = if market_cell.is_empty() {
            if !tiered {
                return Err(at(cols.market).invalid(
                    "a row with no market (only a card with From and To columns has \
                     continuation rows)",
                ));
            }
            let Some((market, currency)) = current else {
                return Err(at(cols.market).invalid("a tier row with no market above it"));
            };
            if closed.contains(market) {
                return Err(at(cols.rate).invalid(format!(
                    "a tier for {market} after its n/a row (n/a means the market has no price)"
                )));
            }
            if let Some(c) = row_currency.filter(|&c| c != currency) {
                return Err(at(cols.currency.unwrap_or(cols.market))
                    .invalid(format!("currency {c} differs from {market}'s {currency}")));
            }
            (market, currency)
        } else {
            let only_market_cell = row
                .cells
                .iter()
                .enumerate()
                .all(|(i, c)| i == cols.market || c.is_empty());
            if only_market_cell && known.find(market_cell).is_none() {
                current = None;
                continue; // a footnote below the table
            }
            let market = known.require(market_cell, at(cols.market))?;
            if let Some(first) = seen.insert(market, row.line) {
                return Err(at(cols.market)
                    .invalid(format!("{market} is listed twice (first on line {first})")));
            }
            let Some(currency) = row_currency.or(title_currency) else {
                return Err(at(cols.currency.unwrap_or(cols.market)).invalid("empty currency"));
            };
            check_card_currency(
                &mut card_currency,
                currency,
                at(cols.currency.unwrap_or(cols.market)),
            )?;
            current = Some((market, currency));
            (market, currency)
        };

        let rate_cell = row.get(cols.rate);
        if is_na(rate_cell) {
            if !market_cell.is_empty() {
                closed.insert(market);
                continue;
            }
            return Err(at(cols.rate).invalid(format!(
                "n/a in a tier row of {market} (n/a is for a market with no price at all)"
            )));
        }
        if rate_cell.is_empty() {
            return Err(
                at(cols.rate).invalid("empty rate (Meta writes n/a where a market has no rate)")
            );
        }
        let tier = match (cols.from, cols.to) {
            (Some(fc), Some(tc)) => {
                let from_cell = row.get(fc);
                let min = count(from_cell).ok_or_else(|| {
                    at(fc).bad_value(from_cell, "a number of minutes such as 50,001")
                })?;
                let to_cell = row.get(tc);
                let max = if is_unbounded(to_cell) {
                    None
                } else {
                    Some(count(to_cell).ok_or_else(|| {
                        at(tc).bad_value(
                            to_cell,
                            "a number of minutes such as 250,000, or -- for no upper bound",
                        )
                    })?)
                };
                if max.is_some_and(|m| m < min) {
                    return Err(at(tc).invalid(format!("the tier ends before it starts ({min})")));
                }
                Some(TierRange { min, max })
            }
            _ => None,
        };
        let rate = money(rate_cell, currency, at(cols.rate))?;
        if rate.nanos() % 10 != 0 {
            return Err(at(cols.rate).invalid(format!(
                "rate '{rate_cell}' has more than 8 decimals: a 6-second pulse is a tenth of \
                 the per-minute rate and must stay exact"
            )));
        }
        if let Some(range) = tier {
            let t = Tier {
                line: row.line,
                range,
            };
            match tiers.iter_mut().find(|(m, _)| *m == market) {
                Some((_, list)) => list.push(t),
                None => tiers.push((market, vec![t])),
            }
        }
        out.push(CallRateRow {
            effective_from: effective,
            currency,
            market: market.to_string(),
            tier_min: tier.map(|t| t.min),
            tier_max: tier.and_then(|t| t.max),
            rate_per_minute: rate,
            source: source.to_string(),
        });
    }
    if seen.is_empty() {
        return Err(At {
            line: header.line,
            col: cols.market,
            name: &names[cols.market],
        }
        .invalid("no market rows below the header row"));
    }
    if let (Some(fc), Some(tc)) = (cols.from, cols.to) {
        for (market, mut list) in tiers {
            check_coverage(market, &mut list, fc, tc, &names)?;
        }
    }
    Ok(out)
}

/// The tiers of one market must price every minute of a month exactly once.
fn check_coverage(
    market: &str,
    list: &mut [Tier],
    from: usize,
    to: usize,
    names: &[String],
) -> Result<(), ImportError> {
    let at = |line: u64, col: usize| At {
        line,
        col,
        name: names.get(col).map_or("", String::as_str),
    };
    list.sort_by_key(|t| t.range.min);
    let first = &list[0];
    if first.range.min > 1 {
        return Err(at(first.line, from).invalid(format!(
            "{market}'s first tier starts at {} minutes: the month's first minutes would have \
             no price (the first tier starts at 0 or 1)",
            first.range.min
        )));
    }
    for w in list.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        match a.range.max {
            Some(m) if m < b.range.min => {
                if m + 1 < b.range.min {
                    return Err(at(b.line, from).invalid(format!(
                        "{market}'s tier {} leaves a gap after tier {} of line {}: minutes \
                         {}..{} would have no price",
                        b.range,
                        a.range,
                        a.line,
                        m + 1,
                        b.range.min - 1
                    )));
                }
            }
            _ => {
                return Err(at(b.line, from).invalid(format!(
                    "{market}'s tier {} overlaps tier {} of line {}",
                    b.range, a.range, a.line
                )))
            }
        }
    }
    let last = list.last().expect("non-empty");
    if let Some(m) = last.range.max {
        return Err(at(last.line, to).invalid(format!(
            "{market}'s last tier ends at {m} minutes: minutes above it would have no price \
             (the open-ended last tier has To = --)"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// call_rates.csv
// ---------------------------------------------------------------------------------------------

/// A version's key: (effective_from, currency, market).
type Key<'a> = (Date, Currency, &'a str);

fn key(r: &CallRateRow) -> Key<'_> {
    (r.effective_from, r.currency, &r.market)
}

/// Reads a `call_rates.csv` text (the layout `CallRates::add_csv` reads: header, then plain
/// comma-separated fields, the source last).
fn read_call_rates_csv(text: &str) -> Result<Vec<CallRateRow>, ImportError> {
    let text = text.trim_start_matches('\u{feff}');
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = CALL_RATES_HEADER.split(',').collect();
    let mut lines = text.lines().enumerate();
    if let Some((_, h)) = lines.next() {
        if h.trim_end() != CALL_RATES_HEADER {
            return Err(At {
                line: 1,
                col: 0,
                name: "",
            }
            .invalid(format!("the header must be '{CALL_RATES_HEADER}'")));
        }
    }
    let mut out = Vec::new();
    for (i, l) in lines {
        if l.trim().is_empty() {
            continue;
        }
        let line = i as u64 + 1;
        let f: Vec<&str> = l.trim_end().splitn(7, ',').collect();
        let at = |k: usize| At {
            line,
            col: k,
            name: names[k],
        };
        if f.len() != 7 {
            return Err(at(f.len().min(6)).invalid(format!("{} fields, expected 7", f.len())));
        }
        let effective_from =
            Date::parse(f[0]).ok_or_else(|| at(0).bad_value(f[0], "a date YYYY-MM-DD"))?;
        let currency =
            Currency::parse(f[1]).ok_or_else(|| at(1).bad_value(f[1], "an ISO 4217 code"))?;
        let whole = |k: usize| {
            f[k].parse::<u64>()
                .map_err(|_| at(k).bad_value(f[k], "a whole number of minutes"))
        };
        let (tier_min, tier_max) = match (f[3], f[4]) {
            ("", "") => (None, None),
            ("", _) => return Err(at(3).invalid("tier_max without tier_min")),
            (_, "" | "MAX") => (Some(whole(3)?), None),
            _ => (Some(whole(3)?), Some(whole(4)?)),
        };
        let rate_per_minute = f[5]
            .parse::<Decimal>()
            .ok()
            .filter(|r| r.nanos() >= 0)
            .ok_or_else(|| at(5).bad_value(f[5], "a non-negative decimal rate"))?;
        out.push(CallRateRow {
            effective_from,
            currency,
            market: f[2].to_string(),
            tier_min,
            tier_max,
            rate_per_minute,
            source: f[6].to_string(),
        });
    }
    Ok(out)
}

/// Merges new rows into an existing `call_rates.csv` text: a version (effective_from,
/// currency, market) given by the new rows replaces that version's rows; the output is
/// sorted by (effective_from, currency, market, tier_min), header first. Two new cards giving
/// the same version differently are a conflict. An empty `existing` is a new file.
pub fn merge_into_call_rates_csv(
    existing: &str,
    rows: &[CallRateRow],
) -> Result<String, ImportError> {
    let old = read_call_rates_csv(existing)?;
    let mut new: BTreeMap<Key<'_>, Vec<&CallRateRow>> = BTreeMap::new();
    for r in rows {
        new.entry(key(r)).or_default().push(r);
    }
    for (k, rs) in &mut new {
        // One version per key: rows from one source, or identical tiers from several.
        let first_source = rs[0].source.clone();
        let tiers = |src: &str| -> Vec<(Option<u64>, Option<u64>, Decimal)> {
            let mut v: Vec<_> = rs
                .iter()
                .filter(|r| r.source == src)
                .map(|r| (r.tier_min, r.tier_max, r.rate_per_minute))
                .collect();
            v.sort();
            v
        };
        let base = tiers(&first_source);
        if let Some(other) = rs.iter().find(|r| r.source != first_source) {
            if tiers(&other.source) != base {
                return Err(ImportError::Conflict {
                    what: format!("calling {} {} {}", k.0, k.1, k.2),
                    why: format!("{} and {} give different rates", first_source, other.source),
                });
            }
        }
        rs.retain(|r| r.source == first_source);
    }
    let mut out: Vec<&CallRateRow> = old
        .iter()
        .filter(|r| !new.contains_key(&key(r)))
        .chain(new.values().flatten().copied())
        .collect();
    out.sort_by(|a, b| (key(a), a.tier_min).cmp(&(key(b), b.tier_min)));
    write_rows(out)
}

/// Writes rows as a `call_rates.csv` text, header first, in the order given.
pub fn write_call_rates_csv(rows: &[CallRateRow]) -> Result<String, ImportError> {
    write_rows(rows.iter())
}

fn write_rows<'a>(rows: impl IntoIterator<Item = &'a CallRateRow>) -> Result<String, ImportError> {
    let mut out = String::from(CALL_RATES_HEADER);
    out.push('\n');
    for r in rows {
        // The file is plain comma-separated (no quoting): a market name with a comma could
        // not be read back.
        if r.market.contains([',', '\n', '\r']) {
            return Err(ImportError::Conflict {
                what: format!("market '{}'", r.market),
                why: "a market name with a comma or line break cannot be written to \
                      call_rates.csv"
                    .into(),
            });
        }
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            r.effective_from,
            r.currency,
            r.market,
            opt(r.tier_min),
            opt(r.tier_max),
            r.rate_per_minute,
            r.source.replace(['\n', '\r'], " ")
        ));
    }
    Ok(out)
}
