//! Reading event files: whole files into memory, split into line chunks parsed on every core,
//! then put back in file order. Malformed lines are collected with their line numbers.

use anyhow::{Context, Result};
use std::io::Read;
use std::path::Path;
use wabill_formats::{parse_line, LineError, Parsed};
use wabill_rating::{Account, ChunkKeys, Event};

/// The text of one input, kept alive while events borrow from it.
pub struct Source {
    pub name: String,
    pub text: String,
}

/// Reads a file, or standard input for `-`, as bytes, with the name errors give it.
fn read_bytes(path: &str) -> Result<(String, Vec<u8>)> {
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
    Ok((name, bytes))
}

/// A file given as text that is not UTF-8: malformed input, exit 2 like any other
/// (`main::exit_code`), naming the file, the line and the byte.
#[derive(Debug, thiserror::Error)]
#[error("{name}: line {line}: not UTF-8 text (an invalid byte at byte {byte} of the line)")]
pub struct NotUtf8 {
    pub name: String,
    pub line: usize,
    pub byte: usize,
}

/// Reads a file, or standard input for `-`, as text.
pub fn read_source(path: &str) -> Result<Source> {
    let (name, bytes) = read_bytes(path)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        NotUtf8 {
            name: name.clone(),
            line,
            byte: at - start + 1,
        }
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

/// An input to be read while it is parsed: a regular file, opened with a buffer of its size;
/// anything else (standard input, pipes) already read whole.
pub struct Pending {
    pub name: String,
    file: Option<std::fs::File>,
    data: Vec<u8>,
}

impl Pending {
    /// Bytes to read (or read).
    pub fn len(&self) -> u64 {
        self.data.len() as u64
    }
}

/// Opens an optional file of account events and the event files (`-` for standard input), as
/// [`read_sources`] reads them.
pub fn open_sources(accounts: Option<&str>, files: &[String]) -> Result<Vec<Pending>> {
    accounts
        .into_iter()
        .chain(files.iter().map(String::as_str))
        .map(|path| {
            if path != "-" {
                let file = std::fs::File::open(Path::new(path))
                    .with_context(|| format!("reading {path}"))?;
                let meta = file.metadata().with_context(|| format!("reading {path}"))?;
                if meta.is_file() {
                    return Ok(Pending {
                        name: path.to_string(),
                        // Zeroed memory comes untouched from the allocator: its pages are
                        // first written by the reads.
                        data: vec![0u8; meta.len() as usize],
                        file: Some(file),
                    });
                }
            }
            // Bytes, not text: a line that is not UTF-8 is a malformed line of its own
            // (`parse_piece`), as in a regular file.
            let (name, data) = read_bytes(path)?;
            Ok(Pending {
                name,
                file: None,
                data,
            })
        })
        .collect()
}

/// A run of whole lines of one input, parsed by one thread: bytes, decoded as UTF-8 by that
/// thread (`parse_piece`), so that a line that is not UTF-8 is refused alone.
struct Piece<'a> {
    seq: usize,
    source: usize,
    first_line: u64,
    text: &'a [u8],
}

/// Reads and parses inputs opened by [`open_sources`] at once: this thread reads each file a
/// piece at a time and hands whole lines to `threads` parser threads, so that parsing overlaps
/// reading and no thread waits for the whole file. A regular file is read up to the size it
/// had when opened. With `accounts_first`, the first input holds only account events. Returns
/// the events, the separate accounts and the malformed lines, as [`parse_sources`] does.
pub fn read_and_parse<'a>(
    inputs: &'a mut [Pending],
    accounts_first: bool,
    on_progress: &(dyn Fn(u64) + Sync),
) -> Result<(ParsedChunks<'a>, Vec<Account<'a>>, Vec<BadLine>)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let total: u64 = inputs.iter().map(Pending::len).sum();
    let piece_len = (total / (threads as u64 * 4)).clamp(1 << 20, 32 << 20) as usize;
    read_and_parse_in(inputs, accounts_first, on_progress, threads, piece_len)
}

fn read_and_parse_in<'a>(
    inputs: &'a mut [Pending],
    accounts_first: bool,
    on_progress: &(dyn Fn(u64) + Sync),
    threads: usize,
    piece_len: usize,
) -> Result<(ParsedChunks<'a>, Vec<Account<'a>>, Vec<BadLine>)> {
    let names: Vec<String> = inputs.iter().map(|p| p.name.clone()).collect();
    type Done<'a> = (usize, usize, Parsed<'a>, ChunkKeys, Vec<LineError>);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Piece<'a>>(threads * 2);
    let rx = std::sync::Mutex::new(rx);
    let (read, mut done): (Result<()>, Vec<Done<'a>>) = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let rx = &rx;
                s.spawn(move || {
                    let mut out = Vec::new();
                    loop {
                        let piece = rx.lock().expect("parser thread panicked").recv();
                        let Ok(piece) = piece else { break };
                        let (p, errors) = parse_piece(piece.first_line, piece.text, on_progress);
                        let keys = ChunkKeys::new(&p.events);
                        out.push((piece.seq, piece.source, p, keys, errors));
                    }
                    out
                })
            })
            .collect();
        let read = read_pieces(inputs, piece_len, &tx);
        drop(tx);
        let done = workers
            .into_iter()
            .flat_map(|h| h.join().expect("parser thread panicked"))
            .collect();
        (read, done)
    });
    read?;
    done.sort_unstable_by_key(|d| d.0);
    let mut parsed = ParsedChunks::default();
    let mut bad: Vec<BadLine> = Vec::new();
    let mut accounts: Vec<Account<'a>> = Vec::new();
    for (_, source, p, keys, errors) in done {
        let name = &names[source];
        bad.extend(errors.into_iter().map(|error| BadLine {
            source: name.clone(),
            error,
        }));
        if source == 0 && accounts_first {
            take_accounts(name, p, &mut accounts, &mut bad);
        } else {
            parsed.push(p, keys);
        }
    }
    Ok((parsed, accounts, bad))
}

/// Reads every input into its buffer and sends it on as pieces of whole lines.
fn read_pieces<'a>(
    inputs: &'a mut [Pending],
    piece_len: usize,
    tx: &std::sync::mpsc::SyncSender<Piece<'a>>,
) -> Result<()> {
    let mut seq = 0;
    for (source, input) in inputs.iter_mut().enumerate() {
        let name = &input.name;
        let mut rest: &'a mut [u8] = &mut input.data[..];
        // Bytes at the start of `rest` already read: the beginning of a line.
        let mut filled = 0;
        let mut line = 1u64;
        loop {
            let eof = match &mut input.file {
                None => {
                    filled = rest.len();
                    true
                }
                Some(f) => {
                    let want = (filled + piece_len).min(rest.len());
                    while filled < want {
                        match f.read(&mut rest[filled..want]) {
                            Ok(0) => break,
                            Ok(n) => filled += n,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(e).with_context(|| format!("reading {name}")),
                        }
                    }
                    filled < want || filled == rest.len()
                }
            };
            let cut = if eof {
                // A file that shrank while being read ends where the reads ended.
                filled
            } else {
                match memchr::memrchr(b'\n', &rest[..filled]) {
                    Some(nl) => nl + 1,
                    None => continue, // a line longer than a piece: read on
                }
            };
            let (piece, tail) = std::mem::take(&mut rest).split_at_mut(cut);
            rest = tail;
            filled -= cut;
            let piece: &'a [u8] = piece;
            // Every line but a file's last ends with its newline, so the next piece starts a
            // line.
            let lines = memchr::memchr_iter(b'\n', piece).count() as u64;
            let text = piece.strip_suffix(b"\n").unwrap_or(piece);
            if !piece.is_empty() {
                let piece = Piece {
                    seq,
                    source,
                    first_line: line,
                    text,
                };
                seq += 1;
                if tx.send(piece).is_err() {
                    anyhow::bail!("a parser thread stopped");
                }
            }
            line += lines;
            if eof {
                break;
            }
        }
    }
    Ok(())
}

/// Parses the lines of one piece, numbered from `first_line`. The piece is decoded as UTF-8 at
/// once; when that fails, line by line, and a line that is not UTF-8 is a malformed line, named
/// with the byte (decisions.md D76).
fn parse_piece<'a>(
    first_line: u64,
    chunk: &'a [u8],
    on_progress: &(dyn Fn(u64) + Sync),
) -> (Parsed<'a>, Vec<LineError>) {
    match std::str::from_utf8(chunk) {
        Ok(text) => parse_piece_text(first_line, text, on_progress),
        Err(_) => {
            let mut p = Parsed::default();
            let mut errors = Vec::new();
            for (i, line) in chunk.split(|&b| b == b'\n').enumerate() {
                let line_no = first_line + i as u64;
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let r = match std::str::from_utf8(line) {
                    Ok(line) => parse_line(line, line_no, &mut p),
                    Err(e) => Err(LineError {
                        line: line_no,
                        field: String::new(),
                        why: format!(
                            "not UTF-8 text (an invalid byte at byte {} of the line)",
                            e.valid_up_to() + 1
                        ),
                    }),
                };
                if let Err(e) = r {
                    errors.push(e);
                }
            }
            on_progress(chunk.len() as u64);
            (p, errors)
        }
    }
}

fn parse_piece_text<'a>(
    first_line: u64,
    chunk: &'a str,
    on_progress: &(dyn Fn(u64) + Sync),
) -> (Parsed<'a>, Vec<LineError>) {
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
}

/// Moves the account events of the `--accounts` input to `accounts`; anything else in it is a
/// bad line.
fn take_accounts<'a>(
    name: &str,
    p: Parsed<'a>,
    accounts: &mut Vec<Account<'a>>,
    bad: &mut Vec<BadLine>,
) {
    for (e, line) in p.events.into_iter().zip(p.lines) {
        match e {
            Event::Account(a) => accounts.push(*a),
            _ => bad.push(BadLine {
                source: name.to_string(),
                error: LineError {
                    line,
                    field: "kind".into(),
                    why: "the --accounts file holds only account events".into(),
                },
            }),
        }
    }
}

/// Events parsed in chunks (one per thread and source), in input order: never joined, since
/// [`wabill_rating::rate_keyed_chunks`] takes them as they are, with the join keys of each
/// chunk computed by the thread that parsed it.
#[derive(Default)]
pub struct ParsedChunks<'a> {
    pub chunks: Vec<Parsed<'a>>,
    /// The join keys of each chunk, until [`ParsedChunks::take_keys`].
    keys: Vec<ChunkKeys>,
}

impl<'a> ParsedChunks<'a> {
    fn push(&mut self, chunk: Parsed<'a>, keys: ChunkKeys) {
        self.chunks.push(chunk);
        self.keys.push(keys);
    }
    /// The events of each chunk, for [`wabill_rating::rate_keyed_chunks`].
    pub fn events(&self) -> Vec<&[Event<'a>]> {
        self.chunks.iter().map(|p| &p.events[..]).collect()
    }
    /// The join keys of each chunk, for [`wabill_rating::rate_keyed_chunks`] (once).
    pub fn take_keys(&mut self) -> Vec<ChunkKeys> {
        std::mem::take(&mut self.keys)
    }
    pub fn meta_pricing(&self) -> impl Iterator<Item = &wabill_formats::MetaPricing<'a>> {
        self.chunks.iter().flat_map(|p| p.meta_pricing.iter())
    }
    /// Every call read, in input order.
    pub fn calls(&self) -> Vec<wabill_rating::calls::Call<'a>> {
        self.chunks
            .iter()
            .flat_map(|p| p.calls.iter().cloned())
            .collect()
    }
    /// Gives the outbound events naming a template the category in force at their send
    /// instant, from the template changes of every chunk (decisions.md D153); nothing to do
    /// when none names one. The join keys do not depend on it.
    pub fn resolve_templates(&mut self) -> Vec<wabill_rating::templates::TemplateError> {
        use wabill_rating::templates::{resolve, Registry};
        if self.chunks.iter().all(|p| p.template_refs.is_empty()) {
            return Vec::new();
        }
        let (registry, mut errors) =
            Registry::from_changes(self.chunks.iter().flat_map(|p| p.templates.iter()));
        for p in &mut self.chunks {
            errors.extend(resolve(&mut p.events, &p.template_refs, &registry));
        }
        errors
    }
    pub fn ignored_webhook_items(&self) -> u64 {
        self.chunks.iter().map(|p| p.ignored_webhook_items).sum()
    }
    /// All chunks in one.
    pub fn join(self) -> Parsed<'a> {
        let mut chunks = self.chunks.into_iter();
        let mut all = chunks.next().unwrap_or_default();
        for p in chunks {
            let base = all.events.len();
            all.template_refs
                .extend(p.template_refs.into_iter().map(|(i, t)| (base + i, t)));
            all.events.extend(p.events);
            all.lines.extend(p.lines);
            all.meta_pricing.extend(p.meta_pricing);
            all.ignored_webhook_items += p.ignored_webhook_items;
            all.calls.extend(p.calls);
            all.call_lines.extend(p.call_lines);
            all.templates.extend(p.templates);
            all.template_lines.extend(p.template_lines);
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
            take_accounts(&src.name, p.join(), &mut accounts, &mut bad);
            continue;
        }
        for (chunk, keys) in p.chunks.into_iter().zip(p.keys) {
            parsed.push(chunk, keys);
        }
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
    let parts: Vec<(Parsed<'a>, ChunkKeys, Vec<LineError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|(first_line, chunk)| {
                s.spawn(move || {
                    let (p, errors) = parse_piece_text(first_line, chunk, on_progress);
                    let keys = ChunkKeys::new(&p.events);
                    (p, keys, errors)
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
    for (p, keys, errors) in parts {
        all.push(p, keys);
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
    fn reading_in_pieces_is_reading_whole() {
        let dir = std::env::temp_dir().join(format!("wabill-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let accounts = dir.join("accounts.jsonl");
        let events = dir.join("events.jsonl");
        let cfg = wabill_gen::GenConfig {
            events: 300,
            users: 50,
            days: 2,
            ..Default::default()
        };
        let mut stream = Vec::new();
        wabill_gen::generate(&cfg, &mut stream).unwrap();
        let text = String::from_utf8(stream).unwrap();
        let (acc, ev): (Vec<&str>, Vec<&str>) =
            text.lines().partition(|l| l.contains("\"account\""));
        std::fs::write(&accounts, acc.join("\n")).unwrap();
        // A bad line, a CRLF line and a last line without its newline.
        let mut ev_text = ev[..150].join("\n");
        ev_text.push_str("\n{\"kind\":\"bogus\"}\n\n");
        ev_text.push_str(&ev[150..].join("\r\n"));
        std::fs::write(&events, ev_text).unwrap();
        let files = [events.to_str().unwrap().to_string()];
        let acc_path = accounts.to_str();
        let sources = read_sources(acc_path, &files).unwrap();
        let (whole, whole_acc, whole_bad) = parse_sources(&sources, true, &|_| {});
        let whole = whole.join();
        assert_eq!(whole_bad.len(), 1);
        for (threads, piece_len) in [(1, 1), (2, 7), (3, 200), (2, 1 << 20)] {
            let mut inputs = open_sources(acc_path, &files).unwrap();
            let (p, a, bad) =
                read_and_parse_in(&mut inputs, true, &|_| {}, threads, piece_len).unwrap();
            let p = p.join();
            assert_eq!(p.events, whole.events, "{piece_len}");
            assert_eq!(p.lines, whole.lines, "{piece_len}");
            assert_eq!(a, whole_acc);
            let lines = |b: &[BadLine]| -> Vec<String> {
                b.iter()
                    .map(|b| format!("{}: {}", b.source, b.error))
                    .collect()
            };
            assert_eq!(lines(&bad), lines(&whole_bad), "{piece_len}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

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
            let (mut chunks, _) = parse_text_chunks("t", text, threads, &|_| {});
            assert_eq!(chunks.chunks.len(), threads);
            let rated = wabill_rating::rate_chunks(&tariff, &[], &chunks.events(), opts);
            assert_eq!(rated.charges, expected.charges, "{threads} chunks");
            assert_eq!(rated.errors, expected.errors);
            assert_eq!(rated.notes, expected.notes);
            let keys = chunks.take_keys();
            let keyed =
                wabill_rating::rate_keyed_chunks(&tariff, &[], &chunks.events(), keys, opts);
            assert_eq!(keyed.charges, expected.charges, "{threads} keyed chunks");
            assert_eq!(keyed.errors, expected.errors);
            assert_eq!(keyed.notes, expected.notes);
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
