//! The layout rules of `ARCHITECTURE.md`, checked on the source itself (as rust-analyzer's
//! tidy tests do): imports go one way down the layers, there is no import circle, two
//! commands never import each other, and no function runs past 80 lines without a reason
//! written beside it.
//!
//! The source is read as text: every `crate::` path outside comments (a `use` tree, or a path
//! written inline) is resolved to the deepest module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The layers, top to bottom; a module may import only from its own layer or below. Within
/// a layer, `cli` and the commands may not import one another.
const LAYERS: &[&[&str]] = &[
    &["lib"],
    &["cli", "cmd"],
    &["config"],
    &["engine"],
    &["progress"],
    &["report"],
    &["format"],
    &["digest", "signals"],
];

/// Longest function body, in lines, allowed without a `// Long:` reason beside it.
const MAX_FUNCTION_LINES: usize = 80;

struct Module {
    /// `engine::pool`, `lib`, `cmd`...
    name: String,
    text: String,
}

fn modules() -> Vec<Module> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    collect(&root, &root, &mut found);
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

fn collect(root: &Path, dir: &Path, found: &mut Vec<Module>) {
    for entry in fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect(root, &path, found);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("main.rs") {
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .expect("under src")
            .with_extension("");
        let mut parts: Vec<String> = relative
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        found.push(Module {
            name: parts.join("::"),
            text: fs::read_to_string(&path).expect("read module"),
        });
    }
}

/// The code of a module, without comments (doc links name modules without importing them).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path of a use tree starting at `rest` (just after `crate::` or `super::`):
/// `a::b::{c, d::{e, f}}` gives `a::b::c`, `a::b::d::e`, `a::b::d::f`.
fn use_paths(rest: &str) -> Vec<String> {
    fn tree(s: &[u8], i: &mut usize, prefix: &str, out: &mut Vec<String>) {
        let mut path = prefix.to_string();
        loop {
            let start = *i;
            while *i < s.len() && (s[*i].is_ascii_alphanumeric() || s[*i] == b'_') {
                *i += 1;
            }
            let segment = std::str::from_utf8(&s[start..*i]).unwrap_or("");
            if !segment.is_empty() {
                if !path.is_empty() {
                    path.push_str("::");
                }
                path.push_str(segment);
            }
            if s[*i..].starts_with(b"::{") {
                *i += 3;
                loop {
                    while *i < s.len() && (s[*i] as char).is_whitespace() {
                        *i += 1;
                    }
                    if *i >= s.len() || s[*i] == b'}' {
                        *i += 1;
                        return;
                    }
                    tree(s, i, &path, out);
                    while *i < s.len() && ((s[*i] as char).is_whitespace() || s[*i] == b',') {
                        *i += 1;
                    }
                }
            } else if s[*i..].starts_with(b"::") {
                *i += 2;
            } else {
                out.push(path);
                return;
            }
        }
    }
    let mut out = Vec::new();
    tree(rest.as_bytes(), &mut 0, "", &mut out);
    out
}

/// The modules `module` imports, resolved to the deepest module each path names.
fn imports(module: &Module, names: &BTreeSet<String>) -> BTreeSet<String> {
    let code = code(&module.text);
    let parent = module.name.rsplit_once("::").map_or("", |(p, _)| p);
    let mut found = BTreeSet::new();
    for (anchor, base) in [("crate::", ""), ("super::", parent)] {
        for (at, _) in code.match_indices(anchor) {
            // `crate::` inside a longer identifier (`my_crate::`) is not ours.
            let before = code[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            for path in use_paths(&code[at + anchor.len()..]) {
                let full = if base.is_empty() {
                    path
                } else {
                    format!("{base}::{path}")
                };
                let segments: Vec<&str> = full.split("::").collect();
                let target = (1..=segments.len())
                    .rev()
                    .map(|n| segments[..n].join("::"))
                    .find(|candidate| names.contains(candidate));
                if let Some(target) = target {
                    let inside = module.name == target
                        || module.name.starts_with(&format!("{target}::"))
                        || (module.name == "lib");
                    if !inside {
                        found.insert(target);
                    }
                }
            }
        }
    }
    found
}

fn layer(module: &str) -> usize {
    let top = module.split("::").next().unwrap_or(module);
    LAYERS
        .iter()
        .position(|layer| layer.contains(&top))
        .unwrap_or_else(|| panic!("module {module} is in no layer; add it to LAYERS"))
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let names: BTreeSet<String> = modules.iter().map(|m| m.name.clone()).collect();
    modules
        .iter()
        .map(|m| (m.name.clone(), imports(m, &names)))
        .collect()
}

#[test]
fn the_parser_of_use_trees_finds_every_path() {
    assert_eq!(use_paths("a::b;"), vec!["a::b"]);
    assert_eq!(
        use_paths("a::{b::c, d::{e, f}};"),
        vec!["a::b::c", "a::d::e", "a::d::f"]
    );
    assert_eq!(
        use_paths("engine::pool::{self, Tuning}"),
        vec!["engine::pool::self", "engine::pool::Tuning"]
    );
    assert_eq!(
        use_paths("signals::stop_requested()"),
        vec!["signals::stop_requested"]
    );
}

#[test]
fn imports_go_down_the_layers_and_commands_stay_apart() {
    let graph = graph();
    assert!(graph.contains_key("engine::run") && graph.contains_key("cmd::hash"));
    let mut wrong = Vec::new();
    for (module, imported) in &graph {
        for target in imported {
            let (from, to) = (layer(module), layer(target));
            let top = |m: &str| m.split("::").next().unwrap_or(m).to_string();
            let sideways = from == to && top(module) != top(target);
            // A command may be a folder (`cmd/hash/`): its modules import each other; two
            // commands never do.
            let command = |m: &str| m.split("::").nth(1).map(str::to_string);
            let between_commands = module.starts_with("cmd::")
                && target.starts_with("cmd::")
                && command(module) != command(target);
            if to < from || sideways || between_commands {
                wrong.push(format!("{module} imports {target}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn there_is_no_import_circle() {
    let graph = graph();
    // Depth-first search for a back edge; report the circle it closes.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        let circle = visit(node, &graph, &mut Vec::new(), &mut done);
        assert!(
            circle.is_none(),
            "import circle: {}",
            circle.unwrap().join(" -> ")
        );
    }
}

#[test]
fn long_functions_say_why() {
    let mut long = Vec::new();
    for module in modules() {
        let lines: Vec<&str> = module.text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            let is_fn = [
                "fn ",
                "pub fn ",
                "pub(crate) fn ",
                "unsafe fn ",
                "extern \"C\" fn ",
            ]
            .iter()
            .any(|start| trimmed.starts_with(start));
            if !is_fn || trimmed.ends_with(';') {
                continue;
            }
            let close = format!("{indent}}}");
            let Some(end) = lines[i..].iter().position(|l| *l == close) else {
                continue;
            };
            let reason = lines[i.saturating_sub(4)..i]
                .iter()
                .any(|l| l.trim_start().starts_with("// Long:"));
            if end + 1 > MAX_FUNCTION_LINES && !reason {
                long.push(format!("{}: {} ({} lines)", module.name, trimmed, end + 1));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines without a `// Long:` reason:\n{}",
        long.join("\n")
    );
}

/// Longest source file, in lines: past this, a file holds more than one idea.
const MAX_FILE_LINES: usize = 700;

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn no_source_file_is_over_700_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches"] {
        if root.join(dir).is_dir() {
            rust_files(&root.join(dir), &mut files);
        }
    }
    let long: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let lines = fs::read_to_string(path).expect("read").lines().count();
            (lines > MAX_FILE_LINES).then(|| format!("{} ({lines} lines)", path.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_FILE_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// Every module of the engine says, in its header, which thread runs it (or that it is
/// pure and runs on whichever thread calls it).
#[test]
fn every_engine_module_says_which_thread_runs_it() {
    let mut silent = Vec::new();
    for module in modules().iter().filter(|m| m.name.starts_with("engine")) {
        let header: String = module
            .text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        if !header.contains("thread") {
            silent.push(module.name.clone());
        }
    }
    assert!(
        silent.is_empty(),
        "engine modules whose header does not say which thread runs them:\n{}",
        silent.join("\n")
    );
}
