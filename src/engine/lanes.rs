//! Several files hashed at once on one core: the arithmetic of lanes, without threads or
//! files.
//!
//! A single SHA-256 stream leaves the CPU's SHA unit waiting on its own latency; streams of
//! different files can fill those waits (`multibuf`). A *lane* is one file in flight: its
//! running hash and how many bytes it has taken. [`step`] takes, for each lane, the bytes it
//! has now, and hashes the whole blocks all the interleaved SHA-256 lanes have in one pass
//! (at most [`STEP_BLOCKS`] a lane), and what each other lane has, one lane at a time. The
//! caller keeps the bytes and moves each lane's position by what [`step`] says it took.
//!
//! Readers run it over the files they read whole; workers over the mapped windows and the
//! chunks of large files (`run::reader`, `run::worker`). Whether SHA-256 interleaves at all on this CPU is decided
//! once per process by measuring it ([`crate::engine::calibrate`]).

use crate::digest::{Algorithms, Digests, Hasher};
use crate::engine::multibuf::{self, BLOCK_LEN, INITIAL_STATE, MAX_LANES};

/// Most blocks compressed in one step before the caller looks for new bytes and new files
/// again: 128 KiB a lane.
pub(crate) const STEP_BLOCKS: usize = 2048;

/// The running hash of one lane.
pub(crate) enum LaneHash {
    /// SHA-256, interleaved with the other lanes: the state after the blocks so far.
    Multi([u32; 8]),
    /// Any algorithm, one lane at a time.
    Single(Box<Hasher>),
}

impl LaneHash {
    /// A fresh hash of `algorithm`, interleaved if `multi` and it is SHA-256 alone.
    pub(crate) fn new(algorithm: Algorithms, multi: bool) -> LaneHash {
        if multi && algorithm == Algorithms::SHA256 {
            LaneHash::Multi(INITIAL_STATE)
        } else {
            LaneHash::Single(Box::new(Hasher::new(algorithm)))
        }
    }

    /// How many of `available` bytes the lane cannot take until more come or the file
    /// ends: a tail of less than a block, for an interleaved lane.
    pub(crate) fn wants_more(&self, available: usize) -> bool {
        match self {
            LaneHash::Multi(_) => available < BLOCK_LEN,
            LaneHash::Single(_) => available == 0,
        }
    }

    /// The digest, once every byte but `tail` (less than a block) was taken and `total`
    /// bytes make the whole file.
    pub(crate) fn finish(self, tail: &[u8], total: u64) -> Digests {
        match self {
            LaneHash::Multi(state) => Digests::from(multibuf::finish(state, total, tail)),
            LaneHash::Single(mut hasher) => {
                hasher.update(tail);
                hasher.finalize()
            }
        }
    }
}

/// The lanes of one step: up to [`MAX_LANES`], `None` for a place without one.
pub(crate) type Lanes<'a> = [Option<&'a mut LaneHash>; MAX_LANES];

/// Hashes what each lane has: `lanes[i]` with the bytes `data[i]` available to it. Returns
/// how many bytes each lane took (whole blocks for interleaved lanes). No allocation: it
/// runs once per few files on trees of small ones.
pub(crate) fn step(lanes: &mut Lanes<'_>, data: &[&[u8]; MAX_LANES]) -> [usize; MAX_LANES] {
    let mut taken = [0; MAX_LANES];
    // The interleaved lanes with at least one whole block: one pass over them all.
    let mut multi = [0usize; MAX_LANES];
    let mut n = 0;
    for i in 0..MAX_LANES {
        if matches!(lanes[i], Some(LaneHash::Multi(_))) && data[i].len() >= BLOCK_LEN {
            multi[n] = i;
            n += 1;
        }
    }
    if n > 0 {
        let group = &multi[..n];
        let blocks = group
            .iter()
            .map(|&i| data[i].len() / BLOCK_LEN)
            .min()
            .unwrap_or(0)
            .min(STEP_BLOCKS);
        let mut states = [INITIAL_STATE; MAX_LANES];
        let mut slices: [&[u8]; MAX_LANES] = [&[]; MAX_LANES];
        for (k, &i) in group.iter().enumerate() {
            if let Some(LaneHash::Multi(state)) = &lanes[i] {
                states[k] = *state;
            }
            slices[k] = data[i];
        }
        multibuf::compress(&mut states[..n], &slices[..n], blocks);
        for (k, &i) in group.iter().enumerate() {
            if let Some(LaneHash::Multi(state)) = &mut lanes[i] {
                *state = states[k];
            }
            taken[i] = blocks * BLOCK_LEN;
        }
    }
    // One-at-a-time lanes: what they have, a step at a time.
    for (i, lane) in lanes.iter_mut().enumerate() {
        if let Some(LaneHash::Single(hasher)) = lane {
            let len = data[i].len().min(STEP_BLOCKS * BLOCK_LEN);
            hasher.update(&data[i][..len]);
            taken[i] = len;
        }
    }
    taken
}

/// Hashes one lane's bytes: [`step`] of a single lane.
pub(crate) fn step_one(lane: &mut LaneHash, data: &[u8]) -> usize {
    let mut lanes: Lanes<'_> = [Some(lane), None, None, None];
    step(&mut lanes, &[data, &[], &[], &[]])[0]
}

/// Hashes whole byte strings together (at most [`MAX_LANES`]), in lanes, to the end: the
/// digest of each, pushed on `out`.
pub(crate) fn hash_all(algorithm: Algorithms, multi: bool, data: &[&[u8]], out: &mut Vec<Digests>) {
    assert!(data.len() <= MAX_LANES);
    let mut hashes: [Option<LaneHash>; MAX_LANES] = Default::default();
    for hash in hashes.iter_mut().take(data.len()) {
        *hash = Some(LaneHash::new(algorithm, multi));
    }
    let mut at = [0usize; MAX_LANES];
    let mut views: [&[u8]; MAX_LANES] = [&[]; MAX_LANES];
    loop {
        let mut lanes: Lanes<'_> = Default::default();
        let mut any = false;
        for (i, (hash, lane)) in hashes.iter_mut().zip(lanes.iter_mut()).enumerate() {
            views[i] = &[];
            if let Some(hash) = hash
                && !hash.wants_more(data[i].len() - at[i])
            {
                views[i] = &data[i][at[i]..];
                *lane = Some(hash);
                any = true;
            }
        }
        if !any {
            break;
        }
        let taken = step(&mut lanes, &views);
        for i in 0..data.len() {
            at[i] += taken[i];
        }
    }
    for (i, hash) in hashes.into_iter().enumerate() {
        if let Some(hash) = hash {
            out.push(hash.finish(&data[i][at[i]..], data[i].len() as u64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    #[test]
    fn lanes_of_every_length_give_sha2s_digests() {
        let lengths = [0usize, 1, 55, 56, 63, 64, 65, 127, 128, 1000, 4096, 300_001];
        let data: Vec<Vec<u8>> = lengths
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|j| (j * 31 + i * 7) as u8).collect())
            .collect();
        let slices: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        for multi in [false, true] {
            for group in slices.chunks(MAX_LANES) {
                let mut got = Vec::new();
                hash_all(Algorithms::SHA256, multi, group, &mut got);
                for (bytes, digest) in group.iter().zip(got) {
                    let want = sha2::Sha256::digest(bytes);
                    assert_eq!(
                        digest.first().as_bytes(),
                        &want[..],
                        "{} bytes",
                        bytes.len()
                    );
                }
            }
        }
        // Another algorithm goes one lane at a time, whatever `multi` says.
        let sha512 = Algorithms::one(crate::digest::Algorithm::Sha512);
        let mut got = Vec::new();
        hash_all(sha512, true, &slices[..3], &mut got);
        for (bytes, digest) in slices.iter().zip(got) {
            assert_eq!(digest.first().as_bytes(), &sha2::Sha512::digest(bytes)[..]);
        }
    }
}
