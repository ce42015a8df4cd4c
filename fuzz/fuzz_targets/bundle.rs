//! A bundle stream as `update verify` reads it: any bytes end in `Ok` or a `Refusal`,
//! never a panic, never unbounded memory or time. One trusted key, fixed here: the seeds
//! under fuzz/seeds/bundle are signed by its secret key, so the fuzzer starts from
//! bundles that verify (see docs/fuzzing.md to make new ones).

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use minisign_verify::PublicKey;
use vigil::bundle::{verify, Check, Discard, TrustedKey};

/// `minisign -G` made it (key id 41F4F736E7058E61); the seeds are signed with its secret key.
const PUBLIC_KEY: &str = "RWRhjgXnNvf0QSkVAURxm6WDtVmNZBKGNwatBAQGul44G3fN+s1UR9c9";

fn keys() -> &'static [TrustedKey] {
    static KEYS: OnceLock<Vec<TrustedKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        vec![TrustedKey {
            path: PathBuf::from("fuzz.pub"),
            key: PublicKey::from_base64(PUBLIC_KEY).expect("the embedded key decodes"),
            id: "41F4F736E7058E61".into(),
        }]
    })
}

fuzz_target!(|data: &[u8]| {
    let check = Check {
        keys: keys(),
        installed: None,
        model: None,
        allow_downgrade: true,
    };
    // Ok or a Refusal; either is fine, a panic or a blow-up is not.
    let _ = verify(std::io::Cursor::new(data), "fuzz", &check, &mut Discard);
});
