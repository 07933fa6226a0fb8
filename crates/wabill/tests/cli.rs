//! The `wabill` binary as a user runs it: exit codes, error reports, formats, imports.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn wabill(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wabill"));
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().unwrap()
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wabill-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

const ACCOUNT: &str = r#"{"kind":"account","waba":"W1","timezone":"America/Sao_Paulo","currency":"USD","primary_country":"BR"}"#;

fn utility(id: &str, at: &str) -> String {
    format!(
        "{{\"kind\":\"outbound\",\"id\":\"{id}\",\"at\":\"{at}\",\"waba\":\"W1\",\"phone\":\"15550001111\",\"user\":\"5511988887777\",\"type\":\"template\",\"category\":\"utility\"}}\n{{\"kind\":\"status\",\"id\":\"{id}\",\"at\":\"{at}\",\"status\":\"delivered\"}}"
    )
}

#[test]
fn malformed_lines_fail_with_their_line_number_unless_skipped() {
    let input = format!(
        "{ACCOUNT}\n{}\n{{\"kind\":\"status\",\"id\":\"x\",\"at\":\"soon\",\"status\":\"read\"}}\nnot json\n",
        utility("m1", "2026-10-05T10:00:00Z")
    );
    let out = wabill(&["rate", "-"], Some(&input));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("<stdin>: line 4: field 'at'"), "{err}");
    assert!(err.contains("<stdin>: line 5: not a JSON object"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "nothing is written when input is malformed"
    );

    let out = wabill(&["rate", "--skip-invalid", "-"], Some(&input));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("line 4") && err.contains("skipped 2 malformed line(s)"),
        "{err}"
    );
    assert_eq!(text(&out.stdout).lines().count(), 1);
}

#[test]
fn an_unratable_message_fails_the_run_and_names_what_is_missing() {
    let input = format!(
        "{}\n{}\n",
        r#"{"kind":"account","waba":"W1","currency":"JPY"}"#,
        utility("m1", "2026-10-05T10:00:00Z")
    );
    let out = wabill(&["rate", "-"], Some(&input));
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "no PMP rate for currency JPY, market 'Brazil', category utility on 2026-10-05"
        ),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn csv_output_has_the_json_fields_in_order_and_summary_goes_to_stderr() {
    let dir = tmpdir("csv");
    let events = dir.join("e.jsonl");
    std::fs::write(
        &events,
        format!("{ACCOUNT}\n{}\n", utility("m1", "2026-10-05T10:00:00Z")),
    )
    .unwrap();
    let out = wabill(
        &[
            "rate",
            "--format",
            "csv",
            "--summary",
            events.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let csv = text(&out.stdout);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,waba,phone,user,country,market,pricing_model,category,type,billable,tier,rate,amount,currency,billed_at,conversation_id,agent"
    );
    assert_eq!(
        lines.next().unwrap(),
        "m1,W1,15550001111,5511988887777,BR,Brazil,PMP,utility,regular,true,,0.0068,0.0068,USD,2026-10-05T10:00:00Z,,"
    );
    let err = text(&out.stderr);
    assert!(err.contains("utility") && err.contains("total"), "{err}");
}

#[test]
fn imported_tier_cards_price_through_rates_dir() {
    let dir = tmpdir("import");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../formats/tests/fixtures/meta");
    let rates = dir.join("rates");
    let out = wabill(
        &[
            "rates",
            "import",
            fixtures.join("tier_card_usd_2026-10.csv").to_str().unwrap(),
            "--effective",
            "2026-10-01",
            "--into",
            rates.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let events = dir.join("e.jsonl");
    std::fs::write(
        &events,
        format!("{ACCOUNT}\n{}\n", utility("m1", "2026-10-05T10:00:00Z")),
    )
    .unwrap();
    let out = wabill(
        &[
            "rate",
            "--rates",
            rates.to_str().unwrap(),
            events.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    assert!(
        line.contains(r#""tier":"0:250000","rate":"0.0068""#),
        "{line}"
    );
    // Without the imported tiers the same message has no tier.
    let out = wabill(&["rate", events.to_str().unwrap()], None);
    assert!(text(&out.stdout).contains(r#""tier":null"#));

    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "Market,Currency,Marketing,Utility,Authentication,Authentication-International,Service\nAtlantis,$US,0.1,0.1,0.1,n/a,0.1\n").unwrap();
    let out = wabill(
        &[
            "rates",
            "import",
            bad.to_str().unwrap(),
            "--effective",
            "2026-10-01",
        ],
        None,
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("Atlantis"),
        "{}",
        text(&out.stderr)
    );
}

/// A business-initiated answered call to `user`, `seconds` long, at `start`.
fn call(id: &str, user: &str, start: &str, seconds: u64) -> String {
    format!(
        "{{\"kind\":\"call\",\"id\":\"{id}\",\"waba\":\"W1\",\"phone\":\"15550001111\",\"user\":\"{user}\",\"direction\":\"business_initiated\",\"start\":\"{start}\",\"duration\":{seconds},\"outcome\":\"completed\"}}"
    )
}

#[test]
fn an_imported_calling_card_prices_calls_through_rates_dir() {
    let dir = tmpdir("import-calls");
    let card = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../formats/tests/fixtures/meta/call_card_usd_2026-07.csv");
    let rates = dir.join("rates");
    let events = dir.join("calls.jsonl");
    std::fs::write(
        &events,
        format!(
            "{ACCOUNT}\n{}\n",
            call("c1", "5511988887777", "2026-07-06T15:00:00Z", 56)
        ),
    )
    .unwrap();
    // The bundled data has no calling card: the call is an error naming currency and market.
    let out = wabill(&["rate", events.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no calling rate for currency USD, market 'Brazil'"),
        "{}",
        text(&out.stderr)
    );

    // Printed: call_rates.csv rows, one per tier.
    let out = wabill(
        &[
            "rates",
            "import",
            card.to_str().unwrap(),
            "--effective",
            "2026-07-01",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(
        printed.starts_with(
            "effective_from,currency,market,tier_min,tier_max,rate_per_minute,source\n"
        ),
        "{printed}"
    );
    let brazil_list_rate = printed
        .lines()
        .find(|l| l.starts_with("2026-07-01,USD,Brazil,0,50000,"))
        .and_then(|l| l.split(',').nth(5))
        .expect("Brazil's first tier")
        .to_string();

    // Into a fresh directory: call_rates.csv, and the bundled messaging rates beside it.
    let out = wabill(
        &[
            "rates",
            "import",
            card.to_str().unwrap(),
            "--effective",
            "2026-07-01",
            "--into",
            rates.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for f in ["rates.csv", "rate_gaps.csv", "call_rates.csv"] {
        assert!(rates.join(f).exists(), "{f}");
    }
    assert_eq!(
        std::fs::read_to_string(rates.join("call_rates.csv")).unwrap(),
        printed
    );
    let out = wabill(
        &[
            "rate",
            "--rates",
            rates.to_str().unwrap(),
            events.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    // 56 s: 10 pulses, one minute, at the first tier's rate.
    // As the card prints it, without its trailing zeros (0.0200 is shown 0.02).
    let shown = brazil_list_rate.trim_end_matches('0').trim_end_matches('.');
    assert!(line.contains(r#""pulses":10"#), "{line}");
    assert!(line.contains(&format!(r#""rate":"{shown}""#)), "{line}");
    assert!(line.contains(&format!(r#""amount":"{shown}""#)), "{line}");
    assert!(line.contains(r#""tier":"0:50000""#), "{line}");
    // A messaging message still rates from the copied bundled rates.
    let both = dir.join("both.jsonl");
    std::fs::write(
        &both,
        format!("{ACCOUNT}\n{}\n", utility("m1", "2026-07-06T10:00:00Z")),
    )
    .unwrap();
    let out = wabill(
        &[
            "rate",
            "--rates",
            rates.to_str().unwrap(),
            both.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // A bad card names file, line, column and why; nothing is written.
    let bad = dir.join("bad_calls.csv");
    std::fs::write(
        &bad,
        "Cost per minute in USD\nMarket,Currency,From,To,Rate per minute\nBrazil,USD,0,\"50,000\",0.02\n",
    )
    .unwrap();
    let before = std::fs::read_to_string(rates.join("call_rates.csv")).unwrap();
    let out = wabill(
        &[
            "rates",
            "import",
            bad.to_str().unwrap(),
            "--effective",
            "2026-10-01",
            "--into",
            rates.to_str().unwrap(),
        ],
        None,
    );
    assert_ne!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(
        err.contains("bad_calls.csv: line 3, column 4 (To)") && err.contains("last tier"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(rates.join("call_rates.csv")).unwrap(),
        before
    );
    // A workbook is named as such, not read as text.
    let xlsx = dir.join("USD list rates.xlsx");
    std::fs::write(&xlsx, b"PK\x03\x04\x14\x00\x06\x00rest of a zip").unwrap();
    let out = wabill(
        &[
            "rates",
            "import",
            xlsx.to_str().unwrap(),
            "--effective",
            "2026-10-01",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("USD list rates.xlsx: a workbook (.xlsx), not CSV"),
        "{}",
        text(&out.stderr)
    );
    // Messaging and calling cards together need a directory.
    let rate_card = card.with_file_name("rate_card_usd_2026-10.csv");
    let out = wabill(
        &[
            "rates",
            "import",
            card.to_str().unwrap(),
            rate_card.to_str().unwrap(),
            "--effective",
            "2026-10-01",
        ],
        None,
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("--into DIR"),
        "{}",
        text(&out.stderr)
    );
    // With --into they go to their own files; a later calling card leaves rates.csv as it is.
    let both_dir = dir.join("both");
    let out = wabill(
        &[
            "rates",
            "import",
            card.to_str().unwrap(),
            rate_card.to_str().unwrap(),
            "--effective",
            "2026-10-01",
            "--into",
            both_dir.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rates_csv = std::fs::read_to_string(both_dir.join("rates.csv")).unwrap();
    assert!(rates_csv.contains("2026-10-01,PMP,USD,Brazil,marketing,"));
    let calls_csv = std::fs::read_to_string(both_dir.join("call_rates.csv")).unwrap();
    assert!(
        calls_csv.contains("\n2026-10-01,USD,Brazil,0,50000,"),
        "{calls_csv}"
    );
    let out = wabill(
        &[
            "rates",
            "import",
            card.to_str().unwrap(),
            "--effective",
            "2026-07-01",
            "--into",
            both_dir.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(both_dir.join("rates.csv")).unwrap(),
        rates_csv
    );
    let calls_csv = std::fs::read_to_string(both_dir.join("call_rates.csv")).unwrap();
    assert!(
        calls_csv.contains("\n2026-07-01,USD,Brazil,0,50000,")
            && calls_csv.contains("\n2026-10-01,USD,Brazil,0,50000,"),
        "{calls_csv}"
    );
}

#[test]
fn rates_check_and_rates_list_say_what_the_data_covers_for_calls_too() {
    let json = |args: &[&str]| -> serde_json::Value {
        let out = wabill(args, None);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let strs = |v: &serde_json::Value| -> std::collections::BTreeSet<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    };
    // Messages: the currencies are those of data/rates.csv; with the ones without a card
    // they are Meta's 16 billing currencies.
    let bundled = json(&["rates", "check", "--format", "json"]);
    let rates_csv =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/rates.csv"))
            .unwrap();
    let in_file: std::collections::BTreeSet<String> = rates_csv
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(2))
        .map(String::from)
        .collect();
    let have = strs(&bundled["messages"]["currencies"]);
    let without = strs(&bundled["messages"]["currencies_without_card"]);
    assert_eq!(have, in_file);
    assert!(have.is_disjoint(&without));
    assert_eq!(have.len() + without.len(), 16, "{bundled}");
    let gaps_csv = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/rate_gaps.csv"),
    )
    .unwrap();
    assert_eq!(
        bundled["messages"]["gaps"].as_u64().unwrap() as usize,
        gaps_csv
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .count()
    );
    // Calls: the bundled data has no card, and both commands say so.
    assert!(strs(&bundled["calls"]["currencies"]).is_empty());
    assert_eq!(bundled["calls"]["versions"], serde_json::json!([]));
    let out = wabill(&["rates", "check"], None);
    assert!(
        text(&out.stdout).contains("no calling card in any currency"),
        "{}",
        text(&out.stdout)
    );
    let out = wabill(
        &["rates", "list", "--currency", "USD", "--month", "2026-05"],
        None,
    );
    assert!(
        text(&out.stdout).contains("\nCalls: no calling card in USD (the bundled data holds none"),
        "{}",
        text(&out.stdout)
    );

    // With an imported card: its currency, version and markets, per market in the listing.
    let dir = tmpdir("check-calls");
    let card = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../formats/tests/fixtures/meta/call_card_usd_2026-07.csv");
    let rates = dir.join("rates");
    let out = wabill(
        &[
            "rates",
            "import",
            card.to_str().unwrap(),
            "--effective",
            "2026-07-01",
            "--into",
            rates.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(rates.join("call_rates.csv")).unwrap();
    let markets: std::collections::BTreeSet<&str> = written
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(2))
        .collect();
    let dir_s = rates.to_str().unwrap();
    let checked = json(&["rates", "check", "--rates", dir_s, "--format", "json"]);
    assert_eq!(
        strs(&checked["calls"]["currencies"]),
        ["USD".to_string()].into()
    );
    let v = &checked["calls"]["versions"][0];
    assert_eq!(v["effective_from"], "2026-07-01");
    assert_eq!(v["markets"].as_u64().unwrap() as usize, markets.len());
    let listed = json(&[
        "rates",
        "list",
        "--currency",
        "USD",
        "--month",
        "2026-07",
        "--rates",
        dir_s,
        "--format",
        "json",
    ]);
    let calls: Vec<&serde_json::Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["category"] == "call")
        .collect();
    let rated: std::collections::BTreeSet<&str> = calls
        .iter()
        .filter(|i| i["status"] == "rate")
        .map(|i| i["market"].as_str().unwrap())
        .collect();
    assert_eq!(rated, markets);
    let brazil = calls.iter().find(|i| i["market"] == "Brazil").unwrap();
    let brazil_rows = written.lines().filter(|l| l.contains(",Brazil,")).count();
    assert_eq!(brazil["tiers"].as_array().unwrap().len(), brazil_rows);
    assert_eq!(brazil["tiers"][0]["tier"], "0:50000");
    // Every other market of the month is listed as missing, never left out.
    let missing = calls.iter().filter(|i| i["status"] == "missing").count();
    assert_eq!(missing + rated.len(), calls.len());
    assert!(missing > 0);
    // Before the card's date, none is in force.
    let out = wabill(
        &[
            "rates",
            "list",
            "--currency",
            "USD",
            "--month",
            "2026-06",
            "--rates",
            dir_s,
        ],
        None,
    );
    let t = text(&out.stdout);
    assert!(
        t.contains("Calls in force in 2026-06 for USD") && t.contains(": 0 of "),
        "{t}"
    );
}

#[test]
fn gen_is_reproducible_and_its_stream_rates_cleanly() {
    let a = wabill(
        &[
            "gen", "--seed", "7", "--events", "3000", "--users", "500", "--wabas", "4",
        ],
        None,
    );
    let b = wabill(
        &[
            "gen", "--seed", "7", "--events", "3000", "--users", "500", "--wabas", "4",
        ],
        None,
    );
    let c = wabill(
        &[
            "gen", "--seed", "8", "--events", "3000", "--users", "500", "--wabas", "4",
        ],
        None,
    );
    assert_eq!(a.stdout, b.stdout);
    assert_ne!(a.stdout, c.stdout);
    let out = wabill(&["rate", "-"], Some(&text(&a.stdout)));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).lines().count() > 500);
}

#[test]
fn demo_runs_on_bundled_data() {
    let out = wabill(&["demo", "--events", "5000"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("total") && s.contains("\"pricing_model\":\"PMP\""),
        "{s}"
    );
    // A bill a person reads: per WABA and category, amounts to the cent, what "charged" means,
    // and the tenant invoice, whose total is `wabill invoice`'s on the same charges.
    assert!(
        s.contains("\"charged\" counts the messages Meta bills"),
        "{s}"
    );
    let w1_total = s
        .lines()
        .find(|l| l.starts_with("W1 ") && l.contains(" total "))
        .unwrap_or_else(|| panic!("{s}"));
    let amount = w1_total.split_whitespace().nth(4).unwrap();
    assert_eq!(amount.split_once('.').unwrap().1.len(), 2, "{w1_total}");
    let dir = tmpdir("demo");
    let out = wabill(
        &["demo", "--events", "5000", "--out", dir.to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let total_line = shown
        .lines()
        .find(|l| l.trim_start().starts_with("Total "))
        .unwrap_or_else(|| panic!("{shown}"));
    let shown_total = total_line.split_whitespace().nth(1).unwrap().to_string();
    let p = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let inv = wabill(
        &[
            "invoice",
            "--setup",
            &p("tenant.json"),
            "--charges",
            &p("charges.jsonl"),
            "--month",
            "2026-10",
        ],
        None,
    );
    assert_eq!(inv.status.code(), Some(0), "{}", text(&inv.stderr));
    let record: serde_json::Value = serde_json::from_slice(&inv.stdout).unwrap();
    assert_eq!(record["total"], shown_total.as_str(), "{total_line}");
    assert!(std::fs::read_to_string(p("invoice.html"))
        .unwrap()
        .contains("Demo Retail"));
}

/// An outbound event's `agent` comes out as the last field of its charge (absent when none),
/// and `wabill invoice` reads it back from that output (docs/events.md).
#[test]
fn rate_carries_the_agent_through() {
    let with_agent = utility("m1", "2026-10-05T10:00:00Z").replacen(
        "\"category\":\"utility\"}",
        "\"category\":\"utility\",\"agent\":\"ana \\\"b\\\"\"}",
        1,
    );
    let input = format!(
        "{ACCOUNT}\n{with_agent}\n{}\n",
        utility("m2", "2026-10-05T11:00:00Z")
    );
    let out = wabill(&["rate", "-"], Some(&input));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["agent"], "ana \"b\"");
    let all = text(&out.stdout);
    let second = all.lines().nth(1).unwrap();
    assert!(
        second.ends_with(r#","conversation_id":null}"#) && !second.contains("agent"),
        "a line without an agent is exactly events.md's: {second}"
    );
    let first = all.lines().next().unwrap();
    assert!(
        first.ends_with(r#","conversation_id":null,"agent":"ana \"b\""}"#),
        "{first}"
    );
    // The charges read back as billing input keep it.
    let charges = wabill_billing::parse_charges(&text(&out.stdout)).unwrap();
    assert_eq!(charges[0].agent.as_deref(), Some("ana \"b\""));
    assert_eq!(charges[1].agent, None);
    // CSV: the last column.
    let out = wabill(&["rate", "--format", "csv", "-"], Some(&input));
    let csv = text(&out.stdout);
    assert!(
        csv.lines().nth(1).unwrap().ends_with(",\"ana \"\"b\"\"\""),
        "{csv}"
    );
    assert!(csv.lines().nth(2).unwrap().ends_with(",,"), "{csv}");
}

#[test]
fn rates_list_shows_the_rate_in_force_its_version_and_source_and_the_gaps() {
    let out = wabill(
        &["rates", "list", "--currency", "USD", "--month", "2026-05"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let row = |market: &str, category: &str| -> Vec<String> {
        table
            .lines()
            .find(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                l.starts_with(market) && f.contains(&category)
            })
            .unwrap_or_else(|| panic!("no {market} {category} line:\n{table}"))
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    };
    // The 2026-04-01 version, with where each value comes from (data/SOURCES.md keys).
    assert_eq!(
        row("Pakistan", "utility"),
        [
            "Pakistan",
            "utility",
            "0.01",
            "2026-04-01",
            "GH-IDX-67478796404"
        ]
    );
    assert_eq!(
        row("Turkey", "authentication")[2..4],
        ["0.0009", "2026-04-01"]
    );
    assert_eq!(
        row("Saudi Arabia", "marketing")[2..4],
        ["0.0501", "2026-04-01"]
    );
    assert_eq!(
        row("India", "authentication_international")[2..4],
        ["0.0304", "2026-04-01"]
    );
    // Unchanged keys rest on the version before.
    assert_eq!(row("Pakistan", "marketing")[2..4], ["0.0473", "2026-01-01"]);
    assert!(
        table.contains("\nGaps: 0 ") && table.contains("\nMissing: 0 "),
        "{table}"
    );

    // INR has no card of 2026-04-01: the changed keys are gaps, with their reason.
    let out = wabill(
        &["rates", "list", "--currency", "INR", "--month", "2026-05"],
        None,
    );
    let table = text(&out.stdout);
    assert!(table.contains("\nGaps: 10 "), "{table}");
    assert!(
        table.contains("  Pakistan utility from 2026-04-01: no INR card of 2026-04-01 was found"),
        "{table}"
    );
    // May 2025 in USD: the four authentication-international rates Meta lowered on 2025-04-01.
    let out = wabill(
        &[
            "rates",
            "list",
            "--currency",
            "USD",
            "--month",
            "2025-05",
            "--format",
            "csv",
        ],
        None,
    );
    let csv = text(&out.stdout);
    assert!(csv.starts_with("market,category,status,rate,effective_from,source_or_reason\n"));
    let nigeria: Vec<&str> = csv
        .lines()
        .filter(|l| l.starts_with("Nigeria,authentication_international,"))
        .collect();
    assert_eq!(nigeria.len(), 1, "{csv}");
    assert!(nigeria[0].starts_with("Nigeria,authentication_international,gap,,2025-04-01,"));
    // JSON carries the same.
    let out = wabill(
        &[
            "rates",
            "list",
            "--currency",
            "USD",
            "--month",
            "2026-05",
            "--format",
            "json",
        ],
        None,
    );
    let items: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let pk = items
        .iter()
        .find(|i| i["market"] == "Pakistan" && i["category"] == "utility")
        .unwrap();
    assert_eq!(pk["rate"], "0.01");
    assert_eq!(pk["effective_from"], "2026-04-01");
    assert_eq!(pk["status"], "rate");

    // Bad input: exit 2, saying what and why.
    for (args, why) in [
        (
            ["--currency", "USD", "--month", "2026-13"],
            "--month '2026-13'",
        ),
        (
            ["--currency", "JPY", "--month", "2026-05"],
            "no rate in JPY; it prices AED, EUR, INR, USD",
        ),
        (
            ["--currency", "USD", "--month", "2023-05"],
            "before 2023-06",
        ),
    ] {
        let mut a = vec!["rates", "list"];
        a.extend(args);
        let out = wabill(&a, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains(why), "{}", text(&out.stderr));
    }
}

#[test]
fn a_gap_is_a_missing_rate_until_a_row_of_its_date_fills_it_in_a_rates_dir() {
    let dir = tmpdir("gaps");
    let events = dir.join("e.jsonl");
    std::fs::write(
        &events,
        concat!(
            r#"{"kind":"account","waba":"W1","timezone":"UTC","currency":"USD","primary_country":"AE","auth_international":{"start":"2025-02-01T00:00:00Z"}}"#,
            "\n",
            r#"{"kind":"outbound","id":"n1","at":"2025-05-15T10:00:00Z","waba":"W1","phone":"15550001111","user":"2348031234567","type":"template","category":"authentication"}"#,
            "\n",
            r#"{"kind":"status","id":"n1","at":"2025-05-15T10:00:02Z","status":"delivered"}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = wabill(&["rate", events.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("category authentication_international on 2025-05-15 (Meta changed this rate on 2025-04-01"),
        "{}",
        text(&out.stderr)
    );

    // `rates import --into` a new directory writes the bundled gaps beside the bundled rates.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../formats/tests/fixtures/meta");
    let rates = dir.join("rates");
    let out = wabill(
        &[
            "rates",
            "import",
            fixtures.join("tier_card_usd_2026-10.csv").to_str().unwrap(),
            "--effective",
            "2026-10-01",
            "--into",
            rates.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(rates.join("rate_gaps.csv")).unwrap(),
        include_str!("../../../data/rate_gaps.csv")
    );
    let out = wabill(
        &[
            "rate",
            "--rates",
            rates.to_str().unwrap(),
            events.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "the copied gaps apply: {}",
        text(&out.stdout)
    );

    // A row of the gap's date (made up for this test) fills it: billed, and listed with its source.
    let mut csv = std::fs::read_to_string(rates.join("rates.csv")).unwrap();
    csv.push_str("2025-04-01,CBP,USD,Nigeria,authentication_international,,,0.07,test-row\n");
    std::fs::write(rates.join("rates.csv"), csv).unwrap();
    let out = wabill(
        &[
            "rate",
            "--rates",
            rates.to_str().unwrap(),
            events.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(r#""category":"authentication_international","type":"regular","billable":true,"tier":null,"rate":"0.07""#), "{}", text(&out.stdout));
    let out = wabill(
        &[
            "rates",
            "list",
            "--rates",
            rates.to_str().unwrap(),
            "--currency",
            "USD",
            "--month",
            "2025-05",
            "--format",
            "csv",
        ],
        None,
    );
    let list = text(&out.stdout);
    assert!(
        list.contains("\nNigeria,authentication_international,rate,0.07,2025-04-01,test-row\n"),
        "{list}"
    );
    assert!(
        list.contains("\nEgypt,authentication_international,gap,,2025-04-01,"),
        "{list}"
    );
}

/// The README's `wabill rates list` example runs as pasted and prints what the README shows
/// (its excerpt's lines, in order; `...` stands for lines left out).
#[test]
fn the_readme_rates_list_example_prints_what_it_shows() {
    let readme = include_str!("../../../README.md");
    let cmd = "wabill rates list --currency USD --month 2026-05";
    let at = readme
        .find(&format!("```sh\n{cmd}\n```"))
        .expect("the example");
    let rest = &readme[at..];
    let start = rest.find("prints (excerpt):\n\n```\n").expect("its output") + 23;
    let excerpt = &rest[start..start + rest[start..].find("\n```").unwrap()];
    let args: Vec<&str> = cmd.split_whitespace().skip(1).collect();
    let out = wabill(&args, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let mut lines = printed.lines();
    for want in excerpt.lines().filter(|l| *l != "...") {
        assert!(
            lines.any(|l| l == want),
            "README line not printed (in this order):\n{want}\n--- printed:\n{printed}"
        );
    }
}

/// The command line's admin actions are in the audit log with their actor, and `wabill audit`
/// prints it (decisions.md D88).
#[test]
fn admin_commands_are_audited() {
    let dir = tmpdir("audit");
    let db = dir.join("wabill.sqlite");
    let db = db.to_str().unwrap();
    let out = wabill(
        &[
            "keys", "create", "--name", "ops", "--role", "admin", "--db", db,
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = wabill(&["keys", "revoke", "1", "--db", db], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = wabill(&["audit", "--db", db], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l["action"].as_str().unwrap(), l["target"].as_str().unwrap()))
        .collect();
    assert_eq!(actions, [("key.create", "1 ops"), ("key.revoke", "1")]);
    for l in &lines {
        assert!(l["actor"].as_str().unwrap().starts_with("cli:"), "{l}");
    }
    let out = wabill(
        &["audit", "--db", db, "--after", &lines[0]["id"].to_string()],
        None,
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);
}

/// The events of a golden scenario (tests/scenarios/), comments left out.
fn scenario_events(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/scenarios")
        .join(name);
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    let mut inside = false;
    for l in text.lines() {
        if let Some(section) = l.strip_prefix("--- ") {
            inside = section.trim() == "events";
        } else if inside && !l.starts_with('#') && !l.trim().is_empty() {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// Meta's webhooks alone (issue 14, point 1): `wabill rate` rates the messages from their
/// statuses and says so; `wabill reconcile` lists the outbound events whose template category
/// Meta bills otherwise (decisions.md D110-D112).
#[test]
fn webhooks_alone_are_rated_and_reconcile_lists_the_platforms_other_category() {
    let out = wabill(&["rate", "-"], Some(&scenario_events("webhooks_alone.scn")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 6);
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "note: 6 message(s) with no outbound event were rated from Meta's status webhooks"
        ),
        "{err}"
    );
    assert!(
        err.contains("note: 1 of them have no 'sent' status"),
        "{err}"
    );

    let out = wabill(
        &["reconcile", "-"],
        Some(&scenario_events("webhooks_meta_category_wins.scn")),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let platform: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["differences"][0]["field"] == "platform_category")
        .collect();
    assert_eq!(platform.len(), 1, "{lines:?}");
    assert_eq!(platform[0]["id"], "m1");
    assert_eq!(platform[0]["differences"][0]["platform"], "utility");
    assert_eq!(platform[0]["differences"][0]["meta"], "marketing");
    assert!(text(&out.stderr).contains("1 outbound event(s) name another template category"));
}

#[test]
fn a_line_that_is_not_utf8_is_a_malformed_line_of_its_file() {
    let dir = tmpdir("utf8");
    let mut bytes = format!("{ACCOUNT}\n{}\n", utility("m1", "2026-10-05T10:00:00Z")).into_bytes();
    // Line 4: an id with a byte that is not UTF-8.
    bytes.extend_from_slice(b"{\"kind\":\"inbound\",\"id\":\"\xff\xfe\"}\n");
    bytes.extend_from_slice(format!("{}\n", utility("m2", "2026-10-06T10:00:00Z")).as_bytes());
    let file = dir.join("bad.jsonl");
    std::fs::write(&file, &bytes).unwrap();
    let path = file.to_str().unwrap();
    // A regular file (read in pieces) and standard input (read whole) alike.
    let stdin_copy = dir.join("stdin.jsonl");
    std::fs::write(&stdin_copy, &bytes).unwrap();
    for (args, name) in [
        (vec!["rate", path], path.to_string()),
        (vec!["rate", "-"], "<stdin>".to_string()),
    ] {
        let run = |extra: &[&str]| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_wabill"));
            cmd.args(&args[..1]).args(extra).args(&args[1..]);
            cmd.stdin(std::fs::File::open(&stdin_copy).unwrap());
            cmd.output().unwrap()
        };
        let out = run(&[]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("{name}: line 4: ")) && err.contains("not UTF-8"),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "nothing is written");

        let out = run(&["--skip-invalid"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains("skipped 1 malformed line(s)"), "{err}");
        let ids: Vec<String> = text(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
            .collect();
        assert_eq!(ids, ["\"m1\"", "\"m2\""], "the lines around it are rated");
    }
    // The commands that read a file whole say the same, and exit 2 as for any malformed input.
    let out = wabill(&["reconcile", path], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{path}: line 4: not UTF-8 text (an invalid byte at byte 25"
        )),
        "{err}"
    );
}

/// Runs `wabill ARGS` with standard output a real pipe, reads its first line and closes the
/// pipe, as `wabill ... | head -1` does; answers the exit code and what was written on stderr.
fn closed_early(args: &[&str]) -> (Option<i32>, String, String) {
    use std::io::{BufRead, Read};
    let mut child = Command::new(env!("CARGO_BIN_EXE_wabill"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    {
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        reader.read_line(&mut first).unwrap();
        // The reader, and so the pipe's only read end, is dropped here.
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code(), first, stderr)
}

#[test]
fn a_closed_standard_output_ends_every_command_quietly_with_0() {
    let dir = tmpdir("pipe");
    let stream = dir.join("stream.jsonl");
    let generated = wabill(&["gen", "--seed", "3", "--events", "20000"], None);
    assert_eq!(generated.status.code(), Some(0));
    std::fs::write(&stream, &generated.stdout).unwrap();
    let stream = stream.to_str().unwrap();
    let commands: [&[&str]; 5] = [
        &["rate", stream],
        &["rate", "--format", "csv", stream],
        &["gen", "--events", "2000000"],
        &["rates", "list", "--currency", "USD", "--month", "2026-05"],
        &[
            "estimate",
            "--month",
            "2026-11",
            "--market",
            "Brazil",
            "--marketing",
            "1000",
        ],
    ];
    for args in commands {
        let (code, first, stderr) = closed_early(args);
        assert!(!first.is_empty(), "{args:?} wrote nothing: {stderr}");
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("error") && !stderr.contains("panicked"),
            "{args:?} says nothing of the closed pipe: {stderr}"
        );
    }
    // The rating output is far larger than a pipe's buffer: the first line proves the pipe was
    // closed while the command was still writing.
    assert!(generated.stdout.len() > 1 << 20);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn templates_import_writes_template_lines_that_rate_reads_and_names_a_bad_field() {
    let list = r#"{"data":[{"name":"order_update","language":"en_US","status":"APPROVED","category":"MARKETING","id":"111","components":[]}],"paging":{}}"#;
    let out = wabill(
        &[
            "templates",
            "import",
            "-",
            "--waba",
            "W1",
            "--at",
            "2025-11-01T00:00:00Z",
        ],
        Some(list),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = text(&out.stdout);
    assert_eq!(lines.lines().count(), 1, "{lines}");

    // A message naming the template by id is charged in the imported category; the same
    // message giving the utility category itself is charged as utility: the two differ.
    let dir = tmpdir("templates");
    let named = format!(
        "{ACCOUNT}\n{}\n",
        utility("m1", "2025-11-03T10:00:00Z")
            .replace(r#""category":"utility""#, r#""template_id":"111""#)
    );
    std::fs::write(dir.join("t.jsonl"), &lines).unwrap();
    std::fs::write(dir.join("e.jsonl"), &named).unwrap();
    let t = dir.join("t.jsonl");
    let e = dir.join("e.jsonl");
    let out = wabill(&["rate", t.to_str().unwrap(), e.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(r#""category":"marketing""#),
        "{}",
        text(&out.stdout)
    );
    // Without the registry: an error naming the message and the template, nothing written.
    let out = wabill(&["rate", e.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr)
            .contains("message m1: template id 111 is not in the template registry of WABA W1"),
        "{}",
        text(&out.stderr)
    );

    let bad = list.replace("MARKETING", "TRANSACTIONAL");
    let out = wabill(&["templates", "import", "-", "--waba", "W1"], Some(&bad));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("field 'data[0].category'"),
        "{}",
        text(&out.stderr)
    );
}
