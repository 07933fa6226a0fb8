//! `wabill reconcile`: the command-line twin of `GET /v1/reconciliation`. It reads the same
//! inputs as `wabill rate` (events and Meta webhook envelopes), rates them, and compares each
//! charge with the pricing Meta's status webhooks carried for the same message
//! (`wabill_server::reconcile`, decisions.md D27). Disagreements are the output, so finding
//! some still exits 0; malformed input exits 2 and unratable messages 3, as `wabill rate` does.

use crate::input;
use crate::rate_cmd::EXIT_UNRATABLE;
use anyhow::Result;
use std::io::Write;
use std::path::PathBuf;
use wabill_engine::reconcile::{reconcile, JsonValue, Report};
use wabill_rating::{rate_keyed_chunks, Category, Event, MessageKind, RateOptions};
use wabill_store::{ChargeRow, MetaPricingRow};

#[derive(clap::Args, Debug, Clone)]
pub struct ReconcileArgs {
    /// Event files with the outbound messages and Meta's status webhooks (JSON Lines or
    /// envelopes, one per line); `-` for standard input.
    #[arg(required = true)]
    pub files: Vec<String>,
    /// A file of `account` events, in addition to those in the event files.
    #[arg(long)]
    pub accounts: Option<String>,
    /// A directory of rate data to use instead of the bundled data.
    #[arg(long, value_name = "DIR")]
    pub rates: Option<PathBuf>,
    /// Skip malformed lines (each is listed on stderr) instead of failing the run.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Output format: one JSON object per disagreement, or an aligned table.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Table,
}

pub fn run(args: &ReconcileArgs) -> Result<i32> {
    let tariff = crate::tariff::load(args.rates.as_deref())?;
    let sources = input::read_sources(args.accounts.as_deref(), &args.files)?;
    let (mut parsed, separate_accounts, bad) =
        input::parse_sources(&sources, args.accounts.is_some(), &|_| {});
    let stderr = &mut std::io::stderr().lock();
    if let Some(code) = input::report_bad_lines(stderr, &bad, args.skip_invalid, "compared")? {
        return Ok(code);
    }

    let template_errors = parsed.resolve_templates();
    if !template_errors.is_empty() {
        for e in &template_errors {
            writeln!(stderr, "error: [{}] {e}", e.code())?;
        }
        return Ok(EXIT_UNRATABLE);
    }
    let keys = parsed.take_keys();
    let rated = rate_keyed_chunks(
        &tariff,
        &separate_accounts,
        &parsed.events(),
        keys,
        RateOptions::default(),
    );
    if !rated.errors.is_empty() {
        for e in &rated.errors {
            writeln!(stderr, "error: [{}] {e}", e.code())?;
        }
        writeln!(
            stderr,
            "error: {} message(s) or account(s) could not be rated; nothing was compared",
            rated.errors.len()
        )?;
        return Ok(EXIT_UNRATABLE);
    }
    // Where the platform's outbound event named another template category than Meta bills:
    // the charge follows Meta's (decisions.md D112), and the difference is listed here.
    let declared: std::collections::HashMap<&str, Category> = parsed
        .events()
        .into_iter()
        .flat_map(|chunk| chunk.iter())
        .filter_map(|e| match e {
            Event::Outbound(o) => match o.kind {
                MessageKind::Template(c) => Some((o.id.as_ref(), c)),
                MessageKind::NonTemplate => None,
            },
            _ => None,
        })
        .collect();
    let platform: Vec<(&str, Category, Category)> = rated
        .charges
        .iter()
        .filter_map(|c| {
            let d = *declared.get(c.id)?;
            let template = matches!(
                c.category,
                Category::Marketing | Category::Utility | Category::Authentication
            );
            (template && c.category != d).then_some((c.id, d, c.category))
        })
        .collect();
    let charges: Vec<ChargeRow> = rated
        .charges
        .iter()
        .map(|c| wabill_engine::engine::charge_row(c, &tariff))
        .collect();
    let mut meta: Vec<MetaPricingRow> = parsed
        .meta_pricing()
        .map(|p| MetaPricingRow {
            id: p.id.to_string(),
            status: p.status.as_str().to_string(),
            at_ms: p.at,
            waba: None,
            billable: p.billable,
            pricing_model: p.pricing_model.as_deref().map(str::to_string),
            category: p.category.as_deref().map(str::to_string),
            pricing_type: p.pricing_type.as_deref().map(str::to_string),
            conversation_id: p.conversation_id.as_deref().map(str::to_string),
            expires_at_ms: p.expires_at,
        })
        .collect();
    // The first row of a (message, status) is the one compared: sort so that "first" does not
    // depend on the order of the input lines.
    meta.sort_by(|a, b| {
        (
            &a.id,
            &a.status,
            a.at_ms,
            &a.category,
            &a.pricing_type,
            &a.pricing_model,
        )
            .cmp(&(
                &b.id,
                &b.status,
                b.at_ms,
                &b.category,
                &b.pricing_type,
                &b.pricing_model,
            ))
    });
    let report = reconcile(&charges, &meta);

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        Format::Jsonl => {
            for d in &report.disagreements {
                writeln!(out, "{}", Report::disagreement_json(d))?;
            }
            for m in &report.meta_only {
                writeln!(out, "{}", Report::meta_only_json(m))?;
            }
            for (id, declared, billed) in &platform {
                let line = serde_json::json!({
                    "id": id,
                    "differences": [{"field": "platform_category", "platform": declared.as_str(), "meta": billed.as_str()}],
                    "note": "the outbound event's template category; charged in Meta's (decisions.md D112)",
                });
                writeln!(out, "{line}")?;
            }
        }
        Format::Table => write_table(&mut out, &report, &platform)?,
    }
    out.flush()?;
    writeln!(
        stderr,
        "compared {} message(s): {} agree, {} disagree; {} charged by wabill only, {} priced by Meta only",
        report.compared,
        report.agreeing,
        report.disagreements.len(),
        report.wabill_only,
        report.meta_only.len()
    )?;
    if !platform.is_empty() {
        writeln!(
            stderr,
            "{} outbound event(s) name another template category than Meta bills; charged in Meta's",
            platform.len()
        )?;
    }
    Ok(0)
}

/// One line per differing field, and one per Meta-only message.
fn write_table(
    out: &mut impl Write,
    report: &Report,
    platform: &[(&str, Category, Category)],
) -> Result<()> {
    let text = |v: &JsonValue| match v.as_str() {
        Some(s) => s.to_string(),
        None => v.to_string(),
    };
    let mut rows: Vec<[String; 4]> =
        vec![["id".into(), "field".into(), "wabill".into(), "meta".into()]];
    for d in &report.disagreements {
        for x in &d.differences {
            rows.push([
                d.charge.id.clone(),
                x.field.to_string(),
                text(&x.wabill),
                text(&x.meta),
            ]);
        }
    }
    for m in &report.meta_only {
        rows.push([
            m.id.clone(),
            "(no charge)".into(),
            "-".into(),
            format!(
                "{} {} {}",
                m.pricing_model.as_deref().unwrap_or("?"),
                m.category.as_deref().unwrap_or("?"),
                m.pricing_type.as_deref().unwrap_or("")
            )
            .trim_end()
            .to_string(),
        ]);
    }
    for (id, declared, billed) in platform {
        rows.push([
            id.to_string(),
            "platform_category".into(),
            declared.as_str().into(),
            billed.as_str().into(),
        ]);
    }
    let mut widths = [0usize; 4];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in &rows {
        writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )?;
    }
    Ok(())
}
