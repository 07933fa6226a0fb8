//! Reconciliation: where Meta's pricing (what its status webhooks said, kept per message and
//! status in the store) disagrees with wabill's charge of the same message. The comparison is
//! pure and shared by `GET /v1/reconciliation` and `wabill reconcile`.
//!
//! How a message is compared (docs/pricing-rules.md §7 and §12 items 6-7; decisions.md D27):
//! - Meta's side is the pricing of its `delivered` or `read` status when there is one (delivery
//!   is what Meta bills), else of `sent`, else of `failed`; the earliest when several.
//! - `pricing_model` and `category` are compared whenever Meta gave them; Meta's
//!   `authentication-international` spelling equals wabill's `authentication_international`.
//! - `type` (PMP only; Meta sends none under CBP) is compared unless wabill has no delivery yet
//!   (`undelivered`: type and billing are decided on delivery); Meta names no type for the
//!   monthly free service allowance, so wabill's `free_tier` agrees with Meta's `free_tier` or
//!   `free_customer_service`.
//! - `billable` (being deprecated by Meta, so a fallback only) is compared where its meaning is
//!   known: under PMP it is "this message is charged"; under CBP it is about the conversation
//!   (true for a charged or free-tier conversation, on every message of it; false in a free entry
//!   point window); a free service conversation (from 2024-11-01) was reported both ways (B5)
//!   and is not compared.

use crate::charges::write_row_json;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use wabill_store::{ChargeFilter, ChargeRow, MetaPricingRow, StoreError};

/// JSON values of a report, for callers without their own serde_json.
pub use serde_json::Value as JsonValue;

/// One field on which the two sides differ.
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    pub field: &'static str,
    pub wabill: Value,
    pub meta: Value,
}

/// A message both sides priced, differently.
#[derive(Clone, Debug, PartialEq)]
pub struct Disagreement {
    pub charge: ChargeRow,
    pub meta: MetaPricingRow,
    pub differences: Vec<Difference>,
}

/// The outcome of comparing a set of charges with a set of Meta pricing rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Messages both sides priced.
    pub compared: u64,
    pub agreeing: u64,
    pub disagreements: Vec<Disagreement>,
    /// Messages wabill charged that no Meta pricing names.
    pub wabill_only: u64,
    /// Meta's pricing (the row compared) of messages wabill has no charge for, by id.
    pub meta_only: Vec<MetaPricingRow>,
    /// Messages whose outbound event named another template category than the one charged,
    /// Meta's (decisions.md D112, D116), by id: (id, the platform's, Meta's).
    pub platform: Vec<(String, String, String)>,
}

/// The differences between the template category the platform's outbound events named and the
/// one charged, Meta's (D112): what `wabill reconcile` lists, for charges and their outbound
/// lines as stored (`raw`; other lines are ignored).
pub fn platform_categories<'a>(
    charges: &[ChargeRow],
    outbound: impl IntoIterator<Item = &'a str>,
) -> Vec<(String, String, String)> {
    use wabill_rating::{Category, Event, MessageKind};
    let mut parsed = wabill_formats::Parsed::default();
    for raw in outbound {
        // Stored lines were written by wabill; one that does not read is left out here.
        let _ = wabill_formats::parse_line(raw, 0, &mut parsed);
    }
    let declared: HashMap<&str, Category> = parsed
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Outbound(o) => match o.kind {
                MessageKind::Template(c) => Some((o.id.as_ref(), c)),
                MessageKind::NonTemplate => None,
            },
            _ => None,
        })
        .collect();
    let template = |c: &str| matches!(c, "marketing" | "utility" | "authentication");
    let mut out: Vec<(String, String, String)> = charges
        .iter()
        .filter_map(|c| {
            let d = declared.get(c.id.as_str())?.as_str();
            (template(&c.category) && c.category != d)
                .then(|| (c.id.clone(), d.to_string(), c.category.clone()))
        })
        .collect();
    out.sort();
    out
}

fn rank(status: &str) -> u8 {
    match status {
        "delivered" | "read" => 0,
        "sent" => 1,
        "failed" => 2,
        _ => 3,
    }
}

/// Meta's pricing of one message that is compared (see the module comment).
pub fn pick<'a>(rows: &[&'a MetaPricingRow]) -> Option<&'a MetaPricingRow> {
    rows.iter()
        .min_by(|a, b| {
            (rank(&a.status), a.at_ms, &a.status).cmp(&(rank(&b.status), b.at_ms, &b.status))
        })
        .copied()
}

/// Where Meta's pricing disagrees with a charge (empty: they agree).
pub fn compare(c: &ChargeRow, m: &MetaPricingRow) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut differ = |field: &'static str, wabill: Value, meta: Value| {
        out.push(Difference {
            field,
            wabill,
            meta,
        })
    };
    if let Some(model) = &m.pricing_model {
        if *model != c.pricing_model {
            differ("pricing_model", json!(c.pricing_model), json!(model));
        }
    }
    if let Some(category) = &m.category {
        if category.replace('-', "_") != c.category {
            differ("category", json!(c.category), json!(category));
        }
    }
    if c.pricing_type == "undelivered" {
        return out;
    }
    if let Some(t) = &m.pricing_type {
        let agree =
            *t == c.pricing_type || (c.pricing_type == "free_tier" && t == "free_customer_service");
        if !agree {
            differ("type", json!(c.pricing_type), json!(t));
        }
    }
    if let Some(billable) = m.billable {
        let expected = if c.pricing_model == "CBP" {
            match c.pricing_type.as_str() {
                "regular" | "free_tier" => Some(true),
                "free_entry_point" => Some(false),
                _ => None,
            }
        } else {
            Some(c.billable)
        };
        if let Some(e) = expected.filter(|e| *e != billable) {
            differ("billable", json!(e), json!(billable));
        }
    }
    out
}

/// Where Meta's end of the conversation or free entry point window a charge opened
/// (`conversation.expiration_timestamp`, on the opener's `sent` status) is not wabill's
/// (decisions.md D118): wabill's end is the send instant plus 24 hours, or 72 for a free entry
/// point window; Meta's agrees when it is that end rounded up to the minute at most (D11).
/// Only the opener of its conversation (`conversation_id` its own id) is compared.
pub fn window_end(c: &ChargeRow, rows: &[&MetaPricingRow]) -> Option<Difference> {
    use wabill_rating::rater::{FEP_WINDOW_MS, WINDOW_MS};
    if c.conversation_id.as_deref() != Some(c.id.as_str()) {
        return None;
    }
    let meta = rows.iter().filter_map(|r| r.expires_at_ms).min()?;
    let length = if c.pricing_type == "free_entry_point" {
        FEP_WINDOW_MS
    } else {
        WINDOW_MS
    };
    let end = c.sent_at_ms + length;
    let rounded = (end + 59_999).div_euclid(60_000) * 60_000;
    (!(end..=rounded).contains(&meta)).then(|| Difference {
        field: "window_end",
        wabill: json!(wabill_formats::time::format_instant(end)),
        meta: json!(wabill_formats::time::format_instant(meta)),
    })
}

/// Compares every charge with Meta's pricing of the same message id.
pub fn reconcile(charges: &[ChargeRow], meta: &[MetaPricingRow]) -> Report {
    let mut by_id: BTreeMap<&str, Vec<&MetaPricingRow>> = BTreeMap::new();
    let mut seen: BTreeSet<(&str, &str)> = BTreeSet::new();
    for m in meta {
        if seen.insert((&m.id, &m.status)) {
            by_id.entry(&m.id).or_default().push(m);
        }
    }
    let mut report = Report::default();
    let charged: BTreeSet<&str> = charges.iter().map(|c| c.id.as_str()).collect();
    for c in charges {
        let Some(m) = by_id.get(c.id.as_str()).and_then(|rows| pick(rows)) else {
            report.wabill_only += 1;
            continue;
        };
        report.compared += 1;
        let mut differences = compare(c, m);
        differences.extend(window_end(c, &by_id[c.id.as_str()]));
        if differences.is_empty() {
            report.agreeing += 1;
        } else {
            report.disagreements.push(Disagreement {
                charge: c.clone(),
                meta: m.clone(),
                differences,
            });
        }
    }
    for (id, rows) in &by_id {
        if !charged.contains(id) {
            if let Some(m) = pick(rows) {
                report.meta_only.push(m.clone());
            }
        }
    }
    report
}

/// Meta's side as JSON.
pub fn meta_json(m: &MetaPricingRow) -> Value {
    json!({
        "status": m.status,
        "at": wabill_formats::time::format_instant(m.at_ms),
        "waba": m.waba,
        "pricing_model": m.pricing_model,
        "category": m.category,
        "type": m.pricing_type,
        "billable": m.billable,
        "conversation_id": m.conversation_id,
    })
}

/// A charge as JSON, exactly as `wabill rate` prints it.
pub fn charge_json(c: &ChargeRow) -> Value {
    let mut out = Vec::new();
    write_row_json(&mut out, c);
    serde_json::from_slice(&out).expect("a charge row writes as JSON")
}

impl Report {
    pub fn totals_json(&self) -> Value {
        json!({
            "compared": self.compared,
            "agreeing": self.agreeing,
            "disagreeing": self.disagreements.len(),
            "wabill_only": self.wabill_only,
            "meta_only": self.meta_only.len(),
        })
    }

    /// One disagreement as JSON: the id, the fields that differ, both sides.
    pub fn disagreement_json(d: &Disagreement) -> Value {
        json!({
            "id": d.charge.id,
            "differences": d.differences.iter().map(|x| json!({
                "field": x.field, "wabill": x.wabill, "meta": x.meta,
            })).collect::<Vec<_>>(),
            "wabill": charge_json(&d.charge),
            "meta": meta_json(&d.meta),
        })
    }

    pub fn meta_only_json(m: &MetaPricingRow) -> Value {
        json!({ "id": m.id, "wabill": null, "meta": meta_json(m) })
    }

    /// A platform category difference as JSON, as `wabill reconcile` writes it.
    pub fn platform_json((id, platform, meta): &(String, String, String)) -> Value {
        json!({
            "id": id,
            "differences": [{"field": "platform_category", "platform": platform, "meta": meta}],
            "note": "the outbound event's template category; charged in Meta's (decisions.md D112)",
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "totals": self.totals_json(),
            "disagreements": self.disagreements.iter().map(Report::disagreement_json).collect::<Vec<_>>(),
            "meta_only": self.meta_only.iter().map(Report::meta_only_json).collect::<Vec<_>>(),
            "platform_categories": self.platform.iter().map(Report::platform_json).collect::<Vec<_>>(),
        })
    }
}

/// Ids per store call when looking many up.
const IDS_PER_CALL: usize = 10_000;

/// The report of one WABA's month (`[from_ms, to_ms)` in its timezone), from the store.
///
/// wabill's side: the WABA's charges sent in the month. Meta's side: the pricing of those
/// messages, and Meta's pricing of the WABA whose message has no charge at all and whose first
/// status is in the month (Meta-only).
pub async fn month_report(
    store: &dyn wabill_store::Store,
    waba: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Report, StoreError> {
    let mut charges = Vec::new();
    let mut filter = ChargeFilter {
        waba: Some(waba.to_string()),
        from_ms: Some(from_ms),
        to_ms: Some(to_ms),
        limit: 10_000,
        ..ChargeFilter::default()
    };
    loop {
        let page = store.charges(&filter).await?;
        let done = page.len() < filter.limit as usize;
        filter.after = page.last().map(ChargeRow::cursor);
        charges.extend(page);
        if done {
            break;
        }
    }
    let ids: Vec<String> = charges.iter().map(|c| c.id.clone()).collect();
    let mut meta = Vec::new();
    for chunk in ids.chunks(IDS_PER_CALL) {
        meta.extend(store.meta_pricing_by_id(chunk).await?);
    }
    let charged: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    let candidates: Vec<String> = store
        .meta_pricing_in(waba, from_ms, to_ms)
        .await?
        .into_iter()
        .map(|m| m.id)
        .filter(|id| !charged.contains(id.as_str()))
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect();
    for chunk in candidates.chunks(IDS_PER_CALL) {
        // A message charged in another month belongs to that month's report.
        let elsewhere: BTreeSet<String> = store
            .charges_by_id(chunk)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect();
        let unknown: Vec<String> = chunk
            .iter()
            .filter(|id| !elsewhere.contains(*id))
            .cloned()
            .collect();
        let rows = store.meta_pricing_by_id(&unknown).await?;
        let mut first_seen: HashMap<&str, i64> = HashMap::new();
        for r in &rows {
            let e = first_seen.entry(&r.id).or_insert(r.at_ms);
            *e = (*e).min(r.at_ms);
        }
        let in_month: BTreeSet<String> = first_seen
            .into_iter()
            .filter(|(_, at)| *at >= from_ms)
            .map(|(id, _)| id.to_string())
            .collect();
        meta.extend(rows.into_iter().filter(|r| in_month.contains(&r.id)));
    }
    let mut report = reconcile(&charges, &meta);
    // The platform's own category of each charged message, from its stored outbound event
    // (D116): the month's events of the WABA, of which only outbound lines are read.
    if !charges.is_empty() {
        let stored = store
            .events_for(std::slice::from_ref(&waba.to_string()), from_ms, to_ms)
            .await?;
        report.platform = platform_categories(
            &charges,
            stored
                .iter()
                .filter(|e| e.kind == wabill_store::EventKind::Outbound)
                .map(|e| e.raw.as_str()),
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wabill_rating::Decimal;

    fn charge(model: &str, category: &str, t: &str, amount: &str) -> ChargeRow {
        let amount: Decimal = amount.parse().unwrap();
        ChargeRow {
            id: "m1".into(),
            sent_at_ms: 0,
            waba: "W1".into(),
            phone: "1".into(),
            user: "2".into(),
            country: "BR".into(),
            market: "Brazil".into(),
            pricing_model: model.into(),
            category: category.into(),
            pricing_type: t.into(),
            billable: amount.is_positive(),
            tier: None,
            rate: amount.is_positive().then_some(amount),
            amount,
            currency: "USD".into(),
            billed_at_ms: Some(1),
            conversation_id: None,
            agent: None,
        }
    }

    fn meta(status: &str, model: &str, category: &str, t: Option<&str>, b: bool) -> MetaPricingRow {
        MetaPricingRow {
            id: "m1".into(),
            status: status.into(),
            at_ms: if status == "sent" { 0 } else { 1 },
            waba: Some("W1".into()),
            billable: Some(b),
            pricing_model: Some(model.into()),
            category: Some(category.into()),
            pricing_type: t.map(str::to_string),
            conversation_id: None,
            expires_at_ms: None,
        }
    }

    fn fields(c: &ChargeRow, m: &MetaPricingRow) -> Vec<&'static str> {
        compare(c, m).iter().map(|d| d.field).collect()
    }

    /// Meta's conversation expiry agrees with wabill's window end up to Meta's rounding to the
    /// minute; a longer free entry point window (Meta: "may remain open up to 7 days") and a
    /// shorter one are differences; joiners of a conversation are not compared (D118).
    #[test]
    fn a_window_end_differs_only_beyond_metas_rounding() {
        const MIN: i64 = 60_000;
        const HOUR: i64 = 60 * MIN;
        let mut opener = charge("CBP", "marketing", "regular", "0.0625");
        opener.sent_at_ms = 1_750_030_073_000;
        opener.conversation_id = Some("m1".into());
        let sent = |expires: Option<i64>| {
            let mut m = meta("sent", "CBP", "marketing", None, true);
            m.expires_at_ms = expires;
            m
        };
        let end = opener.sent_at_ms + 24 * HOUR;
        let diff = |c: &ChargeRow, expires: i64| {
            let m = sent(Some(expires));
            window_end(c, &[&m])
        };
        // Meta's own example: 1750030073 → 1750116480 (rounded up to the minute).
        assert_eq!(diff(&opener, 1_750_116_480_000), None);
        assert_eq!(diff(&opener, end), None);
        let later = diff(&opener, end + MIN + 1_000).expect("past the rounding");
        assert_eq!(later.field, "window_end");
        assert_eq!(later.wabill, json!("2025-06-16T23:27:53Z"));
        assert!(diff(&opener, end - 1_000).is_some(), "earlier");
        assert_eq!(window_end(&opener, &[&sent(None)]), None, "no expiry given");
        let mut fep = opener.clone();
        fep.pricing_type = "free_entry_point".into();
        assert_eq!(diff(&fep, end + 48 * HOUR), None, "72 hours");
        assert!(diff(&fep, opener.sent_at_ms + 7 * 24 * HOUR).is_some());
        let mut joiner = opener.clone();
        joiner.conversation_id = Some("m0".into());
        assert_eq!(diff(&joiner, end + 5 * HOUR), None, "only the opener");
        // In the report: a disagreement of its own field.
        let report = reconcile(std::slice::from_ref(&opener), &[sent(Some(end + 2 * HOUR))]);
        assert_eq!(report.disagreements.len(), 1);
        assert_eq!(report.disagreements[0].differences[0].field, "window_end");
    }

    #[test]
    fn spellings_and_deprecated_billable_follow_the_research() {
        let auth = charge("PMP", "authentication_international", "regular", "0.028");
        let m = meta(
            "delivered",
            "PMP",
            "authentication-international",
            Some("regular"),
            true,
        );
        assert!(fields(&auth, &m).is_empty(), "the hyphen spelling agrees");
        // CBP: every message of a charged conversation says billable, joiners included.
        let joiner = charge("CBP", "marketing", "regular", "0");
        assert!(fields(&joiner, &meta("sent", "CBP", "marketing", None, true)).is_empty());
        let free_tier = charge("CBP", "service", "free_tier", "0");
        assert!(fields(&free_tier, &meta("sent", "CBP", "service", None, true)).is_empty());
        // B5: a free service conversation after 2024-11 is reported both ways.
        let free_service = charge("CBP", "service", "free_customer_service", "0");
        for b in [true, false] {
            assert!(fields(&free_service, &meta("sent", "CBP", "service", None, b)).is_empty());
        }
        // PMP: billable means charged.
        let utility = charge("PMP", "utility", "free_customer_service", "0");
        assert_eq!(
            fields(
                &utility,
                &meta(
                    "delivered",
                    "PMP",
                    "utility",
                    Some("free_customer_service"),
                    true
                )
            ),
            vec!["billable"]
        );
    }

    #[test]
    fn a_wrong_category_is_found_and_delivery_pricing_wins() {
        let c = charge("PMP", "marketing", "regular", "0.0625");
        let sent = meta("sent", "PMP", "marketing", Some("regular"), true);
        let delivered = meta("delivered", "PMP", "utility", Some("regular"), true);
        let report = reconcile(std::slice::from_ref(&c), &[sent.clone(), delivered.clone()]);
        assert_eq!((report.compared, report.agreeing), (1, 0));
        let d = &report.disagreements[0];
        assert_eq!(d.meta.status, "delivered");
        assert_eq!(
            d.differences,
            vec![Difference {
                field: "category",
                wabill: json!("marketing"),
                meta: json!("utility")
            }]
        );
        // Undelivered in wabill: only model and category are compared.
        let undelivered = charge("PMP", "marketing", "undelivered", "0");
        assert!(fields(&undelivered, &sent).is_empty());
        // Meta-only and wabill-only.
        let mut other = sent.clone();
        other.id = "m2".into();
        let mut lonely = c.clone();
        lonely.id = "m3".into();
        let r = reconcile(&[c, lonely], &[other, delivered]);
        assert_eq!((r.compared, r.wabill_only, r.meta_only.len()), (1, 1, 1));
        assert_eq!(r.meta_only[0].id, "m2");
    }
}
