//! Properties of generated streams, checked line by line with a real JSON parser:
//! determinism, the exact line shapes of `events.md`, unique ids apart from the intended
//! repeats, statuses that point at generated messages, the requested size, well-formed
//! numbers and times, and the platform's own constraints (free-form replies only inside the
//! service window).

use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use wabill_gen::{generate, GenConfig, GenStats};

/// A JSON object as parsed, with its top-level keys in written order (serde_json's `Map`
/// sorts them, and the order is part of the format).
struct Ordered {
    keys: Vec<String>,
    map: Map<String, Value>,
}

impl Ordered {
    fn parse(line: &str) -> Ordered {
        let map: Map<String, Value> =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        // The parser has vouched for the syntax; walk the text for the order of the keys at
        // depth one: a string right after `{` or `,` at that depth is a key.
        let mut keys = Vec::new();
        let (mut depth, mut in_string, mut escaped) = (0, false, false);
        let mut expect_key = false;
        let mut current = String::new();
        let mut is_key = false;
        for c in line.chars() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = false;
                    if is_key {
                        keys.push(serde_json::from_str(&format!("\"{current}\"")).unwrap());
                    }
                    continue;
                }
                if is_key {
                    current.push(c);
                }
                continue;
            }
            match c {
                '"' => {
                    in_string = true;
                    is_key = depth == 1 && expect_key;
                    expect_key = false;
                    current.clear();
                }
                '{' | '[' => {
                    depth += 1;
                    expect_key = depth == 1;
                }
                '}' | ']' => depth -= 1,
                ',' => expect_key = depth == 1,
                _ => {}
            }
        }
        assert_eq!(keys.len(), map.len(), "{line}");
        Ordered { keys, map }
    }
}

fn run(cfg: &GenConfig) -> (Vec<u8>, GenStats) {
    let mut out = Vec::new();
    let stats = generate(cfg, &mut out).expect("generate");
    (out, stats)
}

fn small(seed: u64) -> GenConfig {
    GenConfig {
        seed,
        events: 30_000,
        wabas: 12,
        users: 5_000,
        phones_per_waba: 3,
        days: 5,
        ..GenConfig::default()
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SSZ`, checking the exact format.
fn instant(s: &str) -> i64 {
    let b = s.as_bytes();
    assert_eq!(b.len(), 20, "{s}");
    for (i, &c) in b.iter().enumerate() {
        let want_digit = !matches!(i, 4 | 7 | 10 | 13 | 16 | 19);
        assert_eq!(c.is_ascii_digit(), want_digit, "{s}");
    }
    assert_eq!(
        (b[4], b[7], b[10], b[13], b[16], b[19]),
        (b'-', b'-', b'T', b':', b':', b'Z'),
        "{s}"
    );
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    assert!((1..=12).contains(&m) && (1..=31).contains(&d), "{s}");
    assert!(n(11..13) < 24 && n(14..16) < 60 && n(17..19) < 60, "{s}");
    // Days from civil (Hinnant), independent of the crate's own.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

fn keys(o: &Ordered) -> Vec<&str> {
    o.keys.iter().map(String::as_str).collect()
}

fn get<'a>(o: &'a Ordered, key: &str) -> &'a str {
    o.map
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("missing string field {key}"))
}

fn wamid(id: &str) {
    let hex = id.strip_prefix("wamid.").unwrap_or_else(|| panic!("{id}"));
    assert!(
        !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
}

/// What a stream was found to contain.
#[derive(Default, Debug)]
struct Seen {
    accounts: u32,
    auth_international: u32,
    inbound: u64,
    entry_points: u64,
    outbound: u64,
    statuses: u64,
    repeats: u64,
    statuses_before_outbound: u64,
    out_of_order: u64,
    users: HashSet<String>,
    sends_per_day: Vec<u64>,
    types: HashMap<String, u64>,
}

/// Checks every documented property of a stream and returns what it contains.
fn check(cfg: &GenConfig, bytes: &[u8], stats: &GenStats) -> Seen {
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    assert!(text.is_empty() || text.ends_with('\n'));
    let t0 = instant(&format!("{}T00:00:00Z", cfg.start));
    let end = t0 + i64::from(cfg.days) * 86_400;
    let mut seen = Seen {
        sends_per_day: vec![0; cfg.days as usize],
        ..Seen::default()
    };
    let mut wabas = HashSet::new();
    let mut phone_owner: HashMap<String, String> = HashMap::new();
    let mut lines_by_id: HashMap<(String, String), &str> = HashMap::new();
    let mut outbound_ids = HashSet::new();
    let mut inbound_ids = HashSet::new();
    let mut status_ids = Vec::new();
    let mut inbound_at: HashMap<(String, String), Vec<i64>> = HashMap::new();
    let mut free_form: Vec<((String, String), i64)> = Vec::new();
    let mut latest = i64::MIN;
    let mut after_accounts = false;

    for line in text.lines() {
        let o = Ordered::parse(line);
        let k = keys(&o);
        assert_eq!(k[0], "kind", "{line}");
        let kind = get(&o, "kind");
        if kind == "account" {
            assert!(!after_accounts, "accounts come first");
            seen.accounts += 1;
            let base = [
                "kind",
                "waba",
                "portfolio",
                "timezone",
                "currency",
                "primary_country",
            ];
            assert_eq!(&k[..6], base, "{line}");
            assert_eq!(get(&o, "currency"), "USD");
            assert_eq!(get(&o, "primary_country").len(), 2);
            assert!(get(&o, "portfolio").starts_with('B'));
            assert!(
                wabas.insert(get(&o, "waba").to_string()),
                "WABA twice: {line}"
            );
            if k.len() == 7 {
                assert_eq!(k[6], "auth_international");
                seen.auth_international += 1;
                let ai = &o.map["auth_international"];
                let start = instant(ai["start"].as_str().unwrap());
                assert!(
                    start < t0,
                    "auth_international starts before the stream: {line}"
                );
                if let Some(ex) = ai.get("exception_countries") {
                    let ex = ex.as_object().unwrap();
                    assert_eq!(ex.len(), 1);
                    for (country, at) in ex {
                        assert_eq!(country.len(), 2);
                        assert_ne!(country, get(&o, "primary_country"));
                        instant(at.as_str().unwrap());
                    }
                }
            } else {
                assert_eq!(k.len(), 6, "{line}");
            }
            continue;
        }
        after_accounts = true;

        let id = get(&o, "id").to_string();
        wamid(&id);
        let at = instant(get(&o, "at"));
        assert!(at >= t0, "{line}");
        if at < latest {
            seen.out_of_order += 1;
        }
        latest = at;

        // A repeated id is only ever a verbatim repeat of its line.
        let slot = if kind == "status" {
            (format!("status:{}", get(&o, "status")), id.clone())
        } else {
            (kind.to_string(), id.clone())
        };
        if let Some(prev) = lines_by_id.insert(slot, line) {
            assert_eq!(prev, line, "id reused by a different line");
            seen.repeats += 1;
            continue;
        }

        match kind {
            "inbound" | "outbound" => {
                assert!(at < end, "send after the span: {line}");
                seen.sends_per_day[((at - t0) / 86_400) as usize] += 1;
                assert_eq!(&k[1..6], ["id", "at", "waba", "phone", "user"], "{line}");
                let (waba, phone, user) = (get(&o, "waba"), get(&o, "phone"), get(&o, "user"));
                assert!(wabas.contains(waba), "unknown WABA: {line}");
                assert!(is_digits(phone), "{line}");
                let owner = phone_owner
                    .entry(phone.to_string())
                    .or_insert(waba.to_string());
                assert_eq!(owner, waba, "a phone belongs to one WABA");
                assert!(is_digits(user), "{line}");
                assert!(
                    (10..=13).contains(&user.len()) && !user.starts_with('0'),
                    "{line}"
                );
                seen.users.insert(user.to_string());
                let pair = (phone.to_string(), user.to_string());
                if kind == "inbound" {
                    seen.inbound += 1;
                    assert!(!outbound_ids.contains(&id) && inbound_ids.insert(id.clone()));
                    match k.len() {
                        6 => {}
                        7 => {
                            assert_eq!(k[6], "entry_point");
                            assert!(matches!(get(&o, "entry_point"), "ctwa" | "page_cta"));
                            seen.entry_points += 1;
                        }
                        _ => panic!("{line}"),
                    }
                    inbound_at.entry(pair).or_default().push(at);
                } else {
                    seen.outbound += 1;
                    assert!(!inbound_ids.contains(&id) && outbound_ids.insert(id.clone()));
                    assert_eq!(k[6], "type", "{line}");
                    let ty = get(&o, "type");
                    let mut label = ty.to_string();
                    if ty == "template" {
                        assert_eq!(k.get(7), Some(&"category"), "{line}");
                        let cat = get(&o, "category");
                        assert!(matches!(cat, "marketing" | "utility" | "authentication"));
                        label = format!("{ty}/{cat}");
                        if k.len() == 9 {
                            assert_eq!(k[8], "api");
                            assert_eq!(get(&o, "api"), "marketing_messages");
                            assert_eq!(cat, "marketing");
                            label.push_str("/marketing_messages");
                        } else {
                            assert_eq!(k.len(), 8, "{line}");
                        }
                    } else {
                        assert!(matches!(ty, "text" | "image" | "interactive"), "{line}");
                        assert_eq!(k.len(), 7, "{line}");
                        free_form.push((pair, at));
                    }
                    *seen.types.entry(label).or_default() += 1;
                }
            }
            "status" => {
                seen.statuses += 1;
                assert_eq!(k, ["kind", "id", "at", "status"], "{line}");
                let status = get(&o, "status");
                assert!(matches!(status, "sent" | "delivered" | "read" | "failed"));
                if !outbound_ids.contains(&id) {
                    seen.statuses_before_outbound += 1;
                }
                status_ids.push(id);
            }
            other => panic!("unknown kind {other}: {line}"),
        }
    }

    for id in &status_ids {
        assert!(
            outbound_ids.contains(id),
            "status for a message never sent: {id}"
        );
    }
    // The platform only lets free-form messages through an open service window.
    for (pair, at) in free_form {
        let ins = &inbound_at[&pair];
        assert!(
            ins.iter().any(|&u| u <= at && at < u + 86_400),
            "free-form message outside the window: {pair:?} at {at}"
        );
    }
    assert_eq!(seen.accounts, cfg.wabas);
    assert_eq!(stats.accounts, cfg.wabas);
    assert_eq!(
        stats.lines, cfg.events,
        "exactly the requested number of lines"
    );
    assert_eq!(
        stats.lines,
        seen.inbound + seen.outbound + seen.statuses + seen.repeats
    );
    assert_eq!(
        (
            stats.inbound,
            stats.outbound,
            stats.statuses,
            stats.duplicates
        ),
        (seen.inbound, seen.outbound, seen.statuses, seen.repeats)
    );
    assert!(seen.users.len() as u64 <= cfg.users);
    seen
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let (a, sa) = run(&small(42));
    let (b, sb) = run(&small(42));
    assert_eq!(a, b);
    assert_eq!(sa, sb);
    let (c, _) = run(&small(43));
    assert_ne!(a, c);
    let (d, _) = run(&GenConfig {
        shuffle_statuses: false,
        ..small(42)
    });
    assert_ne!(a, d);
}

#[test]
fn default_shaped_stream_is_valid_and_realistic() {
    let cfg = GenConfig {
        seed: 7,
        events: 200_000,
        ..GenConfig::default()
    };
    let (bytes, stats) = run(&cfg);
    let seen = check(&cfg, &bytes, &stats);
    let share = |n: u64| n * 1000 / stats.lines;
    // Roughly: a tenth inbound, a quarter outbound, the rest statuses (see lib.rs).
    assert!((60..200).contains(&share(seen.inbound)), "{seen:?}");
    assert!((150..350).contains(&share(seen.outbound)), "{seen:?}");
    assert!((500..750).contains(&share(seen.statuses)), "{seen:?}");
    assert!((2..10).contains(&share(seen.repeats)), "{seen:?}");
    let ep = seen.entry_points * 1000 / seen.inbound;
    assert!((20..100).contains(&ep), "entry points {ep}‰ of inbound");
    assert!(seen.statuses_before_outbound > 0, "shuffled statuses exist");
    assert!(
        seen.out_of_order * 100 < stats.lines * 5,
        "mostly in time order"
    );
    for ty in [
        "text",
        "image",
        "interactive",
        "template/marketing",
        "template/marketing/marketing_messages",
        "template/utility",
        "template/authentication",
    ] {
        assert!(
            seen.types.get(ty).copied().unwrap_or(0) > 100,
            "{ty}: {:?}",
            seen.types
        );
    }
    // Spread over the whole span, weekdays busier than weekends, no day starved or flooded.
    let mean = seen.sends_per_day.iter().sum::<u64>() / u64::from(cfg.days);
    for (day, &n) in seen.sends_per_day.iter().enumerate() {
        assert!(
            n * 2 > mean && n < mean * 2,
            "day {day}: {n} sends, mean {mean}"
        );
    }
    assert!(
        (3..=20).contains(&seen.auth_international),
        "about one WABA in five: {}",
        seen.auth_international
    );
}

#[test]
fn ordered_when_not_shuffled_and_not_repeated() {
    let cfg = GenConfig {
        shuffle_statuses: false,
        duplicate_permille: 0,
        ..small(3)
    };
    let (bytes, stats) = run(&cfg);
    let seen = check(&cfg, &bytes, &stats);
    assert_eq!(seen.out_of_order, 0);
    assert_eq!(seen.statuses_before_outbound, 0);
    assert_eq!(seen.repeats, 0);
}

#[test]
fn heavy_repeats_and_reordering_keep_every_invariant() {
    let cfg = GenConfig {
        duplicate_permille: 200,
        ..small(9)
    };
    let (bytes, stats) = run(&cfg);
    let seen = check(&cfg, &bytes, &stats);
    assert!(seen.repeats > cfg.events / 10, "{seen:?}");
}

#[test]
fn exact_sizes_even_when_tiny_or_dense() {
    for (events, days) in [(0, 1), (1, 1), (2, 3), (17, 1), (999, 30), (5_000, 1)] {
        for seed in 0..3 {
            let cfg = GenConfig {
                seed,
                events,
                days,
                wabas: 3,
                users: 40,
                phones_per_waba: 1,
                ..GenConfig::default()
            };
            let (bytes, stats) = run(&cfg);
            check(&cfg, &bytes, &stats);
            let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
            assert_eq!(lines, events + 3);
        }
    }
}

#[test]
fn a_single_user_and_a_single_waba_work() {
    let cfg = GenConfig {
        events: 2_000,
        wabas: 1,
        users: 1,
        phones_per_waba: 1,
        days: 2,
        ..GenConfig::default()
    };
    let (bytes, stats) = run(&cfg);
    let seen = check(&cfg, &bytes, &stats);
    assert_eq!(seen.users.len(), 1);
}

#[test]
fn users_are_the_same_people_across_seeds() {
    // A user index is one stable number: streams with different seeds draw from the same
    // population, so together they still have at most `users` numbers.
    let users = |seed| {
        let cfg = GenConfig {
            users: 300,
            ..small(seed)
        };
        let (bytes, stats) = run(&cfg);
        check(&cfg, &bytes, &stats).users
    };
    let (a, b) = (users(1), users(2));
    assert!(a.len() > 250 && b.len() > 250, "{} {}", a.len(), b.len());
    assert!(a.union(&b).count() <= 300);
}

#[test]
fn other_start_dates_and_long_spans() {
    let cfg = GenConfig {
        start: "2024-02-28".into(),
        days: 400,
        events: 20_000,
        ..small(5)
    };
    let (bytes, stats) = run(&cfg);
    check(&cfg, &bytes, &stats);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("\"at\":\"2024-02-29T"));
    assert!(text.contains("\"at\":\"2025-03-"));
}

#[test]
fn output_is_pinned() {
    // Guards byte-for-byte stability across machines and releases: benchmarks and recorded
    // test cases are reproduced from (seed, config). If a deliberate change to the generator
    // moves this value, update it and say so in the change's notes. (Moved when the default
    // start became 2026-10-02, so that no WABA timezone is still in September.)
    let (bytes, _) = run(&GenConfig {
        events: 5_000,
        ..small(1)
    });
    let fnv = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    assert_eq!(
        fnv, 0x1884_393e_3e2f_2e1b,
        "stream bytes changed: {fnv:#018x}"
    );
}

#[test]
fn key_order_reader_sees_top_level_keys_only() {
    let o = Ordered::parse(
        r#"{"kind":"account","waba":"W\"1","auth_international":{"start":"x","exception_countries":{"IN":"y"}},"z":[{"a":1}]}"#,
    );
    assert_eq!(keys(&o), ["kind", "waba", "auth_international", "z"]);
}
