//! `wabill tenants` and `wabill invoice --tenant` against a SQLite store: the same rules as
//! the routes under `/v1/tenants` (versions, licence history, invoices finalized once).

use std::process::{Command, Output};

fn wabill(db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wabill"))
        .args(args)
        .env("WABILL_DB", db)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn tenants_are_managed_and_invoiced_from_the_store() {
    let dir = std::env::temp_dir().join(format!("wabill-tenants-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("w.sqlite");
    let db = db.to_str().unwrap();
    let setup = dir.join("acme.json");
    std::fs::write(
        &setup,
        r#"{"tenant":{"id":"acme","timezone":"Europe/Paris","currency":"EUR","wabas":["W1"]},
            "agents":[{"id":"a1"},{"id":"a2"}],
            "licences":[{"id":"L1","target":{"agent":"a1"},"from":"2026-02-01","to":null}],
            "plans":[{"effective_from":"2026-01-01","licence_price":"28"}]}"#,
    )
    .unwrap();
    let o = wabill(db, &["tenants", "put", setup.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("\"recorded\":true"), "{}", text(&o));

    // a2 holds a licence for 14 of February's 28 days.
    let o = wabill(
        db,
        &[
            "tenants",
            "licence",
            "add",
            "acme",
            r#"{"id":"L2","target":{"agent":"a2"},"from":"2026-02-15","to":null}"#,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    // Rewriting a record's start is refused with its code (exit 3).
    let o = wabill(
        db,
        &[
            "tenants",
            "licence",
            "add",
            "acme",
            r#"{"id":"L2","target":{"agent":"a2"},"from":"2026-02-01","to":null}"#,
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("[licence_conflict]"), "{}", text(&o));

    let o = wabill(db, &["tenants", "list"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("acme\tversion "),
        "{}",
        text(&o)
    );
    let o = wabill(db, &["tenants", "show", "acme", "--history"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().count(),
        2,
        "two versions kept"
    );
    let o = wabill(db, &["tenants", "show", "nobody"]);
    assert_eq!(o.status.code(), Some(3));

    let o = wabill(
        db,
        &[
            "invoice", "--tenant", "acme", "--month", "2026-02", "--format", "csv",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let csv = String::from_utf8_lossy(&o.stdout);
    assert!(
        csv.contains("acme-2026-02") && csv.contains("draft"),
        "{csv}"
    );
    let o = wabill(
        db,
        &[
            "invoice",
            "--tenant",
            "acme",
            "--month",
            "2026-02",
            "--finalize",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let fin: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(fin["status"], "final");
    assert_eq!(fin["total"], "42", "28 + 14/28 × 28");
    let o = wabill(
        db,
        &[
            "invoice",
            "--tenant",
            "acme",
            "--month",
            "2026-02",
            "--finalize",
        ],
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).contains("[already_finalized]"), "{}", text(&o));
    // The stored record is what a later read gives.
    let o = wabill(db, &["invoice", "--tenant", "acme", "--month", "2026-02"]);
    let again: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(again, fin);
    let _ = std::fs::remove_dir_all(&dir);
}
