//! The training configuration with `--set KEY=VALUE` overrides: the input's first line holds
//! the overrides (separated by `;`), the rest is the TOML file.
#![no_main]
use libfuzzer_sys::fuzz_target;
use trainer::train::config::TrainConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (first, toml) = text.split_once('\n').unwrap_or(("", text));
    let overrides: Vec<String> = first.split(';').filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if let Ok(cfg) = TrainConfig::parse(toml, std::path::Path::new("fuzz/config.toml"), &overrides) {
        assert!(cfg.train.steps >= 1);
    }
});
