//! Which SHA-256 path this CPU takes: one file at a time per core, or four interleaved
//! (`multibuf`), decided by measuring both here, once per process, on the first thread that
//! asks (`--version`, or the calling thread before a run).
//!
//! Interleaving fills the waits of the SHA unit's latency, and what it gains depends on the
//! CPU: measured on this project's machines, four lanes hash 1.9 times as fast as one on an
//! AMD EPYC (Zen 2), 1.2 times on another EPYC, and no faster at all on an Intel Xeon. A
//! rule tuned on one machine is wrong on the next, so the first run that hashes anything
//! large enough to interleave measures both paths on a few hundred kilobytes (about 3 ms),
//! and takes the lanes only when they gain at least `policy::LANES_GAIN_MIN`. `--version`
//! and `-v` say what was chosen and why.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::engine::multibuf::{self, BLOCK_LEN, INITIAL_STATE, MAX_LANES};
use crate::engine::policy;

/// The SHA-256 path of this process, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShaPath {
    /// Files hashed at once per core: 4, or 1.
    pub lanes: usize,
    /// What was measured and chosen, for `--version` and `-v`.
    pub reason: String,
}

/// Bytes hashed per lane in one measurement.
const SAMPLE: usize = 64 << 10;

/// Measurements of each path; the fastest counts (the others lost the core for a moment).
const TRIES: usize = 5;

/// The SHA-256 path of this process: measured on first use.
pub fn sha_path() -> &'static ShaPath {
    static PATH: OnceLock<ShaPath> = OnceLock::new();
    PATH.get_or_init(measure)
}

/// Lanes to run: `asked` (the hidden `--lanes`, for benchmarks and tests) if not 0, else
/// what this CPU was measured to gain from.
pub fn lanes(asked: usize) -> usize {
    match asked {
        0 => sha_path().lanes,
        n => n.clamp(1, MAX_LANES),
    }
}

fn measure() -> ShaPath {
    if !multibuf::accelerated() {
        let (lanes, reason) = policy::choose_lanes(0.0, None);
        return ShaPath { lanes, reason };
    }
    let data: Vec<Vec<u8>> = (0..MAX_LANES)
        .map(|lane| (0..SAMPLE).map(|i| (i * 7 + lane * 13) as u8).collect())
        .collect();
    let slices: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let blocks = SAMPLE / BLOCK_LEN;
    // One lane after the other, then all four interleaved: the same bytes either way.
    let one = || {
        for slice in &slices {
            let mut state = [INITIAL_STATE];
            multibuf::compress(&mut state, &[slice], blocks);
            std::hint::black_box(state);
        }
    };
    let four = || {
        let mut states = [INITIAL_STATE; MAX_LANES];
        multibuf::compress(&mut states, &slices, blocks);
        std::hint::black_box(states);
    };
    one();
    four();
    let bytes = (SAMPLE * MAX_LANES) as f64;
    let rate = |d: Duration| bytes / d.as_secs_f64().max(1e-9);
    let (one, four) = (fastest(one), fastest(four));
    let (lanes, reason) = policy::choose_lanes(rate(one), Some(rate(four)));
    ShaPath { lanes, reason }
}

/// The shortest of [`TRIES`] runs of `f`.
fn fastest(f: impl Fn()) -> Duration {
    (0..TRIES)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_is_measured_once_and_said() {
        let path = sha_path();
        assert!(path.lanes == 1 || path.lanes == MAX_LANES);
        assert!(path.reason.contains("one") || path.reason.contains("interleaved"));
        assert!(std::ptr::eq(path, sha_path()));
        assert_eq!(lanes(2), 2);
        assert_eq!(lanes(9), MAX_LANES);
        assert_eq!(lanes(0), path.lanes);
    }
}
