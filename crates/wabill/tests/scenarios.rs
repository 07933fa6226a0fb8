//! Runs every golden scenario of `tests/scenarios/` against the library and the binary.
//! The format is described in `tests/scenarios/README.md`.

use std::path::{Path, PathBuf};
use std::process::Command;
use wabill_formats::{charges, parse_line, Parsed};
use wabill_rating::{rate, RateOptions, Tariff};

type Object = serde_json::Map<String, serde_json::Value>;

struct Scenario {
    name: String,
    assume_delivered: bool,
    rates: Option<String>,
    /// Rows replacing the bundled `call_rates.csv` (docs/rules.md "Calls").
    call_rates: Option<String>,
    events: String,
    expect: Option<Vec<Object>>,
    errors: Option<Vec<String>>,
}

fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios")
}

fn load(path: &Path) -> Scenario {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let mut s = Scenario {
        name: name.clone(),
        assume_delivered: false,
        rates: None,
        call_rates: None,
        events: String::new(),
        expect: None,
        errors: None,
    };
    let mut body: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if let Some(sec) = line.strip_prefix("--- ") {
            body.push((sec.trim().to_string(), Vec::new()));
            continue;
        }
        match body.last_mut() {
            Some((_, lines)) => lines.push(line.to_string()),
            None => {
                if let Some(opts) = line.strip_prefix("options:") {
                    for o in opts.split(',').map(str::trim) {
                        match o {
                            "assume_delivered" => s.assume_delivered = true,
                            other => panic!("{name}: unknown option '{other}'"),
                        }
                    }
                } else {
                    assert!(
                        line.starts_with('#') || line.trim().is_empty(),
                        "{name}: '{line}' outside a section"
                    );
                }
            }
        }
    }
    let meaningful = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .cloned()
            .collect()
    };
    for (sec, lines) in body {
        match sec.as_str() {
            "events" => {
                let lines: Vec<String> = lines
                    .into_iter()
                    .map(|l| if l.starts_with('#') { String::new() } else { l })
                    .collect();
                s.events = lines.join("\n") + "\n";
            }
            "rates" => s.rates = Some(meaningful(&lines).join("\n") + "\n"),
            "call_rates" => s.call_rates = Some(meaningful(&lines).join("\n") + "\n"),
            "expect" => {
                s.expect = Some(
                    meaningful(&lines)
                        .iter()
                        .map(|l| {
                            serde_json::from_str(l)
                                .unwrap_or_else(|e| panic!("{name}: expect line '{l}': {e}"))
                        })
                        .collect(),
                )
            }
            "errors" => s.errors = Some(meaningful(&lines)),
            other => panic!("{name}: unknown section '{other}'"),
        }
    }
    assert!(!s.events.trim().is_empty(), "{name}: no events");
    assert!(
        s.expect.is_some() != s.errors.is_some(),
        "{name}: needs exactly one of 'expect' and 'errors'"
    );
    s
}

/// Library result: output JSON lines, or the list of errors.
fn run_library(s: &Scenario) -> Result<String, Vec<String>> {
    let tariff = match &s.rates {
        None => Tariff::bundled(),
        Some(r) => Tariff::from_csv(wabill_rating::data::MARKETS_CSV, &[("scenario rates", r)])
            .unwrap_or_else(|e| panic!("{}: rates: {e}", s.name)),
    };
    let tariff = match &s.call_rates {
        None => tariff,
        Some(r) => {
            let mut t = tariff;
            t.call_rates = Default::default();
            t.with_call_rates("scenario call rates", r)
                .unwrap_or_else(|e| panic!("{}: call rates: {e}", s.name))
        }
    };
    let mut parsed = Parsed::default();
    let mut errors = Vec::new();
    for (i, line) in s.events.lines().enumerate() {
        if let Err(e) = parse_line(line, i as u64 + 1, &mut parsed) {
            errors.push(e.to_string());
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let template_errors = parsed.resolve_templates();
    if !template_errors.is_empty() {
        return Err(template_errors.iter().map(|e| e.to_string()).collect());
    }
    let opts = RateOptions {
        assume_delivered: s.assume_delivered,
    };
    let mut events = parsed.events.clone();
    events.extend(wabill_rating::calls::window_openers(&parsed.calls));
    let rated = rate(&tariff, &[], &events, opts);
    let accounts: Vec<&wabill_rating::Account<'_>> = parsed
        .events
        .iter()
        .filter_map(|e| match e {
            wabill_rating::Event::Account(a) => Some(&**a),
            _ => None,
        })
        .collect();
    let calls = wabill_rating::calls::rate_calls(
        &tariff.markets,
        &tariff.call_rates,
        &accounts,
        &parsed.calls,
    );
    if !rated.errors.is_empty() || !calls.errors.is_empty() {
        return Err(rated
            .errors
            .iter()
            .map(|e| e.to_string())
            .chain(calls.errors.iter().map(|e| e.to_string()))
            .collect());
    }
    let mut out = Vec::new();
    for c in &rated.charges {
        charges::write_json(&mut out, c, &tariff);
    }
    for c in &calls.charges {
        wabill_formats::calls::write_call_json(&mut out, c, &tariff);
    }
    Ok(String::from_utf8(out).unwrap())
}

fn run_binary(s: &Scenario, dir: &Path) -> (i32, String, String) {
    let events = dir.join(format!("{}.jsonl", s.name));
    std::fs::write(&events, &s.events).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wabill"));
    cmd.arg("rate").arg(&events);
    if s.assume_delivered {
        cmd.arg("--assume-delivered");
    }
    if s.rates.is_some() || s.call_rates.is_some() {
        let rd = dir.join(format!("{}.rates", s.name));
        std::fs::create_dir_all(&rd).unwrap();
        let rates = s.rates.as_deref().unwrap_or(wabill_rating::data::RATES_CSV);
        std::fs::write(rd.join("rates.csv"), rates).unwrap();
        if s.rates.is_none() {
            std::fs::write(rd.join("rate_gaps.csv"), wabill_rating::data::RATE_GAPS_CSV).unwrap();
        }
        if let Some(c) = &s.call_rates {
            std::fs::write(rd.join("call_rates.csv"), c).unwrap();
        }
        cmd.arg("--rates").arg(&rd);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn check_errors(
    expected: &[String],
    actual: &[String],
    code: i32,
    stderr: &str,
) -> Result<(), String> {
    if expected.len() != actual.len() {
        return Err(format!(
            "expected {} errors, got {}:\n  {}",
            expected.len(),
            actual.len(),
            actual.join("\n  ")
        ));
    }
    for e in expected {
        if !actual.iter().any(|a| a.contains(e.as_str())) {
            return Err(format!(
                "no error contains '{e}'; errors:\n  {}",
                actual.join("\n  ")
            ));
        }
        if !stderr.contains(e.as_str()) {
            return Err(format!(
                "the binary's stderr does not contain '{e}':\n{stderr}"
            ));
        }
    }
    if code != 2 && code != 3 {
        return Err(format!("the binary exited {code}, expected 2 or 3"));
    }
    Ok(())
}

fn check_charges(expect: &[Object], out: &str) -> Result<(), String> {
    let actual: Vec<Object> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids = |v: &[Object]| -> Vec<String> {
        v.iter()
            .map(|m| {
                m.get("id")
                    .and_then(|i| i.as_str())
                    .unwrap_or("?")
                    .to_string()
            })
            .collect()
    };
    if ids(&actual) != ids(expect) {
        return Err(format!(
            "charge ids {:?}, expected {:?}\n{out}",
            ids(&actual),
            ids(expect)
        ));
    }
    let mut problems = Vec::new();
    for (a, e) in actual.iter().zip(expect) {
        for (k, v) in e {
            match a.get(k) {
                Some(av) if av == v => {}
                Some(av) => problems.push(format!("{}: {k} is {av}, expected {v}", e["id"])),
                None => problems.push(format!("{}: no field {k}", e["id"])),
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\noutput:\n{out}", problems.join("\n")))
    }
}

fn check(s: &Scenario, tmp: &Path) -> Result<(), String> {
    let lib = run_library(s);
    let (code, stdout, stderr) = run_binary(s, tmp);
    match (&s.errors, &lib, &s.expect) {
        (Some(expected), Err(actual), _) => check_errors(expected, actual, code, &stderr),
        (Some(_), Ok(out), _) => Err(format!("expected errors, got charges:\n{out}")),
        (None, Err(actual), _) => Err(format!("unexpected errors:\n  {}", actual.join("\n  "))),
        (None, Ok(out), Some(expect)) => {
            if code != 0 || stdout != *out {
                return Err(format!(
                    "the binary differs from the library (exit {code}):\n{stdout}\n{stderr}"
                ));
            }
            check_charges(expect, out)
        }
        (None, Ok(_), None) => unreachable!("checked at load"),
    }
}

#[test]
fn golden_scenarios() {
    let tmp = std::env::temp_dir().join(format!("wabill-scenarios-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(scenario_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "scn"))
        .collect();
    paths.sort();
    let only = std::env::var("SCENARIO").ok();
    let mut failures = Vec::new();
    let mut ran = 0;
    for p in &paths {
        let s = load(p);
        if only.as_deref().is_some_and(|o| !s.name.contains(o)) {
            continue;
        }
        ran += 1;
        if let Err(e) = check(&s, &tmp) {
            failures.push(format!("=== {}\n{e}", s.name));
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(ran > 0, "no scenario ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} scenarios failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{ran} scenarios passed");
}
