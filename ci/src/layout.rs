//! The house rules of the workspace's layout (shared STYLE.md, issue 13),
//! checked by `cargo test` over the source tree: no Rust file over 500
//! lines; `unsafe` forbidden in every crate but harness, whose raw syscall
//! layer (`sys`) no other crate names; no import circle between the
//! modules of a crate.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::payload::repo_root;

/// The workspace's crates, as folders of the repository.
const CRATES: [&str; 5] = ["harness", "cases", "fuzz", "benches", "ci"];

/// The path of harness's private syscall layer, as another crate would
/// write it (built so that this file does not name it itself).
const SYS_PATH: &str = concat!("harness", "::", "sys");

/// The longest a Rust file may be (modules small enough to read in one sitting).
const MAX_LINES: usize = 500;

/// Every `.rs` file under `dir`, skipping build output.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("reading {}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    todo.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The crate roots of `krate` (lib, bins, tests, benches): files whose
/// attributes apply to a whole crate.
fn crate_roots(krate: &Path) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = ["src/lib.rs", "src/main.rs"].iter().map(|r| krate.join(r)).filter(|p| p.exists()).collect();
    for dir in ["src/bin", "tests", "benches"] {
        if let Ok(entries) = fs::read_dir(krate.join(dir)) {
            roots.extend(entries.map(|e| e.expect("directory entry").path()).filter(|p| p.extension().is_some_and(|e| e == "rs")));
        }
    }
    roots
}

/// The module a file of `src/` is: `peer/running.rs` → `peer::running`,
/// `peer/mod.rs` → `peer`, `lib.rs` → `` (the crate root).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("a file of src/").with_extension("");
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let keep = match parts.last().map(String::as_str) {
        Some("mod") | Some("lib") | Some("main") => &parts[..parts.len() - 1],
        _ => &parts[..],
    };
    keep.join("::")
}

/// The top-level module of `krate` that `module` lives in (`peer::running` → `peer`).
fn top(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

/// Edges between the top-level modules of one crate's `src/`: `a → b`
/// when a file of `a` names `crate::b` (in a `use` or a path).
fn module_edges(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(src) {
        let from = top(&module_of(src, &file)).to_string();
        if from.is_empty() {
            continue; // the crate root declares and re-exports every module
        }
        let source = fs::read_to_string(&file).expect("readable source");
        // Code only: comments (doc links) are no imports, and a test module
        // (at the end of its file, by habit) may look at anything.
        let code = source.split("#[cfg(test)]").next().unwrap_or("");
        let text: String = code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        let mut names = BTreeSet::new();
        for (i, _) in text.match_indices("crate::") {
            if text[..i].ends_with(char::is_alphanumeric) || text[..i].ends_with('_') || text[..i].ends_with('$') {
                continue;
            }
            let rest = &text[i + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                names.insert(name);
            }
            // `crate::{a, b::c}`
            if rest.starts_with('{') {
                let inner = &rest[1..rest.find('}').unwrap_or(rest.len())];
                names.extend(inner.split(',').map(|p| p.trim().split("::").next().unwrap_or("").to_string()).filter(|n| !n.is_empty()));
            }
        }
        names.remove(&from);
        edges.entry(from).or_default().extend(names);
    }
    edges
}

/// One circle of `edges`, if there is any: the modules along it.
fn find_circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|n| visit(n, edges, &mut Vec::new(), &mut done))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_rust_file_is_over_500_lines() {
        let root = repo_root();
        let long: Vec<String> = CRATES
            .iter()
            .flat_map(|c| rust_files(&root.join(c)))
            .filter_map(|f| {
                let lines = fs::read_to_string(&f).expect("readable source").lines().count();
                (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", f.strip_prefix(&root).unwrap().display()))
            })
            .collect();
        assert!(long.is_empty(), "Rust files over {MAX_LINES} lines: split them along their seams: {long:?}");
    }

    #[test]
    fn unsafe_and_the_syscall_layer_stay_in_harness() {
        let root = repo_root();
        for krate in CRATES.iter().filter(|c| **c != "harness") {
            for file in crate_roots(&root.join(krate)) {
                let text = fs::read_to_string(&file).expect("readable source");
                assert!(text.contains("#![forbid(unsafe_code)]"), "{} lacks #![forbid(unsafe_code)]", file.display());
            }
            for file in rust_files(&root.join(krate)) {
                let text = fs::read_to_string(&file).expect("readable source");
                let names_sys =
                    text.match_indices(SYS_PATH).any(|(i, m)| !text[i + m.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_'));
                assert!(!names_sys, "{} names harness's private syscall layer", file.display());
            }
        }
        let lib = fs::read_to_string(root.join("harness/src/lib.rs")).expect("harness's lib.rs");
        assert!(lib.contains("pub(crate) mod sys;"), "harness's sys layer must stay pub(crate)");
    }

    #[test]
    fn no_import_circle_between_modules() {
        let root = repo_root();
        for krate in CRATES {
            let edges = module_edges(&root.join(krate).join("src"));
            assert!(!edges.is_empty() || krate == "benches", "no modules read in {krate}");
            if let Some(circle) = find_circle(&edges) {
                panic!("import circle in {krate}: {}", circle.join(" -> "));
            }
        }
    }

    #[test]
    fn the_circle_finder_finds_circles() {
        let edges = |pairs: &[(&str, &str)]| {
            let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (a, b) in pairs {
                m.entry(a.to_string()).or_default().insert(b.to_string());
            }
            m
        };
        assert_eq!(find_circle(&edges(&[("a", "b"), ("b", "c")])), None);
        assert_eq!(find_circle(&edges(&[("a", "b"), ("b", "c"), ("c", "a")])).map(|c| c.len()), Some(4));
        let src = Path::new("/x/src");
        assert_eq!(module_of(src, Path::new("/x/src/peer/running.rs")), "peer::running");
        assert_eq!(module_of(src, Path::new("/x/src/peer/mod.rs")), "peer");
        assert_eq!(module_of(src, Path::new("/x/src/lib.rs")), "");
    }
}
