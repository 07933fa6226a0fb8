//! The calculator's inputs: the traffic file (`wabill estimate --input FILE`, JSON or CSV) and
//! the request document of `POST /v1/estimate`: any text is read or refused with a reason, never
//! a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = wabill_estimate::parse_traffic(text);
    let _ = wabill_estimate::parse_traffic_calls(text);
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = wabill_estimate::parse_request(&value);
    }
});
