//! Meta's published WhatsApp Business Platform rate-card CSV files, read into rows of wabill's
//! own `data/rates.csv` layout (`effective_from,pricing_model,currency,market,category,
//! tier_min,tier_max,rate,source`, see `data/SOURCES.md`), and merged into an existing file.
//!
//! This module owns: telling Meta's two layouts apart ([`detect`]), reading the list-rate card
//! ([`parse_rate_card`]) and the volume-tier card ([`parse_tier_card`]) into [`RateRow`]s with
//! exact decimals (never floats), validating what a downloaded or re-exported file can get
//! wrong, and merging rows into a `rates.csv` text ([`merge_into_rates_csv`]). It does no IO:
//! the CLI (`wabill rates import`) reads and writes the files. Every error names the 1-based
//! line of the input file, the column and the reason, because the person fixing it has the
//! file open in a spreadsheet.
//!
//! # What Meta's files look like
//!
//! Researched in 2026 from stored public copies (Meta's own CSVs are served from a CDN with
//! expiring links and were not available directly):
//!
//! * **Rate card** (the "USD rates", "EUR rates"... links of the "Rate cards" section of
//!   developers.facebook.com/docs/whatsapp/pricing). A title line padded with commas
//!   (`Cost per conversation in USD, effective June 1, 2023` for the CBP cards, `Cost per
//!   message in USD on the WhatsApp Business Platform, effective July 1, 2026` for the PMP
//!   ones), zero or more `Note: ...` lines, then the header
//!   `Market,Currency,Marketing,Utility,Authentication,"Authentication-⏎International",Service`,
//!   whose Authentication-International cell holds a quoted line break (so the header is two
//!   physical lines). Rows look like `Indonesia,$US,0.0411,0.0200,0.0300,0.1360,0.0190` and
//!   `Malaysia,$US,0.0860,0.0200,0.0180,n/a,0.0220`: `n/a` where a market has no rate, and the
//!   older USD cards write the currency as `$US`; a copy of the October 2026 card quotes
//!   `Kazakhstan, USD, 0.0604, 0.018, 0.018, 0.16, 0.018`. Read in: a Laravel controller
//!   comment copying Meta's 2023 USD CSV (SOURCES.md G6), two Node importers of Meta's CSV
//!   that compare the header to exactly that string (public GitHub files, index ids
//!   54214688318 and 56204306169), SOURCES.md G14. From October 2026 Meta also offers the card
//!   as a workbook whose "List rates" sheet has an 8th column (a Meta Business Agent price
//!   per million tokens, index id 71306830050): columns this module does not know are
//!   ignored, and columns are found by name, never by position.
//! * **Volume-tier card** ("Tier Pricing.csv"; layout documented by the loader
//!   `loaders/tier_loader.py` of github.com/OJoshuaCG/meta-whatsapp-pricing and a TypeScript
//!   test fixture with invented BRL numbers, index id 59798159530): a title line (it says
//!   "volume tier"), a URL line, three header rows - groups `,,Utility,,,,,Authentication,,,,,
//!   Authentication-International,,,,`, sub-headers `Messages per month` / `What we charge`,
//!   then `"Market⏎(per rate card)",Currency,From,To,Rate type,Rate,vs. List rate` three
//!   times - then data. Continuation rows leave Market empty; a group that does not apply is
//!   `n/a` or empty; `To` is `--` for the open-ended last tier; counts are written
//!   `"250,001"`; `Rate type` is `List rate` / `Tier rate ...`; `vs. List rate` is `0%`,
//!   `-5%` ... `-25%`. The same loader lists the currency tokens seen in Meta's files: `$US`,
//!   `A$`, `£`, `₹`, `RP` (rupiah) and a `GBD` typo for GBP. Meta's webhooks name tiers as
//!   inclusive ranges (`"tier": "25000001:50000000"`, Gupshup partner docs of the
//!   VOLUME_BASED_PRICING_TIER_UPDATE event), so From/To are read as inclusive bounds. No
//!   public copy of a real tier card's values was found (SOURCES.md, gap 1): the test
//!   fixture's tier values are made up.
//!
//! # Choices
//!
//! * Rows are always `PMP`: Meta publishes per-message cards since 2025-07-01. A card whose
//!   title says "per conversation" (CBP) is refused rather than imported under the wrong model.
//! * A decimal comma (`0,0068`) is refused, not read as a thousands separator: a comma is a
//!   thousands separator only between groups of three digits (`1,940.13`, `"250,001"`).
//! * A tier card must price every message of the month: per (market, category) the tiers must
//!   start at 0 or 1, follow each other without gap or overlap, and end open-ended (`--`).
//!   A hole would otherwise surface months later as a rating error.

use std::collections::{HashMap, HashSet};
use std::fmt;

use wabill_rating::rates::RATES_HEADER;
use wabill_rating::{Category, Currency, Date, Decimal, PricingModel, TierRange};

/// One row of `data/rates.csv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateRow {
    pub effective_from: Date,
    pub pricing_model: PricingModel,
    pub currency: Currency,
    /// Meta's market name, spelled as in the market table.
    pub market: String,
    pub category: Category,
    /// Both `None` for a flat rate; `tier_max: None` with a `tier_min` is the open-ended tier.
    pub tier_min: Option<u64>,
    pub tier_max: Option<u64>,
    pub rate: Decimal,
    pub source: String,
}

/// Which of Meta's two CSV layouts a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardKind {
    /// One row per market, one list-rate column per category.
    RateCard,
    /// Utility / authentication volume tiers, side-by-side column groups.
    TierCard,
    /// The calling card: per-minute rates of business-initiated calls by market, with volume
    /// tiers in minutes ([`crate::meta_call_csv`]).
    CallCard,
}

/// A column of an input file, for error messages: 1-based index and its header text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub index: usize,
    pub name: String,
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            write!(f, "{}", self.index)
        } else {
            write!(f, "{} ({})", self.index, self.name)
        }
    }
}

/// Two tiers of one market and category that price the same messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overlap {
    pub market: String,
    pub category: Category,
    /// The tier on the error's line.
    pub tier: TierRange,
    /// The tier it overlaps, on `other_line`.
    pub other: TierRange,
    pub other_line: u64,
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} tier {} overlaps tier {} of line {}",
            self.market,
            self.category.as_str(),
            self.tier,
            self.other,
            self.other_line
        )
    }
}

/// Why a file could not be imported. Lines are 1-based physical lines of the input file (a
/// header with a quoted line break counts as two).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("line {line}: not readable as CSV: {source}")]
    Csv { line: u64, source: csv::Error },
    #[error("line {line}, column {column}: {why}")]
    Invalid {
        line: u64,
        column: Column,
        why: String,
    },
    #[error("line {line}, column {column}: '{value}' is not {expected}")]
    BadValue {
        line: u64,
        column: Column,
        value: String,
        expected: String,
    },
    #[error(
        "line {line}, column {column}: unknown market '{market}' (not in the market table; \
         market names must be spelled as Meta spells them)"
    )]
    UnknownMarket {
        line: u64,
        column: Column,
        market: String,
    },
    #[error("line {line}, column {column}: unknown currency token '{token}' in '{value}'")]
    UnknownCurrency {
        line: u64,
        column: Column,
        token: String,
        value: String,
    },
    #[error("line {line}, column {column}: {overlap}")]
    OverlappingTiers {
        line: u64,
        column: Column,
        /// Boxed to keep `ImportError` small (clippy's `result_large_err`).
        overlap: Box<Overlap>,
    },
    /// Rows given to [`merge_into_rates_csv`] disagree with each other (e.g. a rate card and a
    /// tier card of the same date with different list rates). They carry no line; the message
    /// names the rows' `source`s instead.
    #[error("{what}: {why}")]
    Conflict { what: String, why: String },
}

// ---------------------------------------------------------------------------------------------
// Reading cells
// ---------------------------------------------------------------------------------------------

/// A CSV record with the physical line it starts on; cells trimmed (NBSP included).
pub(crate) struct Row {
    pub(crate) line: u64,
    pub(crate) cells: Vec<String>,
}

impl Row {
    pub(crate) fn get(&self, i: usize) -> &str {
        self.cells.get(i).map_or("", String::as_str)
    }
    pub(crate) fn is_blank(&self) -> bool {
        self.cells.iter().all(|c| c.is_empty())
    }
}

pub(crate) fn read_rows(text: &str) -> Result<Vec<Row>, ImportError> {
    // Spreadsheet exports often start with a byte-order mark; it is not part of the title.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        // Title and note lines have fewer cells than the table.
        .flexible(true)
        .from_reader(text.as_bytes());
    let lines = LineIndex::new(text);
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|source| ImportError::Csv {
            line: source.position().map_or(0, |p| lines.line_of(p)),
            source,
        })?;
        rows.push(Row {
            line: rec.position().map_or(0, |p| lines.line_of(p)),
            cells: rec.iter().map(|c| c.trim().to_string()).collect(),
        });
    }
    Ok(rows)
}

/// Physical line numbers from byte offsets. The csv crate's own `Position::line` undercounts
/// with CRLF line endings (which Meta's files use) and never counts a lone CR, and its
/// `Position::byte` may point at the tail of the previous record's line break; so the record
/// start is found by skipping line-break bytes, and lines are counted here: CRLF, LF and a lone
/// CR each end one line.
struct LineIndex<'a> {
    bytes: &'a [u8],
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let bytes = text.as_bytes();
        let mut starts = vec![0];
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
                starts.push(i + 1);
            }
        }
        LineIndex { bytes, starts }
    }
    fn line_of(&self, pos: &csv::Position) -> u64 {
        let mut at = usize::try_from(pos.byte()).unwrap_or(usize::MAX);
        while matches!(self.bytes.get(at), Some(b'\r' | b'\n')) {
            at += 1;
        }
        self.starts.partition_point(|&s| s <= at) as u64
    }
}

/// Header comparison key: letters and digits only, lower-cased, so that `Authentication-⏎
/// International`, `authentication international` and `AUTHENTICATION_INTERNATIONAL` agree.
pub(crate) fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A header as shown in messages: on one line.
pub(crate) fn shown(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("- ", "-")
}

pub(crate) fn category_of_header(n: &str) -> Option<Category> {
    Some(match n {
        "marketing" => Category::Marketing,
        "utility" => Category::Utility,
        "authentication" => Category::Authentication,
        // "International" alone and "Auth-Intl" are how third-party copies shorten it.
        "authenticationinternational" | "international" | "authintl" | "authenticationintl" => {
            Category::AuthenticationInternational
        }
        "service" => Category::Service,
        _ => return None,
    })
}

pub(crate) fn is_na(cell: &str) -> bool {
    matches!(cell.to_ascii_lowercase().as_str(), "n/a" | "na" | "n.a.")
}

pub(crate) fn is_rate_card_header(row: &Row) -> bool {
    let names: HashSet<String> = row.cells.iter().map(|c| norm(c)).collect();
    ["market", "currency", "marketing"]
        .iter()
        .all(|n| names.contains(*n))
}

pub(crate) fn is_tier_card_header(row: &Row) -> bool {
    let names: HashSet<String> = row.cells.iter().map(|c| norm(c)).collect();
    ["from", "to", "rate"].iter().all(|n| names.contains(*n))
}

/// Which layout `text` is, by its header row; `None` when it is none of them (or not CSV).
pub fn detect(text: &str) -> Option<CardKind> {
    let rows = read_rows(text).ok()?;
    rows.iter().enumerate().find_map(|(i, r)| {
        if crate::meta_call_csv::is_call_card_header(&rows, i) {
            Some(CardKind::CallCard)
        } else if is_tier_card_header(r) {
            Some(CardKind::TierCard)
        } else if is_rate_card_header(r) {
            Some(CardKind::RateCard)
        } else {
            None
        }
    })
}

/// Maps a currency token, as Meta's files write it, to its ISO 4217 code.
fn currency_token(token: &str) -> Option<Currency> {
    let t: String = token
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase();
    // The 16 currencies Meta publishes cards in, by code and by the symbols and tokens its
    // files and their copies use. `$` alone is USD, as on the `$US` cards.
    let code = match t.as_str() {
        "USD" | "$US" | "US$" | "U$S" | "$" => "USD",
        "EUR" | "€" => "EUR",
        // `GBD` is a typo seen in one of Meta's CSVs (see the module notes).
        "GBP" | "£" | "GBD" => "GBP",
        "INR" | "₹" | "RS" | "RS." => "INR",
        "IDR" | "RP" => "IDR",
        "BRL" | "R$" => "BRL",
        "MXN" | "MX$" | "MEX$" => "MXN",
        "ARS" | "AR$" => "ARS",
        "COP" | "COL$" => "COP",
        "CLP" | "CLP$" => "CLP",
        "PEN" | "S/" | "S/." => "PEN",
        "AED" | "د.إ" => "AED",
        "SAR" | "﷼" => "SAR",
        "AUD" | "A$" | "AU$" => "AUD",
        "MYR" | "RM" => "MYR",
        "SGD" | "S$" => "SGD",
        _ => return None,
    };
    Currency::parse(code)
}

/// Currencies whose own sign is a bare `$`: in a rate cell of their card, `$0.05` is theirs.
fn uses_dollar_sign(c: Currency) -> bool {
    matches!(
        c.as_str(),
        "USD" | "AUD" | "SGD" | "MXN" | "ARS" | "CLP" | "COP"
    )
}

/// A non-negative decimal written with optional thousands separators (`1,940.13`). A comma
/// that does not separate groups of three digits is refused: `0,0068` is a decimal comma and
/// reading it as 68 would be a silent thousand-fold error.
fn grouped_decimal(body: &str) -> Result<Decimal, String> {
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(f) = frac {
        if !digits(f) {
            return Err("digits after the decimal point expected".into());
        }
    }
    let int_digits = if int.contains(',') {
        let groups: Vec<&str> = int.split(',').collect();
        let ok = digits(groups[0])
            && groups[0].len() <= 3
            && groups[1..].iter().all(|g| g.len() == 3 && digits(g));
        if !ok {
            return Err("',' is only accepted as a thousands separator (no decimal commas)".into());
        }
        groups.concat()
    } else if int.is_empty() && frac.is_some() {
        "0".to_string()
    } else if digits(int) {
        int.to_string()
    } else {
        return Err("digits expected".into());
    };
    let plain = match frac {
        Some(f) => format!("{int_digits}.{f}"),
        None => int_digits,
    };
    plain.parse::<Decimal>().map_err(|e| e.to_string())
}

/// A message count: `100000` or `100,000`.
pub(crate) fn count(cell: &str) -> Option<u64> {
    if cell.contains('.') {
        return None;
    }
    let d = grouped_decimal(cell).ok()?;
    u64::try_from(d.nanos() / 1_000_000_000).ok()
}

pub(crate) fn is_unbounded(cell: &str) -> bool {
    matches!(cell, "--" | "—" | "–") || cell.eq_ignore_ascii_case("max")
}

/// Where a cell is, for errors.
#[derive(Clone, Copy)]
pub(crate) struct At<'a> {
    pub(crate) line: u64,
    pub(crate) col: usize,
    pub(crate) name: &'a str,
}

impl At<'_> {
    pub(crate) fn column(&self) -> Column {
        Column {
            index: self.col + 1,
            name: self.name.to_string(),
        }
    }
    pub(crate) fn invalid(&self, why: impl Into<String>) -> ImportError {
        ImportError::Invalid {
            line: self.line,
            column: self.column(),
            why: why.into(),
        }
    }
    pub(crate) fn bad_value(&self, value: &str, expected: impl Into<String>) -> ImportError {
        ImportError::BadValue {
            line: self.line,
            column: self.column(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }
}

/// A rate cell of a card in `currency`: a decimal, possibly with a currency token or symbol
/// before or after it (`$0.0625`, `€0.0523`, `Rp 1,234.5`, `0.0625 USD`).
pub(crate) fn money(cell: &str, currency: Currency, at: At<'_>) -> Result<Decimal, ImportError> {
    const EXPECTED: &str = "a rate (a decimal number such as 0.0068, or n/a)";
    let (Some(first), Some(last)) = (
        cell.find(|c: char| c.is_ascii_digit()),
        cell.rfind(|c: char| c.is_ascii_digit()),
    ) else {
        return Err(at.bad_value(cell, EXPECTED));
    };
    // A leading '.' belongs to the number (".5", "$.5"), unless it ends a token like "S/.".
    let mut start = first;
    if cell[..first].ends_with('.') {
        let before = cell[..first - 1].trim();
        if before.is_empty() || currency_token(before).is_some() {
            start = first - 1;
        }
    }
    let prefix = cell[..start].trim();
    let suffix = cell[last + 1..].trim();
    for token in [prefix, suffix] {
        if token.is_empty() {
            continue;
        }
        if token.ends_with(['-', '+', '−']) {
            return Err(at.bad_value(cell, "a rate without a sign (rates are never negative)"));
        }
        match currency_token(token) {
            None => {
                return Err(ImportError::UnknownCurrency {
                    line: at.line,
                    column: at.column(),
                    token: token.to_string(),
                    value: cell.to_string(),
                })
            }
            Some(_) if token == "$" && uses_dollar_sign(currency) => {}
            Some(c) if c == currency => {}
            Some(c) => {
                return Err(at.invalid(format!(
                    "rate '{cell}' is in {c} but the row's currency is {currency}"
                )))
            }
        }
    }
    grouped_decimal(&cell[start..=last])
        .map_err(|why| at.bad_value(cell, format!("{EXPECTED}: {why}")))
}

pub(crate) fn currency_cell(cell: &str, at: At<'_>) -> Result<Currency, ImportError> {
    if cell.is_empty() {
        return Err(at.invalid("empty currency"));
    }
    currency_token(cell).ok_or_else(|| ImportError::UnknownCurrency {
        line: at.line,
        column: at.column(),
        token: cell.to_string(),
        value: cell.to_string(),
    })
}

/// The caller's market names, matched ignoring case, repeated spaces and a trailing footnote
/// asterisk, and returned in the caller's spelling (which `RateBook` looks up exactly).
pub(crate) struct KnownMarkets<'a> {
    by_fold: HashMap<String, &'a str>,
}

impl<'a> KnownMarkets<'a> {
    pub(crate) fn new(markets: &[&'a str]) -> Self {
        KnownMarkets {
            by_fold: markets.iter().map(|m| (Self::fold(m), *m)).collect(),
        }
    }
    fn fold(s: &str) -> String {
        s.trim_end_matches('*')
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    }
    pub(crate) fn find(&self, name: &str) -> Option<&'a str> {
        self.by_fold.get(&Self::fold(name)).copied()
    }
    pub(crate) fn require(&self, name: &str, at: At<'_>) -> Result<&'a str, ImportError> {
        if name.is_empty() {
            return Err(at.invalid("empty market name in a row with rates"));
        }
        self.find(name).ok_or_else(|| ImportError::UnknownMarket {
            line: at.line,
            column: at.column(),
            market: name.to_string(),
        })
    }
}

/// A CBP card would be imported as PMP rows under the wrong model: refuse it.
fn reject_conversation_card(title_rows: &[Row]) -> Result<(), ImportError> {
    for row in title_rows {
        for (i, cell) in row.cells.iter().enumerate() {
            if cell.to_lowercase().contains("per conversation") {
                return Err(At {
                    line: row.line,
                    col: i,
                    name: "",
                }
                .invalid(
                    "this card prices conversations (CBP); wabill imports Meta's \
                     per-message (PMP) cards only",
                ));
            }
        }
    }
    Ok(())
}

/// Keeps one card to one currency: a second currency means a misread column or a pasted row.
pub(crate) fn check_card_currency(
    card: &mut Option<(Currency, u64)>,
    currency: Currency,
    at: At<'_>,
) -> Result<(), ImportError> {
    match *card {
        None => *card = Some((currency, at.line)),
        Some((c, line)) if c != currency => {
            return Err(at.invalid(format!(
                "currency {currency} differs from the card's currency {c} (line {line})"
            )))
        }
        Some(_) => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The rate card
// ---------------------------------------------------------------------------------------------

/// Reads Meta's list-rate card: one row per market, one column per category. `n/a` cells give
/// no row. `source` goes into every row's `source`; `markets` are the known market names.
pub fn parse_rate_card(
    text: &str,
    effective: Date,
    source: &str,
    markets: &[&str],
) -> Result<Vec<RateRow>, ImportError> {
    let rows = read_rows(text)?;
    let known = KnownMarkets::new(markets);
    let Some(h) = rows.iter().position(is_rate_card_header) else {
        if let Some(t) = rows.iter().find(|r| is_tier_card_header(r)) {
            return Err(At {
                line: t.line,
                col: 0,
                name: "",
            }
            .invalid(
                "this is Meta's volume-tier card (From / To / Rate columns), not the rate card",
            ));
        }
        return Err(At {
            line: rows.first().map_or(1, |r| r.line),
            col: 0,
            name: "Market",
        }
        .invalid(
            "no header row with the columns Market, Currency, Marketing, Utility, \
             Authentication was found",
        ));
    };
    reject_conversation_card(&rows[..h])?;
    let header = &rows[h];
    let names: Vec<String> = header.cells.iter().map(|c| shown(c)).collect();
    let at_header = |col: usize| At {
        line: header.line,
        col,
        name: &names[col],
    };

    let (mut market_col, mut currency_col) = (None, None);
    let mut cats: Vec<(usize, Category)> = Vec::new();
    for (i, cell) in header.cells.iter().enumerate() {
        let n = norm(cell);
        let slot = match n.as_str() {
            "market" => &mut market_col,
            "currency" => &mut currency_col,
            _ => {
                if let Some(c) = category_of_header(&n) {
                    if cats.iter().any(|&(_, k)| k == c) {
                        return Err(at_header(i).invalid("this category's column appears twice"));
                    }
                    cats.push((i, c));
                }
                // Anything else (e.g. the 2026 workbook's Meta Business Agent column) is not
                // a message price and is ignored.
                continue;
            }
        };
        if slot.replace(i).is_some() {
            return Err(at_header(i).invalid("this column appears twice"));
        }
    }
    let (Some(mc), Some(cc)) = (market_col, currency_col) else {
        unreachable!("is_rate_card_header found both columns");
    };
    // Authentication-International and Service are optional: the 2023 cards had no
    // Authentication-International column until 2024.
    for required in [
        Category::Marketing,
        Category::Utility,
        Category::Authentication,
    ] {
        if !cats.iter().any(|&(_, c)| c == required) {
            return Err(At {
                line: header.line,
                col: header.cells.len(),
                name: "",
            }
            .invalid(format!(
                "no '{}' column in the header row",
                required.as_str()
            )));
        }
    }

    let mut out = Vec::new();
    let mut seen: HashMap<&str, u64> = HashMap::new();
    let mut card_currency = None;
    for row in &rows[h + 1..] {
        if row.is_blank() || norm(row.get(mc)) == "market" {
            continue; // spacing, or the header repeated after a page break
        }
        let at = |col: usize| At {
            line: row.line,
            col,
            name: names.get(col).map_or("", String::as_str),
        };
        let market_cell = row.get(mc);
        let only_market_cell = row
            .cells
            .iter()
            .enumerate()
            .all(|(i, c)| i == mc || c.is_empty());
        if only_market_cell && known.find(market_cell).is_none() {
            continue; // a footnote below the table
        }
        let market = known.require(market_cell, at(mc))?;
        if let Some(first) = seen.insert(market, row.line) {
            return Err(at(mc).invalid(format!("{market} is listed twice (first on line {first})")));
        }
        let currency = currency_cell(row.get(cc), at(cc))?;
        check_card_currency(&mut card_currency, currency, at(cc))?;
        for &(col, category) in &cats {
            let cell = row.get(col);
            if is_na(cell) {
                continue;
            }
            if cell.is_empty() {
                return Err(
                    at(col).invalid("empty cell (Meta writes n/a where a market has no rate)")
                );
            }
            out.push(RateRow {
                effective_from: effective,
                pricing_model: PricingModel::Pmp,
                currency,
                market: market.to_string(),
                category,
                tier_min: None,
                tier_max: None,
                rate: money(cell, currency, at(col))?,
                source: source.to_string(),
            });
        }
    }
    if seen.is_empty() {
        return Err(at_header(mc).invalid("no market rows below the header row"));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The volume-tier card
// ---------------------------------------------------------------------------------------------

/// One category's column group of the tier card.
struct Group {
    category: Category,
    label: String,
    from: usize,
    to: usize,
    rate: usize,
    /// Informational columns: they only decide whether a group is empty on a row.
    info: Vec<usize>,
}

impl Group {
    fn columns(&self) -> impl Iterator<Item = usize> + '_ {
        [self.from, self.to, self.rate]
            .into_iter()
            .chain(self.info.iter().copied())
    }
    fn is_empty_on(&self, row: &Row) -> bool {
        self.columns().all(|c| {
            let v = row.get(c);
            v.is_empty() || is_na(v)
        })
    }
}

/// A parsed tier, remembered for the coverage checks.
struct Tier {
    line: u64,
    range: TierRange,
}

/// Reads Meta's volume-tier card: for each market, rows of `From, To, Rate type, Rate, vs. List
/// rate` per category group. Each tier becomes one row with `tier_min = From`, `tier_max = To`
/// (`None` for `--`) and `rate = Rate`.
pub fn parse_tier_card(
    text: &str,
    effective: Date,
    source: &str,
    markets: &[&str],
) -> Result<Vec<RateRow>, ImportError> {
    let rows = read_rows(text)?;
    let known = KnownMarkets::new(markets);
    let Some(h) = rows.iter().position(is_tier_card_header) else {
        if let Some(r) = rows.iter().find(|r| is_rate_card_header(r)) {
            return Err(At {
                line: r.line,
                col: 0,
                name: "",
            }
            .invalid(
                "this is Meta's rate card (one column per category), not the volume-tier card",
            ));
        }
        return Err(At {
            line: rows.first().map_or(1, |r| r.line),
            col: 0,
            name: "",
        }
        .invalid("no header row with the columns From, To, Rate was found"));
    };
    let header = &rows[h];
    let header_err = |col: usize, why: String| ImportError::Invalid {
        line: header.line,
        column: Column {
            index: col + 1,
            name: shown(header.get(col)),
        },
        why,
    };

    // The group labels sit in the nearest row above the column headers that has any.
    let Some(g) = (0..h).rev().find(|&i| {
        rows[i]
            .cells
            .iter()
            .any(|c| category_of_header(&norm(c)).is_some())
    }) else {
        return Err(header_err(
            0,
            "no row above the column headers names the groups (Utility, Authentication, \
             Authentication-International)"
                .into(),
        ));
    };
    reject_conversation_card(&rows[..g])?;
    let starts: Vec<(usize, Category, String)> = rows[g]
        .cells
        .iter()
        .enumerate()
        .filter_map(|(i, c)| category_of_header(&norm(c)).map(|k| (i, k, shown(c))))
        .collect();
    for (k, s) in starts.iter().enumerate() {
        if starts[..k].iter().any(|p| p.1 == s.1) {
            return Err(ImportError::Invalid {
                line: rows[g].line,
                column: Column {
                    index: s.0 + 1,
                    name: s.2.clone(),
                },
                why: "this category's group appears twice".into(),
            });
        }
    }

    let froms: Vec<usize> = (0..header.cells.len())
        .filter(|&i| norm(header.get(i)) == "from")
        .collect();
    let mut groups: Vec<Group> = Vec::new();
    for (k, &f) in froms.iter().enumerate() {
        let Some(gi) = starts.iter().rposition(|s| s.0 <= f) else {
            return Err(header_err(
                f,
                "this From column is under no category group".into(),
            ));
        };
        let (_, category, label) = &starts[gi];
        if groups.iter().any(|g| g.category == *category) {
            return Err(header_err(
                f,
                format!("a second From column in the {label} group"),
            ));
        }
        let end = [starts.get(gi + 1).map(|s| s.0), froms.get(k + 1).copied()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(header.cells.len());
        let find = |name: &str| (f + 1..end).find(|&i| norm(header.get(i)) == name);
        let (Some(to), Some(rate)) = (find("to"), find("rate")) else {
            return Err(header_err(
                f,
                format!("the {label} group needs To and Rate columns"),
            ));
        };
        groups.push(Group {
            category: *category,
            label: label.clone(),
            from: f,
            to,
            rate,
            info: ["ratetype", "vslistrate"]
                .into_iter()
                .filter_map(&find)
                .collect(),
        });
    }
    if let Some(s) = starts
        .iter()
        .find(|s| !groups.iter().any(|g| g.category == s.1))
    {
        return Err(ImportError::Invalid {
            line: rows[g].line,
            column: Column {
                index: s.0 + 1,
                name: s.2.clone(),
            },
            why: "this group has no From column below it".into(),
        });
    }
    let first_group_col = groups.iter().map(|g| g.from).min().unwrap_or(0);

    // Market and Currency come before the groups, labelled in any of the header rows (the
    // column-header row first).
    let label_col = |wanted: fn(&str) -> bool| {
        std::iter::once(h)
            .chain(g..h)
            .find_map(|r| (0..first_group_col).find(|&i| wanted(&norm(rows[r].get(i)))))
    };
    let market_col = label_col(|n| n.starts_with("market"))
        .or((first_group_col > 0).then_some(0))
        .ok_or_else(|| header_err(0, "no Market column before the groups".into()))?;
    let currency_col = label_col(|n| n == "currency");
    // Without a Currency column, the title says it ("Cost per message in USD ...").
    let title_currency = currency_from_title(&rows[..g]);
    if currency_col.is_none() && title_currency.is_none() {
        return Err(header_err(
            market_col,
            "no Currency column, and the title does not name the currency ('... in USD ...')"
                .into(),
        ));
    }

    let col_name = |col: usize| -> String {
        if col == market_col {
            return "Market".into();
        }
        if Some(col) == currency_col {
            return "Currency".into();
        }
        match groups.iter().find(|g| g.columns().any(|c| c == col)) {
            Some(g) => format!("{} {}", g.label, shown(header.get(col))),
            None => shown(header.get(col)),
        }
    };
    let names: Vec<String> = (0..header.cells.len().max(market_col + 1))
        .map(col_name)
        .collect();

    let mut out = Vec::new();
    let mut seen: HashMap<&str, u64> = HashMap::new();
    let mut current: Option<(&str, Currency)> = None;
    let mut card_currency = None;
    let mut tiers: Vec<((&str, Category), Vec<Tier>)> = Vec::new();
    let mut closed: HashSet<(&str, Category)> = HashSet::new();
    for row in &rows[h + 1..] {
        if row.is_blank() {
            continue;
        }
        let at = |col: usize| At {
            line: row.line,
            col,
            name: names.get(col).map_or("", String::as_str),
        };
        let market_cell = row.get(market_col);
        let row_currency = match currency_col.map(|c| (c, row.get(c))) {
            Some((c, cell)) if !cell.is_empty() => Some(currency_cell(cell, at(c))?),
            _ => None,
        };
        let (market, currency) = if market_cell.is_empty() {
            // A continuation row: the market above, one more tier.
            let Some((market, currency)) = current else {
                return Err(at(market_col).invalid("a tier row with no market above it"));
            };
            if let Some(c) = row_currency.filter(|&c| c != currency) {
                return Err(at(currency_col.unwrap_or(market_col))
                    .invalid(format!("currency {c} differs from {market}'s {currency}")));
            }
            (market, currency)
        } else {
            let only_market_cell = row
                .cells
                .iter()
                .enumerate()
                .all(|(i, c)| i == market_col || c.is_empty());
            if only_market_cell && known.find(market_cell).is_none() {
                current = None;
                continue; // a footnote below the table
            }
            let market = known.require(market_cell, at(market_col))?;
            if let Some(first) = seen.insert(market, row.line) {
                return Err(at(market_col)
                    .invalid(format!("{market} is listed twice (first on line {first})")));
            }
            let Some(currency) = row_currency.or(title_currency) else {
                return Err(at(currency_col.unwrap_or(market_col)).invalid("empty currency"));
            };
            current = Some((market, currency));
            (market, currency)
        };
        check_card_currency(
            &mut card_currency,
            currency,
            at(currency_col.unwrap_or(market_col)),
        )?;

        for group in &groups {
            let key = (market, group.category);
            if group.is_empty_on(row) {
                // An empty group ends this market's tiers for the category.
                closed.insert(key);
                continue;
            }
            if closed.contains(&key) {
                return Err(at(group.from).invalid(format!(
                    "a {} tier for {market} after a row where its {} group was empty (an \
                     empty group ends a market's tiers)",
                    group.label, group.label
                )));
            }
            let from_cell = row.get(group.from);
            let min = count(from_cell).ok_or_else(|| {
                at(group.from).bad_value(from_cell, "a message count such as 100,000")
            })?;
            let to_cell = row.get(group.to);
            let max = if is_unbounded(to_cell) {
                None
            } else {
                Some(count(to_cell).ok_or_else(|| {
                    at(group.to).bad_value(
                        to_cell,
                        "a message count such as 100,000, or -- for no upper bound",
                    )
                })?)
            };
            if max.is_some_and(|m| m < min) {
                return Err(at(group.to).invalid(format!("the tier ends before it starts ({min})")));
            }
            let rate = money(row.get(group.rate), currency, at(group.rate))?;
            let tier = Tier {
                line: row.line,
                range: TierRange { min, max },
            };
            match tiers.iter_mut().find(|(k, _)| *k == key) {
                Some((_, list)) => list.push(tier),
                None => tiers.push((key, vec![tier])),
            }
            out.push(RateRow {
                effective_from: effective,
                pricing_model: PricingModel::Pmp,
                currency,
                market: market.to_string(),
                category: group.category,
                tier_min: Some(min),
                tier_max: max,
                rate,
                source: source.to_string(),
            });
        }
    }
    if seen.is_empty() {
        return Err(header_err(
            market_col,
            "no market rows below the header rows".into(),
        ));
    }

    for ((market, category), mut list) in tiers {
        let group = groups
            .iter()
            .find(|g| g.category == category)
            .expect("tiers come from a group");
        check_coverage(market, group, &names, &mut list)?;
    }
    Ok(out)
}

/// The tiers of one (market, category) must price every message of a month exactly once.
fn check_coverage(
    market: &str,
    group: &Group,
    names: &[String],
    list: &mut [Tier],
) -> Result<(), ImportError> {
    let at = |line: u64, col: usize| At {
        line,
        col,
        name: names.get(col).map_or("", String::as_str),
    };
    let label = &group.label;
    list.sort_by_key(|t| t.range.min);
    let first = &list[0];
    if first.range.min > 1 {
        return Err(at(first.line, group.from).invalid(format!(
            "{market}'s first {label} tier starts at {}: the month's first messages would have \
             no price (the list-rate tier starts at 0 or 1)",
            first.range.min
        )));
    }
    for w in list.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        match a.range.max {
            Some(m) if m < b.range.min => {
                if m + 1 < b.range.min {
                    return Err(at(b.line, group.from).invalid(format!(
                        "{market}'s {label} tier {} leaves a gap after tier {} of line {}: \
                         messages {}..{} would have no price",
                        b.range,
                        a.range,
                        a.line,
                        m + 1,
                        b.range.min - 1
                    )));
                }
            }
            _ => {
                return Err(ImportError::OverlappingTiers {
                    line: b.line,
                    column: at(b.line, group.from).column(),
                    overlap: Box::new(Overlap {
                        market: market.to_string(),
                        category: group.category,
                        tier: b.range,
                        other: a.range,
                        other_line: a.line,
                    }),
                })
            }
        }
    }
    let last = list.last().expect("non-empty");
    if let Some(m) = last.range.max {
        return Err(at(last.line, group.to).invalid(format!(
            "{market}'s last {label} tier ends at {m}: messages above it would have no price \
             (the open-ended last tier has To = --)"
        )));
    }
    Ok(())
}

/// The currency a title names: the token after "in" ("Cost per message in USD ...").
pub(crate) fn currency_from_title(rows: &[Row]) -> Option<Currency> {
    rows.iter().flat_map(|r| r.cells.iter()).find_map(|cell| {
        let words: Vec<&str> = cell
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .collect();
        words
            .windows(2)
            .filter(|w| w[0].eq_ignore_ascii_case("in"))
            .find_map(|w| currency_token(w[1]))
    })
}

// ---------------------------------------------------------------------------------------------
// rates.csv
// ---------------------------------------------------------------------------------------------

type Key<'a> = (Date, PricingModel, Currency, &'a str, Category);

fn key(r: &RateRow) -> Key<'_> {
    (
        r.effective_from,
        r.pricing_model,
        r.currency,
        &r.market,
        r.category,
    )
}

fn describe(k: &Key<'_>) -> String {
    format!("{} {} {} {} {}", k.0, k.1.as_str(), k.2, k.3, k.4.as_str())
}

/// Reads a `rates.csv` text (columns found by name, as `RateBook::add_csv` does).
fn read_rates_csv(text: &str) -> Result<Vec<RateRow>, ImportError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let rows = read_rows(text)?;
    let header = &rows[0];
    let names: Vec<&str> = RATES_HEADER.split(',').collect();
    let mut cols = Vec::with_capacity(names.len());
    for name in &names {
        let col = header.cells.iter().position(|c| c == name).ok_or_else(|| {
            At {
                line: header.line,
                col: header.cells.len(),
                name,
            }
            .invalid(format!("missing column '{name}' (expected {RATES_HEADER})"))
        })?;
        cols.push(col);
    }
    let mut out = Vec::new();
    for row in &rows[1..] {
        if row.is_blank() {
            continue;
        }
        let at = |k: usize| At {
            line: row.line,
            col: cols[k],
            name: names[k],
        };
        let f = |k: usize| row.get(cols[k]);
        let effective_from =
            Date::parse(f(0)).ok_or_else(|| at(0).bad_value(f(0), "a date YYYY-MM-DD"))?;
        let pricing_model =
            PricingModel::parse(f(1)).ok_or_else(|| at(1).bad_value(f(1), "CBP or PMP"))?;
        let currency = Currency::parse(f(2))
            .ok_or_else(|| at(2).bad_value(f(2), "an ISO 4217 currency code"))?;
        if f(3).is_empty() {
            return Err(at(3).invalid("empty market"));
        }
        let category = Category::parse(f(4))
            .filter(|c| !matches!(c, Category::MarketingLite | Category::ReferralConversion))
            .ok_or_else(|| {
                at(4).bad_value(
                    f(4),
                    "one of marketing, utility, authentication, authentication_international, \
                     service",
                )
            })?;
        let whole = |k: usize| {
            f(k).parse::<u64>()
                .map_err(|_| at(k).bad_value(f(k), "a whole number"))
        };
        let (tier_min, tier_max) = match (f(5), f(6)) {
            ("", "") => (None, None),
            ("", _) => return Err(at(5).invalid("tier_max without tier_min")),
            (_, "" | "MAX") => (Some(whole(5)?), None),
            _ => (Some(whole(5)?), Some(whole(6)?)),
        };
        let rate = f(7)
            .parse::<Decimal>()
            .ok()
            .filter(|r| r.nanos() >= 0)
            .ok_or_else(|| at(7).bad_value(f(7), "a non-negative decimal rate"))?;
        out.push(RateRow {
            effective_from,
            pricing_model,
            currency,
            market: f(3).to_string(),
            category,
            tier_min,
            tier_max,
            rate,
            source: f(8).to_string(),
        });
    }
    Ok(out)
}

/// Makes the new rows agree with each other per key: identical duplicates collapse, and a flat
/// rate-card row yields to the same key's tiers when it equals their first (list-rate) tier, so
/// a rate card and a tier card of one date can be imported together in any order.
fn reconcile(rows: &[RateRow]) -> Result<Vec<RateRow>, ImportError> {
    let mut order: Vec<Key<'_>> = Vec::new();
    let mut by_key: HashMap<Key<'_>, Vec<&RateRow>> = HashMap::new();
    for r in rows {
        let k = key(r);
        by_key
            .entry(k)
            .or_insert_with(|| {
                order.push(k);
                Vec::new()
            })
            .push(r);
    }
    let mut out = Vec::new();
    for k in order {
        let rs = &by_key[&k];
        let conflict = |why: String| ImportError::Conflict {
            what: describe(&k),
            why,
        };
        let flats: Vec<&RateRow> = rs
            .iter()
            .copied()
            .filter(|r| r.tier_min.is_none())
            .collect();
        let mut tiers: Vec<&RateRow> = rs
            .iter()
            .copied()
            .filter(|r| r.tier_min.is_some())
            .collect();
        if let (Some(a), Some(b)) = (
            flats.first(),
            flats.iter().find(|f| f.rate != flats[0].rate),
        ) {
            return Err(conflict(format!(
                "two rates, {} ({}) and {} ({})",
                a.rate, a.source, b.rate, b.source
            )));
        }
        tiers.sort_by_key(|r| r.tier_min);
        tiers.dedup_by(|b, a| (a.tier_min, a.tier_max, a.rate) == (b.tier_min, b.tier_max, b.rate));
        for w in tiers.windows(2) {
            let (a, b) = (w[0], w[1]);
            if a.tier_max.is_none_or(|m| Some(m) >= b.tier_min) {
                return Err(conflict(format!(
                    "tier {} ({}) overlaps tier {} ({})",
                    range(a),
                    a.source,
                    range(b),
                    b.source
                )));
            }
        }
        match (flats.first(), tiers.first()) {
            (Some(f), None) => out.push((*f).clone()),
            (Some(f), Some(t)) if t.tier_min > Some(1) || t.rate != f.rate => {
                return Err(conflict(format!(
                    "flat rate {} ({}) is not the first tier's rate: tier {} is {} ({})",
                    f.rate,
                    f.source,
                    range(t),
                    t.rate,
                    t.source
                )))
            }
            _ => out.extend(tiers.into_iter().cloned()),
        }
    }
    Ok(out)
}

fn range(r: &RateRow) -> TierRange {
    TierRange {
        min: r.tier_min.unwrap_or(0),
        max: r.tier_max,
    }
}

/// Merges new rows into an existing `rates.csv` text: rows with the same (effective_from,
/// pricing_model, currency, market, category) as a new row are replaced; the output is sorted
/// by (effective_from, pricing_model, currency, market, category, tier_min) with the header
/// line first. An empty `existing` is a new file.
///
/// One refinement keeps information: a new flat row whose key already has tiers in `existing`
/// starting with that same list rate leaves those tiers in place (the rate card says nothing
/// the tiers do not), so importing the tier card before the rate card does not lose the tiers.
/// A flat row with a different rate replaces them, as the card changed.
pub fn merge_into_rates_csv(existing: &str, rows: &[RateRow]) -> Result<String, ImportError> {
    let old = read_rates_csv(existing)?;
    let new = reconcile(rows)?;
    let mut old_by_key: HashMap<Key<'_>, Vec<&RateRow>> = HashMap::new();
    for r in &old {
        old_by_key.entry(key(r)).or_default().push(r);
    }
    let mut new_by_key: HashMap<Key<'_>, Vec<&RateRow>> = HashMap::new();
    for r in &new {
        new_by_key.entry(key(r)).or_default().push(r);
    }
    let keep_old: HashSet<Key<'_>> = new_by_key
        .iter()
        .filter(|(k, rs)| {
            let [flat] = rs.as_slice() else { return false };
            let Some(olds) = old_by_key.get(*k) else {
                return false;
            };
            flat.tier_min.is_none()
                && olds.iter().all(|r| r.tier_min.is_some())
                && olds
                    .iter()
                    .min_by_key(|r| r.tier_min)
                    .is_some_and(|first| first.tier_min <= Some(1) && first.rate == flat.rate)
        })
        .map(|(k, _)| *k)
        .collect();
    let mut out: Vec<&RateRow> = old
        .iter()
        .filter(|r| {
            let k = key(r);
            !new_by_key.contains_key(&k) || keep_old.contains(&k)
        })
        .chain(new.iter().filter(|r| !keep_old.contains(&key(r))))
        .collect();
    out.sort_by(|a, b| (key(a), a.tier_min).cmp(&(key(b), b.tier_min)));
    Ok(write_rows(out))
}

/// Writes rows as a `rates.csv` text, header first, in the order given.
pub fn write_rates_csv(rows: &[RateRow]) -> String {
    write_rows(rows.iter())
}

fn write_rows<'a>(rows: impl IntoIterator<Item = &'a RateRow>) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(RATES_HEADER.split(','))
        .expect("writing to memory cannot fail");
    for r in rows {
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        w.write_record([
            r.effective_from.to_string(),
            r.pricing_model.as_str().to_string(),
            r.currency.to_string(),
            r.market.clone(),
            r.category.as_str().to_string(),
            opt(r.tier_min),
            // An open-ended tier has tier_min and a blank tier_max (RateBook reads it so).
            opt(r.tier_max),
            r.rate.to_string(),
            r.source.clone(),
        ])
        .expect("writing to memory cannot fail");
    }
    let bytes = w.into_inner().expect("writing to memory cannot fail");
    String::from_utf8(bytes).expect("all fields are UTF-8")
}
