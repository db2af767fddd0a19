//! Records the burn release this crate is built against (from the workspace's `Cargo.lock`)
//! as `MPQ_BURN_VERSION`, so the checkpoint cache key names the burn that trained a model.

fn main() {
    let lock = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock");
    println!("cargo:rerun-if-changed={lock}");
    let version = std::fs::read_to_string(lock)
        .ok()
        .and_then(|text| {
            let at = text.find("name = \"burn\"\nversion = \"")? + "name = \"burn\"\nversion = \"".len();
            text[at..].split('"').next().map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=MPQ_BURN_VERSION={version}");
}
