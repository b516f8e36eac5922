//! The evaluation manifest (TOML list of domains), as `trainer eval --manifest` parses it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use trainer::eval::manifest::Manifest;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(m) = Manifest::parse(text, std::path::Path::new("fuzz/manifest.toml")) {
            assert!(!m.domains.is_empty());
            for d in &m.domains {
                assert!(!d.name.is_empty() && !d.name.contains(['/', '\\']));
            }
        }
    }
});
