//! `sumpool merge`: put shard manifests back together into the manifest one run would print.
//!
//! Every shard manifest (`sumpool hash --shard K/N`) is a subsequence of the single run's
//! output, in walk order. Walk order is the order of paths compared component by component,
//! each component by its bytes: a directory's entries in byte order of their names, a
//! directory's contents before the entry that follows it. (Comparing whole paths as strings
//! would not do: `a-b` sorts before `a/x`, but the walk visits `a/x` first.) So the merge is a
//! k-way merge of the inputs by that order, one line of each input in memory at a time, and
//! it writes every line byte for byte as it was: escaped names, BSD tags and `-z` records
//! come out exactly as the single run writes them, whatever the order of the FILE arguments.
//!
//! The state lines of `hash --update` manifests travel with the digest line they precede, so a
//! merge of updated shard manifests is itself a manifest `hash --update` can start from. Other
//! comments and blank lines are dropped.
//!
//! The order holds for a run over one argument (the way a tree is sharded); a single run over
//! several arguments prints them in command-line order, which the manifests do not record.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::config::MergeConfig;
use crate::format::parse::{Accept, Layout, parse_line, trim_record};
use crate::format::records::{Record, RecordReader};
use crate::format::state;
use crate::report::{Report, is_broken_pipe};

/// Compares two paths (as bytes) in walk order: component by component.
pub fn walk_order(a: &[u8], b: &[u8]) -> Ordering {
    a.split(|&c| c == b'/').cmp(b.split(|&c| c == b'/'))
}

/// One input manifest and its current line.
struct Input {
    name: PathBuf,
    records: RecordReader<Box<dyn Read>>,
    layout: Layout,
    line_no: u64,
    /// The current record as read, and the file name it holds.
    current: Option<(Vec<u8>, Vec<u8>)>,
    zero: bool,
}

impl Input {
    fn open(name: &Path, zero: bool) -> anyhow::Result<Input> {
        let reader: Box<dyn Read> = if name.as_os_str() == "-" {
            Box::new(io::stdin())
        } else {
            Box::new(File::open(name).with_context(|| name.display().to_string())?)
        };
        let delim = if zero { b'\0' } else { b'\n' };
        let mut input = Input {
            name: name.to_path_buf(),
            records: RecordReader::new(reader, delim),
            layout: Layout::default(),
            line_no: 0,
            current: None,
            zero,
        };
        input.advance()?;
        Ok(input)
    }

    /// Reads the next checksum line, with the state line right before it if there is one,
    /// skipping blank lines and other comments.
    fn advance(&mut self) -> anyhow::Result<()> {
        let previous = self.current.take().map(|(_, name)| name);
        let mut buf = Vec::new();
        let delim = if self.zero { b'\0' } else { b'\n' };
        // A state line, kept if the next line is a checksum line.
        let mut state: Option<Vec<u8>> = None;
        loop {
            let shown = || self.name.display().to_string();
            let Some(record) = self.records.next_record(&mut buf).with_context(shown)? else {
                return Ok(());
            };
            self.line_no += 1;
            if record == Record::TooLong {
                bail!(
                    "{}: line {} is too long for a checksum line",
                    shown(),
                    self.line_no
                );
            }
            let held = state.take();
            if state::is_state_line(&buf) {
                let mut line = buf.strip_suffix(&[delim]).unwrap_or(&buf).to_vec();
                line.push(delim);
                state = Some(line);
                continue;
            }
            let Some(line) = trim_record(&buf, self.zero) else {
                continue;
            };
            // Any algorithm: a merge needs the names only.
            let Ok(entry) = parse_line(line, &mut self.layout, Accept::NAMES) else {
                bail!("{}: line {} is not a checksum line", shown(), self.line_no);
            };
            let out_of_order = previous
                .as_ref()
                .is_some_and(|p| walk_order(p, &entry.name) == Ordering::Greater);
            if out_of_order {
                bail!(
                    "{}: line {} is out of walk order; is this a sumpool manifest?",
                    shown(),
                    self.line_no
                );
            }
            let mut record = held.unwrap_or_default();
            record.extend_from_slice(line);
            record.push(delim);
            self.current = Some((record, entry.name));
            return Ok(());
        }
    }
}

/// Runs `sumpool merge`. A reader of stdout that went away ends the run quietly; any other
/// error (an input that is not a manifest in walk order) is fatal.
pub fn run(merge: &MergeConfig, out: &mut dyn Write) -> anyhow::Result<Report> {
    let mut report = Report::default();
    match merge_manifests(&merge.inputs, merge.zero, out) {
        Ok(()) => {}
        Err(e) if is_broken_pipe(&e) => report.output_closed = true,
        Err(e) => return Err(e),
    }
    Ok(report)
}

/// Merges the manifests `inputs` (NUL-terminated with `zero`) onto `out`.
fn merge_manifests(inputs: &[PathBuf], zero: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut inputs: Vec<Input> = inputs
        .iter()
        .map(|name| Input::open(name, zero))
        .collect::<anyhow::Result<_>>()?;
    loop {
        // The input whose current line comes first in walk order; ties keep argument order.
        let next = inputs
            .iter()
            .enumerate()
            .filter_map(|(i, input)| input.current.as_ref().map(|(_, name)| (i, name)))
            .min_by(|(i, a), (j, b)| walk_order(a, b).then(i.cmp(j)))
            .map(|(i, _)| i);
        let Some(i) = next else { break };
        if let Some((record, _)) = &inputs[i].current {
            out.write_all(record).context("standard output")?;
        }
        inputs[i].advance()?;
    }
    out.flush().context("standard output")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_order_is_component_order() {
        let mut paths: Vec<&[u8]> = vec![b"t/a-b", b"t/a/x", b"t/a/y/z", b"t/a.c", b"t/B", b"t/a"];
        paths.sort_by(|a, b| walk_order(a, b));
        let want: Vec<&[u8]> = vec![b"t/B", b"t/a", b"t/a/x", b"t/a/y/z", b"t/a-b", b"t/a.c"];
        assert_eq!(paths, want);
    }
}
