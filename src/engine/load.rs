//! Loading a manifest file into memory on the worker threads.
//!
//! Reading and parsing the old manifest is most of the time of an update of an unchanged
//! tree (and a large share of an audit), and one thread parses about 200 MB/s; so a manifest
//! in a file is cut into one part per worker (`format::manifest` knows where it may be cut)
//! and the parts are read side by side. A manifest on standard input is read as one stream.

use std::fs::File;
use std::io;

use rayon::ThreadPool;
use rayon::prelude::*;

use crate::digest::Algorithm;
use crate::format::manifest::{Manifest, PartTask, PartedRead};

/// Reads the manifest `file` of `algorithm` lines (NUL-terminated with `zero`), in parts
/// read in parallel on `pool`; with `spans`, recording where each line is.
pub fn load_manifest(
    file: File,
    (algorithm, zero): (Algorithm, bool),
    pool: &ThreadPool,
    spans: bool,
) -> io::Result<Manifest> {
    let parted = PartedRead::open(file, (algorithm, zero), pool.current_num_threads(), spans)?;
    let parts = pool.install(|| {
        parted
            .tasks()
            .into_par_iter()
            .map(PartTask::read)
            .collect::<Vec<_>>()
    });
    parted.assemble(parts)
}
