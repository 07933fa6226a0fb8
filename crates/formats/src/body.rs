//! A body of events, item by item: JSON Lines (one item per line, blank lines skipped, each line
//! decoded as UTF-8 on its own) or one JSON array (one item per element, streamed). An item's
//! index is its place in the input counting every line, blank ones too (so JSON Lines index `i`
//! is line `i + 1`), or its element's place in the array. At most `max_items` items are read:
//! the one after them stops the reading, so a body costs no more than its limit whatever it holds
//! (decisions.md D73).

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// How the body gives its items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// One item per line; indexes are line numbers less one.
    Lines,
    /// One JSON array; indexes are its elements'.
    Array,
}

/// Why a body as a whole was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// No item at all: nothing but whitespace, or `[]`.
    Empty,
    /// More than `max_items` items; the one at `index` is the first beyond the limit.
    TooManyItems { limit: usize, index: usize },
    /// The caller's `each` asked to stop at the item `index`.
    Stopped { index: usize },
    /// Not JSON Lines nor a JSON array (why, with where).
    Invalid(String),
}

/// The shape of `body`: an array when its first byte that is not whitespace is `[`.
pub fn shape(body: &[u8]) -> Shape {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => Shape::Array,
        _ => Shape::Lines,
    }
}

/// Hands each item of `body` to `each` with its index, in order: its text, or why it cannot be
/// read on its own (a line that is not UTF-8). `each` returns false to stop the reading.
pub fn items<'a>(
    body: &'a [u8],
    max_items: usize,
    mut each: impl FnMut(usize, Result<&'a str, String>) -> bool,
) -> Result<Shape, BodyError> {
    match shape(body) {
        Shape::Lines => {
            let mut count = 0;
            for (index, line) in body.split(|&b| b == b'\n').enumerate() {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if count == max_items {
                    return Err(BodyError::TooManyItems {
                        limit: max_items,
                        index,
                    });
                }
                count += 1;
                let item = std::str::from_utf8(line).map_err(|e| {
                    format!(
                        "line {} is not UTF-8 (an invalid byte at byte {} of the line)",
                        index + 1,
                        e.valid_up_to() + 1
                    )
                });
                if !each(index, item) {
                    return Err(BodyError::Stopped { index });
                }
            }
            if count == 0 {
                return Err(BodyError::Empty);
            }
            Ok(Shape::Lines)
        }
        Shape::Array => {
            let text = std::str::from_utf8(body).map_err(|e| {
                BodyError::Invalid(format!(
                    "the JSON array is not UTF-8 (an invalid byte at byte {} of the body)",
                    e.valid_up_to() + 1
                ))
            })?;
            let mut seq = Seq {
                each: &mut each,
                max_items,
                count: 0,
                stop: None,
            };
            let mut de = serde_json::Deserializer::from_str(text);
            let read = (&mut de).deserialize_seq(&mut seq).and_then(|()| de.end());
            if let Some(stop) = seq.stop {
                return Err(stop);
            }
            read.map_err(|e| BodyError::Invalid(format!("not a JSON array of events: {e}")))?;
            if seq.count == 0 {
                return Err(BodyError::Empty);
            }
            Ok(Shape::Array)
        }
    }
}

/// Whether `body` is one JSON value (a single item, or an array), as a body sent as
/// `application/json` should be.
fn one_json_value(body: &[u8]) -> bool {
    std::str::from_utf8(body)
        .is_ok_and(|t| !t.trim().is_empty() && serde_json::from_str::<&RawValue>(t).is_ok())
}

/// How a body is read: [`shape`], except that a body sent as `application/json` that is one
/// JSON value other than an array is one item (which may span lines), read as an array of one.
pub fn shape_of(body: &[u8], as_json: bool) -> Shape {
    match shape(body) {
        Shape::Lines if as_json && one_json_value(body) => Shape::Array,
        s => s,
    }
}

/// Like [`items`], for a body sent as `Content-Type: application/json`: an array gives its
/// elements as items; one other JSON value is the one item, index 0; JSON Lines labelled
/// `application/json` are read as JSON Lines when every line is JSON; anything else (a line
/// that is not JSON) is [`BodyError::Invalid`], naming the line (decisions.md D77).
pub fn json_items<'a>(
    body: &'a [u8],
    max_items: usize,
    mut each: impl FnMut(usize, Result<&'a str, String>) -> bool,
) -> Result<Shape, BodyError> {
    if shape(body) == Shape::Array {
        return items(body, max_items, each);
    }
    if one_json_value(body) {
        let text = std::str::from_utf8(body).expect("checked").trim();
        if !each(0, Ok(text)) {
            return Err(BodyError::Stopped { index: 0 });
        }
        return Ok(Shape::Array);
    }
    for (index, line) in body.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let why = match std::str::from_utf8(line) {
            Err(e) => format!(
                "an invalid byte at byte {} of the line",
                e.valid_up_to() + 1
            ),
            Ok(text) => match serde_json::from_str::<&RawValue>(text) {
                Ok(_) => continue,
                Err(e) => e.to_string(),
            },
        };
        return Err(BodyError::Invalid(format!(
            "not JSON (the body is sent as application/json): line {} is not a JSON value: {why}",
            index + 1
        )));
    }
    items(body, max_items, each)
}

/// [`json_items`] when the body is sent as `application/json`, else [`items`].
pub fn items_of<'a>(
    body: &'a [u8],
    as_json: bool,
    max_items: usize,
    each: impl FnMut(usize, Result<&'a str, String>) -> bool,
) -> Result<Shape, BodyError> {
    if as_json {
        json_items(body, max_items, each)
    } else {
        items(body, max_items, each)
    }
}

struct Seq<'f, F> {
    each: &'f mut F,
    max_items: usize,
    count: usize,
    stop: Option<BodyError>,
}

impl<'de, F: FnMut(usize, Result<&'de str, String>) -> bool> Visitor<'de> for &mut Seq<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // Each element is borrowed from the body as it is, never built into a value.
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            let index = self.count;
            if index == self.max_items {
                self.stop = Some(BodyError::TooManyItems {
                    limit: self.max_items,
                    index,
                });
                return Err(de::Error::custom("too many events"));
            }
            self.count += 1;
            if !(self.each)(index, Ok(raw.get())) {
                self.stop = Some(BodyError::Stopped { index });
                return Err(de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Seen = Vec<(usize, Result<String, String>)>;

    fn all(body: &[u8], max: usize) -> (Result<Shape, BodyError>, Seen) {
        let mut seen = Vec::new();
        let r = items(body, max, |i, item| {
            seen.push((i, item.map(str::to_string)));
            true
        });
        (r, seen)
    }

    #[test]
    fn lines_keep_their_line_numbers_and_bad_bytes_stay_in_their_line() {
        let (r, seen) = all(b"{\"a\":1}\n\n   \r\n{\"b\":\xff}\r\n{\"c\":3}", 10);
        assert_eq!(r, Ok(Shape::Lines));
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0], (0, Ok("{\"a\":1}".to_string())));
        assert_eq!(seen[1].0, 3);
        let why = seen[1].1.clone().unwrap_err();
        assert!(
            why.contains("line 4 is not UTF-8") && why.contains("byte 6"),
            "{why}"
        );
        assert_eq!(seen[2], (4, Ok("{\"c\":3}".to_string())));
    }

    #[test]
    fn an_array_is_read_element_by_element_and_stops_after_the_limit() {
        let (r, seen) = all(br#" [ {"a":1}, {"b":[1, 2]} ] "#, 10);
        assert_eq!(r, Ok(Shape::Array));
        assert_eq!(
            seen,
            vec![
                (0, Ok(r#"{"a":1}"#.to_string())),
                (1, Ok(r#"{"b":[1, 2]}"#.to_string()))
            ]
        );
        // A million elements: the reading stops at the fourth, whatever follows.
        let mut big = b"[".to_vec();
        big.extend(std::iter::repeat_n(&b"{},"[..], 1_000_000).flatten());
        big.extend_from_slice(b"{}]");
        let (r, seen) = all(&big, 3);
        assert_eq!(r, Err(BodyError::TooManyItems { limit: 3, index: 3 }));
        assert_eq!(seen.len(), 3);
        let (r, _) = all(&b"{}\n".repeat(5), 3);
        assert_eq!(r, Err(BodyError::TooManyItems { limit: 3, index: 3 }));
    }

    #[test]
    fn a_json_body_is_one_json_value() {
        let mut seen = Vec::new();
        let r = json_items(b"{\n \"a\": 1\n}\n", 10, |i, item| {
            seen.push((i, item.map(str::to_string)));
            true
        });
        assert_eq!(r, Ok(Shape::Array));
        assert_eq!(seen, vec![(0, Ok("{\n \"a\": 1\n}".to_string()))]);
        // JSON Lines labelled application/json, every line JSON: read as lines.
        let mut n = 0;
        assert_eq!(
            json_items(b"{}\n\n{}\n", 10, |_, _| {
                n += 1;
                true
            }),
            Ok(Shape::Lines)
        );
        assert_eq!(n, 2);
        for bad in [
            &b"\x00"[..],
            b"{} {}",
            b"not json",
            b"{\"a\":\xff}",
            b"{}\nnot json",
        ] {
            let r = json_items(bad, 10, |_, _| true);
            assert!(matches!(r, Err(BodyError::Invalid(_))), "{bad:?}: {r:?}");
        }
        assert_eq!(json_items(b" \n", 10, |_, _| true), Err(BodyError::Empty));
        assert_eq!(json_items(b"[]", 10, |_, _| true), Err(BodyError::Empty));
    }

    #[test]
    fn empty_and_malformed_bodies_are_named() {
        for empty in [&b""[..], b"\n\n  \r\n", b"[]", b"  [ ]\n"] {
            assert_eq!(all(empty, 10).0, Err(BodyError::Empty), "{empty:?}");
        }
        for bad in [&b"[{}"[..], b"[{}] x", b"[\xff]"] {
            assert!(
                matches!(all(bad, 10).0, Err(BodyError::Invalid(_))),
                "{bad:?}"
            );
        }
        let r = items(b"{}\n{}\n{}", 10, |i, _| i < 1);
        assert_eq!(r, Err(BodyError::Stopped { index: 1 }));
    }
}
