//! The folders of `src/` are layers (see src/lib.rs and docs/ARCHITECTURE.md): a
//! module may name only the layers below its own, and the modules inside a folder
//! form no circle. These tests read the source, so a new import that breaks either
//! rule fails here with the file, the line and the path it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// For each top-level module, the top-level modules it may name (beside itself).
const ALLOWED: &[(&str, &[&str])] = &[
    ("bin", &["wasm", "summarize", "engine", "cpu", "gpu", "model", "format", "text", "transcript", "platform"]),
    ("wasm", &["summarize", "engine", "cpu", "gpu", "model", "format", "text", "transcript", "platform"]),
    ("summarize", &["engine", "model", "format", "text", "transcript", "platform"]),
    ("engine", &["cpu", "gpu", "model", "format", "text", "platform"]),
    ("cpu", &["model", "format", "platform"]),
    ("gpu", &["model", "format", "platform"]),
    ("model", &["format", "text", "platform"]),
    ("text", &["format", "platform"]),
    ("format", &["platform"]),
    ("transcript", &["platform"]),
    ("platform", &[]),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `src/gpu/kernels/mod.rs` → ["gpu", "kernels"]; `src/bin/precis/summarize.rs` →
/// ["bin", "precis", "summarize"].
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Code lines (comments and doc comments dropped) with their line numbers.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, l.split("//").next().unwrap_or(""))).filter(|(_, l)| !l.trim().is_empty())
}

/// Names the crate root re-exports (src/lib.rs), and the layer each comes from.
const ROOT_REEXPORTS: &[(&str, &str)] = &[
    ("Engine", "engine"),
    ("Backend", "engine"),
    ("GenerateOptions", "engine"),
    ("Generation", "engine"),
    ("StopReason", "engine"),
    ("Hparams", "format"),
    ("Overrides", "format"),
];

/// The module path a `use`-style path names, after its `crate::`/`super::` prefix:
/// the identifiers that start with a lower-case letter, from `base`; a root
/// re-export (`crate::Engine`) stands for its module.
fn module_path(rest: &str, base: &[String]) -> Vec<String> {
    let mut path = base.to_vec();
    for (n, seg) in rest.split("::").enumerate() {
        let id: String = seg.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if n == 0 && base.is_empty() {
            if let Some((_, m)) = ROOT_REEXPORTS.iter().find(|(name, _)| *name == id) {
                return vec![m.to_string()];
            }
        }
        if id.is_empty() || !id.starts_with(|c: char| c.is_ascii_lowercase()) || id == "self" {
            break;
        }
        path.push(id.clone());
        if id.len() != seg.trim_start().len() {
            break;
        }
    }
    path
}

/// Splits `{a::b, c::{d, e}, F}` (the text after the opening brace) into its
/// top-level items.
fn group_items(rest: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0, 0, vec![]);
    for (i, c) in rest.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&rest[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&rest[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&rest[start..]);
    items
}

/// Every `crate::a::b…` and `super::a…` path on a line, as module paths, grouped
/// imports (`crate::{a::X, b}`, `super::{c, d}`) expanded item by item.
fn paths_on(line: &str, module: &[String]) -> Vec<Vec<String>> {
    // `super` of src/gpu/kernels.rs and of src/gpu/kernels/mod.rs is `gpu` alike.
    let parent = module[..module.len().saturating_sub(1)].to_vec();
    let mut found = vec![];
    for (prefix, base) in [("crate::", vec![]), ("super::", parent)] {
        let mut rest = line;
        while let Some(at) = rest.find(prefix) {
            let before = &rest[..at];
            rest = &rest[at + prefix.len()..];
            if before.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let paths = match rest.strip_prefix('{') {
                Some(group) => group_items(group).into_iter().map(|item| module_path(item, &base)).collect(),
                None => vec![module_path(rest, &base)],
            };
            found.extend(paths.into_iter().filter(|p| !p.is_empty()));
        }
    }
    found
}

struct Source {
    module: Vec<String>,
    file: String,
    text: String,
}

fn sources() -> Vec<Source> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    files
        .iter()
        .filter(|f| f.file_name().unwrap() != "lib.rs")
        .map(|f| Source {
            module: module_of(&src, f),
            file: f.strip_prefix(&src).unwrap().display().to_string(),
            text: std::fs::read_to_string(f).unwrap(),
        })
        .collect()
}

#[test]
fn no_module_names_a_layer_above_its_own() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut bad = vec![];
    let srcs = sources();
    for s in &srcs {
        let top = s.module[0].as_str();
        let Some(ok) = allowed.get(top) else {
            bad.push(format!("src/{}: folder `{top}` is not in ALLOWED (name its layer in tests/layers.rs)", s.file));
            continue;
        };
        for (n, line) in code_lines(&s.text) {
            for p in paths_on(line, &s.module) {
                let to = p[0].as_str();
                if to != top && allowed.contains_key(to) && !ok.contains(&to) {
                    bad.push(format!("src/{}:{n}: `{top}` names `{}` (a layer above or beside it): {}", s.file, p.join("::"), line.trim()));
                }
            }
        }
    }
    assert!(srcs.len() > 40, "read only {} source files", srcs.len());
    assert!(bad.is_empty(), "imports against the layers:\n{}", bad.join("\n"));
}

#[test]
fn the_modules_of_a_folder_form_no_circle() {
    let srcs = sources();
    let modules: BTreeSet<Vec<String>> = srcs.iter().map(|s| s.module.clone()).collect();
    // Edges between sibling modules (children of one parent), lifted from whatever
    // descendants named each other; a parent and its own child may name each other (a
    // folder's mod.rs re-exports what its files define).
    let mut edges: BTreeMap<Vec<String>, BTreeMap<Vec<String>, String>> = BTreeMap::new();
    for s in &srcs {
        for (n, line) in code_lines(&s.text) {
            for p in paths_on(line, &s.module) {
                let Some(target) = (1..=p.len()).rev().map(|k| p[..k].to_vec()).find(|m| modules.contains(m)) else { continue };
                let common = s.module.iter().zip(&target).take_while(|(a, b)| a == b).count();
                if common >= s.module.len() || common >= target.len() {
                    continue;
                }
                let (from, to) = (s.module[..=common].to_vec(), target[..=common].to_vec());
                edges.entry(from).or_default().entry(to).or_insert_with(|| format!("src/{}:{n}", s.file));
            }
        }
    }
    // Depth-first search for a cycle; report the first found with where each edge is.
    fn visit(
        m: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeMap<Vec<String>, String>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        state.insert(m.clone(), 1);
        stack.push(m.clone());
        for next in edges.get(m).into_iter().flat_map(|e| e.keys()) {
            match state.get(next) {
                Some(1) => {
                    let at = stack.iter().position(|x| x == next).unwrap();
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(next, edges, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(m.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in edges.keys() {
        if !state.contains_key(m) {
            if let Some(cycle) = visit(m, &edges, &mut state, &mut vec![]) {
                let steps: Vec<String> = cycle.windows(2).map(|w| format!("{} → {} ({})", w[0].join("::"), w[1].join("::"), edges[&w[0]][&w[1]])).collect();
                panic!("modules name each other in a circle:\n{}", steps.join("\n"));
            }
        }
    }
}

#[test]
fn the_path_reader_finds_what_it_should() {
    let m = vec!["gpu".to_string(), "model".to_string()];
    assert_eq!(paths_on("use crate::format::quant::GgmlType;", &m), vec![vec!["format", "quant"]]);
    assert_eq!(paths_on("use super::kernels::{self as kn, Buf};", &m), vec![vec!["gpu", "kernels"]]);
    assert_eq!(paths_on("let x = crate::model::rope::inv_freq(1, 2.0);", &m), vec![vec!["model", "rope", "inv_freq"]]);
    assert!(paths_on("use mycrate::cpu::x;", &m).is_empty());
    assert_eq!(paths_on("use crate::{cpu::model::Model, format::gguf, Engine};", &m), vec![vec!["cpu", "model"], vec!["format", "gguf"], vec!["engine"]]);
    assert_eq!(paths_on("use super::{cache::GpuKvCache, context};", &m), vec![vec!["gpu", "cache"], vec!["gpu", "context"]]);
    assert_eq!(code_lines("//! crate::cpu::model\n    // crate::gpu\nlet a = 1; // crate::cpu").count(), 1);
}
