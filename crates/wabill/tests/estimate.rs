//! `wabill estimate` as a user runs it: golden estimates worked out by hand from the rate data,
//! the options that change them (phone numbers, shares, authentication-international, rate
//! directories, `--compare`), the output formats, and every input error with its exit code.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn wabill(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wabill"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wabill-estimate-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `wabill estimate ARGS --format json` and returns the parsed output.
fn estimate_json(args: &[&str]) -> Value {
    let mut all = vec!["estimate"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let out = wabill(&all, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn total(e: &Value) -> String {
    e["totals"][0]["amount"].as_str().unwrap().to_string()
}

/// The row of a market and category.
fn row<'a>(e: &'a Value, market: &str, category: &str) -> &'a Value {
    e["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["market"] == market && r["category"] == category)
        .unwrap_or_else(|| panic!("no row {market} {category} in {e:#}"))
}

/// (tier, rate, messages, amount) of a row's prices.
fn prices(r: &Value) -> Vec<(String, String, u64, String)> {
    r["rates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["tier"].as_str().unwrap_or("-").to_string(),
                p["rate"].as_str().unwrap().to_string(),
                p["messages"].as_u64().unwrap(),
                p["amount"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn count(r: &Value, field: &str) -> u64 {
    r[field].as_u64().unwrap()
}

#[test]
fn a_brazilian_marketing_campaign() {
    // data/rates.csv: 2026-10-01,PMP,USD,Brazil,marketing,,,0.0625 (in force in 2026-11).
    // 100,000 delivered marketing templates × 0.0625 USD = 6,250 USD, each message charged.
    let v = estimate_json(&[
        "--month",
        "2026-11",
        "--market",
        "Brazil",
        "--marketing",
        "100,000",
    ]);
    let e = &v["estimate"];
    assert_eq!(e["pricing_model"], "PMP");
    assert_eq!(e["era_start"], "2026-10-01");
    let r = row(e, "Brazil", "marketing");
    assert_eq!(count(r, "messages"), 100_000);
    assert_eq!(count(r, "charged"), 100_000);
    assert_eq!(
        prices(r),
        vec![("-".into(), "0.0625".into(), 100_000, "6250".into())]
    );
    assert_eq!(total(e), "6250");
    assert_eq!(e["traffic"][0]["country"], "BR");

    // The default table says the same, aligned, with a total line.
    let out = wabill(
        &[
            "estimate",
            "--month",
            "2026-11",
            "--market",
            "Brazil",
            "--marketing",
            "100000",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("Estimate for 2026-11 (PMP, charged service"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("market") && lines[1].ends_with("amount"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("Brazil") && lines[2].ends_with("6250"),
        "{table}"
    );
    assert!(
        lines[3].starts_with("total") && lines[3].ends_with("6250"),
        "{table}"
    );
    assert_eq!(lines[1].len(), lines[2].len(), "aligned columns:\n{table}");
}

/// Made-up tiers for India: NOT Meta's rates (no public tier card has India; see
/// crates/formats/tests/fixtures/meta/README.md). Domestic authentication 0.0014 / 0.0012 /
/// 0.001 and authentication-international 0.028 / 0.025 / 0.02 for messages 1-1,000,
/// 1,001-5,000 and 5,001 on of the month.
const MADE_UP_INDIA_TIERS: &str = "\
effective_from,pricing_model,currency,market,category,tier_min,tier_max,rate,source
2026-10-01,PMP,USD,India,authentication,0,1000,0.0014,MADE-UP test tiers
2026-10-01,PMP,USD,India,authentication,1001,5000,0.0012,MADE-UP test tiers
2026-10-01,PMP,USD,India,authentication,5001,,0.001,MADE-UP test tiers
2026-10-01,PMP,USD,India,authentication_international,0,1000,0.028,MADE-UP test tiers
2026-10-01,PMP,USD,India,authentication_international,1001,5000,0.025,MADE-UP test tiers
2026-10-01,PMP,USD,India,authentication_international,5001,,0.02,MADE-UP test tiers
";

#[test]
fn an_indian_otp_flow_with_authentication_international_and_volume_tiers() {
    let dir = tmpdir("india-tiers");
    std::fs::write(dir.join("rates.csv"), MADE_UP_INDIA_TIERS).unwrap();
    let rates = dir.to_str().unwrap();
    let otp = |extra: &[&str]| {
        let mut args = vec![
            "--month",
            "2026-11",
            "--rates",
            rates,
            "--country",
            "IN",
            "--authentication",
            "6000",
        ];
        args.extend_from_slice(extra);
        estimate_json(&args)
    };

    // A Brazilian business eligible all month: every OTP to India is international.
    // 1,000 × 0.028 + 4,000 × 0.025 + 1,000 × 0.02 = 28 + 100 + 20 = 148.
    let v = otp(&["--primary-country", "BR", "--auth-international"]);
    let r = row(&v["estimate"], "India", "authentication_international");
    assert_eq!(
        prices(r),
        vec![
            ("0:1000".into(), "0.028".into(), 1000, "28".into()),
            ("1001:5000".into(), "0.025".into(), 4000, "100".into()),
            ("5001:MAX".into(), "0.02".into(), 1000, "20".into()),
        ]
    );
    assert_eq!(total(&v["estimate"]), "148");

    // Not eligible, or an Indian business: the domestic tiers.
    // 1,000 × 0.0014 + 4,000 × 0.0012 + 1,000 × 0.001 = 1.4 + 4.8 + 1 = 7.2.
    for extra in [
        &["--primary-country", "BR"][..],
        &["--primary-country", "IN", "--auth-international"][..],
    ] {
        let v = otp(extra);
        let r = row(&v["estimate"], "India", "authentication");
        assert_eq!(prices(r).len(), 3, "{extra:?}");
        assert_eq!(total(&v["estimate"]), "7.2", "{extra:?}");
    }

    // Eligible from 2026-11-16 (UTC): the 6,000 OTPs are 432 s apart from 00:03:36 on the 1st,
    // so 3,000 go before the 16th (domestic) and 3,000 after (international); both count on
    // one authentication tier counter (rules.md):
    //   domestic #1-3,000:      1,000 × 0.0014 + 2,000 × 0.0012 = 1.4 + 2.4 = 3.8
    //   international #3,001-6,000: 2,000 × 0.025 + 1,000 × 0.02 = 50 + 20 = 70
    let v = otp(&[
        "--primary-country",
        "BR",
        "--auth-international",
        "2026-11-16",
    ]);
    let e = &v["estimate"];
    let domestic = row(e, "India", "authentication");
    assert_eq!(count(domestic, "messages"), 3000);
    assert_eq!(domestic["amount"], "3.8");
    let intl = row(e, "India", "authentication_international");
    assert_eq!(
        prices(intl),
        vec![
            ("1001:5000".into(), "0.025".into(), 2000, "50".into()),
            ("5001:MAX".into(), "0.02".into(), 1000, "20".into()),
        ]
    );
    assert_eq!(total(e), "73.8");

    // Authentication-international needs to know which country is home.
    let out = wabill(
        &[
            "estimate",
            "--month",
            "2026-11",
            "--rates",
            rates,
            "--country",
            "IN",
            "--authentication",
            "10",
            "--auth-international",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("missing_primary_country"));
}

#[test]
fn an_imported_tier_card_prices_through_rates_dir() {
    // The fixture's (made-up) Kazakhstan utility tiers: list rate 0.018 up to 80,000 messages,
    // then 0.0171. 80,010 utility templates: 80,000 × 0.018 + 10 × 0.0171 = 1440 + 0.171.
    let dir = tmpdir("import");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../formats/tests/fixtures/meta/tier_card_usd_2026-10.csv");
    let rates = dir.join("rates");
    let out = wabill(
        &[
            "rates",
            "import",
            fixture.to_str().unwrap(),
            "--effective",
            "2026-10-01",
            "--into",
            rates.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v = estimate_json(&[
        "--month",
        "2026-11",
        "--rates",
        rates.to_str().unwrap(),
        "--country",
        "KZ",
        "--utility",
        "80010",
    ]);
    let r = row(&v["estimate"], "Kazakhstan", "utility");
    assert_eq!(
        prices(r),
        vec![
            ("0:80000".into(), "0.018".into(), 80_000, "1440".into()),
            ("80001:1000000".into(), "0.0171".into(), 10, "0.171".into()),
        ]
    );
    assert_eq!(total(&v["estimate"]), "1440.171");
}

#[test]
fn a_support_heavy_waba_before_and_after_2026_10_01() {
    // Brazil, rates in data/rates.csv: utility 0.0068 (2026-07-01 and 2026-10-01 cards),
    // service 0.0068 (2026-10-01). 5,000 service replies and 2,000 utility templates, half of
    // them in a customer service window, 10 % of conversations from a click-to-WhatsApp ad:
    //   entry point: 500 service + 200 utility, free in every era;
    //   utility: 1,000 in a window, 800 cold (2,000 - 200 - 1,000).
    let support = |month: &str, phones: &str| {
        estimate_json(&[
            "--month",
            month,
            "--market",
            "Brazil",
            "--service",
            "5000",
            "--utility",
            "2000",
            "--utility-in-window",
            "50%",
            "--entry-point-share",
            "100‰",
            "--phones",
            phones,
        ])
    };

    // 2026-09: service and utility in a window are free; 800 cold utility × 0.0068 = 5.44.
    for phones in ["1", "3"] {
        let v = support("2026-09", phones);
        let e = &v["estimate"];
        let s = row(e, "Brazil", "service");
        assert_eq!(count(s, "free_customer_service"), 4500);
        assert_eq!(count(s, "free_entry_point"), 500);
        assert_eq!(s["amount"], "0");
        let u = row(e, "Brazil", "utility");
        assert_eq!(count(u, "free_customer_service"), 1000);
        assert_eq!(count(u, "charged"), 800);
        assert_eq!(total(e), "5.44", "{phones} phone(s)");
    }

    // 2026-11, one phone: 1,000 service messages free, 3,500 × 0.0068 = 23.8; utility in a
    // window is charged now: 1,800 × 0.0068 = 12.24. Total 36.04.
    let v = support("2026-11", "1");
    let s = row(&v["estimate"], "Brazil", "service");
    assert_eq!(
        (
            count(s, "free_tier"),
            count(s, "charged"),
            count(s, "free_entry_point")
        ),
        (1000, 3500, 500)
    );
    assert_eq!(s["amount"], "23.8");
    assert_eq!(row(&v["estimate"], "Brazil", "utility")["amount"], "12.24");
    assert_eq!(total(&v["estimate"]), "36.04");

    // Three phones: 1,000 free each, 3,000 in all; 1,500 × 0.0068 = 10.2. Total 22.44.
    let v = support("2026-11", "3");
    let s = row(&v["estimate"], "Brazil", "service");
    assert_eq!((count(s, "free_tier"), count(s, "charged")), (3000, 1500));
    assert_eq!(s["amount"], "10.2");
    assert_eq!(total(&v["estimate"]), "22.44");

    // --compare: the same traffic in 2026-09, the last month before the 2026-10-01 era.
    let out = wabill(
        &[
            "estimate",
            "--month",
            "2026-11",
            "--market",
            "Brazil",
            "--service",
            "5000",
            "--utility",
            "2000",
            "--utility-in-window",
            "50%",
            "--entry-point-share",
            "10%",
            "--phones",
            "3",
            "--compare",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(
        table.contains(
            "Compared with 2026-09, the last month before the era of 2026-11 began (2026-10-01)"
        ),
        "{table}"
    );
    assert!(
        table.contains("change from 2026-09 to 2026-11: +17 USD"),
        "{table}"
    );
}

#[test]
fn compare_in_json_and_csv_says_which_month_was_used() {
    let args = [
        "estimate",
        "--month",
        "2025-12",
        "--market",
        "India",
        "--marketing",
        "1000",
        "--compare",
    ];
    let mut json_args = args.to_vec();
    json_args.extend(["--format", "json"]);
    let out = wabill(&json_args, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // PMP began 2025-07-01: the previous era's last month is 2025-06 (CBP). Rates from
    // data/rates.csv: PMP 2025-10-01 India marketing 0.0107; CBP 2025-02-01 India marketing
    // 0.0107 per conversation, and every synthetic message opens its own conversation.
    assert_eq!(v["compare"]["month"], "2025-06");
    assert_eq!(v["compare"]["pricing_model"], "CBP");
    assert_eq!(total(&v["estimate"]), "10.7");
    assert_eq!(total(&v["compare"]), "10.7");
    assert_eq!(v["change"][0]["amount"], "0");

    let mut csv_args = args.to_vec();
    csv_args.extend(["--format", "csv"]);
    let out = wabill(&csv_args, None);
    let csv = text(&out.stdout);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("month,pricing_model,currency,market,category"),
        "{csv}"
    );
    assert_eq!(
        lines[1],
        "2025-12,PMP,USD,India,marketing,1000,1000,0,0,0,0.0107,10.7"
    );
    assert_eq!(lines[2], "2025-12,PMP,USD,total,,1000,1000,0,0,0,,10.7");
    assert_eq!(
        lines[3],
        "2025-06,CBP,USD,India,marketing,1000,1000,0,0,0,0.0107,10.7"
    );
}

#[test]
fn many_markets_from_a_csv_or_json_file() {
    let dir = tmpdir("input");
    let csv = dir.join("traffic.csv");
    std::fs::write(
        &csv,
        "market,category,messages\nBrazil,marketing,1000\nIndia,utility,\"2,000\"\nNorth America,authentication,300\n",
    )
    .unwrap();
    let v = estimate_json(&["--month", "2026-11", "--input", csv.to_str().unwrap()]);
    let e = &v["estimate"];
    // data/rates.csv, 2026-10-01 PMP USD: Brazil marketing 0.0625 × 1,000 = 62.5; India
    // utility 0.0014 × 2,000 = 2.8; North America authentication 0.0034 × 300 = 1.02.
    assert_eq!(row(e, "Brazil", "marketing")["amount"], "62.5");
    assert_eq!(row(e, "India", "utility")["amount"], "2.8");
    assert_eq!(row(e, "North America", "authentication")["amount"], "1.02");
    assert_eq!(e["traffic"][2]["country"], "US");
    assert_eq!(total(e), "66.32");

    // The same traffic as JSON, from standard input, gives the same estimate.
    let json = r#"[{"market":"Brazil","category":"marketing","messages":1000},
                   {"country":"IN","category":"utility","messages":2000},
                   {"market":"North America","category":"authentication","messages":300}]"#;
    let out = wabill(
        &[
            "estimate", "--month", "2026-11", "--input", "-", "--format", "json",
        ],
        Some(json),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let w: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(w["estimate"]["rows"], e["rows"]);
    assert_eq!(w["estimate"]["totals"], e["totals"]);
}

#[test]
fn input_errors_exit_2_and_name_what_is_wrong() {
    let base = ["estimate", "--month", "2026-11"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--market", "Atlantis", "--marketing", "1"],
            "unknown market 'Atlantis'",
        ),
        (
            vec!["--country", "XX", "--marketing", "1"],
            "unknown country 'XX'",
        ),
        (
            vec![
                "--market",
                "Brazil",
                "--utility",
                "1",
                "--utility-in-window",
                "150%",
            ],
            "invalid value '150%' for '--utility-in-window <SHARE>': [invalid_share] share '150%': a share cannot be more than 100 %",
        ),
        (
            vec![
                "--market",
                "Brazil",
                "--utility",
                "1",
                "--entry-point-share", "-5%",
            ],
            "a share cannot be negative",
        ),
        (
            vec![
                "--market",
                "Brazil",
                "--utility",
                "1",
                "--utility-in-window",
                "70%",
                "--entry-point-share",
                "40%",
            ],
            "[inconsistent_shares]",
        ),
        (
            vec!["--market", "Brazil", "--utility", "1", "--phones", "0"],
            "[no_phones]",
        ),
        (
            vec!["--market", "Brazil"],
            "give its traffic with --marketing",
        ),
        (vec!["--marketing", "5"], "with --market or --country"),
        (
            vec![
                "--market",
                "Brazil",
                "--utility",
                "1",
                "--timezone",
                "Mars/Base",
            ],
            "timezone 'Mars/Base'",
        ),
        (
            vec![
                "--market",
                "Brazil",
                "--utility",
                "1",
                "--currency",
                "dollars",
            ],
            "currency 'dollars'",
        ),
        (
            vec!["--country", "GG", "--utility", "1"],
            "[no_calling_code]",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = base.to_vec();
        args.extend(&extra);
        let out = wabill(&args, None);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{extra:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert!(err.contains(expected), "{extra:?}: {err}");
        assert!(out.stdout.is_empty(), "{extra:?}");
    }

    // Months before conversation categories, and --compare in the first supported era.
    let out = wabill(
        &[
            "estimate",
            "--month",
            "2023-05",
            "--market",
            "Brazil",
            "--marketing",
            "1",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("month 2023-05: pricing before 2023-06"));
    let out = wabill(
        &[
            "estimate",
            "--month",
            "2024-03",
            "--market",
            "Brazil",
            "--marketing",
            "1",
            "--compare",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("[no_previous_era]"),
        "{}",
        text(&out.stderr)
    );

    // A traffic file with an unknown category names the line.
    let out = wabill(
        &["estimate", "--month", "2026-11", "--input", "-"],
        Some("market,category,messages\nBrazil,marketing,10\nBrazil,promotions,10\n"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown category 'promotions'"));
    let out = wabill(
        &["estimate", "--month", "2026-11", "--input", "-"],
        Some("market,category,messages\nBrazil,marketing,ten\n"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("traffic file line 2"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_missing_rate_exits_3_with_the_cores_words() {
    // data/SOURCES.md: the PMP 2025-07-01 USD card has no Brazil authentication row, and no
    // older PMP row exists (decisions.md D10).
    let out = wabill(
        &[
            "estimate",
            "--month",
            "2025-08",
            "--market",
            "Brazil",
            "--authentication",
            "10",
            "--marketing",
            "10",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(
        err.contains("[missing_rate] no PMP rate for currency USD, market 'Brazil', category authentication on 2025-08-02 (10 messages)"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    // A currency with no rate card at all.
    let out = wabill(
        &[
            "estimate",
            "--month",
            "2026-11",
            "--currency",
            "JPY",
            "--market",
            "Brazil",
            "--marketing",
            "1",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("currency JPY, market 'Brazil', category marketing"));
}
