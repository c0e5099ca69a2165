//! The examples of the documentation, as programs: which fenced blocks run, how, and what
//! their output must be. The conventions are written for authors in `CONTRIBUTING.md` ("The
//! documentation, and examples that cannot rot"); in short:
//!
//! - ```` ```console ````: a transcript. A line starting with `$ ` is a command (a line
//!   ending in `\` continues it); the lines after it, up to the next command, are what it
//!   prints: its standard output, then its standard error. `[..]` in a line stands for any
//!   text within that line, and a line of just `...` for any number of lines (trycmd's
//!   wildcards). Every command must exit 0, except one followed by `$ echo $?`, which shows
//!   its status instead.
//! - ```` ```sh ````: a script, run with `bash -euo pipefail`; it must exit 0, and what it
//!   prints is not compared. For output that is not the same from run to run (a progress
//!   bar, timings) or of no interest.
//! - ```` ```sh fixture ````: the script that makes the small tree every example runs in.
//!   There is one, in the README, so a reader can make the same tree and see the same output.
//! - `skip=REASON` after the language: not run, for one of the [`SKIPS`] reasons.
//! - Any other language (`yaml`, `text`) is not run.
//!
//! Each example runs in a directory of its own, made from the fixture, with the `sumpool`
//! under test first on `PATH`, `HOME` in that directory, and the C.UTF-8 locale.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::markdown::Block;

/// Why an example may be left unrun, and what that means. Anything else after `skip=` is an
/// error, so every skip is one of these and the test's output lists them.
pub const SKIPS: &[(&str, &str)] = &[
    (
        "network",
        "downloads from the internet (a release asset, a crate), which the tests must not need",
    ),
    (
        "container",
        "needs a container engine and a registry (podman or docker build and push)",
    ),
    (
        "cargo",
        "builds sumpool or runs its test suite: the suite itself does both, and tests/hash.rs \
         runs the quick start's `sumpool hash src` against sha256sum",
    ),
];

/// Tools that some examples call and a bare system may lack. A missing one skips the
/// examples that use it, unless the variable is set (as `.ci/run` sets it): then it fails.
pub const OPTIONAL_TOOLS: &[(&str, &str)] = &[("jq", "SUMPOOL_REQUIRE_JQ")];

/// Seconds an example may run before it is called a hang.
const TIMEOUT_SECS: u32 = 60;

/// How long before the examples run the fixture's files must be written: `hash --update`
/// records a file written less than 2 s before its scan as racy, and reads it again next
/// time, which would make a transcript of two updates differ from what a reader sees on a
/// tree made a while ago.
const SETTLE: Duration = Duration::from_millis(2100);

/// One step of a transcript.
#[derive(Debug)]
pub struct Step {
    /// The command, as bash reads it (continuation lines kept).
    pub command: String,
    /// What it prints, line by line, with wildcards.
    pub expected: Vec<String>,
}

/// What an example block is.
#[derive(Debug)]
pub enum Kind {
    /// A `console` transcript.
    Transcript(Vec<Step>),
    /// A `sh` script.
    Script(String),
}

/// A block that runs, or would run but for its skip reason.
#[derive(Debug)]
pub struct Example {
    pub block: Block,
    pub kind: Kind,
    /// Why it is not run, from [`SKIPS`] or a missing optional tool.
    pub skip: Option<String>,
}

/// The examples among `blocks`, and the fixture script; errors for blocks that break the
/// conventions (an unknown skip reason, a shell block in another dialect, a block without
/// a language, no fixture or two).
pub fn examples(blocks: &[Block]) -> Result<(String, Vec<Example>), Vec<String>> {
    let mut errors = Vec::new();
    let mut fixture = Vec::new();
    let mut found = Vec::new();
    for block in blocks {
        let skip = match block.attr("skip") {
            None => None,
            Some(reason) if SKIPS.iter().any(|(r, _)| *r == reason) => Some(reason.to_owned()),
            Some(reason) => {
                errors.push(format!(
                    "{}: unknown skip={reason}; the reasons are {:?}",
                    block.place(),
                    SKIPS.iter().map(|(r, _)| *r).collect::<Vec<_>>()
                ));
                continue;
            }
        };
        let kind = match block.lang.as_str() {
            "console" => match transcript(&block.lines) {
                Ok(steps) => Kind::Transcript(steps),
                Err(e) => {
                    errors.push(format!("{}: {e}", block.place()));
                    continue;
                }
            },
            "sh" if block.has("fixture") => {
                fixture.push(block.lines.join("\n"));
                continue;
            }
            "sh" => Kind::Script(block.lines.join("\n")),
            "bash" | "shell" | "zsh" | "shell-session" => {
                errors.push(format!(
                    "{}: `{}`: write `sh` for a script or `console` for a transcript",
                    block.place(),
                    block.lang
                ));
                continue;
            }
            "" => {
                errors.push(format!(
                    "{}: a fenced block without a language (`text` for output, `sh` or \
                     `console` for an example)",
                    block.place()
                ));
                continue;
            }
            _ => continue,
        };
        found.push(Example {
            block: block.clone(),
            kind,
            skip,
        });
    }
    if fixture.len() != 1 {
        errors.push(format!(
            "{} blocks marked `sh fixture`; there must be exactly one",
            fixture.len()
        ));
    }
    if errors.is_empty() {
        Ok((fixture.pop().unwrap_or_default(), found))
    } else {
        Err(errors)
    }
}

/// Parses a transcript into steps.
fn transcript(lines: &[String]) -> Result<Vec<Step>, String> {
    let mut steps: Vec<Step> = Vec::new();
    let mut continued = false;
    for line in lines {
        if continued {
            let step = steps.last_mut().expect("a command is being continued");
            step.command.push('\n');
            step.command.push_str(line);
            continued = line.ends_with('\\');
        } else if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step {
                command: command.to_owned(),
                expected: Vec::new(),
            });
            continued = command.ends_with('\\');
        } else {
            match steps.last_mut() {
                Some(step) => step.expected.push(line.clone()),
                None => return Err("a transcript must start with a `$ ` command".into()),
            }
        }
    }
    if steps.is_empty() {
        return Err("a transcript without a `$ ` command".into());
    }
    Ok(steps)
}

/// Whether `have` matches `want`, line by line, with `[..]` and `...` as wildcards.
pub fn lines_match(want: &[String], have: &[&str]) -> bool {
    match want.split_first() {
        None => have.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=have.len()).any(|skip| lines_match(rest, &have[skip..]))
        }
        Some((first, rest)) => match have.split_first() {
            Some((line, more)) => line_matches(first, line) && lines_match(rest, more),
            None => false,
        },
    }
}

/// Whether one line matches a pattern where `[..]` stands for any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split("[..]");
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// A directory prepared for each example: the fixture made, `bin/sumpool` linked, `home/`.
pub struct Prepared {
    pub root: tempfile::TempDir,
}

impl Prepared {
    fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }
}

/// Makes one directory per example, runs the fixture script in each, and waits until the
/// files are old enough for `hash --update` to trust them (see [`SETTLE`]).
pub fn prepare(fixture: &str, count: usize, sumpool: &Path) -> Vec<Prepared> {
    let dirs: Vec<Prepared> = (0..count)
        .map(|_| {
            let root = tempfile::Builder::new()
                .prefix("sumpool-docs-")
                .tempdir()
                .expect("temp dir");
            for sub in ["work", "home", "bin", "steps"] {
                fs::create_dir(root.path().join(sub)).expect("mkdir");
            }
            std::os::unix::fs::symlink(sumpool, root.path().join("bin/sumpool")).expect("link");
            let prepared = Prepared { root };
            let (status, out) = bash(&prepared, &format!("set -euo pipefail\n{fixture}\n"));
            assert_eq!(status, Some(0), "the fixture script failed:\n{out}");
            prepared
        })
        .collect();
    std::thread::sleep(SETTLE);
    dirs
}

/// Runs `script` with bash in the example's directory; returns the status and what it
/// printed (stdout, then stderr).
fn bash(dir: &Prepared, script: &str) -> (Option<i32>, String) {
    let path = dir.root.path().join("example.sh");
    fs::write(&path, script).expect("write script");
    let bin = dir.root.path().join("bin");
    let search = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin];
    paths.extend(std::env::split_paths(&search));
    let output = Command::new("timeout")
        .arg(TIMEOUT_SECS.to_string())
        .args(["bash", "--noprofile", "--norc"])
        .arg(&path)
        .current_dir(dir.work())
        .env_clear()
        .env("PATH", std::env::join_paths(paths).expect("PATH"))
        .env("HOME", dir.root.path().join("home"))
        .env("LC_ALL", "C.UTF-8")
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.code(), text)
}

/// Runs one example; `Err` says what differs.
pub fn run(example: &Example, dir: &Prepared) -> Result<(), String> {
    match &example.kind {
        Kind::Script(script) => {
            let (status, out) = bash(dir, &format!("set -euo pipefail\n{script}\n"));
            match status {
                Some(0) => Ok(()),
                Some(124) => Err(format!("timed out after {TIMEOUT_SECS} s:\n{out}")),
                other => Err(format!("exited {other:?}:\n{out}")),
            }
        }
        Kind::Transcript(steps) => run_transcript(steps, dir),
    }
}

/// Runs the steps of a transcript in one bash, each with its output caught in files of its
/// own, and compares them.
fn run_transcript(steps: &[Step], dir: &Prepared) -> Result<(), String> {
    let out = dir.root.path().join("steps");
    let mut script = String::from("set -o pipefail\n");
    for (i, step) in steps.iter().enumerate() {
        let file = out.join(i.to_string());
        let file = file.display();
        // The braces keep `cd` and variables for the next step; `(exit S)` hands the step's
        // status on to `$?`, so a following `echo $?` shows it.
        writeln!(
            script,
            "{{\n{}\n}} >'{file}.out' 2>'{file}.err'\n__doc_status=$?\n\
             echo \"$__doc_status\" >'{file}.status'\n(exit \"$__doc_status\")",
            step.command
        )
        .expect("write to a String");
    }
    let (status, all) = bash(dir, &script);
    if status == Some(124) {
        return Err(format!("timed out after {TIMEOUT_SECS} s:\n{all}"));
    }
    for (i, step) in steps.iter().enumerate() {
        let read = |ext: &str| fs::read(out.join(format!("{i}.{ext}"))).ok();
        let Some(code) = read("status") else {
            return Err(format!(
                "$ {}\nnever finished (the script ended with status {status:?}):\n{all}",
                step.command
            ));
        };
        let code = String::from_utf8_lossy(&code).trim().to_owned();
        let mut printed = String::from_utf8_lossy(&read("out").unwrap_or_default()).into_owned();
        printed.push_str(&String::from_utf8_lossy(&read("err").unwrap_or_default()));
        let have: Vec<&str> = printed.lines().collect();
        if !lines_match(&step.expected, &have) {
            return Err(format!(
                "$ {}\nprinted (stdout, then stderr):\n{}\nbut the document shows:\n{}",
                step.command,
                indent(&printed),
                indent(&step.expected.join("\n"))
            ));
        }
        let shown = steps
            .get(i + 1)
            .is_some_and(|next| next.command.trim() == "echo $?");
        if code != "0" && !shown {
            return Err(format!(
                "$ {}\nexited {code}; a command that fails must be followed by `$ echo $?`",
                step.command
            ));
        }
    }
    Ok(())
}

fn indent(text: &str) -> String {
    if text.is_empty() {
        return "    (nothing)".into();
    }
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Which optional tools are missing, by name.
pub fn missing_tools() -> BTreeMap<&'static str, &'static str> {
    OPTIONAL_TOOLS
        .iter()
        .filter(|(tool, _)| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(|&(tool, var)| (tool, var))
        .collect()
}

/// Whether `text` calls `tool` as a command (a word of its own, not part of another).
pub fn calls(text: &str, tool: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || "|;&()".contains(c))
        .any(|word| word == tool)
}

/// Runs every example that is not skipped, in order; returns the failures and the time.
pub fn run_all(examples: &[Example], fixture: &str, sumpool: &Path) -> (Vec<String>, Duration) {
    let start = Instant::now();
    let runnable: Vec<&Example> = examples.iter().filter(|e| e.skip.is_none()).collect();
    let dirs = prepare(fixture, runnable.len(), sumpool);
    let failures = runnable
        .iter()
        .zip(&dirs)
        .filter_map(|(example, dir)| {
            run(example, dir)
                .err()
                .map(|why| format!("{}: {why}", example.block.place()))
        })
        .collect();
    (failures, start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn wildcards_match_within_a_line_and_across_lines() {
        let have = ["a 1.5 s", "x", "y", "end"];
        assert!(lines_match(&lines("a [..] s\n...\nend"), &have));
        assert!(lines_match(&lines("a [..]\nx\ny\nend\n..."), &have));
        assert!(!lines_match(&lines("a [..] s\nend"), &have));
        assert!(!lines_match(&lines("a 1.5 s\nx"), &have));
        assert!(line_matches("[..]", ""));
        assert!(line_matches("a[..]b[..]c", "aXbYc"));
        assert!(!line_matches("a[..]b", "ab c"));
    }

    #[test]
    fn transcripts_split_into_commands_and_their_output() {
        let steps = transcript(&lines("$ a \\\n  --b\nout\n$ echo $?\n1")).unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].command, "a \\\n  --b");
        assert_eq!(steps[0].expected, ["out"]);
        assert!(transcript(&lines("output first")).is_err());
    }
}
