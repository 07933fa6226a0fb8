//! Reading event files: whole files into memory, split into line chunks parsed on every core,
//! then put back in file order. Malformed lines are collected with their line numbers.

use anyhow::{Context, Result};
use std::io::Read;
use std::path::Path;
use wabill_formats::{parse_line, LineError, Parsed};
use wabill_rating::{Account, Event};

/// The text of one input, kept alive while events borrow from it.
pub struct Source {
    pub name: String,
    pub text: String,
}

/// Reads a file, or standard input for `-`.
pub fn read_source(path: &str) -> Result<Source> {
    let mut bytes = Vec::new();
    if path == "-" {
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
    } else {
        std::fs::File::open(Path::new(path))
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .with_context(|| format!("reading {path}"))?;
    }
    let name = if path == "-" {
        "<stdin>".to_string()
    } else {
        path.to_string()
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        anyhow::anyhow!("{name}: line {line}: not UTF-8 text")
    })?;
    Ok(Source { name, text })
}

/// Reads an optional file of account events and the event files (`-` for standard input).
pub fn read_sources(accounts: Option<&str>, files: &[String]) -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    if let Some(a) = accounts {
        sources.push(read_source(a)?);
    }
    for f in files {
        sources.push(read_source(f)?);
    }
    Ok(sources)
}

/// Parses sources read by [`read_sources`]: with `accounts_first`, the first source holds only
/// account events (anything else in it is a bad line). Returns the events, the separate
/// accounts and the malformed lines.
pub fn parse_sources<'a>(
    sources: &'a [Source],
    accounts_first: bool,
    on_progress: &(dyn Fn(u64) + Sync),
) -> (Parsed<'a>, Vec<Account<'a>>, Vec<BadLine>) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut parsed = Parsed::default();
    let mut bad: Vec<BadLine> = Vec::new();
    let mut accounts: Vec<Account<'a>> = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        let (p, b) = parse_text(&src.name, &src.text, threads, on_progress);
        bad.extend(b);
        if i == 0 && accounts_first {
            for (e, line) in p.events.into_iter().zip(p.lines) {
                match e {
                    Event::Account(a) => accounts.push(*a),
                    _ => bad.push(BadLine {
                        source: src.name.clone(),
                        error: LineError {
                            line,
                            field: "kind".into(),
                            why: "the --accounts file holds only account events".into(),
                        },
                    }),
                }
            }
            continue;
        }
        if i == usize::from(accounts_first) {
            // The first event source: keep its vectors (sized for its lines) as they are.
            parsed = p;
            continue;
        }
        parsed.events.extend(p.events);
        parsed.lines.extend(p.lines);
        parsed.meta_pricing.extend(p.meta_pricing);
        parsed.ignored_webhook_items += p.ignored_webhook_items;
    }
    (parsed, accounts, bad)
}

/// Lists malformed lines on `w`. Returns the exit code to stop with, or `None` to go on
/// (`--skip-invalid`). `what` names the work not done, e.g. "rated".
pub fn report_bad_lines(
    w: &mut impl std::io::Write,
    bad: &[BadLine],
    skip_invalid: bool,
    what: &str,
) -> std::io::Result<Option<i32>> {
    if bad.is_empty() {
        return Ok(None);
    }
    for b in bad {
        writeln!(w, "{}: {}", b.source, b.error)?;
    }
    if !skip_invalid {
        writeln!(
            w,
            "error: {} malformed line(s); nothing was {what} (use --skip-invalid to skip them)",
            bad.len()
        )?;
        return Ok(Some(crate::rate_cmd::EXIT_INVALID));
    }
    writeln!(w, "skipped {} malformed line(s), listed above", bad.len())?;
    Ok(None)
}

/// A malformed line of a named input.
pub struct BadLine {
    pub source: String,
    pub error: LineError,
}

/// Parses all lines of `text`, using up to `threads` threads. `on_progress` gets byte counts.
pub fn parse_text<'a>(
    source: &str,
    text: &'a str,
    threads: usize,
    on_progress: &(dyn Fn(u64) + Sync),
) -> (Parsed<'a>, Vec<BadLine>) {
    let chunks = split_lines(text, threads.max(1));
    // The first chunk's vectors are sized for every line, so that the others are appended to
    // them without moving the first chunk's events again.
    let total_lines = memchr::memchr_iter(b'\n', text.as_bytes()).count() + 1;
    let parts: Vec<(Parsed<'a>, Vec<LineError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .enumerate()
            .map(|(n, (first_line, chunk))| {
                s.spawn(move || {
                    let mut p = Parsed::default();
                    let lines = if n == 0 {
                        total_lines
                    } else {
                        memchr::memchr_iter(b'\n', chunk.as_bytes()).count() + 1
                    };
                    p.events.reserve(lines);
                    p.lines.reserve(lines);
                    let mut errors = Vec::new();
                    let mut since = 0usize;
                    for (i, line) in chunk.split('\n').enumerate() {
                        let line_no = first_line + i as u64;
                        let line = line.strip_suffix('\r').unwrap_or(line);
                        if let Err(e) = parse_line(line, line_no, &mut p) {
                            errors.push(e);
                        }
                        since += line.len() + 1;
                        if since > 1 << 20 {
                            on_progress(since as u64);
                            since = 0;
                        }
                    }
                    on_progress(since as u64);
                    (p, errors)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("parser thread panicked"))
            .collect()
    });
    let mut parts = parts.into_iter();
    let (mut all, first_errors) = parts.next().expect("at least one chunk");
    let mut bad: Vec<BadLine> = first_errors
        .into_iter()
        .map(|error| BadLine {
            source: source.to_string(),
            error,
        })
        .collect();
    for (p, errors) in parts {
        all.events.extend(p.events);
        all.lines.extend(p.lines);
        all.meta_pricing.extend(p.meta_pricing);
        all.ignored_webhook_items += p.ignored_webhook_items;
        bad.extend(errors.into_iter().map(|error| BadLine {
            source: source.to_string(),
            error,
        }));
    }
    (all, bad)
}

/// Splits text into about `n` chunks at line boundaries, with each chunk's first line number.
fn split_lines(text: &str, n: usize) -> Vec<(u64, &str)> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    let target = text.len() / n + 1;
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    let mut line = 1u64;
    while start < text.len() || out.is_empty() {
        let mut end = (start + target).min(text.len());
        if end < text.len() {
            end = match memchr_from(text.as_bytes(), end) {
                Some(nl) => nl,
                None => text.len(),
            };
        }
        let chunk = &text[start..end];
        out.push((line, chunk));
        line += chunk.bytes().filter(|&b| b == b'\n').count() as u64 + 1;
        start = end + 1;
    }
    out
}

fn memchr_from(b: &[u8], from: usize) -> Option<usize> {
    b[from..].iter().position(|&c| c == b'\n').map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_every_line_and_its_number() {
        let text = "a\nbb\n\nccc\nd\n";
        for n in 1..6 {
            let chunks = split_lines(text, n);
            let mut lines = Vec::new();
            for (first, c) in chunks {
                for (i, l) in c.split('\n').enumerate() {
                    lines.push((first + i as u64, l.to_string()));
                }
            }
            assert_eq!(
                lines,
                vec![
                    (1, "a".into()),
                    (2, "bb".into()),
                    (3, "".into()),
                    (4, "ccc".into()),
                    (5, "d".into())
                ],
                "{n} chunks"
            );
        }
    }
}
