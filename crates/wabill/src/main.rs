//! The `wabill` binary: subcommands, wiring and exit codes. No rules live here.

/// `println!` that returns the error instead of panicking: a closed pipe on standard output
/// (`wabill ... | head -1`) ends the command quietly ([`exit_code`]), it is not a crash.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($t)*)?
    }};
}

/// `print!` returning the error, as [`outln!`].
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout(), $($t)*)?
    }};
}

mod bench_cmd;
mod demo_cmd;
mod estimate_cmd;
mod gen_cmd;
mod import_cmd;
mod input;
mod invoice_cmd;
mod load_cmd;
mod rate_cmd;
mod rates_check_cmd;
mod rates_list_cmd;
mod reconcile_cmd;
mod serve_cmd;
mod tariff;
mod templates_cmd;
mod tenants_cmd;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

// Rating a large file allocates and frees hundreds of megabytes in big blocks; mimalloc keeps
// them for reuse where the system allocator returns them to the kernel and faults them back in.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Rating and billing engine for WhatsApp Business Platform messaging.
#[derive(Parser, Debug)]
#[command(name = "wabill", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Price every outbound message of event files under Meta's rules of its date.
    Rate(rate_cmd::RateArgs),
    /// Compare wabill's charges with the pricing Meta's status webhooks carried.
    Reconcile(reconcile_cmd::ReconcileArgs),
    /// Manage rate data.
    #[command(subcommand)]
    Rates(import_cmd::RatesCommand),
    /// Run the rating service: Meta webhooks and events in, charges out (SQLite or PostgreSQL).
    Serve(serve_cmd::ServeArgs),
    /// Manage the service's API keys.
    #[command(subcommand)]
    Keys(serve_cmd::KeysCommand),
    /// Generate an example month of traffic, rate it with the bundled rates, print the bill.
    Demo(demo_cmd::DemoArgs),
    /// Estimate what a month of expected traffic will cost (rates a synthetic month).
    Estimate(estimate_cmd::EstimateArgs),
    /// Write a seeded synthetic event stream (JSON Lines) to standard output.
    Gen(gen_cmd::GenArgs),
    /// Send a generated stream to a running `wabill serve` and measure ingest (BENCHMARKS.md).
    Load(load_cmd::LoadArgs),
    /// Time parsing, rating and writing of a generated stream (see BENCHMARKS.md).
    Bench(bench_cmd::BenchArgs),
    /// A tenant's invoice for a month (licences, usage, included budget), from files or the
    /// service's store: JSON, CSV or printable HTML.
    Invoice(invoice_cmd::InvoiceArgs),
    /// Message templates: import Meta's template list, list templates with their category
    /// history.
    #[command(subcommand)]
    Templates(templates_cmd::TemplatesCommand),
    /// Manage tenant set-ups and licence records in the service's store.
    #[command(subcommand)]
    Tenants(tenants_cmd::TenantsCommand),
    /// Print a shell completion script to standard output (bash, zsh, fish, elvish,
    /// powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to standard output: wabill's, or a subcommand's.
    Man {
        /// A subcommand (`rate`, `serve`, ...) whose page to print instead.
        subcommand: Option<String>,
    },
    /// The audit log of admin actions (keys, tenants, licences, finalized invoices, alert
    /// settings), one JSON line per entry, oldest first.
    Audit {
        #[arg(long, env = "WABILL_DB", default_value = "wabill.sqlite")]
        db: String,
        /// Only entries after this id.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many entries.
        #[arg(long, default_value_t = 1000)]
        limit: u32,
    },
}

/// The command line as clap sees it, with `--version` telling what the binary is: its version,
/// the git commit it was built from (`unknown` from a source tarball) and the newest bundled
/// rate card of each currency.
fn command() -> clap::Command {
    let commit = env!("WABILL_GIT_COMMIT");
    let version = format!("{} (commit {commit})", env!("CARGO_PKG_VERSION"));
    let cards: Vec<String> = wabill_rating::data::newest_rate_cards()
        .into_iter()
        .map(|(currency, date)| format!("{currency} {date}"))
        .collect();
    let long = format!(
        "{version}\nnewest bundled rate card per currency: {}",
        cards.join(", ")
    );
    // clap keeps these for the life of the process, which is this one call's.
    Cli::command()
        .version(&*Box::leak(version.into_boxed_str()))
        .long_version(&*Box::leak(long.into_boxed_str()))
}

fn main() {
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    let code = match cli.command {
        Command::Rate(args) => rate_cmd::run(&args),
        Command::Rates(cmd) => import_cmd::run(&cmd),
        Command::Reconcile(args) => reconcile_cmd::run(&args),
        Command::Demo(args) => demo_cmd::run(&args),
        Command::Serve(args) => serve_cmd::serve(&args),
        Command::Keys(cmd) => serve_cmd::keys(&cmd),
        Command::Estimate(args) => estimate_cmd::run(&args),
        Command::Gen(args) => gen_cmd::run(&args),
        Command::Bench(args) => bench_cmd::run(&args),
        Command::Load(args) => load_cmd::run(&args),
        Command::Invoice(args) => invoice_cmd::run(&args),
        Command::Tenants(cmd) => tenants_cmd::run(&cmd),
        Command::Templates(cmd) => templates_cmd::run(&cmd),
        Command::Completions { shell } => completions(shell),
        Command::Man { subcommand } => man(subcommand.as_deref()),
        Command::Audit { db, after, limit } => tenants_cmd::audit_log(&db, after, limit),
    };
    std::process::exit(exit_code(code));
}

/// `wabill completions SHELL`: the completion script of every subcommand and option.
fn completions(shell: clap_complete::Shell) -> anyhow::Result<i32> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command(), "wabill", &mut out);
    std::io::Write::write_all(&mut std::io::stdout(), &out)?;
    Ok(0)
}

/// `wabill man [SUBCOMMAND]`: the manual page in roff (`wabill man | man -l -`).
fn man(subcommand: Option<&str>) -> anyhow::Result<i32> {
    let mut cmd = command();
    cmd.build();
    let page = match subcommand {
        None => cmd,
        Some(name) => match cmd.find_subcommand(name) {
            Some(sub) => sub.clone(),
            None => {
                let names: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
                eprintln!(
                    "error: no subcommand {name:?}; one of: {}",
                    names.join(", ")
                );
                return Ok(2);
            }
        },
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page).render(&mut out)?;
    std::io::Write::write_all(&mut std::io::stdout(), &out)?;
    Ok(0)
}

/// The process's exit code for a command's result: its own code, `1` for an error (printed on
/// stderr), and `0`, quietly, when standard output was closed by its reader: `wabill rate ... |
/// head -1` got what it asked for. The command stops writing at the first refused write.
fn exit_code(result: anyhow::Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) if e.downcast_ref::<input::NotUtf8>().is_some() => {
            eprintln!("error: {e:#}");
            rate_cmd::EXIT_INVALID
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

/// Whether an error comes from writing to a pipe whose reader is gone, however it was wrapped
/// (a JSON writer carries the IO error).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    e.chain().any(|cause| {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return io.kind() == BrokenPipe;
        }
        if let Some(json) = cause.downcast_ref::<serde_json::Error>() {
            return json.io_error_kind() == Some(BrokenPipe);
        }
        false
    })
}
