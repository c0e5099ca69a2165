//! From the command-line inputs to an ordered stream of things to hash.
//!
//! Each input is taken in command-line order. `-` is standard input. A directory is walked
//! depth first with walkdir, the entries of each directory in byte order of their names, and
//! every regular file in it is yielded under the path as reached from the argument (what `find`
//! prints). Anything else named explicitly (a file, a symlink to one, a FIFO, a device) is
//! yielded as is, so `sumpool hash <(cmd)` works.
//!
//! The walk decides what is *not* hashed: symlinks met inside a walk (unless `--follow`) and
//! FIFOs, sockets and devices met inside a walk (never opened: opening a FIFO can block
//! forever) become [`Entry::Skipped`]; entries it cannot stat or list become
//! [`Entry::Failed`]. Both are values in the stream, in walk order, never errors that stop it.
//! Reading file contents is left to `hash`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use crate::hash::Source;
use crate::report::{Failure, Reason};

/// Why an entry met during a walk was not hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A symlink, not followed without `--follow`.
    Symlink,
    /// A FIFO, socket or device file, never opened during a walk.
    Special,
}

/// One item of the walk, in output order.
#[derive(Debug)]
pub enum Entry {
    /// Something to hash.
    Hash(Source),
    /// Something that could not be reached.
    Failed(Failure),
    /// Something deliberately not hashed.
    Skipped(Skip),
}

/// How to walk.
#[derive(Debug, Clone, Copy, Default)]
pub struct WalkOptions {
    /// Follow symlinks met inside directories (`-L`). Symlinks named as inputs are always
    /// followed.
    pub follow_links: bool,
}

/// The stream of entries for a list of inputs. Holds one walkdir iterator at a time, so memory
/// is bounded by the depth of the tree and the size of the largest directory, never by the
/// number of files.
pub struct Walk {
    inputs: std::vec::IntoIter<PathBuf>,
    current: Option<walkdir::IntoIter>,
    options: WalkOptions,
}

impl Walk {
    /// Walks `inputs` in order; an empty list means standard input, as for `sha256sum`.
    pub fn new(inputs: Vec<PathBuf>, options: WalkOptions) -> Walk {
        let inputs = if inputs.is_empty() {
            vec![PathBuf::from("-")]
        } else {
            inputs
        };
        Walk {
            inputs: inputs.into_iter(),
            current: None,
            options,
        }
    }

    /// Classifies one input named on the command line, starting a directory walk if needed.
    fn start_input(&mut self, input: PathBuf) -> Option<Entry> {
        if input.as_os_str() == "-" {
            return Some(Entry::Hash(Source::Stdin));
        }
        // `metadata` follows symlinks: a link named on the command line counts as its target.
        match fs::metadata(&input) {
            Err(err) => Some(Entry::Failed(Failure::new(input, err))),
            Ok(meta) if meta.is_dir() => {
                let walker = WalkDir::new(&input)
                    .follow_links(self.options.follow_links)
                    .follow_root_links(true)
                    .min_depth(1)
                    .sort_by_file_name();
                self.current = Some(walker.into_iter());
                None
            }
            Ok(_) => Some(Entry::Hash(Source::Path(input))),
        }
    }
}

impl Iterator for Walk {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        loop {
            if let Some(walker) = &mut self.current {
                match walker.next() {
                    Some(Ok(entry)) => {
                        let kind = entry.file_type();
                        if kind.is_dir() {
                            continue;
                        }
                        return Some(if kind.is_file() {
                            Entry::Hash(Source::Path(entry.into_path()))
                        } else if kind.is_symlink() {
                            Entry::Skipped(Skip::Symlink)
                        } else {
                            Entry::Skipped(Skip::Special)
                        });
                    }
                    Some(Err(err)) => return Some(Entry::Failed(walk_failure(err))),
                    None => self.current = None,
                }
            }
            let input = self.inputs.next()?;
            if let Some(entry) = self.start_input(input) {
                return Some(entry);
            }
        }
    }
}

/// Turns a walkdir error into a failure of the path it happened on.
fn walk_failure(err: walkdir::Error) -> Failure {
    let path = err.path().map(Path::to_path_buf).unwrap_or_default();
    if let Some(ancestor) = err.loop_ancestor() {
        let ancestor = ancestor.to_path_buf();
        return Failure::new(path, Reason::Loop { ancestor });
    }
    let io_err = err
        .into_io_error()
        .unwrap_or_else(|| io::Error::other("unreadable directory entry"));
    Failure::new(path, io_err)
}
