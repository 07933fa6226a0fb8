//! wabill's event lines (docs/events.md), Meta envelopes included: any bytes parse or are
//! refused with a reason, never a panic; every event read back from its canonical form is the
//! same event.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wabill_formats::events::write_event;
use wabill_formats::{parse_line, Parsed};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parsed = Parsed::default();
    if parse_line(text, 1, &mut parsed).is_err() {
        assert!(
            parsed.events.is_empty(),
            "a refused line left events behind"
        );
        return;
    }
    for e in &parsed.events {
        let mut out = Vec::new();
        write_event(&mut out, e);
        let again = std::str::from_utf8(&out).expect("events are written as UTF-8");
        let mut back = Parsed::default();
        parse_line(again, 1, &mut back)
            .unwrap_or_else(|err| panic!("{again} does not read back: {err:?}"));
        assert_eq!(back.events.as_slice(), std::slice::from_ref(e), "{again}");
    }
});
