//! The module layering of `src/` (stated in `src/lib.rs` and ARCHITECTURE.md), checked on the
//! source text: every `crate::…` and `super::…` path in non-test code is an edge from the module
//! that writes it to the module it names. Two rules:
//!
//! 1. Between top-level modules ("rooms"), edges only go down [`LAYERS`]: a room may use rooms of
//!    lower layers, never one of its own layer or above.
//! 2. Between second-level modules (`nn/loss`, `report/results`, …), there is no cycle.
//!
//! Test code (`#[cfg(test)]` modules, inline or in their own file) is exempt: tests may use
//! higher layers as oracles (the samplers' tests use `validate`'s known LLCs).
//!
//! The checker is plain functions over `(path, text)` pairs, so the tests at the bottom can feed
//! it a made-up tree and see it fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Rooms from the bottom up; a room may use only rooms of earlier layers.
const LAYERS: &[&[&str]] = &[
    &["numeric", "terminal", "exit_code", "invalid"],
    &["posterior", "diagnostics"],
    &["samplers"],
    &["config"],
    &["nn"],
    &["data"],
    &["train", "analysis"],
    &["validate", "plan"],
    &["store"],
    &["spec", "report"],
    &["worker", "exec"],
    &["cli"],
];

/// Every `.rs` file under `dir`, as (path relative to `src/` with `/`, text).
fn read_tree(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Module path of a file: `nn/loss.rs` → [nn, loss]; `exec/slurm/mod.rs` → [exec, slurm].
fn module_of(file: &str) -> Vec<String> {
    let stem = file.trim_end_matches(".rs");
    let mut parts: Vec<String> = stem.split('/').map(String::from).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Files of modules declared `#[cfg(test)] mod name;` (test-only modules in their own file).
fn test_only_files(tree: &[(String, String)]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (file, text) in tree {
        let dir = module_of(file).join("/");
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for pair in lines.windows(2) {
            if pair[0] != "#[cfg(test)]" {
                continue;
            }
            let decl = pair[1]
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ");
            if let Some(name) = decl.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                let prefix = if dir.is_empty() {
                    String::new()
                } else {
                    format!("{dir}/")
                };
                out.insert(format!("{prefix}{name}.rs"));
                out.insert(format!("{prefix}{name}/mod.rs"));
            }
        }
    }
    out
}

/// `text` without `//` comments and without inline `#[cfg(test)] mod … { … }` blocks.
fn non_test_code(text: &str) -> String {
    let without_comments: String = text
        .lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    let mut rest = without_comments.as_str();
    while let Some(i) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..i]);
        let after = rest[i + "#[cfg(test)]".len()..].trim_start();
        let inline_module = after.starts_with("mod ") && {
            let head = after.split(['{', ';']).next().unwrap_or("");
            after[head.len()..].starts_with('{')
        };
        if !inline_module {
            out.push_str("#[cfg(test)]");
            rest = &rest[i + "#[cfg(test)]".len()..];
            continue;
        }
        // Skip to the brace that closes the module.
        let open = rest.len() - after.len() + after.find('{').unwrap();
        let mut depth = 0usize;
        let mut end = rest.len();
        for (k, c) in rest[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The paths a piece of code names after `prefix` (`crate::` or `super::`), with groups
/// (`crate::{a::x, b}`) expanded into one path per item.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices(prefix) {
        let preceded_by_path = code[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        if preceded_by_path {
            continue; // `super::super::x` or `self::crate…`: stays within the room
        }
        let rest = &code[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 || (depth == 1 && c == ',') {
                    out.push(split_path(&item));
                    item.clear();
                    if depth == 0 {
                        break;
                    }
                } else {
                    item.push(c);
                }
            }
        } else {
            out.push(split_path(rest));
        }
    }
    out
}

/// `a::b::{c, d}` or `a::b::Type` → [a, b, …] (lower-case identifiers only: module names).
fn split_path(text: &str) -> Vec<String> {
    text.trim()
        .split("::")
        .map(|s| {
            s.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .take_while(|s| !s.is_empty() && s.chars().next().is_some_and(|c| c.is_lowercase()))
        .collect()
}

/// The second-level node a path names: `[nn, loss, X]` → `nn/loss` when `nn/loss` is a module,
/// else the room `nn`.
fn node_of(path: &[String], modules: &BTreeSet<String>) -> Option<String> {
    let room = path.first()?;
    if let Some(sub) = path.get(1) {
        let name = format!("{room}/{sub}");
        if modules.contains(&name) {
            return Some(name);
        }
    }
    Some(room.clone())
}

/// Edges between second-level nodes of the non-test code of `tree`.
fn edges(tree: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let skip = test_only_files(tree);
    let modules: BTreeSet<String> = tree
        .iter()
        .map(|(f, _)| module_of(f))
        .filter(|m| m.len() >= 2)
        .map(|m| format!("{}/{}", m[0], m[1]))
        .collect();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, text) in tree {
        let me_path = module_of(file);
        let top_level_binary =
            matches!(file.as_str(), "lib.rs" | "main.rs") || file.starts_with("bin/");
        if top_level_binary || skip.contains(file) {
            continue;
        }
        let me = node_of(&me_path, &modules).unwrap();
        let code = non_test_code(text);
        let mut named = paths_after(&code, "crate::");
        // `super::x` in module a/b/c names a/b/x.
        let parent = &me_path[..me_path.len() - 1];
        for path in paths_after(&code, "super::") {
            named.push(parent.iter().cloned().chain(path).collect());
        }
        for path in named {
            if let Some(node) = node_of(&path, &modules)
                && node != me
            {
                out.entry(me.clone()).or_default().insert(node);
            }
        }
    }
    out
}

fn room(node: &str) -> &str {
    node.split('/').next().unwrap()
}

fn layer_of(room: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&room))
}

/// Violations of rule 1: `a -> b` where b is not in a lower layer than a (or either is unknown).
fn layering_violations(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut out = BTreeSet::new();
    for (from, tos) in edges {
        for to in tos {
            let (a, b) = (room(from), room(to));
            if a == b {
                continue;
            }
            match (layer_of(a), layer_of(b)) {
                (Some(la), Some(lb)) if lb < la => {}
                (Some(_), Some(_)) => {
                    out.insert(format!("{from} uses {to}, which is not in a lower layer"));
                }
                _ => {
                    out.insert(format!(
                        "{from} -> {to}: a room missing from LAYERS (add it to tests/layering.rs and ARCHITECTURE.md)"
                    ));
                }
            }
        }
    }
    out.into_iter().collect()
}

/// Rule 2: the cycles (strongly connected components of more than one node) of the node graph.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Two nodes are on a cycle together when each reaches the other.
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(n) = stack.pop() {
            for m in edges.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    stack.push(m.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|n| (n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for (n, r) in &reaches {
        if done.contains(*n) || !r.contains(*n) {
            continue;
        }
        let component: Vec<String> = r
            .iter()
            .filter(|m| reaches.get(m).is_some_and(|rm| rm.contains(*n)))
            .cloned()
            .collect();
        done.extend(component.iter().cloned());
        out.push(component);
    }
    out
}

fn src_tree() -> Vec<(String, String)> {
    read_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

#[test]
fn rooms_only_use_lower_layers() {
    let violations = layering_violations(&edges(&src_tree()));
    assert!(
        violations.is_empty(),
        "the module layering (ARCHITECTURE.md) is broken:\n  {}",
        violations.join("\n  ")
    );
}

#[test]
fn no_cycle_between_modules() {
    let cycles = cycles(&edges(&src_tree()));
    assert!(
        cycles.is_empty(),
        "modules that import each other: {cycles:?}"
    );
}

#[test]
fn every_room_of_src_is_in_a_layer() {
    for (file, _) in src_tree() {
        let m = module_of(&file);
        let r = &m[0];
        if matches!(r.as_str(), "lib" | "main" | "bin") {
            continue;
        }
        assert!(layer_of(r).is_some(), "{file}: room {r} is in no layer");
    }
}

// The checker itself, on made-up trees: it must catch what the rules forbid.

fn tree(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect()
}

#[test]
fn the_checker_fails_when_the_worker_imports_the_cli() {
    let t = tree(&[
        (
            "worker/mod.rs",
            "use crate::cli::{CliError, WorkerCommand};\n",
        ),
        ("cli/mod.rs", "pub fn f() { crate::worker::run(); }\n"),
    ]);
    let v = layering_violations(&edges(&t));
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].starts_with("worker uses cli"), "{v:?}");
    assert_eq!(cycles(&edges(&t)).len(), 1);
}

#[test]
fn the_checker_reads_groups_super_paths_and_skips_tests_and_comments() {
    let t = tree(&[
        (
            "nn/loss.rs",
            "use super::mlp::Mlp;\n// crate::cli::x in a comment\n#[cfg(test)]\nmod tests {\n    use crate::validate::Case;\n    fn f() { if true { } }\n}\n",
        ),
        ("nn/mlp.rs", "use super::{loss::CHUNK, Foo};\n"),
        ("nn/mod.rs", "#[cfg(test)]\nmod gradient_tests;\n"),
        ("nn/gradient_tests.rs", "use crate::cli::Anything;\n"),
        (
            "plan/mod.rs",
            "use crate::{config::schema::X, nn::loss::Y};\n",
        ),
    ]);
    let e = edges(&t);
    assert_eq!(e["nn/loss"], BTreeSet::from(["nn/mlp".to_string()]));
    // `super::Foo` names an item of nn/mod.rs: an edge to the room itself.
    assert_eq!(
        e["nn/mlp"],
        BTreeSet::from(["nn".to_string(), "nn/loss".to_string()])
    );
    assert_eq!(
        e["plan"],
        BTreeSet::from(["config".to_string(), "nn/loss".to_string()])
    );
    assert!(!e.contains_key("nn/gradient_tests"));
    assert!(
        layering_violations(&e).is_empty(),
        "{:?}",
        layering_violations(&e)
    );
    assert_eq!(
        cycles(&e),
        vec![vec!["nn/loss".to_string(), "nn/mlp".to_string()]]
    );
}
