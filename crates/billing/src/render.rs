//! An invoice as JSON (the record kept, read back with [`crate::Invoice::from_json`]), as CSV
//! (one row per line, for spreadsheets and accounting imports) and as a printable HTML page.
//! JSON and CSV write amounts in their shortest exact form (`150`, `2.33`); the HTML page
//! writes them with the currency's minor digits (`150.00`).

use crate::invoice::{fixed, Invoice, Line, LineKind, Status};
use std::fmt::Write;
use wabill_rating::Decimal;

/// Pretty-printed JSON with a final newline; the same invoice always gives the same bytes.
pub fn json(inv: &Invoice) -> String {
    let mut s = serde_json::to_string_pretty(inv).expect("an invoice serializes");
    s.push('\n');
    s
}

/// Column order of [`csv`].
pub const CSV_FIELDS: [&str; 22] = [
    "invoice",
    "tenant",
    "month",
    "status",
    "currency",
    "kind",
    "line_month",
    "description",
    "agent",
    "licences",
    "category",
    "market",
    "quantity",
    "days",
    "days_in_month",
    "unit_price",
    "cost",
    "cost_currency",
    "fx_rate",
    "markup_percent",
    "exact",
    "amount",
];

/// One row per line, with a header. The invoice's total is the sum of the `amount` column.
pub fn csv(inv: &Invoice) -> String {
    let mut out = CSV_FIELDS.join(",");
    out.push('\n');
    let opt = |d: Option<Decimal>| d.map(|d| d.to_string()).unwrap_or_default();
    for l in &inv.lines {
        let cells = [
            inv.id.clone(),
            inv.tenant.clone(),
            inv.month.to_string(),
            status(inv.status).to_string(),
            inv.currency.to_string(),
            l.kind.as_str().to_string(),
            l.month.to_string(),
            l.description.clone(),
            l.agent.clone().unwrap_or_default(),
            l.licences.join(" "),
            l.category.clone().unwrap_or_default(),
            l.market.clone().unwrap_or_default(),
            l.quantity.map(|q| q.to_string()).unwrap_or_default(),
            l.days.map(|q| q.to_string()).unwrap_or_default(),
            l.days_in_month.map(|q| q.to_string()).unwrap_or_default(),
            opt(l.unit_price),
            opt(l.cost),
            l.cost_currency.map(|c| c.to_string()).unwrap_or_default(),
            opt(l.fx_rate),
            opt(l.markup_percent),
            l.exact.to_string(),
            l.amount.to_string(),
        ];
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            csv_cell(&mut out, cell);
        }
        out.push('\n');
    }
    out
}

fn csv_cell(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

fn status(s: Status) -> &'static str {
    match s {
        Status::Draft => "draft",
        Status::Final => "final",
    }
}

const SECTIONS: [(&str, &[LineKind]); 6] = [
    ("WhatsApp licences", &[LineKind::Licence]),
    ("WhatsApp usage", &[LineKind::Usage]),
    ("WhatsApp calls", &[LineKind::CallUsage]),
    (
        "Included budget",
        &[LineKind::BudgetApplied, LineKind::OverageDeferred],
    ),
    ("Previous month", &[LineKind::Overage]),
    (
        "Adjustments to finalized months",
        &[LineKind::Adjustment, LineKind::AdjustmentBudget],
    ),
];

const STYLE: &str = r#"
@page { size: A4; margin: 14mm 15mm; }
* { box-sizing: border-box; }
body { margin: 0; color: #1f2328; font: 10pt/1.4 "Helvetica Neue", Helvetica, Arial, "Liberation Sans", sans-serif; }
.page { max-width: 182mm; margin: 0 auto; padding: 10mm 0; position: relative; }
header { display: flex; justify-content: space-between; align-items: flex-start; border-bottom: 2px solid #1f2328; padding-bottom: 5mm; }
h1 { font-size: 22pt; margin: 0; letter-spacing: .01em; }
h2 { font-size: 11pt; margin: 5mm 0 1.5mm; }
.muted { color: #5b636b; }
.small { font-size: 8.5pt; }
.badge { display: inline-block; margin-top: 2mm; padding: .6mm 2.5mm; border-radius: 1mm; font-size: 8.5pt; font-weight: 700; letter-spacing: .08em; }
.badge.draft { color: #a4000f; border: 1.2px solid #a4000f; }
.badge.final { color: #116329; border: 1.2px solid #116329; }
dl { display: grid; grid-template-columns: auto auto; gap: .5mm 5mm; margin: 0; text-align: right; }
dt { color: #5b636b; }
dd { margin: 0; font-weight: 600; }
table { width: 100%; border-collapse: collapse; margin-top: 5mm; }
th { text-align: left; font-size: 8pt; text-transform: uppercase; letter-spacing: .05em; color: #5b636b; border-bottom: 1px solid #8c959f; padding: 1.5mm 1.5mm; }
td { padding: 1.3mm 1.5mm; border-bottom: 1px solid #e6e8eb; vertical-align: top; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.section td { font-weight: 700; padding-top: 3mm; border-bottom: 1px solid #c9ced3; }
tr.subtotal td { color: #5b636b; border-bottom: none; }
tr.total td { font-weight: 700; font-size: 12pt; border-top: 2px solid #1f2328; border-bottom: none; padding-top: 2.5mm; }
td .sub { display: block; color: #5b636b; font-size: 8.5pt; }
.box { border: 1px solid #d0d7de; border-radius: 1.5mm; padding: 2mm 3.5mm; margin-top: 2mm; }
.box table { margin-top: 0; }
.box td, .box th { border-bottom: none; padding: .6mm 1.5mm; }
ul { margin: 1mm 0; padding-left: 5mm; }
footer { margin-top: 5mm; padding-top: 2mm; border-top: 1px solid #d0d7de; }
.watermark { position: fixed; top: 38%; left: 0; right: 0; text-align: center; font-size: 96pt; font-weight: 800; color: rgba(164, 0, 15, .07); transform: rotate(-24deg); pointer-events: none; z-index: -1; }
@media print { .page { padding: 0; max-width: none; } tr, .box { break-inside: avoid; } }
"#;

/// A self-contained, printable HTML page (A4, no scripts, no external resources).
pub fn html(inv: &Invoice) -> String {
    let cur = inv.currency.to_string();
    let digits = inv.currency.minor_digits();
    let money = |d: Decimal| group_thousands(&fixed(d, digits));
    let mut h = String::new();
    let title = format!("Invoice {}", inv.id);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<div class=\"page\">\n",
        esc(&title)
    );
    if inv.status == Status::Draft {
        h.push_str("<div class=\"watermark\">DRAFT</div>\n");
    }
    let (badge, badge_class) = match inv.status {
        Status::Draft => ("DRAFT", "draft"),
        Status::Final => ("FINAL", "final"),
    };
    let tenant = match &inv.tenant_name {
        Some(n) => format!(
            "{} <span class=\"muted\">({})</span>",
            esc(n),
            esc(&inv.tenant)
        ),
        None => esc(&inv.tenant),
    };
    let _ = write!(
        h,
        "<header>\n<div>\n<h1>Invoice</h1>\n<div class=\"muted\">{}</div>\n<span class=\"badge {badge_class}\">{badge}</span>\n</div>\n<dl>\n<dt>Customer</dt><dd>{tenant}</dd>\n<dt>Period</dt><dd>{} to {}</dd>\n<dt>Timezone</dt><dd>{}</dd>\n<dt>Currency</dt><dd>{}</dd>\n<dt>Plan</dt><dd>effective {}</dd>\n</dl>\n</header>\n",
        esc(&inv.id),
        inv.period_start,
        inv.period_end,
        esc(&inv.timezone),
        cur,
        inv.plan_effective_from,
    );
    let _ = write!(
        h,
        "<table>\n<thead><tr><th>Description</th><th class=\"num\">Quantity</th><th>Basis</th><th class=\"num\">Amount ({cur})</th></tr></thead>\n<tbody>\n"
    );
    for (title, kinds) in SECTIONS {
        let lines: Vec<&Line> = inv
            .lines
            .iter()
            .filter(|l| kinds.contains(&l.kind))
            .collect();
        if lines.is_empty() {
            continue;
        }
        let _ = writeln!(
            h,
            "<tr class=\"section\"><td colspan=\"4\">{}</td></tr>",
            esc(title)
        );
        for l in &lines {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"small\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&l.description),
                esc(&quantity(l)),
                esc(&basis(l)),
                money(l.amount)
            );
        }
        if lines.len() > 1 {
            let sub: Decimal = lines.iter().map(|l| l.amount).sum();
            let _ = writeln!(
                h,
                "<tr class=\"subtotal\"><td colspan=\"3\">Subtotal</td><td class=\"num\">{}</td></tr>",
                money(sub)
            );
        }
    }
    if inv.lines.is_empty() {
        h.push_str("<tr><td colspan=\"4\" class=\"muted\">Nothing to bill this month.</td></tr>\n");
    }
    let _ = write!(
        h,
        "<tr class=\"total\"><td colspan=\"3\">Total</td><td class=\"num\">{} {cur}</td></tr>\n</tbody>\n</table>\n",
        money(inv.total)
    );

    if let Some(b) = &inv.budget {
        let rule = match b.active_agent_rule {
            crate::ActiveAgentRule::Licensed => {
                "agents holding a licence on at least one day of the month"
            }
            crate::ActiveAgentRule::Sent => "agents who sent at least one message in the month",
        };
        let fx = b
            .fx_rate
            .map(|r| format!(", converted at {r}"))
            .unwrap_or_default();
        let _ = write!(
            h,
            "<h2>Included WhatsApp budget</h2>\n<div class=\"box\"><table>\n<tr><td>Active agents ({})</td><td class=\"num\">{}</td></tr>\n<tr><td>Blocks of {} active agents (started blocks count)</td><td class=\"num\">{}</td></tr>\n<tr><td>Budget: {} × {} {}{}</td><td class=\"num\">{} {cur}</td></tr>\n<tr><td>Usage at cost</td><td class=\"num\">{} {cur}</td></tr>\n<tr><td>Applied</td><td class=\"num\">{} {cur}</td></tr>\n<tr><td>Above the budget, billed at cost on the {} invoice</td><td class=\"num\">{} {cur}</td></tr>\n</table></div>\n",
            esc(rule),
            b.active_agents,
            b.per_agents,
            b.blocks,
            b.blocks,
            b.amount_per_block,
            b.budget_currency,
            fx,
            money(b.included),
            money(b.used),
            money(b.applied),
            inv.month.next(),
            money(b.overage),
        );
    }
    if !inv.fx_rates.is_empty() {
        h.push_str("<h2>Exchange rates used</h2>\n<div class=\"box\"><table>\n<tr><th>For</th><th>Conversion</th><th>Rate date</th><th class=\"num\">Rate</th></tr>\n");
        for r in &inv.fx_rates {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>1 {} = {} {}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                r.month, r.from, r.rate, r.to, r.date, r.rate
            );
        }
        h.push_str("</table></div>\n");
    }
    if !inv.notes.is_empty() {
        h.push_str("<h2>Notes</h2>\n<ul class=\"small\">\n");
        for n in &inv.notes {
            let _ = writeln!(h, "<li>{}</li>", esc(&n.message));
        }
        h.push_str("</ul>\n");
    }
    let _ = write!(
        h,
        "<footer class=\"small muted\">Amounts are in {cur}, each line rounded once to the currency's minor unit (half away from zero); the total is the sum of the lines. WhatsApp usage is Meta's cost per message{}{}.{}</footer>\n</div>\n</body>\n</html>\n",
        if inv.lines.iter().any(|l| l.kind == LineKind::CallUsage) {
            " and per started 6-second pulse of a call"
        } else {
            ""
        },
        if inv.lines.iter().any(|l| l.markup_percent.is_some()) {
            ", with the plan's markup"
        } else {
            ""
        },
        match inv.status {
            Status::Draft => " This is a draft: amounts may still change.",
            Status::Final => " This invoice is final: later usage of its month is billed as an adjustment on a later invoice.",
        }
    );
    h
}

fn quantity(l: &Line) -> String {
    match (l.kind, l.days, l.days_in_month, l.quantity) {
        (_, Some(d), Some(n), _) => format!("{d}/{n} days"),
        (LineKind::Adjustment, _, _, Some(q)) => {
            format!("{q} {}", if q == 1 { "charge" } else { "charges" })
        }
        (LineKind::CallUsage, _, _, Some(q)) => format!(
            "{q} {}, {} min",
            if q == 1 { "call" } else { "calls" },
            l.minutes.unwrap_or_default()
        ),
        (_, _, _, Some(q)) => format!("{q} {}", if q == 1 { "message" } else { "messages" }),
        _ => String::new(),
    }
}

fn basis(l: &Line) -> String {
    let mut parts = Vec::new();
    if let Some(p) = l.unit_price {
        parts.push(format!("{p} per licence per month"));
    }
    if let (Some(c), Some(cur)) = (l.cost, l.cost_currency) {
        parts.push(format!("Meta cost {c} {cur}"));
    }
    if let Some(r) = l.fx_rate {
        parts.push(format!("× FX {r}"));
    }
    if let Some(m) = l.markup_percent {
        parts.push(format!("+ {m} % markup"));
    }
    parts.join(" ")
}

/// `1234567.50` → `1 234 567.50` with narrow no-break spaces (unambiguous in any locale).
fn group_thousands(s: &str) -> String {
    let (sign, rest) = s.strip_prefix('-').map_or(("", s), |r| ("−", r));
    let (int, frac) = rest
        .split_once('.')
        .map_or((rest, None), |(i, f)| (i, Some(f)));
    let mut out = String::from(sign);
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push('\u{202F}');
        }
        out.push(ch);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands_and_escapes() {
        assert_eq!(group_thousands("1234567.50"), "1\u{202F}234\u{202F}567.50");
        assert_eq!(group_thousands("-150.00"), "−150.00");
        assert_eq!(group_thousands("999"), "999");
        assert_eq!(esc("<a & 'b'>"), "&lt;a &amp; &#39;b&#39;&gt;");
    }
}
