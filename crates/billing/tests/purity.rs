//! Billing stays pure like the rating core: no storage, HTTP, async runtime, clock source or
//! randomness in its dependency tree (ARCHITECTURE.md, "Invariants"). Checked against
//! `cargo tree`.

use std::collections::BTreeSet;
use std::process::Command;

const FORBIDDEN: &[&str] = &[
    "tokio",
    "async-std",
    "futures",
    "hyper",
    "axum",
    "reqwest",
    "tower",
    "sqlx",
    "rusqlite",
    "postgres",
    "tokio-postgres",
    "diesel",
    "rand",
    "getrandom",
    "ureq",
    "mio",
    "wabill-store",
    "wabill-server",
    "wabill-formats",
];

#[test]
fn billing_has_no_io_dependencies() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "wabill-billing",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let deps: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        deps.contains("wabill-rating") && deps.contains("serde_json"),
        "the tree lists the known dependencies: {deps:?}"
    );
    let bad: Vec<&&str> = deps.iter().filter(|n| FORBIDDEN.contains(n)).collect();
    assert!(
        bad.is_empty(),
        "wabill-billing depends on {bad:?} (all: {deps:?})"
    );
}
