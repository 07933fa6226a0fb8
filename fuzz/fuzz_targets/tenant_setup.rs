//! A tenant's billing set-up (`wabill invoice --setup`, `PUT /v1/tenants/{id}`): any text is
//! read or refused with a reason, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wabill_billing::setup::TenantSetup;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = TenantSetup::from_json(text);
});
