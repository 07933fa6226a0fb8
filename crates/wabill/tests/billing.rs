//! Runs every golden billing scenario of `tests/billing/` against the library and the
//! `wabill invoice` binary (JSON, CSV and HTML), and prices one month from events to invoice
//! through `wabill rate | wabill invoice`.
//!
//! A scenario is one JSON file: `description`, `notes` (the arithmetic, by hand), `setup` (the
//! tenant set-up document), `charges` (charge lines as `wabill rate` writes them, only the
//! fields billing reads), `steps` and optionally `may_send`. Each step invoices a `month`
//! (`finalize` to keep it): `charges` replaces the charge lines from that step on,
//! `add_charges` appends to them (late arrivals), `previous` lists the months of the finalized
//! invoices to give (default: all finalized by earlier steps). `expect` holds the fields the
//! invoice must have (objects: listed keys only; arrays: same length, element by element;
//! decimal strings compare as numbers, so `"10.00"` matches `"10"`), `note_codes` the codes of
//! its notes in order; `error` the code of the refusal instead.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use wabill_billing::{invoice, parse_charges, render, Invoice, InvoiceInput, TenantSetup};
use wabill_rating::{Decimal, Month};

fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/billing")
}

fn work_dir(parts: &[&str]) -> PathBuf {
    let mut p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("billing");
    for part in parts {
        p.push(part);
    }
    std::fs::create_dir_all(&p).unwrap();
    p
}

#[test]
fn golden_billing_scenarios() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenario_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 11, "scenarios found: {files:?}");
    let mut failures = Vec::new();
    for f in &files {
        let name = f.file_stem().unwrap().to_string_lossy().to_string();
        if let Err(e) = run_scenario(&name, f) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

fn run_scenario(name: &str, path: &Path) -> Result<(), String> {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .map_err(|e| format!("not JSON: {e}"))?;
    let has_text = |k: &str| doc[k].as_str().is_some_and(|s| !s.is_empty());
    if !has_text("description") || doc["notes"].as_array().is_none_or(|n| n.is_empty()) {
        return Err("a scenario needs a description and notes with its arithmetic".into());
    }
    let setup_text = serde_json::to_string_pretty(&doc["setup"]).unwrap();
    let setup = TenantSetup::from_json(&setup_text).map_err(|e| format!("setup: {e}"))?;
    let mut charges_text = jsonl(&doc["charges"]);
    let mut finalized: BTreeMap<Month, Invoice> = BTreeMap::new();
    let steps = doc["steps"].as_array().ok_or("no steps")?;
    for (i, step) in steps.iter().enumerate() {
        let at = format!("step {} ({})", i + 1, step["month"]);
        if let Some(c) = step.get("charges") {
            charges_text = jsonl(c);
        }
        if let Some(c) = step.get("add_charges") {
            charges_text.push_str(&jsonl(c));
        }
        let charges = parse_charges(&charges_text).map_err(|e| format!("{at}: charges: {e:?}"))?;
        let month = Month::parse(step["month"].as_str().unwrap_or_default())
            .ok_or(format!("{at}: bad month"))?;
        let finalize = step["finalize"].as_bool().unwrap_or(false);
        let previous: Vec<Invoice> = match step.get("previous") {
            Some(list) => list
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    let m = Month::parse(m.as_str().unwrap()).unwrap();
                    finalized[&m].clone()
                })
                .collect(),
            None => finalized.values().cloned().collect(),
        };
        let result = invoice(&InvoiceInput {
            setup: &setup,
            month,
            charges: &charges,
            previous: &previous,
            finalize,
        });
        let dir = work_dir(&[name, &format!("step{}", i + 1)]);
        let files = CliFiles::write(&dir, &setup_text, &charges_text, &previous);
        let cli = |format: &str| files.run(month, finalize, format);
        match (step["error"].as_str(), result) {
            (Some(code), Err(e)) => {
                if e.code() != code {
                    return Err(format!(
                        "{at}: refused with [{}] {e}, expected [{code}]",
                        e.code()
                    ));
                }
                let out = cli("json");
                let stderr = String::from_utf8_lossy(&out.stderr);
                if out.status.code() != Some(3) || !stderr.contains(&format!("[{code}]")) {
                    return Err(format!(
                        "{at}: the CLI should exit 3 with [{code}]: {:?} {stderr}",
                        out.status
                    ));
                }
            }
            (Some(code), Ok(inv)) => {
                return Err(format!(
                    "{at}: expected [{code}], got an invoice of {}",
                    inv.total
                ))
            }
            (None, Err(e)) => return Err(format!("{at}: refused: [{}] {e}", e.code())),
            (None, Ok(inv)) => {
                check_invariants(&inv).map_err(|e| format!("{at}: {e}"))?;
                let json = render::json(&inv);
                if Invoice::from_json(&json).as_ref() != Ok(&inv) {
                    return Err(format!(
                        "{at}: the JSON does not read back as the same invoice"
                    ));
                }
                let actual: Value = serde_json::from_str(&json).unwrap();
                let expect = step.get("expect").ok_or(format!("{at}: no expect"))?;
                let mut fields = expect.clone();
                let codes = fields.as_object_mut().unwrap().remove("note_codes");
                matches(&fields, &actual, "invoice").map_err(|e| format!("{at}: {e}\n{json}"))?;
                if let Some(codes) = codes {
                    let got: Vec<&str> = inv.notes.iter().map(|n| n.code.as_str()).collect();
                    let want: Vec<&str> = codes
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c.as_str().unwrap())
                        .collect();
                    if got != want {
                        return Err(format!("{at}: notes {got:?}, expected {want:?}"));
                    }
                }
                check_cli(&cli, &inv, &json).map_err(|e| format!("{at}: CLI: {e}"))?;
                if finalize {
                    finalized.insert(month, inv);
                }
            }
        }
    }
    for check in doc["may_send"].as_array().into_iter().flatten() {
        let agent = check["agent"].as_str().unwrap();
        let at_text = check["at"].as_str().unwrap();
        let at = wabill_billing::charges::parse_instant(at_text).unwrap();
        let got = match setup.may_send(agent, at) {
            Ok(()) => "ok",
            Err(e) => e.code(),
        };
        if got != check["expect"].as_str().unwrap() {
            return Err(format!(
                "may_send({agent}, {at_text}) = {got}, expected {}",
                check["expect"]
            ));
        }
    }
    Ok(())
}

/// Totals equal the sum of the lines; each amount is its exact value rounded once.
fn check_invariants(inv: &Invoice) -> Result<(), String> {
    let digits = inv.currency.minor_digits();
    for l in &inv.lines {
        if l.amount != l.exact.round_to_scale(digits) {
            return Err(format!(
                "line '{}': {} is not {} rounded",
                l.description, l.amount, l.exact
            ));
        }
    }
    if inv.total != inv.sum_of_lines() {
        return Err(format!(
            "total {} is not the sum of the lines {}",
            inv.total,
            inv.sum_of_lines()
        ));
    }
    Ok(())
}

/// The binary writes the library's JSON byte for byte; its CSV sums to the total; its HTML
/// shows the total.
fn check_cli(cli: &dyn Fn(&str) -> Output, inv: &Invoice, json: &str) -> Result<(), String> {
    let out = cli("json");
    if !out.status.success() {
        return Err(format!(
            "json: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if out.stdout != json.as_bytes() {
        return Err(format!(
            "json differs from the library's:\n{}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    let out = cli("csv");
    let csv = String::from_utf8(out.stdout).unwrap();
    if !out.status.success() || csv.lines().count() != inv.lines.len() + 1 {
        return Err(format!("csv: {:?}\n{csv}", out.status));
    }
    let sum: Decimal = csv
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().parse::<Decimal>().unwrap())
        .sum();
    if sum != inv.total {
        return Err(format!("csv amounts sum to {sum}, total is {}", inv.total));
    }
    let out = cli("html");
    // Thousands are grouped with narrow no-break spaces, and minus is U+2212.
    let html = String::from_utf8(out.stdout)
        .unwrap()
        .replace('\u{202F}', "");
    let total = wabill_billing::invoice::fixed(inv.total, inv.currency.minor_digits());
    let shown = total.replace('-', "−");
    if !out.status.success() || !html.contains(&inv.id) || !html.contains(&shown) {
        return Err(format!("html lacks the id or the total {total}"));
    }
    Ok(())
}

struct CliFiles {
    setup: PathBuf,
    charges: PathBuf,
    previous: Vec<PathBuf>,
}

impl CliFiles {
    fn write(dir: &Path, setup: &str, charges: &str, previous: &[Invoice]) -> CliFiles {
        let f = CliFiles {
            setup: dir.join("setup.json"),
            charges: dir.join("charges.jsonl"),
            previous: previous
                .iter()
                .map(|p| dir.join(format!("{}.json", p.id)))
                .collect(),
        };
        std::fs::write(&f.setup, setup).unwrap();
        std::fs::write(&f.charges, charges).unwrap();
        for (p, inv) in f.previous.iter().zip(previous) {
            std::fs::write(p, render::json(inv)).unwrap();
        }
        f
    }

    fn run(&self, month: Month, finalize: bool, format: &str) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wabill"));
        cmd.arg("invoice")
            .arg("--setup")
            .arg(&self.setup)
            .arg("--charges")
            .arg(&self.charges)
            .arg("--month")
            .arg(month.to_string())
            .arg("--format")
            .arg(format);
        for p in &self.previous {
            cmd.arg("--previous").arg(p);
        }
        // A finalized invoice is a JSON record; the other formats render the same invoice as a
        // draft would be rendered, so they are asked without --finalize.
        if finalize && format == "json" {
            cmd.arg("--finalize");
        }
        cmd.output().unwrap()
    }
}

fn jsonl(v: &Value) -> String {
    v.as_array()
        .map(|a| a.iter().map(|c| format!("{c}\n")).collect())
        .unwrap_or_default()
}

/// `expected` holds for `actual`: objects by their listed keys, arrays element by element,
/// decimal strings as numbers.
fn matches(expected: &Value, actual: &Value, at: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                matches(ev, a.get(k).unwrap_or(&Value::Null), &format!("{at}.{k}"))?;
            }
            if at.ends_with("billed_charges") && e.len() != a.len() {
                return Err(format!("{at}: {a:?}, expected exactly {e:?}"));
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!(
                    "{at}: {} elements, expected {}:\n{actual:#}",
                    a.len(),
                    e.len()
                ));
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                matches(ev, av, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        (Value::String(e), Value::String(a)) => {
            match (e.parse::<Decimal>(), a.parse::<Decimal>()) {
                (Ok(x), Ok(y)) if x == y => Ok(()),
                _ if e == a => Ok(()),
                _ => Err(format!("{at}: {a:?}, expected {e:?}")),
            }
        }
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{at}: {a}, expected {e}")),
    }
}

/// From events to invoice: `wabill rate` output piped into `wabill invoice`.
#[test]
fn rate_output_is_invoiced() {
    let dir = work_dir(&["rate_pipe"]);
    let events = r#"{"kind":"account","waba":"W1","timezone":"UTC","currency":"USD","primary_country":"US"}
{"kind":"outbound","id":"m1","at":"2025-11-03T09:00:00Z","waba":"W1","phone":"15550001111","user":"5511988887777","type":"template","category":"marketing"}
{"kind":"status","id":"m1","at":"2025-11-03T09:00:02Z","status":"delivered"}
{"kind":"outbound","id":"m2","at":"2025-11-03T09:30:00Z","waba":"W1","phone":"15550001111","user":"5511988887777","type":"template","category":"utility"}
{"kind":"status","id":"m2","at":"2025-11-03T09:30:02Z","status":"delivered"}
{"kind":"inbound","id":"i1","at":"2025-11-03T10:00:00Z","waba":"W1","phone":"15550001111","user":"5511988887777"}
{"kind":"outbound","id":"m3","at":"2025-11-03T10:05:00Z","waba":"W1","phone":"15550001111","user":"5511988887777","type":"text"}
{"kind":"status","id":"m3","at":"2025-11-03T10:05:02Z","status":"delivered"}
{"kind":"outbound","id":"m4","at":"2025-11-03T10:10:00Z","waba":"W1","phone":"15550001111","user":"5511988887777","type":"template","category":"marketing"}
"#;
    let setup = r#"{"tenant":{"id":"pipe","timezone":"Europe/Paris","currency":"EUR","wabas":["W1"]},
 "agents":[{"id":"a1"}],
 "licences":[{"id":"L1","target":"all_agents","from":"2025-11-01","to":null}],
 "plans":[{"effective_from":"2025-11-01","licence_price":"10","markup_percent":"20"}],
 "fx":[{"date":"2025-11-28","from":"USD","to":"EUR","rate":"0.9"}]}"#;
    std::fs::write(dir.join("events.jsonl"), events).unwrap();
    std::fs::write(dir.join("setup.json"), setup).unwrap();
    let rated = Command::new(env!("CARGO_BIN_EXE_wabill"))
        .arg("rate")
        .arg(dir.join("events.jsonl"))
        .output()
        .unwrap();
    assert!(
        rated.status.success(),
        "{}",
        String::from_utf8_lossy(&rated.stderr)
    );
    std::fs::write(dir.join("charges.jsonl"), &rated.stdout).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wabill"))
        .args(["invoice", "--month", "2025-11", "--setup"])
        .arg(dir.join("setup.json"))
        .arg("--charges")
        .arg(dir.join("charges.jsonl"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // m4 was never delivered: a free line with no instant, noted.
    assert!(stderr.contains("[charges_without_instant] 1 "), "{stderr}");
    let inv = Invoice::from_json(&String::from_utf8(out.stdout).unwrap()).unwrap();
    // Licence 10.00; marketing 0.0625 USD × 0.9 × 1.2 = 0.0675 → 0.07; utility 0.0068 × 0.9 ×
    // 1.2 = 0.007344 → 0.01; the free service reply has no line.
    let got: Vec<(String, String)> = inv
        .lines
        .iter()
        .map(|l| (l.kind.as_str().to_string(), l.amount.to_string()))
        .collect();
    let want = [("licence", "10"), ("usage", "0.07"), ("usage", "0.01")]
        .map(|(k, a)| (k.to_string(), a.to_string()));
    assert_eq!(got, want);
    assert_eq!(inv.total.to_string(), "10.08");
}

/// Refusals of the command line itself: --finalize writes JSON only; a stored invoice renders.
#[test]
fn finalize_needs_json_and_stored_invoices_render() {
    let dir = work_dir(&["cli"]);
    let setup = r#"{"tenant":{"id":"t","timezone":"UTC","currency":"USD","wabas":[]},
 "plans":[{"effective_from":"2026-01-01","licence_price":"5"}],
 "agents":[{"id":"a"}],"licences":[{"id":"L","target":{"agent":"a"},"from":"2026-01-01"}]}"#;
    std::fs::write(dir.join("setup.json"), setup).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wabill"))
            .arg("invoice")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap()
    };
    let out = run(&[
        "--setup",
        "setup.json",
        "--month",
        "2026-01",
        "--finalize",
        "--format",
        "html",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[finalize_needs_json]"));
    let out = run(&[
        "--setup",
        "setup.json",
        "--month",
        "2026-01",
        "--finalize",
        "-o",
        "t-2026-01.json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["--render", "t-2026-01.json", "--format", "html"]);
    assert!(out.status.success());
    let html = String::from_utf8(out.stdout).unwrap();
    assert!(
        html.contains("FINAL") && html.contains("5.00 USD"),
        "{html}"
    );
    let out = run(&[
        "--setup",
        "setup.json",
        "--month",
        "2026-01",
        "--previous",
        "t-2026-01.json",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[already_finalized]"));
    std::fs::write(dir.join("bad.json"), "{\"tenant\":{}}").unwrap();
    let out = run(&["--setup", "bad.json", "--month", "2026-01"]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::write(dir.join("bad.jsonl"), "{\"id\":\"x\"}\n").unwrap();
    let out = run(&[
        "--setup",
        "setup.json",
        "--month",
        "2026-01",
        "--charges",
        "bad.jsonl",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.jsonl: line 1: field 'amount': missing")
    );
}

/// A month without charged calls gives the bytes it gave before calls were read
/// (decisions.md D137): `tests/billing/bytes/SCENARIO-MONTH.FORMAT` were written by `wabill
/// invoice` before call lines existed, from the scenario's set-up and charges. The same
/// charges with free calls of the month added (user-initiated, not counted) give them too.
#[test]
fn months_without_charged_calls_keep_their_bytes() {
    let dir = scenario_dir().join("bytes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    for f in files {
        let stem = f.file_stem().unwrap().to_string_lossy().to_string();
        let format = f.extension().unwrap().to_string_lossy().to_string();
        // `budget_blocks-2026-01`: the month is the last 7 characters.
        let (scenario, month) = stem.split_at(stem.len() - 8);
        let month = &month[1..];
        let doc: Value = serde_json::from_str(
            &std::fs::read_to_string(scenario_dir().join(format!("{scenario}.json"))).unwrap(),
        )
        .unwrap();
        let waba = doc["setup"]["tenant"]["wabas"][0].as_str().unwrap();
        let work = work_dir(&["bytes", &stem]);
        std::fs::write(
            work.join("setup.json"),
            serde_json::to_string(&doc["setup"]).unwrap(),
        )
        .unwrap();
        let messages = jsonl(&doc["charges"]);
        let free_call = format!(
            r#"{{"id":"wacid.free","unit":"call","waba":"{waba}","phone":"1","user":"5511988887777","country":"BR","market":"Brazil","direction":"user_initiated","type":"free_user_initiated","billable":false,"seconds":60,"pulses":10,"tier_minutes":null,"tier":null,"rate":null,"amount":"0","currency":"USD","start":"{month}-15T12:00:00Z","recording":"0","transcription":"0"}}"#
        );
        let want = std::fs::read(&f).unwrap();
        for (case, charges) in [
            ("messages", messages.clone()),
            ("with a free call", format!("{messages}{free_call}\n")),
        ] {
            std::fs::write(work.join("charges.jsonl"), &charges).unwrap();
            let out = Command::new(env!("CARGO_BIN_EXE_wabill"))
                .arg("invoice")
                .arg("--setup")
                .arg(work.join("setup.json"))
                .arg("--charges")
                .arg(work.join("charges.jsonl"))
                .args(["--month", month, "--format", &format])
                .output()
                .unwrap();
            assert!(out.status.success(), "{stem} {case}: {out:?}");
            assert!(
                out.stdout == want,
                "{stem}.{format} ({case}) differs from its bytes:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}
