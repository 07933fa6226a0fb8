//! The rating core stays pure: it must not depend on storage, HTTP, async runtimes or
//! randomness (ARCHITECTURE.md, "Invariants"). Checked against `cargo tree`.

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
];

#[test]
fn rating_core_has_no_io_dependencies() {
    // `cargo tree` resolves for the host only, so it works offline on a built checkout.
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "wabill-rating",
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
        deps.contains("chrono-tz") && deps.contains("wabill-rating"),
        "the tree lists the known dependencies: {deps:?}"
    );
    let bad: Vec<&&str> = deps.iter().filter(|n| FORBIDDEN.contains(n)).collect();
    assert!(
        bad.is_empty(),
        "wabill-rating depends on {bad:?} (all: {deps:?})"
    );
}
