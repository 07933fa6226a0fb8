//! `wabill tenants` and `wabill invoice --tenant`: tenant set-ups, licence records and invoices
//! against the service's store directly (like `wabill keys`), through the same functions as
//! the routes under `/v1/tenants` (`wabill_server::tenants`), so both refuse the same things.

use crate::input::read_source;
use crate::rate_cmd::{EXIT_INVALID, EXIT_UNRATABLE};
use anyhow::{Context, Result};
use std::io::Write;
use wabill_billing::Invoice;
use wabill_engine::audit;
use wabill_engine::clock::system_now;
use wabill_engine::tenants::{self, TenantError};
use wabill_rating::Month;
use wabill_store::TenantRow;

#[derive(clap::Subcommand, Debug)]
#[command(after_help = "Examples:\n  \
    wabill tenants put acme.json\n  \
    wabill tenants licence add acme '{\"id\":\"L4\",\"target\":{\"agent\":\"a3\"},\"from\":\"2026-03-01\"}'\n  \
    wabill tenants show acme --history\n  \
    wabill invoice --tenant acme --month 2026-02 --format html > draft.html")]
pub enum TenantsCommand {
    /// Record a set-up (JSON file, `-` for standard input) as the tenant's newest version.
    Put {
        file: String,
        #[arg(long, env = "WABILL_DB", default_value = "wabill.sqlite")]
        db: String,
    },
    /// Print a tenant's newest set-up (with --history, every version).
    Show {
        id: String,
        #[arg(long)]
        history: bool,
        #[arg(long, env = "WABILL_DB", default_value = "wabill.sqlite")]
        db: String,
    },
    /// Licence records.
    #[command(subcommand)]
    Licence(LicenceCommand),
    /// List tenants: id, newest version, WABAs.
    List {
        #[arg(long, env = "WABILL_DB", default_value = "wabill.sqlite")]
        db: String,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum LicenceCommand {
    /// Add a licence record (JSON, or @FILE), or end an open one (same id, with `to`).
    Add {
        id: String,
        record: String,
        #[arg(long, env = "WABILL_DB", default_value = "wabill.sqlite")]
        db: String,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The exit code of a refusal, after printing it: 2 for a malformed input, 3 for a refusal
/// of the billing rules, 1 for the store.
fn refused(e: &TenantError) -> Result<i32> {
    if let TenantError::Store(s) = e {
        return Err(anyhow::anyhow!("{s}"));
    }
    eprintln!("error: [{}] {e}", e.code());
    Ok(match e {
        TenantError::Invalid(_) => EXIT_INVALID,
        _ => EXIT_UNRATABLE,
    })
}

fn print_row(row: &TenantRow, recorded: Option<bool>) -> Result<()> {
    let setup: serde_json::Value =
        serde_json::from_str(&row.setup).context("reading the stored set-up")?;
    let mut v = serde_json::json!({
        "tenant": row.tenant, "version": row.version, "recorded_at_ms": row.recorded_at_ms,
        "setup": setup,
    });
    if let Some(r) = recorded {
        v["recorded"] = serde_json::json!(r);
    }
    outln!("{v}");
    Ok(())
}

pub fn run(cmd: &TenantsCommand) -> Result<i32> {
    runtime()?.block_on(async {
        match cmd {
            TenantsCommand::Put { file, db } => {
                let source = read_source(file)?;
                let id = serde_json::from_str::<serde_json::Value>(&source.text)
                    .ok()
                    .and_then(|v| v["tenant"]["id"].as_str().map(str::to_string))
                    .unwrap_or_default();
                let store = wabill_store::open(db).await?;
                match tenants::put_setup(&*store, &id, &source.text).await {
                    Ok((row, recorded)) => {
                        if recorded {
                            audit_cli(&*store, audit::action::TENANT_PUT, &id).await?;
                        }
                        print_row(&row, Some(recorded))?;
                        Ok(0)
                    }
                    Err(e) => refused(&e),
                }
            }
            TenantsCommand::Show { id, history, db } => {
                let store = wabill_store::open(db).await?;
                let rows = if *history {
                    store.tenant_history(id).await?
                } else {
                    store.tenant(id).await?.into_iter().collect()
                };
                if rows.is_empty() {
                    return refused(&TenantError::UnknownTenant(id.clone()));
                }
                for r in &rows {
                    print_row(r, None)?;
                }
                Ok(0)
            }
            TenantsCommand::Licence(LicenceCommand::Add { id, record, db }) => {
                let text = match record.strip_prefix('@') {
                    Some(path) => read_source(path)?.text,
                    None => record.clone(),
                };
                let store = wabill_store::open(db).await?;
                match tenants::add_licence(&*store, id, &text).await {
                    Ok((row, recorded)) => {
                        if recorded {
                            audit_cli(&*store, audit::action::LICENCE_ADD, id).await?;
                        }
                        print_row(&row, Some(recorded))?;
                        Ok(0)
                    }
                    Err(e) => refused(&e),
                }
            }
            TenantsCommand::List { db } => {
                let store = wabill_store::open(db).await?;
                let mut out = std::io::stdout().lock();
                for r in store.tenants().await? {
                    let wabas = serde_json::from_str::<serde_json::Value>(&r.setup)
                        .ok()
                        .and_then(|v| {
                            v["tenant"]["wabas"].as_array().map(|a| {
                                a.iter()
                                    .filter_map(|w| w.as_str())
                                    .collect::<Vec<_>>()
                                    .join(",")
                            })
                        })
                        .unwrap_or_default();
                    writeln!(out, "{}\tversion {}\t{wabas}", r.tenant, r.version)?;
                }
                Ok(0)
            }
        }
    })
}

/// `wabill invoice --tenant T --month M [--finalize] [--db]`: the invoice of the stored
/// charges, as `GET /v1/tenants/T/invoices/M` (or `POST .../finalize`) gives it.
pub fn invoice_from_store(
    db: &str,
    tenant: &str,
    month: Month,
    finalize: bool,
) -> Result<std::result::Result<Invoice, i32>> {
    runtime()?.block_on(async {
        let store = wabill_store::open(db)
            .await
            .with_context(|| format!("opening the database {db}"))?;
        match tenants::month_invoice(&*store, tenant, month, finalize.then(system_now)).await {
            Ok(inv) => {
                if finalize {
                    let target = format!("{tenant}/{month}");
                    audit_cli(&*store, audit::action::INVOICE_FINALIZE, &target).await?;
                }
                for n in &inv.notes {
                    eprintln!("note: [{}] {}", n.code, n.message);
                }
                Ok(Ok(inv))
            }
            Err(e) => Ok(Err(refused(&e)?)),
        }
    })
}

/// Records an admin action done from the command line in the audit log (decisions.md D88).
pub async fn audit_cli(store: &dyn wabill_store::Store, action: &str, target: &str) -> Result<()> {
    audit::record(store, audit::cli_actor(), action, target, system_now())
        .await
        .with_context(|| format!("recording {action} on {target} in the audit log"))
}

/// `wabill audit [--db] [--after ID] [--limit N]`: the audit log, one JSON line per entry.
pub fn audit_log(db: &str, after: i64, limit: u32) -> Result<i32> {
    runtime()?.block_on(async {
        let store = wabill_store::open(db)
            .await
            .with_context(|| format!("opening the database {db}"))?;
        let mut out = std::io::stdout().lock();
        for row in store.audit_log(after, limit).await? {
            writeln!(out, "{}", audit::to_json(&row))?;
        }
        Ok(0)
    })
}
