//! The engine has no HTTP in it (ARCHITECTURE.md, "Invariants"): no HTTP server, client or
//! framework among its dependencies, direct or not, so that every HTTP concern stays in
//! `wabill-server` and the cluster transport can sit beside the engine. Checked against
//! `cargo tree`.

use std::collections::BTreeSet;
use std::process::Command;

const FORBIDDEN: &[&str] = &[
    "axum",
    "axum-core",
    "hyper",
    "hyper-util",
    "h2",
    "http-body",
    "tower",
    "tower-http",
    "reqwest",
    "ureq",
    "actix-web",
    "warp",
    "rustls",
];

#[test]
fn the_engine_knows_no_http() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "wabill-engine",
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
        deps.contains("wabill-rating") && deps.contains("wabill-store") && deps.contains("tokio"),
        "the tree lists the known dependencies: {deps:?}"
    );
    let bad: Vec<&&str> = deps.iter().filter(|n| FORBIDDEN.contains(n)).collect();
    assert!(
        bad.is_empty(),
        "wabill-engine depends on {bad:?} (all: {deps:?})"
    );
}

/// `wabill-server` is the only crate of the workspace that depends on an HTTP server: the
/// command line's subcommands other than `serve` reach the engine directly.
#[test]
fn only_the_http_crate_depends_on_axum() {
    for krate in [
        "wabill-rating",
        "wabill-formats",
        "wabill-billing",
        "wabill-store",
        "wabill-engine",
        "wabill-estimate",
    ] {
        let out = Command::new(env!("CARGO"))
            .args([
                "tree",
                "-p",
                krate,
                "-e",
                "normal",
                "--prefix",
                "none",
                "--offline",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo tree runs");
        assert!(out.status.success(), "{krate}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("axum ") || l.starts_with("wabill-server ")),
            "{krate} depends on axum or wabill-server"
        );
    }
}
