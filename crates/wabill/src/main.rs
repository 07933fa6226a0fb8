//! The `wabill` binary: subcommands, wiring and exit codes. No rules live here.

mod input;
mod rate_cmd;
mod tariff;

use clap::{Parser, Subcommand};

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
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Rate(args) => rate_cmd::run(&args),
    };
    match code {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
