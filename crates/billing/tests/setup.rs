//! The set-up document is checked once, with the place and the reason of each problem.

use wabill_billing::TenantSetup;

const BASE: &str = r#"{
  "tenant": {"id": "t", "timezone": "Europe/Paris", "currency": "EUR", "wabas": ["W1"]},
  "teams": [{"id": "sales"}],
  "agents": [{"id": "a1", "team": "sales"}],
  "licences": [{"id": "L1", "target": {"team": "sales"}, "from": "2026-01-01", "to": null}],
  "plans": [{"effective_from": "2026-01-01", "licence_price": "10"}],
  "fx": [{"date": "2026-01-31", "from": "USD", "to": "EUR", "rate": "0.92"}]
}"#;

fn with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from}");
    BASE.replacen(from, to, 1)
}

fn refused(doc: &str) -> String {
    TenantSetup::from_json(doc).unwrap_err().to_string()
}

#[test]
fn a_valid_setup_reads() {
    let s = TenantSetup::from_json(BASE).unwrap();
    assert_eq!(s.tenant.timezone.name(), "Europe/Paris");
    assert_eq!(s.plans[0].licence_price.unwrap().to_string(), "10");
    let all = with(r#"{"team": "sales"}"#, r#""all_agents""#);
    TenantSetup::from_json(&all).unwrap();
}

#[test]
fn problems_are_named_with_their_place() {
    let cases = [
        (
            with(r#""team": "sales"}]"#, r#""team": "ops"}]"#),
            "agents[0].team: names no team",
        ),
        (
            with(r#"{"team": "sales"}"#, r#"{"agent": "zz"}"#),
            "licences[0].target: names no agent",
        ),
        (
            with(r#""to": null"#, r#""to": "2025-12-31""#),
            "licences[0].to: is before 'from'",
        ),
        (
            with(
                r#""effective_from": "2026-01-01""#,
                r#""effective_from": "2026-01-15""#,
            ),
            "not the first day of a month",
        ),
        (
            with(r#""licence_price": "10""#, r#""licence_price": "-1""#),
            "licence_price: is negative",
        ),
        (
            with(
                r#""licence_price": "10""#,
                r#""markup_percent": "5", "budget": {"per_agents": 10, "amount": "50", "currency": "EUR"}"#,
            ),
            "bills usage at cost",
        ),
        (
            with(
                r#""licence_price": "10""#,
                r#""budget": {"per_agents": 0, "amount": "50", "currency": "EUR"}"#,
            ),
            "per_agents: must be at least 1",
        ),
        (
            with(r#""rate": "0.92""#, r#""rate": "0""#),
            "rate must be positive",
        ),
        (
            with(r#""from": "USD""#, r#""from": "EUR""#),
            "converts a currency to itself",
        ),
        (
            with(r#""licence_price": "10""#, r#""licence_price": 10"#),
            "must be written as a string",
        ),
        (
            with(
                r#""currency": "EUR", "wabas""#,
                r#""currency": "eur", "wabas""#,
            ),
            "not a currency code",
        ),
        (with("Europe/Paris", "Mars/Olympus"), "not an IANA timezone"),
        (
            with(
                r#""from": "2026-01-01", "to""#,
                r#""from": "2026-1-1", "to""#,
            ),
            "not a date",
        ),
        (
            with(r#"[{"id": "a1""#, r#"[{"id": "a1"}, {"id": "a1""#),
            "id 'a1' appears twice",
        ),
        (
            with(r#""wabas""#, r#""colour": "red", "wabas""#),
            "unknown field `colour`",
        ),
    ];
    for (doc, why) in cases {
        let e = refused(&doc);
        assert!(e.contains(why), "{e} (expected: {why})");
    }
}
