//! `wabill invoice`: a tenant's invoice for a month, from files: the tenant set-up (JSON),
//! charge lines (`wabill rate` output) and the tenant's finalized invoices of earlier months.
//! Everything billing decides is in `wabill-billing`; this reads the files, reports problems
//! with their place, and writes JSON, CSV or HTML.

use crate::input::read_source;
use crate::rate_cmd::{EXIT_INVALID, EXIT_UNRATABLE};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::PathBuf;
use wabill_billing::{parse_charges, render, Invoice, InvoiceInput, TenantSetup};
use wabill_rating::Month;

#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "Examples:\n  \
    wabill rate events.jsonl > charges.jsonl\n  \
    wabill invoice --setup tenant.json --charges charges.jsonl --month 2026-02 --format html > draft.html\n  \
    wabill invoice --setup tenant.json --charges charges.jsonl --month 2026-02 --previous acme-2026-01.json --finalize > acme-2026-02.json\n  \
    wabill invoice --render acme-2026-02.json --format csv")]
pub struct InvoiceArgs {
    /// The tenant set-up: JSON with tenant, teams, agents, licences, plans and fx.
    #[arg(long, value_name = "FILE", required_unless_present_any = ["render", "tenant"])]
    pub setup: Option<String>,
    /// Invoice a tenant stored in the service's database (`wabill tenants put`) from its
    /// stored charges instead of files; with --finalize the invoice is stored, once.
    #[arg(long, value_name = "ID", conflicts_with_all = ["setup", "charges", "previous", "render"])]
    pub tenant: Option<String>,
    /// The service's database, for --tenant.
    #[arg(
        long,
        env = "WABILL_DB",
        default_value = "wabill.sqlite",
        requires = "tenant"
    )]
    pub db: String,
    /// Charge lines (`wabill rate` output, JSON Lines), repeatable; `-` for standard input.
    #[arg(long, value_name = "FILE")]
    pub charges: Vec<String>,
    /// The month to invoice, YYYY-MM, in the tenant's timezone.
    #[arg(long, value_parser = parse_month, required_unless_present = "render")]
    pub month: Option<Month>,
    /// A finalized invoice (JSON) of an earlier month, repeatable: the previous month's carries
    /// its overage; each says which charges it billed, so later ones become adjustments.
    #[arg(long, value_name = "FILE")]
    pub previous: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = InvoiceFormat::Json)]
    pub format: InvoiceFormat,
    /// Make the invoice final: the JSON record to keep (and to give as --previous later).
    #[arg(long)]
    pub finalize: bool,
    /// Render a stored invoice (JSON) in --format instead of computing one.
    #[arg(long, value_name = "FILE",
          conflicts_with_all = ["setup", "charges", "month", "previous", "finalize"])]
    pub render: Option<PathBuf>,
    /// Write to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceFormat {
    Json,
    Csv,
    Html,
}

fn parse_month(s: &str) -> Result<Month, String> {
    Month::parse(s).ok_or_else(|| format!("'{s}' is not a month (YYYY-MM)"))
}

pub fn run(args: &InvoiceArgs) -> Result<i32> {
    let mut err = std::io::stderr().lock();
    let invoice = if let Some(path) = &args.render {
        match read_invoice(path)? {
            Ok(inv) => inv,
            Err(why) => {
                writeln!(err, "error: {why}")?;
                return Ok(EXIT_INVALID);
            }
        }
    } else {
        if args.finalize && args.format != InvoiceFormat::Json {
            writeln!(
                err,
                "error: [finalize_needs_json] --finalize writes the invoice record (JSON) to keep; render it afterwards with --render FILE --format {}",
                format_name(args.format)
            )?;
            return Ok(EXIT_INVALID);
        }
        if let Some(tenant) = &args.tenant {
            let month = args.month.expect("clap requires --month");
            match crate::tenants_cmd::invoice_from_store(&args.db, tenant, month, args.finalize)? {
                Ok(inv) => return write_out(args, &inv),
                Err(code) => return Ok(code),
            }
        }
        let setup_path = args.setup.as_deref().expect("clap requires --setup");
        let source = read_source(setup_path)?;
        let setup = match TenantSetup::from_json(&source.text) {
            Ok(s) => s,
            Err(e) => {
                writeln!(err, "error: {}: {e}", source.name)?;
                return Ok(EXIT_INVALID);
            }
        };
        let mut charges = Vec::new();
        let mut bad = 0usize;
        for path in &args.charges {
            let source = read_source(path)?;
            match parse_charges(&source.text) {
                Ok(c) => charges.extend(c),
                Err(errors) => {
                    for e in &errors {
                        writeln!(err, "error: {}: {e}", source.name)?;
                    }
                    bad += errors.len();
                }
            }
        }
        if bad > 0 {
            writeln!(
                err,
                "error: {bad} malformed charge lines; nothing was written"
            )?;
            return Ok(EXIT_INVALID);
        }
        let mut previous = Vec::new();
        for path in &args.previous {
            match read_invoice(path)? {
                Ok(inv) => previous.push(inv),
                Err(why) => {
                    writeln!(err, "error: {why}")?;
                    return Ok(EXIT_INVALID);
                }
            }
        }
        let input = InvoiceInput {
            setup: &setup,
            month: args.month.expect("clap requires --month"),
            charges: &charges,
            previous: &previous,
            finalize: args.finalize,
        };
        match wabill_billing::invoice(&input) {
            Ok(inv) => {
                for n in &inv.notes {
                    writeln!(err, "note: [{}] {}", n.code, n.message)?;
                }
                inv
            }
            Err(e) => {
                writeln!(err, "error: [{}] {e}", e.code())?;
                return Ok(EXIT_UNRATABLE);
            }
        }
    };
    write_out(args, &invoice)
}

fn write_out(args: &InvoiceArgs, invoice: &Invoice) -> Result<i32> {
    let text = match args.format {
        InvoiceFormat::Json => render::json(invoice),
        InvoiceFormat::Csv => render::csv(invoice),
        InvoiceFormat::Html => render::html(invoice),
    };
    match &args.output {
        Some(path) => std::fs::write(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(0)
}

/// Reads an invoice document; the inner error names the file and why it is not one.
fn read_invoice(path: &PathBuf) -> Result<Result<Invoice, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Invoice::from_json(&text)
        .map_err(|why| format!("{}: not an invoice: {why}", path.display())))
}

fn format_name(f: InvoiceFormat) -> &'static str {
    match f {
        InvoiceFormat::Json => "json",
        InvoiceFormat::Csv => "csv",
        InvoiceFormat::Html => "html",
    }
}
