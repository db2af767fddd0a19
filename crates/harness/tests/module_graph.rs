//! The modules of each crate import one another without cycles (each `crate::<module>`
//! reference in a file under a top-level module is an edge from that module), so each can be
//! read, and moved into a library, on its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

/// Every `.rs` file under `dir`, with the top-level module it belongs to.
fn files(dir: &std::path::Path, top: Option<&str>, out: &mut Vec<(String, std::path::PathBuf)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let module = top.unwrap_or(&stem).to_string();
        if path.is_dir() {
            files(&path, Some(&module), out);
        } else if path.extension().is_some_and(|x| x == "rs") && !(top.is_none() && (stem == "main" || stem == "lib")) {
            out.push((module, path));
        }
    }
}

fn graph_of(krate: &str) -> BTreeMap<String, Vec<String>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(krate).join("src");
    let mut list = Vec::new();
    files(&dir, None, &mut list);
    let mut g: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, path) in list {
        let text = std::fs::read_to_string(&path).unwrap();
        let ident = |s: &str| -> String {
            s.trim_start().chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect()
        };
        let mut deps: Vec<String> = Vec::new();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + 7..];
            match rest.strip_prefix('{') {
                // `crate::{a, b::C}`: every first segment inside the braces.
                Some(group) => deps.extend(group.split('}').next().unwrap_or("").split(',').map(ident)),
                None => deps.push(ident(rest)),
            }
        }
        deps.retain(|d| !d.is_empty() && *d != name);
        let entry = g.entry(name).or_default();
        entry.extend(deps);
        entry.sort();
        entry.dedup();
    }
    g
}

fn graph() -> BTreeMap<String, Vec<String>> {
    graph_of("harness")
}

/// A cycle through `node`, if any, as the list of modules on it.
fn cycle(g: &BTreeMap<String, Vec<String>>, node: &str, path: &mut Vec<String>) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|p| p == node) {
        return Some(path[at..].to_vec());
    }
    path.push(node.to_string());
    for d in g.get(node).into_iter().flatten() {
        if let Some(c) = cycle(g, d, path) {
            return Some(c);
        }
    }
    path.pop();
    None
}

#[test]
fn harness_modules_have_no_import_cycle() {
    let g = graph();
    assert!(
        g.len() >= 5 && g["sweep"].contains(&"schedule".to_string()) && g["sweep"].contains(&"publish".to_string()),
        "graph looks wrong: {g:?}"
    );
    for node in g.keys() {
        if let Some(c) = cycle(&g, node, &mut Vec::new()) {
            panic!("import cycle: {}", c.join(" -> "));
        }
    }
}

/// The executors and the crates around them have no import cycle between their modules
/// either (the host network's forward, backward and training modules among them).
#[test]
fn library_modules_have_no_import_cycle() {
    for krate in ["net", "host", "lowbit", "models", "quant", "report", "pipeline", "bench", "experiment", "data"] {
        let g = graph_of(krate);
        assert!(!g.is_empty(), "{krate}: no modules found");
        for node in g.keys() {
            if let Some(c) = cycle(&g, node, &mut Vec::new()) {
                panic!("{krate}: import cycle: {}", c.join(" -> "));
            }
        }
    }
}

#[test]
fn a_cycle_is_found_when_there_is_one() {
    let mut g = graph();
    assert!(cycle(&g, "sweep", &mut Vec::new()).is_none());
    g.get_mut("schedule").unwrap().push("sweep".into());
    assert!(cycle(&g, "sweep", &mut Vec::new()).is_some());
}
