//! `docs/options.md`, rendered from the clap definition the binary parses with
//! (`sumpool::cli::Cli::definition()`), so the page says what `--help` says and cannot drift
//! from it. Rendered from the definition rather than from `--help`'s text so that it does not
//! depend on the terminal's width, and reads as Markdown: one section per command, its usage,
//! a table of its arguments, and its examples and exit statuses.

use std::fmt::Write as _;

use clap::{Arg, Command};

/// The command that writes the page again; the test's message names it.
pub const REGENERATE: &str = "SUMPOOL_BLESS=1 cargo test --test docs";

/// The page for `cmd` (the whole program).
pub fn render(mut cmd: Command) -> String {
    // Building adds what clap adds itself (`-h`, `-V`, the `help` command) and the bin
    // names used in usage lines, as the binary shows them.
    cmd.build();
    let mut page = String::new();
    let w = &mut page;
    let _ = writeln!(
        w,
        "# Command-line reference\n\n\
         <!-- Generated from the clap definitions in src/cli.rs by tests/docs; do not edit.\n     \
         Regenerate with: {REGENERATE} -->\n\n\
         Every command and option of sumpool, as `sumpool COMMAND --help` prints them. What \
         they are for, with examples, is in the [guide](guide.md).\n"
    );
    let subcommands: Vec<&Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    section(w, &cmd, &subcommands);
    for sub in &subcommands {
        if sub.get_name() != "help" {
            section(w, sub, &[]);
        }
    }
    page.truncate(page.trim_end().len());
    page.push('\n');
    page
}

/// One command's section: what it does, its usage, its commands and arguments, its notes.
fn section(w: &mut String, cmd: &Command, subcommands: &[&Command]) {
    let name = cmd.get_bin_name().unwrap_or(cmd.get_name());
    let _ = writeln!(w, "## `{name}`\n");
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        let _ = writeln!(w, "{}\n", about.to_string().trim());
    }
    let usage = cmd.clone().render_usage().to_string();
    let usage = usage.trim().trim_start_matches("Usage:").trim();
    let _ = writeln!(w, "```text\n{usage}\n```\n");
    if !subcommands.is_empty() {
        let _ = writeln!(w, "| Command | What it does |\n| --- | --- |");
        for sub in subcommands {
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            let _ = writeln!(w, "| `{}` | {} |", sub.get_name(), cell(&about));
        }
        let _ = writeln!(w);
    }
    let args: Vec<&Arg> = cmd.get_arguments().filter(|a| !a.is_hide_set()).collect();
    if !args.is_empty() {
        let _ = writeln!(w, "| Argument | Meaning |\n| --- | --- |");
        for arg in args {
            let _ = writeln!(w, "| `{}` | {} |", synopsis(arg), cell(&meaning(arg)));
        }
        let _ = writeln!(w);
    }
    if let Some(after) = cmd.get_after_long_help().or(cmd.get_after_help()) {
        // The top level repeats `hash`'s notes; they are printed once, under `hash`.
        let repeated = subcommands
            .iter()
            .any(|s| s.get_after_help().map(|a| a.to_string()) == Some(after.to_string()));
        if !repeated {
            let _ = writeln!(w, "```text\n{}\n```\n", after.to_string().trim_end());
        }
    }
}

/// How an argument is written: `-a, --algorithm <ALGORITHM>`, `[PATH]...`.
fn synopsis(arg: &Arg) -> String {
    let names: Vec<String> = arg
        .get_value_names()
        .map(|names| names.iter().map(|n| n.to_string()).collect())
        .unwrap_or_else(|| vec![arg.get_id().to_string().to_uppercase()]);
    let many = arg
        .get_num_args()
        .is_some_and(|range| range.max_values() > names.len());
    let dots = if many { "..." } else { "" };
    if arg.is_positional() {
        let value = names.join(" ");
        return if arg.is_required_set() {
            format!("<{value}>{dots}")
        } else {
            format!("[{value}]{dots}")
        };
    }
    let mut text = match (arg.get_short(), arg.get_long()) {
        (Some(short), Some(long)) => format!("-{short}, --{long}"),
        (Some(short), None) => format!("-{short}"),
        (None, Some(long)) => format!("--{long}"),
        (None, None) => arg.get_id().to_string(),
    };
    if arg.get_action().takes_values() {
        for name in &names {
            let _ = write!(text, " <{name}>");
        }
        text.push_str(dots);
    }
    text
}

/// The help of an argument, with its possible and default values as `--help` shows them.
fn meaning(arg: &Arg) -> String {
    let mut text = arg
        .get_long_help()
        .or(arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let values: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| match v.get_help() {
            Some(help) => format!("`{}` ({help})", v.get_name()),
            None => format!("`{}`", v.get_name()),
        })
        .collect();
    // A flag's default (false) is not worth saying; `--help` does not say it either.
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| format!("`{}`", v.to_string_lossy()))
        .collect();
    if arg.get_action().takes_values() && !defaults.is_empty() && !arg.is_hide_default_value_set() {
        let _ = write!(text, " [default: {}]", defaults.join(", "));
    }
    if !values.is_empty() && !arg.is_hide_possible_values_set() {
        let _ = write!(text, " [possible values: {}]", values.join(", "));
    }
    text
}

/// Text for a table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}
