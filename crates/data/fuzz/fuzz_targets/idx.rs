//! The IDX reader on arbitrary bytes (raw and gzip): errors are fine, panics are not.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let images = mpq_data::idx::parse_images("fuzz", data);
    let labels = mpq_data::idx::parse_labels("fuzz", data);
    if let (Ok(px), Ok(lb)) = (images, labels) {
        let _ = mpq_data::idx::pair("a", px, "b", lb);
    }
});
