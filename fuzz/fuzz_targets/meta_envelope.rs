//! Meta's webhook envelopes, as the signed webhook route reads them: wabill's own lines are
//! refused, an envelope gives events that read back from their canonical form unchanged, and
//! Meta's pricing rows name messages of the envelope.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wabill_formats::events::write_event;
use wabill_formats::{parse_envelope, parse_line, Parsed};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parsed = Parsed::default();
    if parse_envelope(text, 1, &mut parsed).is_err() {
        return;
    }
    // What the webhook takes, the events route takes too, as the same events.
    let mut same = Parsed::default();
    parse_line(text, 1, &mut same).expect("an envelope is a valid event line");
    assert_eq!(same.events, parsed.events);
    for e in &parsed.events {
        let mut out = Vec::new();
        write_event(&mut out, e);
        let again = std::str::from_utf8(&out).expect("UTF-8");
        let mut back = Parsed::default();
        parse_line(again, 1, &mut back).unwrap_or_else(|err| panic!("{again}: {err:?}"));
        assert_eq!(back.events.as_slice(), std::slice::from_ref(e), "{again}");
    }
});
