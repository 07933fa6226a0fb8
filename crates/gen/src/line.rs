//! One generated line before it is written, and the hand-written JSON that writes it.
//!
//! No serde: every line is a handful of constant fragments, a hex id, a timestamp and a
//! number, so it is assembled with byte copies into one buffer that is handed to the caller's
//! writer in large blocks. The field order is the one `events.md` shows.

use crate::time::Clock;
use std::io::{self, Write};

/// What a line says. Its order is not significant; it is `u8` to keep [`Ev`] small, because
/// every line of the stream sits in a time bucket as an `Ev` until its hour is written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum What {
    Inbound,
    InboundCtwa,
    InboundPageCta,
    Text,
    Image,
    Interactive,
    Marketing,
    /// A marketing template sent through the Marketing Messages API.
    MarketingLite,
    Utility,
    Authentication,
    Sent,
    Delivered,
    Read,
    Failed,
}

impl What {
    pub(crate) fn is_inbound(self) -> bool {
        matches!(
            self,
            What::Inbound | What::InboundCtwa | What::InboundPageCta
        )
    }

    pub(crate) fn is_status(self) -> bool {
        matches!(
            self,
            What::Sent | What::Delivered | What::Read | What::Failed
        )
    }

    /// A non-template message: only allowed inside the customer service window.
    pub(crate) fn is_service(self) -> bool {
        matches!(self, What::Text | What::Image | What::Interactive)
    }
}

/// One line of the stream.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ev {
    /// Where the line goes in the stream, in seconds after the first day's midnight. Equal to
    /// `at` except for reordered statuses and repeated lines.
    pub(crate) key: u32,
    /// The line's `at`, in seconds after the first day's midnight.
    pub(crate) at: u32,
    /// The message id (for a status, the id of the outbound message it is about).
    pub(crate) id: u64,
    /// The user's number (inbound and outbound only).
    pub(crate) user: u64,
    /// Index of the business phone number (inbound and outbound only).
    pub(crate) phone: u32,
    pub(crate) what: What,
    /// A verbatim repeat of an earlier line.
    pub(crate) dup: bool,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends the 16 lowercase hex digits of `x`.
#[inline]
fn push_hex16(out: &mut Vec<u8>, x: u64) {
    let mut b = [0u8; 16];
    for (i, d) in b.iter_mut().enumerate() {
        *d = HEX[((x >> (60 - 4 * i)) & 15) as usize];
    }
    out.extend_from_slice(&b);
}

/// Buffers formatted lines and passes them to the output in blocks of about 64 KiB, so that
/// an unbuffered writer (a `File`, a socket) costs one system call per block, not per line.
pub(crate) struct LineWriter<'w, W: Write> {
    out: &'w mut W,
    buf: Vec<u8>,
    clock: Clock,
    /// Per business phone: `","waba":"W1","phone":"15550001001","user":"`, the part of an
    /// inbound or outbound line between `at` and the user's number.
    phone_fields: Vec<Box<[u8]>>,
}

const FLUSH_AT: usize = 64 * 1024;

impl<'w, W: Write> LineWriter<'w, W> {
    pub(crate) fn new(
        out: &'w mut W,
        clock: Clock,
        phone_fields: Vec<Box<[u8]>>,
    ) -> LineWriter<'w, W> {
        LineWriter {
            out,
            buf: Vec::with_capacity(FLUSH_AT + 1024),
            clock,
            phone_fields,
        }
    }

    /// The buffer, for lines written by hand (accounts); call [`Self::end_line`] after.
    pub(crate) fn raw(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    #[inline]
    pub(crate) fn end_line(&mut self) -> io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    #[inline]
    pub(crate) fn event(&mut self, ev: &Ev) -> io::Result<()> {
        let buf = &mut self.buf;
        if ev.what.is_status() {
            buf.extend_from_slice(b"{\"kind\":\"status\",\"id\":\"wamid.");
            push_hex16(buf, ev.id);
            buf.extend_from_slice(b"\",\"at\":\"");
            self.clock.push(buf, ev.at);
            buf.extend_from_slice(match ev.what {
                What::Sent => b"\",\"status\":\"sent\"}\n",
                What::Delivered => b"\",\"status\":\"delivered\"}\n",
                What::Read => b"\",\"status\":\"read\"}\n",
                _ => b"\",\"status\":\"failed\"}\n",
            });
        } else {
            buf.extend_from_slice(if ev.what.is_inbound() {
                b"{\"kind\":\"inbound\",\"id\":\"wamid."
            } else {
                b"{\"kind\":\"outbound\",\"id\":\"wamid."
            });
            push_hex16(buf, ev.id);
            buf.extend_from_slice(b"\",\"at\":\"");
            self.clock.push(buf, ev.at);
            buf.extend_from_slice(&self.phone_fields[ev.phone as usize]);
            buf.extend_from_slice(itoa::Buffer::new().format(ev.user).as_bytes());
            buf.extend_from_slice(match ev.what {
                What::Inbound => b"\"}\n" as &[u8],
                What::InboundCtwa => b"\",\"entry_point\":\"ctwa\"}\n",
                What::InboundPageCta => b"\",\"entry_point\":\"page_cta\"}\n",
                What::Text => b"\",\"type\":\"text\"}\n",
                What::Image => b"\",\"type\":\"image\"}\n",
                What::Interactive => b"\",\"type\":\"interactive\"}\n",
                What::Marketing => b"\",\"type\":\"template\",\"category\":\"marketing\"}\n",
                What::MarketingLite => {
                    b"\",\"type\":\"template\",\"category\":\"marketing\",\"api\":\"marketing_messages\"}\n"
                }
                What::Utility => b"\",\"type\":\"template\",\"category\":\"utility\"}\n",
                What::Authentication => {
                    b"\",\"type\":\"template\",\"category\":\"authentication\"}\n"
                }
                What::Sent | What::Delivered | What::Read | What::Failed => {
                    unreachable!("statuses are written above")
                }
            });
        }
        self.end_line()
    }

    pub(crate) fn finish(self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::days_from_civil;

    fn write(ev: Ev) -> String {
        let mut out = Vec::new();
        let phones = vec![b"\",\"waba\":\"W1\",\"phone\":\"15550001001\",\"user\":\""
            .to_vec()
            .into_boxed_slice()];
        let mut w = LineWriter::new(&mut out, Clock::new(days_from_civil(2026, 10, 1)), phones);
        w.event(&ev).unwrap();
        w.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    fn ev(what: What) -> Ev {
        Ev {
            key: 0,
            at: 10 * 3600 + 300,
            id: 0x0123_4567_89ab_cdef,
            user: 5_511_988_887_777,
            phone: 0,
            what,
            dup: false,
        }
    }

    #[test]
    fn lines_match_the_documented_shape() {
        assert_eq!(
            write(ev(What::Utility)),
            "{\"kind\":\"outbound\",\"id\":\"wamid.0123456789abcdef\",\"at\":\"2026-10-01T10:05:00Z\",\
             \"waba\":\"W1\",\"phone\":\"15550001001\",\"user\":\"5511988887777\",\
             \"type\":\"template\",\"category\":\"utility\"}\n"
        );
        assert_eq!(
            write(ev(What::InboundCtwa)),
            "{\"kind\":\"inbound\",\"id\":\"wamid.0123456789abcdef\",\"at\":\"2026-10-01T10:05:00Z\",\
             \"waba\":\"W1\",\"phone\":\"15550001001\",\"user\":\"5511988887777\",\
             \"entry_point\":\"ctwa\"}\n"
        );
        assert_eq!(
            write(ev(What::Delivered)),
            "{\"kind\":\"status\",\"id\":\"wamid.0123456789abcdef\",\"at\":\"2026-10-01T10:05:00Z\",\
             \"status\":\"delivered\"}\n"
        );
    }
}
