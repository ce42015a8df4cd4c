//! `vigil.toml` as vigild and vigilctl read it: any text either parses to `Settings` whose
//! accessors agree with what was validated, or gives one error located within that text.

#![no_main]

mod common;

use std::path::Path;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use vigil::config::{PushTarget, Settings};

fn assert_push(t: &PushTarget, key: &str) {
    assert!(
        t.every >= Duration::from_secs(1),
        "{key}: every {:?}",
        t.every
    );
    assert!(
        !t.timeout.is_zero() && t.timeout <= t.every,
        "{key}: timeout {:?}, every {:?}",
        t.timeout,
        t.every
    );
    assert!(
        t.url.starts_with("http://") || t.url.starts_with("https://"),
        "{key}: url {:?}",
        t.url
    );
}

fuzz_target!(|data: &[u8]| {
    // The loader reads vigil.toml as UTF-8 and refuses it when it is not, before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/etc/vigil/vigil.toml");
    match Settings::parse(path, text) {
        Ok(s) => {
            // What parse validated, the accessors vigild uses must all give.
            if let Some(listen) = &s.http.listen {
                let addrs = s.listen_addrs().expect("listen is set");
                assert_eq!(addrs.len(), listen.len(), "an address was dropped");
            }
            assert_eq!(s.reboot_limit().is_some(), s.actions.reboot_limit.is_some());
            assert_eq!(s.heartbeat_push().is_some(), s.heartbeat.push.is_some());
            assert_eq!(s.metrics_push().is_some(), s.push.metrics.is_some());
            if let Some(t) = s.heartbeat_push() {
                assert_push(&t, "heartbeat.push");
            }
            if let Some(t) = s.metrics_push() {
                assert_push(&t, "push.metrics");
            }
            let u = &s.update;
            for hook in u
                .backup_hooks()
                .iter()
                .chain(&u.restore_hooks())
                .chain(u.commit_hook().iter())
            {
                assert!(s.hooks.contains_key(hook), "hook {hook:?} not defined");
            }
            for unit in s.tunnel_units() {
                assert!(
                    vigil::core::maintenance::check_unit_name(&unit).is_ok(),
                    "tunnel unit {unit:?}"
                );
            }
            let ctx = s.load_context();
            assert_eq!(ctx.hooks.len(), s.hooks.len());
            let _ = s.host_roots();
            // Deterministic.
            let again = Settings::parse(path, text).expect("parses the second time");
            assert_eq!(format!("{again:?}"), format!("{s:?}"));
        }
        Err(d) => {
            assert_eq!(d.file, path, "{d}");
            assert!(!d.message.trim().is_empty(), "an empty message at {d}");
            common::assert_within(text, d.line, d.column, &d);
        }
    }
});
