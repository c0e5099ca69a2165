//! The documentation, tested: the examples of `README.md` and `docs/guide.md` run against a
//! small tree and print what they show, `docs/options.md` is what the clap definitions give,
//! the command lines inside CI and Kubernetes recipes parse, links lead somewhere, and the
//! tests the reliability table names exist.
//!
//! # Why a harness of our own, and not trycmd
//!
//! trycmd runs one binary per command, without a shell, on files kept beside the test. The
//! examples a user copies are shell: `sumpool hash data > SHA256SUMS && sha256sum -c
//! SHA256SUMS`, `... | jq ...`, `find ... -print0 | sumpool hash --files-from - -0`, a loop over
//! shards. Rewritten for trycmd they would no longer be the examples the README shows. So this
//! test reads the fenced blocks out of the Markdown and runs them with bash (see `examples` for
//! the conventions: `console` transcripts with their output checked, `sh` scripts that must
//! succeed, `skip=REASON`), in a directory made by the README's own fixture script, with the
//! `sumpool` under test first on `PATH`. Adding an example is adding a fenced block. It borrows
//! trycmd's wildcards (`[..]`, `...`) for what differs from run to run.
//!
//! All examples run in one test, one after the other, each in a directory of its own: a few
//! seconds in all, two of them spent waiting for the fixture's files to age (see
//! `examples::SETTLE`). A failure shows what the command printed beside what the document
//! shows, for every example that differs.
//!
//! # The options page
//!
//! `docs/options.md` is rendered from `sumpool::cli::Cli::definition()`; when it differs from
//! the file, the test fails and says how to write it again:
//! `SUMPOOL_BLESS=1 cargo test --test docs`.

mod examples;
mod markdown;
mod options;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use clap::Parser as _;
use sumpool::cli::Cli;

use markdown::Block;

/// The documents whose shell examples run.
const WITH_EXAMPLES: &[&str] = &["README.md", "docs/guide.md"];

/// The documents whose links, recipes and version numbers are checked.
const DOCUMENTS: &[&str] = &[
    "README.md",
    "CONTRIBUTING.md",
    "ARCHITECTURE.md",
    "CHANGELOG.md",
    "docs/guide.md",
    "docs/benchmarks.md",
    "docs/reliability.md",
    "docs/options.md",
];

/// The most characters the README may hold: it is read in five minutes, the rest is in docs/.
const README_LIMIT: usize = 12_000;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(document: &str) -> String {
    fs::read_to_string(root().join(document)).unwrap_or_else(|e| panic!("{document}: {e}"))
}

fn blocks(documents: &[&str]) -> Vec<Block> {
    documents
        .iter()
        .flat_map(|d| markdown::fenced_blocks(d, &read(d)).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

#[test]
fn examples_run_and_print_what_the_documents_show() {
    let all = blocks(WITH_EXAMPLES);
    let (fixture, mut examples) = examples::examples(&all).unwrap_or_else(|errors| {
        panic!(
            "examples that break the conventions:\n{}",
            errors.join("\n")
        )
    });
    let missing = examples::missing_tools();
    for (tool, var) in &missing {
        assert!(
            std::env::var_os(var).is_none(),
            "{var} is set, but `{tool}` is not installed: the examples that call it cannot run"
        );
    }
    for example in &mut examples {
        let text = match &example.kind {
            examples::Kind::Script(s) => s.clone(),
            examples::Kind::Transcript(steps) => steps
                .iter()
                .map(|s| s.command.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        };
        if let Some(tool) = missing.keys().find(|tool| examples::calls(&text, tool)) {
            example
                .skip
                .get_or_insert(format!("{tool} is not installed"));
        }
    }
    let sumpool = PathBuf::from(env!("CARGO_BIN_EXE_sumpool"));
    let (failures, took) = examples::run_all(&examples, &fixture, &sumpool);
    let ran = examples.iter().filter(|e| e.skip.is_none()).count();
    eprintln!(
        "{ran} examples ran in {:.1} s; skipped:",
        took.as_secs_f64()
    );
    for example in examples.iter().filter(|e| e.skip.is_some()) {
        let reason = example.skip.as_deref().unwrap_or_default();
        let why = examples::SKIPS
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(reason, |(_, why)| why);
        eprintln!("  {}: {why}", example.block.place());
    }
    assert!(ran >= 10, "only {ran} examples ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} examples do not do what the documents show (fix the example, or the \
         program):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_options_page_is_the_clap_definition_rendered() {
    let want = options::render(Cli::definition());
    let path = root().join("docs/options.md");
    if std::env::var_os("SUMPOOL_BLESS").is_some() {
        fs::write(&path, &want).expect("write docs/options.md");
        return;
    }
    let have = fs::read_to_string(&path).unwrap_or_default();
    if have != want {
        let line = have
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(have.lines().count().min(want.lines().count()));
        panic!(
            "docs/options.md is not what the clap definitions in src/cli/ give; first \
             difference at line {}:\n  file: {:?}\n  want: {:?}\nWrite it again with\n    {}\n\
             and commit it.",
            line + 1,
            have.lines().nth(line).unwrap_or("(end of file)"),
            want.lines().nth(line).unwrap_or("(end of file)"),
            options::REGENERATE
        );
    }
}

#[test]
fn the_readme_is_read_in_five_minutes() {
    let size = read("README.md").chars().count();
    assert!(
        size <= README_LIMIT,
        "README.md has {size} characters, over {README_LIMIT}: move detail to docs/"
    );
}

/// The `sumpool` command lines of recipes that do not run here (GitHub Actions steps,
/// Kubernetes `args`) parse with today's options, with `${{ ... }}` and `$(VAR)` taken as 1.
#[test]
fn command_lines_in_recipes_parse() {
    let commands: BTreeSet<String> = Cli::definition()
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    let mut checked = 0;
    let mut errors = Vec::new();
    for block in blocks(DOCUMENTS).iter().filter(|b| b.lang == "yaml") {
        for (offset, line) in block.lines.iter().enumerate() {
            let Some(words) = recipe_command(line, &commands) else {
                continue;
            };
            checked += 1;
            let parsed = Cli::try_parse_from(&words).and_then(Cli::into_action);
            if let Err(e) = parsed {
                errors.push(format!(
                    "{}:{}: {words:?}: {}",
                    block.file,
                    block.line + offset + 1,
                    e.to_string().lines().next().unwrap_or_default()
                ));
            }
        }
    }
    assert!(checked >= 3, "only {checked} recipe command lines found");
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// The words of a `sumpool COMMAND ...` line, or of a Kubernetes `args: [...]` list, in a
/// recipe line; up to the first redirection, pipe or list operator.
fn recipe_command(line: &str, commands: &BTreeSet<String>) -> Option<Vec<String>> {
    let substituted = substitute(line);
    let mut words: Vec<String> = if let Some(list) = substituted.trim().strip_prefix("args:") {
        let list: Vec<String> = serde_json::from_str(list.trim()).ok()?;
        std::iter::once("sumpool".to_owned()).chain(list).collect()
    } else {
        let at = substituted.find("sumpool ")?;
        substituted[at..]
            .split_whitespace()
            .take_while(|w| !matches!(*w, ">" | "|" | "&&" | "||" | ";" | "#"))
            .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_owned())
            .collect()
    };
    if !words.get(1).is_some_and(|w| commands.contains(w)) {
        return None;
    }
    words.retain(|w| !w.is_empty());
    Some(words)
}

/// `${{ matrix.k }}` and `$(SHARD)` replaced by `1`.
fn substitute(line: &str) -> String {
    let mut text = line.to_owned();
    for (open, close) in [("${{", "}}"), ("$(", ")")] {
        while let Some(start) = text.find(open) {
            let Some(len) = text[start..].find(close) else {
                break;
            };
            text.replace_range(start..start + len + close.len(), "1");
        }
    }
    text
}

/// Relative links lead to files that exist, and `#anchors` to headings that exist.
#[test]
fn links_lead_somewhere() {
    let mut errors = Vec::new();
    for document in DOCUMENTS {
        let dir = Path::new(document).parent().unwrap_or(Path::new(""));
        for (line, target) in markdown::links(&read(document)) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let linked = if file.is_empty() {
                document.to_string()
            } else {
                dir.join(file).to_string_lossy().into_owned()
            };
            if !root().join(&linked).exists() {
                errors.push(format!("{document}:{line}: no file {linked}"));
                continue;
            }
            if !anchor.is_empty()
                && linked.ends_with(".md")
                && !markdown::anchors(&read(&linked))
                    .iter()
                    .any(|a| a == anchor)
            {
                errors.push(format!(
                    "{document}:{line}: no heading #{anchor} in {linked}"
                ));
            }
        }
    }
    assert!(errors.is_empty(), "broken links:\n{}", errors.join("\n"));
}

/// The documents name tests as `tests/FILE.rs::function`; each one exists.
#[test]
fn tests_the_documents_name_exist() {
    let mut named = 0;
    let mut errors = Vec::new();
    for document in DOCUMENTS {
        for (line, text) in read(document).lines().enumerate() {
            let mut rest = text;
            while let Some(at) = rest.find("tests/") {
                rest = &rest[at..];
                let end = rest
                    .find(|c: char| !(c.is_alphanumeric() || "_/.:".contains(c)))
                    .unwrap_or(rest.len());
                let reference = &rest[..end];
                rest = &rest[end..];
                // `tests/FILE.rs::function` in prose names the form, not a test.
                let Some((file, function)) = reference.split_once(".rs::") else {
                    continue;
                };
                if reference.contains(|c: char| c.is_ascii_uppercase()) {
                    continue;
                }
                named += 1;
                let source =
                    fs::read_to_string(root().join(format!("{file}.rs"))).unwrap_or_default();
                if !source.contains(&format!("fn {function}(")) {
                    errors.push(format!(
                        "{document}:{}: {reference} does not exist",
                        line + 1
                    ));
                }
            }
        }
    }
    assert!(named >= 10, "only {named} tests named");
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// A version of sumpool written in the documents (`sumpool:0.2.0`, `--version 0.2.0`,
/// `sumpool-0.2.0`, `/v0.2.0`) is the crate's, so a release cannot leave one behind.
#[test]
fn versions_in_the_documents_are_the_crates() {
    let version = env!("CARGO_PKG_VERSION");
    let mut errors = Vec::new();
    for document in ["README.md", "docs/guide.md"] {
        for (line, text) in read(document).lines().enumerate() {
            for prefix in ["sumpool:", "sumpool-", "sumpool ", "--version ", "/v"] {
                for (at, _) in text.match_indices(prefix) {
                    let rest = &text[at + prefix.len()..];
                    let end = rest
                        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                        .unwrap_or(rest.len());
                    let found = rest[..end].trim_end_matches('.');
                    if found.split('.').count() == 3 && found != version {
                        errors.push(format!("{document}:{}: {prefix}{found}", line + 1));
                    }
                }
            }
        }
    }
    assert!(
        errors.is_empty(),
        "versions other than {version}:\n{}",
        errors.join("\n")
    );
}
