//! The checkpoint (safetensors) loader on arbitrary bytes: errors are fine, panics are not.
#![no_main]
use burn::prelude::Device;
use libfuzzer_sys::fuzz_target;
use mpq_models::{ModelConfig, checkpoint};

fuzz_target!(|data: &[u8]| {
    let dev = Device::flex();
    let net = ModelConfig::Mlp { hidden: vec![4] }.init(&dev, 0);
    let _ = checkpoint::from_bytes(net, data, "fuzz", &dev);
});
