//! The algebra of rating: the same set of events gives the same charges, byte for byte,
//! whatever the order of the lines and however often a line is repeated; events arriving late
//! (a status after later sends, an inbound after the reply) re-rate to the batch result; the
//! total is the sum of the lines.

use proptest::prelude::*;
use wabill_formats::{charges, parse_line, Parsed};
use wabill_rating::{rate, Decimal, RateOptions, Tariff};

const ACCOUNTS: [&str; 2] = [
    r#"{"kind":"account","waba":"W1","portfolio":"B","timezone":"America/Sao_Paulo","currency":"USD","primary_country":"BR","auth_international":{"start":"2024-01-01T00:00:00Z"}}"#,
    r#"{"kind":"account","waba":"W2","portfolio":"B","timezone":"Asia/Kolkata","currency":"USD","primary_country":"IN"}"#,
];
const USERS: [&str; 4] = [
    "5511988887777",
    "919800000001",
    "6281200000003",
    "12125550100",
];
/// The users' business-scoped ids (BSUIDs), of their numbers' countries.
const BSUIDS: [&str; 4] = ["BR.1502576394655843", "IN.77", "ID.3", "US.ENT.4"];
/// Start instants (Unix seconds) of the periods streams are drawn from: around the CBP→PMP
/// switch, inside PMP, and around the 2026-10-01 switch.
const PERIODS: [i64; 3] = [1_751_155_200, 1_762_128_000, 1_759_104_000];

/// One generated action; turned into one or two lines.
#[derive(Debug, Clone)]
struct Action {
    kind: u8,
    user: usize,
    waba: usize,
    minutes: i64,
    category: u8,
    status: u8,
}

fn action() -> impl Strategy<Value = Action> {
    (
        0u8..10,
        0usize..USERS.len(),
        0usize..2,
        0i64..(5 * 24 * 60),
        0u8..6,
        0u8..8,
    )
        .prop_map(|(kind, user, waba, minutes, category, status)| Action {
            kind,
            user,
            waba,
            minutes,
            category,
            status,
        })
}

fn time(period: usize, minutes: i64) -> i64 {
    PERIODS[period] + minutes * 60
}

fn lines_of(period: usize, actions: &[Action]) -> Vec<String> {
    lines_named(period, actions, 0)
}

/// The lines of `actions`, each message naming its user by number, by BSUID or by both as the
/// bits of `naming` say (two per action: 0 or 3 number, 1 BSUID, 2 both). With any BSUID, a
/// system line for every user links their number and BSUID without opening anything.
fn lines_named(period: usize, actions: &[Action], naming: u128) -> Vec<String> {
    let mut lines: Vec<String> = ACCOUNTS.iter().map(|s| s.to_string()).collect();
    for (i, a) in actions.iter().enumerate() {
        let at = time(period, a.minutes);
        let waba = ["W1", "W2"][a.waba];
        let phone = ["15550001111", "15550002222"][a.waba];
        let user = match (naming >> (2 * (i % 64))) & 3 {
            1 => format!(r#""user_id":"{}""#, BSUIDS[a.user]),
            2 => format!(
                r#""user":"{}","user_id":"{}""#,
                USERS[a.user], BSUIDS[a.user]
            ),
            _ => format!(r#""user":"{}""#, USERS[a.user]),
        };
        if a.kind < 3 {
            let ep = if a.kind == 0 {
                r#","entry_point":"ctwa""#
            } else {
                ""
            };
            lines.push(format!(
                r#"{{"kind":"inbound","id":"in{i}","at":"{at}","waba":"{waba}","phone":"{phone}",{user}{ep}}}"#
            ));
            continue;
        }
        let what = match a.category {
            0 => r#""type":"text""#,
            1 => r#""type":"template","category":"marketing""#,
            2 => r#""type":"template","category":"utility""#,
            3 => r#""type":"template","category":"authentication""#,
            4 => r#""type":"template","category":"marketing","api":"marketing_messages""#,
            _ => r#""type":"image""#,
        };
        lines.push(format!(
            r#"{{"kind":"outbound","id":"out{i}","at":"{at}","waba":"{waba}","phone":"{phone}",{user},{what}}}"#
        ));
        let status = match a.status {
            0 => None,
            1 => Some("failed"),
            2 => Some("read"),
            _ => Some("delivered"),
        };
        if let Some(st) = status {
            lines.push(format!(
                r#"{{"kind":"status","id":"out{i}","at":"{}","status":"{st}"}}"#,
                at + 1 + (a.status as i64)
            ));
        }
    }
    if naming != 0 {
        for (u, (number, bsuid)) in USERS.iter().zip(BSUIDS).enumerate() {
            lines.push(format!(
                r#"{{"kind":"inbound","id":"link{u}","at":"{}","waba":"W1","phone":"15550001111","user":"{number}","system":"user_changed_user_id","new_user_id":"{bsuid}"}}"#,
                PERIODS[period]
            ));
        }
    }
    lines
}

/// The lines of `actions` as Meta's webhooks give them: inbound messages as they are, and each
/// outbound message as its statuses only, a `sent` one at the send instant and the action's
/// own, each naming the message (WABA, business phone, recipient) and the category `billed`
/// says (or, for a message with no charge line, its own). Half the statuses are
/// Meta's envelopes, half wabill's status lines with the same fields.
fn webhook_lines(
    period: usize,
    actions: &[Action],
    billed: &std::collections::HashMap<String, String>,
) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for l in lines_of(period, actions) {
        if !l.contains(r#""kind":"outbound""#) && !l.contains(r#""kind":"status""#) {
            lines.push(l);
        }
    }
    for (i, a) in actions.iter().enumerate() {
        if a.kind < 3 {
            continue;
        }
        let at = time(period, a.minutes);
        let waba = ["W1", "W2"][a.waba];
        let phone = ["15550001111", "15550002222"][a.waba];
        let user = USERS[a.user];
        let id = format!("out{i}");
        // A message with no charge line (an error) is billed in its own category.
        let own = [
            "service",
            "marketing",
            "utility",
            "authentication",
            "marketing_lite",
            "service",
        ];
        let category = Some(
            billed
                .get(&id)
                .map_or(own[a.category as usize], |c| c.as_str()),
        );
        let mut statuses = vec![("sent", at)];
        match a.status {
            0 => {}
            1 => statuses.push(("failed", at + 1 + a.status as i64)),
            2 => statuses.push(("read", at + 1 + a.status as i64)),
            _ => statuses.push(("delivered", at + 1 + a.status as i64)),
        }
        for (n, (status, when)) in statuses.into_iter().enumerate() {
            if (i + n) % 2 == 0 {
                let pricing = category
                    .map(|c| format!(r#","pricing":{{"pricing_model":"PMP","category":"{c}"}}"#))
                    .unwrap_or_default();
                lines.push(format!(
                    r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{waba}","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"{phone}","phone_number_id":"1"}},"statuses":[{{"id":"{id}","status":"{status}","timestamp":"{when}","recipient_id":"{user}"{pricing}}}]}}}}]}}]}}"#
                ));
            } else {
                let category = category
                    .map(|c| format!(r#","category":"{c}""#))
                    .unwrap_or_default();
                lines.push(format!(
                    r#"{{"kind":"status","id":"{id}","at":"{when}","status":"{status}","waba":"{waba}","phone":"{phone}","user":"{user}"{category}}}"#
                ));
            }
        }
    }
    lines
}

/// Rates the lines and returns the output bytes (charges, then errors: some periods reach
/// partial rate cards, and errors must be as deterministic as charges), the total and the
/// number of charge lines.
fn rate_lines(lines: &[String]) -> (Vec<u8>, Decimal, usize) {
    let tariff = Tariff::bundled();
    let mut parsed = Parsed::default();
    for (i, l) in lines.iter().enumerate() {
        parse_line(l, i as u64 + 1, &mut parsed).expect("generated lines are valid");
    }
    let rated = rate(&tariff, &[], &parsed.events, RateOptions::default());
    let mut out = Vec::new();
    for c in &rated.charges {
        charges::write_json(&mut out, c, &tariff);
    }
    for e in &rated.errors {
        out.extend_from_slice(format!("error: {e}\n").as_bytes());
    }
    let total = rated.charges.iter().map(|c| c.amount).sum();
    (out, total, rated.charges.len())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn any_order_and_any_repetition_give_the_same_bytes(
        period in 0usize..PERIODS.len(),
        actions in prop::collection::vec(action(), 1..60),
        seed in any::<u64>(),
        dup_every in 2usize..7,
    ) {
        let lines = lines_of(period, &actions);
        let (expected, _, _) = rate_lines(&lines);
        // Permute with a seeded Fisher-Yates and repeat every n-th line.
        let mut shuffled = lines.clone();
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let dups: Vec<String> = shuffled.iter().step_by(dup_every).cloned().collect();
        shuffled.extend(dups);
        let (actual, _, _) = rate_lines(&shuffled);
        prop_assert_eq!(String::from_utf8(actual).unwrap(), String::from_utf8(expected).unwrap());
    }

    #[test]
    fn late_statuses_and_inbounds_rerate_to_the_batch_result(
        period in 0usize..PERIODS.len(),
        actions in prop::collection::vec(action(), 1..60),
        late_mask in any::<u64>(),
    ) {
        let lines = lines_of(period, &actions);
        let (batch, _, _) = rate_lines(&lines);
        // Hold back some statuses and inbounds, rate what came first, then everything.
        let (mut early, mut late) = (Vec::new(), Vec::new());
        for (i, l) in lines.iter().enumerate() {
            let holdable = l.contains(r#""kind":"status""#) || l.contains(r#""kind":"inbound""#);
            if holdable && late_mask >> (i % 64) & 1 == 1 { late.push(l.clone()) } else { early.push(l.clone()) }
        }
        let (first, _, n_first) = rate_lines(&early);
        let mut all = early.clone();
        all.extend(late.iter().cloned());
        let (after, _, n_after) = rate_lines(&all);
        // (A message free with every event may need a missing rate without the late ones.)
        let clean = |b: &[u8]| !String::from_utf8_lossy(b).contains("error: ");
        if clean(&after) && clean(&first) {
            prop_assert_eq!(n_first, n_after, "one line per outbound message, whatever is late");
        }
        prop_assert_eq!(&after, &batch);
        if late.is_empty() { prop_assert_eq!(&first, &batch); }
    }

    /// Windows, free entry points, CBP conversations, allowances and tiers follow the person:
    /// naming users by BSUID, by number or both, once their identities are linked, gives the
    /// charges of naming them by number (but for the `user` each line names), in any order.
    #[test]
    fn a_user_is_the_same_person_by_number_or_by_bsuid_in_any_order(
        period in 0usize..PERIODS.len(),
        actions in prop::collection::vec(action(), 1..60),
        naming in any::<u128>(),
        seed in any::<u64>(),
    ) {
        let by_number = String::from_utf8(rate_lines(&lines_of(period, &actions)).0).unwrap();
        let mut lines = lines_named(period, &actions, naming | 1);
        let (named, _, _) = rate_lines(&lines);
        let mut named = String::from_utf8(named).unwrap();
        for (number, bsuid) in USERS.iter().zip(BSUIDS) {
            named = named.replace(&format!(r#""user":"{bsuid}""#), &format!(r#""user":"{number}""#));
        }
        prop_assert_eq!(&named, &by_number);
        let mut x = seed | 1;
        for i in (1..lines.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            lines.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let (shuffled, _, _) = rate_lines(&lines);
        let mut shuffled = String::from_utf8(shuffled).unwrap();
        for (number, bsuid) in USERS.iter().zip(BSUIDS) {
            shuffled = shuffled.replace(&format!(r#""user":"{bsuid}""#), &format!(r#""user":"{number}""#));
        }
        prop_assert_eq!(&shuffled, &by_number);
    }

    /// Webhooks alone are enough (issue 14, point 1): the same traffic given as Meta's status
    /// webhooks only (a `sent` status and the delivery statuses, naming the WABA, the business
    /// phone, the recipient and the category Meta bills), without outbound events, gives the
    /// charges of the outbound events, in any order (decisions.md D110).
    #[test]
    fn statuses_alone_give_the_charges_of_the_outbound_events_in_any_order(
        period in 0usize..PERIODS.len(),
        actions in prop::collection::vec(action(), 1..60),
        seed in any::<u64>(),
    ) {
        let events = lines_of(period, &actions);
        let (expected, _, _) = rate_lines(&events);
        let expected = String::from_utf8(expected).unwrap();
        // What Meta bills each message as: here, what wabill says (Meta agreeing).
        let billed: std::collections::HashMap<String, String> = expected
            .lines()
            .filter(|l| !l.starts_with("error: "))
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (v["id"].as_str().unwrap().to_string(), v["category"].as_str().unwrap().to_string())
            })
            .collect();
        let mut hooks = webhook_lines(period, &actions, &billed);
        let (got, _, _) = rate_lines(&hooks);
        prop_assert_eq!(String::from_utf8(got).unwrap(), expected.clone());
        let mut x = seed | 1;
        for i in (1..hooks.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            hooks.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let (shuffled, _, _) = rate_lines(&hooks);
        prop_assert_eq!(String::from_utf8(shuffled).unwrap(), expected);
    }

    #[test]
    fn the_total_is_the_sum_of_the_lines_and_billable_means_positive(
        period in 0usize..PERIODS.len(),
        actions in prop::collection::vec(action(), 1..60),
    ) {
        let lines = lines_of(period, &actions);
        let (out, total, _) = rate_lines(&lines);
        let mut sum = Decimal::ZERO;
        for l in String::from_utf8(out).unwrap().lines().filter(|l| !l.starts_with("error: ")) {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let amount: Decimal = v["amount"].as_str().unwrap().parse().unwrap();
            prop_assert_eq!(v["billable"].as_bool().unwrap(), amount.is_positive());
            prop_assert_eq!(v["rate"].is_null(), !amount.is_positive());
            sum += amount;
        }
        prop_assert_eq!(sum, total);
    }
}

#[test]
fn a_late_delivery_changes_later_charges_exactly_as_in_the_batch() {
    // The delivery of m1 (which opens a CBP marketing conversation) arrives after m2 was sent:
    // m2 must ride m1's conversation whether the status is early or late in the input.
    let head = [
        ACCOUNTS[0].to_string(),
        r#"{"kind":"outbound","id":"m1","at":"2025-03-03T10:00:00Z","waba":"W1","phone":"15550001111","user":"5511988887777","type":"template","category":"marketing"}"#.to_string(),
        r#"{"kind":"outbound","id":"m2","at":"2025-03-03T12:00:00Z","waba":"W1","phone":"15550001111","user":"5511988887777","type":"template","category":"marketing"}"#.to_string(),
        r#"{"kind":"status","id":"m2","at":"2025-03-03T12:00:01Z","status":"delivered"}"#.to_string(),
    ];
    let status = r#"{"kind":"status","id":"m1","at":"2025-03-03T10:00:01Z","status":"delivered"}"#
        .to_string();
    let (without, total_without, _) = rate_lines(&head);
    let mut late = head.to_vec();
    late.push(status.clone());
    let mut early = vec![status];
    early.extend(head.iter().cloned());
    let (with_late, total_late, _) = rate_lines(&late);
    let (with_early, _, _) = rate_lines(&early);
    assert_eq!(with_late, with_early);
    assert_ne!(with_late, without);
    // Before the status, m2 opened the conversation; after it, m1 did and m2 rides: same total.
    assert_eq!(total_without, total_late);
    let text = String::from_utf8(with_late).unwrap();
    assert!(
        text.lines().nth(1).unwrap().contains(r#""amount":"0""#),
        "{text}"
    );
}
