//! `manifest.toml` as `bundle create` and `update verify` read it: any text either
//! parses or is a located error; what parses is checked, and renders back to TOML that
//! parses to the very same manifest.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vigil::bundle::manifest::{parse, render};

fuzz_target!(|data: &[u8]| {
    // The verifier refuses a manifest that is not UTF-8 before parsing it.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("manifest.toml");
    let Ok(m) = parse(path, text) else {
        return;
    };
    let _ = m.check();
    let out = render(&m);
    match parse(path, &out) {
        Ok(again) => assert_eq!(again, m, "render does not parse back to the same manifest:\n{out}"),
        Err(e) => panic!("render does not parse back: {e}\n{out}"),
    }
});
