//! The harness's modules import one another without cycles (each `crate::<module>` reference
//! is an edge), so each can be read, and moved into a library, on its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

fn graph() -> BTreeMap<String, Vec<String>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut g = BTreeMap::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.extension().is_none_or(|x| x != "rs") || name == "main" || name == "lib" {
            continue;
        }
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
        deps.sort();
        deps.dedup();
        g.insert(name, deps);
    }
    g
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

#[test]
fn a_cycle_is_found_when_there_is_one() {
    let mut g = graph();
    assert!(cycle(&g, "sweep", &mut Vec::new()).is_none());
    g.get_mut("schedule").unwrap().push("sweep".into());
    assert!(cycle(&g, "sweep", &mut Vec::new()).is_some());
}
