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

/// Events parsed in chunks (one per thread and source), in input order: never joined, since
/// [`wabill_rating::rate_chunks`] takes them as they are.
#[derive(Default)]
pub struct ParsedChunks<'a> {
    pub chunks: Vec<Parsed<'a>>,
}

impl<'a> ParsedChunks<'a> {
    /// The events of each chunk, for [`wabill_rating::rate_chunks`].
    pub fn events(&self) -> Vec<&[Event<'a>]> {
        self.chunks.iter().map(|p| &p.events[..]).collect()
    }
    pub fn meta_pricing(&self) -> impl Iterator<Item = &wabill_formats::MetaPricing<'a>> {
        self.chunks.iter().flat_map(|p| p.meta_pricing.iter())
    }
    pub fn ignored_webhook_items(&self) -> u64 {
        self.chunks.iter().map(|p| p.ignored_webhook_items).sum()
    }
    /// All chunks in one.
    pub fn join(self) -> Parsed<'a> {
        let mut chunks = self.chunks.into_iter();
        let mut all = chunks.next().unwrap_or_default();
        for p in chunks {
            all.events.extend(p.events);
            all.lines.extend(p.lines);
            all.meta_pricing.extend(p.meta_pricing);
            all.ignored_webhook_items += p.ignored_webhook_items;
        }
        all
    }
}

/// Parses sources read by [`read_sources`]: with `accounts_first`, the first source holds only
/// account events (anything else in it is a bad line). Returns the events, the separate
/// accounts and the malformed lines.
pub fn parse_sources<'a>(
    sources: &'a [Source],
    accounts_first: bool,
    on_progress: &(dyn Fn(u64) + Sync),
) -> (ParsedChunks<'a>, Vec<Account<'a>>, Vec<BadLine>) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut parsed = ParsedChunks::default();
    let mut bad: Vec<BadLine> = Vec::new();
    let mut accounts: Vec<Account<'a>> = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        let (p, b) = parse_text_chunks(&src.name, &src.text, threads, on_progress);
        bad.extend(b);
        if i == 0 && accounts_first {
            let p = p.join();
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
        parsed.chunks.extend(p.chunks);
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
    let (chunks, bad) = parse_text_chunks(source, text, threads, on_progress);
    (chunks.join(), bad)
}

/// Parses all lines of `text` in about `threads` chunks, one per thread, kept apart.
pub fn parse_text_chunks<'a>(
    source: &str,
    text: &'a str,
    threads: usize,
    on_progress: &(dyn Fn(u64) + Sync),
) -> (ParsedChunks<'a>, Vec<BadLine>) {
    let chunks = split_lines(text, threads.max(1));
    let parts: Vec<(Parsed<'a>, Vec<LineError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|(first_line, chunk)| {
                s.spawn(move || {
                    let mut p = Parsed::default();
                    let lines = memchr::memchr_iter(b'\n', chunk.as_bytes()).count() + 1;
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
    let mut all = ParsedChunks::default();
    let mut bad = Vec::new();
    for (p, errors) in parts {
        all.chunks.push(p);
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
    fn rating_chunks_is_rating_them_joined() {
        let cfg = wabill_gen::GenConfig {
            events: 30_000,
            users: 2_000,
            days: 3,
            ..Default::default()
        };
        let mut stream = Vec::new();
        wabill_gen::generate(&cfg, &mut stream).unwrap();
        let text = std::str::from_utf8(&stream).unwrap();
        let tariff = wabill_rating::Tariff::bundled();
        let opts = wabill_rating::RateOptions::default();
        let (joined, bad) = parse_text("t", text, 1, &|_| {});
        assert!(bad.is_empty());
        let expected = wabill_rating::rate(&tariff, &[], &joined.events, opts);
        assert!(expected.charges.len() > 5_000);
        for threads in [2, 3, 7] {
            let (chunks, _) = parse_text_chunks("t", text, threads, &|_| {});
            assert_eq!(chunks.chunks.len(), threads);
            let rated = wabill_rating::rate_chunks(&tariff, &[], &chunks.events(), opts);
            assert_eq!(rated.charges, expected.charges, "{threads} chunks");
            assert_eq!(rated.errors, expected.errors);
            assert_eq!(rated.notes, expected.notes);
        }
    }

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
