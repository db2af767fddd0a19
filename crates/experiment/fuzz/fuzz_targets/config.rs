//! The experiment-file loader on arbitrary text: errors are fine, panics are not.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(exp) = mpq_experiment::Experiment::parse(std::path::Path::new("fuzz.toml"), text) {
            let _ = exp.expand();
        }
    }
});
