//! Reading event files: whole files into memory, split into line chunks parsed on every core,
//! then put back in file order. Malformed lines are collected with their line numbers.

use anyhow::{Context, Result};
use std::io::Read;
use std::path::Path;
use wabill_formats::{parse_line, LineError, Parsed};

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
