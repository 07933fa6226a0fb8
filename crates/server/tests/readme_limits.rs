//! README's table of input limits is the code's: every row is rendered here from the constant
//! it states, and the table holds exactly these rows (decisions.md D78).

use wabill_estimate::request::MAX_MARKET_CHARS;
use wabill_estimate::{
    MAX_CALL_MINUTES, MAX_CALL_SECONDS, MAX_MESSAGES, MAX_PHONES, MAX_TRAFFIC_LINES,
};
use wabill_formats::{limits, time};
use wabill_server::api::{MAX_AUDIT_ROWS, MAX_BODY_BYTES, MAX_EVENTS_PER_REQUEST, MAX_PAGE_ROWS};
use wabill_server::handlers::estimate::MAX_ESTIMATE_BODY_BYTES;
use wabill_server::limits::{
    DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_REQUEST_TIMEOUT,
};

/// The rows README must show, in order.
fn rows() -> Vec<String> {
    let mut rows: Vec<String> = limits::ALL
        .iter()
        .map(|l| {
            format!(
                "| {} | {} characters | {} (D72, D77) |",
                l.field
                    .split(", ")
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                l.max_chars,
                l.source
            )
        })
        .collect();
    rows.push(format!(
        "| `auth_international.exception_countries` | {} countries | ISO 3166 has 249 codes (D72) |",
        limits::EXCEPTION_COUNTRIES
    ));
    rows.push(
        "| a phone number's digits (`phone`, `user`, Meta's `from` and `display_phone_number`) | 15 digits, \
         the first not 0 | E.164, the numbers Meta's WhatsApp ids are (D72) |"
            .to_string(),
    );
    rows.push(format!(
        "| every instant (RFC 3339 or Unix seconds, lines and parameters alike) | {} | D70 |",
        time::RANGE
    ));
    rows.push(
        "| an instant's precision | a millisecond: a finer fraction, or a leap second (`:60`), \
         is refused | D71 |"
            .to_string(),
    );
    rows.push(format!(
        "| a request body | {} MiB (`--max-body-bytes`), beyond: `413 payload_too_large` | D73 |",
        MAX_BODY_BYTES >> 20
    ));
    rows.push(format!(
        "| events of one `POST /v1/events` or signed webhook | {MAX_EVENTS_PER_REQUEST} (an \
         envelope's messages and statuses counted as read), beyond: `413 too_many_events` | \
         D73, D75 |"
    ));
    rows.push(format!(
        "| `limit` of `GET /v1/charges` | 1 to {MAX_PAGE_ROWS} rows | D77 |"
    ));
    rows.push(format!(
        "| `limit` of `GET /v1/audit` | 1 to {MAX_AUDIT_ROWS} entries | D88 |"
    ));
    rows.push(format!(
        "| a `POST /v1/estimate` body | {} KiB, beyond: `413 payload_too_large` | D172 |",
        MAX_ESTIMATE_BODY_BYTES >> 10
    ));
    rows.push(format!(
        "| an estimate's traffic | {MAX_TRAFFIC_LINES} lines, {MAX_MESSAGES} messages in all, \
         {MAX_PHONES} phone numbers, market names of {MAX_MARKET_CHARS} characters; one \
         estimate computed at a time, the others wait | D172 |"
    ));
    rows.push(format!(
        "| an estimate's calls | 0 to {MAX_CALL_MINUTES} `call_minutes`, `average_call_seconds` \
         1 to {MAX_CALL_SECONDS} | D162 |"
    ));
    rows.push(format!(
        "| a request's headers | {} s from its first byte (`--header-timeout-secs`) | D82, D84 |",
        DEFAULT_HEADER_TIMEOUT.as_secs()
    ));
    rows.push(format!(
        "| an idle connection | {} s (`--idle-timeout-secs`) | D82, D84 |",
        DEFAULT_IDLE_TIMEOUT.as_secs()
    ));
    rows.push(format!(
        "| a request, its body included | {} s (`--request-timeout-secs`), beyond: `408 \
         request_timeout` | D83, D84 |",
        DEFAULT_REQUEST_TIMEOUT.as_secs()
    ));
    rows.push(format!(
        "| open connections | {DEFAULT_MAX_CONNECTIONS} (`--max-connections`); more wait | D82, \
         D84 |"
    ));
    rows.push(
        "| requests per API key | none by default (`--rate-limit-per-sec`, \
         `--rate-limit-burst`), beyond: `429 rate_limited` | D85 |"
            .to_string(),
    );
    rows
}

#[test]
fn the_readme_limits_table_is_the_codes() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let start = readme
        .find("\n## Input limits\n")
        .expect("README has a section `## Input limits`");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let table: Vec<&str> = section
        .lines()
        .filter(|l| l.starts_with("| "))
        .skip(1) // the header
        .collect();
    let expected = rows();
    assert!(
        table == expected,
        "README's input limits table differs from the code; the code's rows are:\n{}\n",
        expected.join("\n")
    );
}
