//! The service's configuration file (`wabill serve --config FILE`): any text is read and
//! resolved, or refused naming the key, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wabill_server::config::Settings;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(settings) = Settings::from_json("fuzz.json", text) {
        let _ = settings.resolve();
    }
});
