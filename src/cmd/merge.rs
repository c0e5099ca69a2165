//! `sumpool merge`: put shard manifests back together into the manifest one run would print.
//!
//! Every shard manifest (`sumpool hash --shard K/N`) is a subsequence of the single run's
//! output, in walk order (`format::entries::walk_order`: a directory's entries in byte order
//! of their names, a directory's contents before the entry that follows it). So the merge is
//! a k-way merge of the inputs by that order, one entry of each input in memory at a time,
//! and it writes every line byte for byte as it was: escaped names, BSD tags and `-z`
//! records come out exactly as the single run writes them, whatever the order of the FILE
//! arguments. The state lines of `hash --update` manifests travel with the line they precede,
//! so a merge of updated shard manifests is itself a manifest `hash --update` can start from.
//! Other comments and blank lines are dropped.
//!
//! A merge must not quietly produce a manifest that no run could have printed. So:
//!
//! - the same path in two inputs (or twice in one) is an error that names both inputs: parts
//!   of two different splits (a stale 4-way run beside a 3-way one) overlap, and their
//!   digests may disagree;
//! - a shard manifest starts with a comment line naming its shard (`# sumpool shard K/N`).
//!   When the inputs carry one, they must be of one split (the same N), each K once, and
//!   all N present: a missing or doubled shard is named before anything is written.
//!
//! Both are failures of the merge (status 1). Inputs that are not manifests in walk order
//! are fatal (status 2).
//!
//! The order holds for a run over one argument (the way a tree is sharded); a single run over
//! several arguments prints them in command-line order, which the manifests do not record.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::config::MergeConfig;
use crate::digest::Algorithm;
use crate::format::entries::{BadEntry, EntryReader, RawEntry, walk_order};
use crate::format::manifest::normalize;
use crate::report::{PROGRAM, Report, is_broken_pipe};

/// One input manifest and its current entry.
struct Input {
    name: PathBuf,
    entries: EntryReader<Box<dyn Read>>,
    current: Option<RawEntry>,
}

impl Input {
    fn open(name: &Path, zero: bool) -> anyhow::Result<Input> {
        let reader: Box<dyn Read> = if name.as_os_str() == "-" {
            Box::new(io::stdin())
        } else {
            Box::new(File::open(name).with_context(|| name.display().to_string())?)
        };
        let mut input = Input {
            name: name.to_path_buf(),
            entries: EntryReader::new(reader, zero),
            current: None,
        };
        input.advance()?;
        Ok(input)
    }

    /// Reads the next entry, checking that it comes after the one before in walk order.
    fn advance(&mut self) -> anyhow::Result<()> {
        let previous = self.current.take().map(|entry| entry.name);
        let shown = || self.name.display().to_string();
        let entry = match self.entries.next_entry().with_context(shown)? {
            Ok(entry) => entry,
            Err(BadEntry::TooLong(n)) => {
                bail!("{}: line {n} is too long for a checksum line", shown())
            }
            Err(BadEntry::NotChecksum(n)) => bail!("{}: line {n} is not a checksum line", shown()),
        };
        if let (Some(previous), Some(entry)) = (&previous, &entry)
            && walk_order(previous, &entry.name) == Ordering::Greater
        {
            bail!(
                "{}: line {} is out of walk order; is this a sumpool manifest?",
                shown(),
                self.entries.line_no
            );
        }
        self.current = entry;
        Ok(())
    }
}

/// Runs `sumpool merge`. A reader of stdout that went away ends the run quietly; inputs that
/// overlap or miss a shard fail it (status 1); an input that is not a manifest in walk order
/// is fatal.
pub fn run(
    merge: &MergeConfig,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Report> {
    let mut report = Report::default();
    match merge_manifests(&merge.inputs, merge.zero, out) {
        Ok(Ok(())) => {}
        Ok(Err(conflict)) => {
            let _ = writeln!(err, "{PROGRAM}: {conflict}");
            report.failed += 1;
        }
        Err(e) if is_broken_pipe(&e) => report.output_closed = true,
        Err(e) => return Err(e),
    }
    Ok(report)
}

/// Merges the manifests `inputs` (NUL-terminated with `zero`) onto `out`; `Ok(Err(why))` when
/// they are not the parts of one run.
fn merge_manifests(
    inputs: &[PathBuf],
    zero: bool,
    out: &mut dyn Write,
) -> anyhow::Result<Result<(), String>> {
    let mut inputs: Vec<Input> = inputs
        .iter()
        .map(|name| Input::open(name, zero))
        .collect::<anyhow::Result<_>>()?;
    if let Err(why) = check_shards(&inputs) {
        return Ok(Err(why));
    }
    // The name written last, the input it came from and the algorithms of its lines so far,
    // to tell an overlap: a manifest of several algorithms has a line per algorithm for
    // each file, all in one input.
    let mut last: Option<(Vec<u8>, usize, Vec<Algorithm>)> = None;
    loop {
        // The input whose current entry comes first in walk order; ties keep argument order.
        let next = inputs
            .iter()
            .enumerate()
            .filter_map(|(i, input)| input.current.as_ref().map(|entry| (i, &entry.name)))
            .min_by(|(i, a), (j, b)| walk_order(a, b).then(i.cmp(j)))
            .map(|(i, _)| i);
        let Some(i) = next else { break };
        let Some(entry) = &inputs[i].current else {
            break;
        };
        let name = normalize(&entry.name).to_vec();
        match &mut last {
            Some((previous, from, algorithms)) if *previous == name => {
                if *from != i || algorithms.contains(&entry.algorithm) {
                    out.flush().context("standard output")?;
                    let (a, b) = (inputs[*from].name.display(), inputs[i].name.display());
                    let shown = String::from_utf8_lossy(&crate::format::quote::quote_name(&name))
                        .into_owned();
                    let both = if *from == i {
                        format!("{a} lists {shown} twice")
                    } else {
                        format!("{a} and {b} both list {shown}")
                    };
                    return Ok(Err(format!(
                        "{both}: the inputs are not the parts of one run (stale parts of another split?); the merge is incomplete"
                    )));
                }
                algorithms.push(entry.algorithm);
            }
            _ => last = Some((name, i, vec![entry.algorithm])),
        }
        out.write_all(&entry.bytes).context("standard output")?;
        inputs[i].advance()?;
    }
    out.flush().context("standard output")?;
    Ok(Ok(()))
}

/// Checks the shard lines of the inputs: one split, each shard once, none missing.
fn check_shards(inputs: &[Input]) -> Result<(), String> {
    let marked: Vec<(&Input, (u64, u64))> = inputs
        .iter()
        .filter_map(|input| input.entries.shard.map(|shard| (input, shard)))
        .collect();
    let Some(&(first, (_, count))) = marked.first() else {
        return Ok(());
    };
    if let Some((other, (_, n))) = marked.iter().find(|(_, (_, n))| *n != count) {
        return Err(format!(
            "{} is a shard of {count} and {} a shard of {n}: parts of different splits",
            first.name.display(),
            other.name.display()
        ));
    }
    let mut by_index: Vec<Vec<&Path>> = vec![Vec::new(); count as usize];
    for (input, (index, _)) in &marked {
        by_index[*index as usize - 1].push(&input.name);
    }
    if let Some((k, names)) = by_index
        .iter()
        .enumerate()
        .find(|(_, names)| names.len() > 1)
    {
        let names: Vec<String> = names.iter().map(|n| n.display().to_string()).collect();
        return Err(format!(
            "shard {}/{count} is given twice: {}",
            k + 1,
            names.join(" and ")
        ));
    }
    let missing: Vec<String> = (0..count as usize)
        .filter(|&k| by_index[k].is_empty())
        .map(|k| format!("{}/{count}", k + 1))
        .collect();
    // Inputs without a shard line (older manifests, or parts made another way) may be the
    // missing shards: only a set that is all marked can be known to be incomplete.
    if !missing.is_empty() && marked.len() == inputs.len() {
        return Err(format!(
            "missing shard{} {}: the merge would be incomplete",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        ));
    }
    Ok(())
}
