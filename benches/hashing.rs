//! Criterion benchmarks: the hashing core on in-memory data (one stream through sha2, every
//! algorithm on one thread, BLAKE3 spread over a pool by the size of the buffers it is handed,
//! and several files at once through `multibuf`), and whole `hash` and `check` runs over small
//! generated trees, with and without lanes, through the same `sumpool::run` the binary calls.
//!
//! Whole-process comparisons with other tools live in `benches/compare.sh`.

use std::hint::black_box;
use std::io;
use std::path::{Path, PathBuf};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sumpool::config::{CheckConfig, Command, Config, Format, HashConfig, IoSettings, Verbosity};
use sumpool::digest::{Algorithm, Algorithms, Hasher};
use sumpool::engine::Tuning;
use sumpool::engine::multibuf;
use sumpool::engine::read::{BLOCK_SIZE, HashOptions, hash_reader};
use sumpool::engine::walk::WalkOptions;
use sumpool::format::line::{Encoding, LineFormat, LineStyle};
use sumpool::progress::ProgressMode;

fn hash_in_memory(c: &mut Criterion) {
    let mut group = c.benchmark_group("hash_reader");
    let mut buf = vec![0u8; BLOCK_SIZE];
    for size in [4 << 10, 64 << 10, 1 << 20, 16 << 20, 64 << 20] {
        let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        group.throughput(Throughput::Bytes(size as u64));
        if size >= 16 << 20 {
            group.sample_size(10);
        }
        group.bench_with_input(BenchmarkId::from_parameter(size), &data, |b, data| {
            b.iter(|| {
                hash_reader(Algorithms::SHA256, &mut black_box(&data[..]), &mut buf).map(|r| r.1)
            })
        });
    }
    group.finish();
}

/// 16 MiB through each algorithm on one thread: what each crate does on this CPU.
fn every_algorithm(c: &mut Criterion) {
    let mut group = c.benchmark_group("algorithm");
    let size = 16 << 20;
    let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    group.throughput(Throughput::Bytes(size as u64));
    group.sample_size(10);
    for algorithm in Algorithm::ALL {
        group.bench_function(BenchmarkId::from_parameter(algorithm), |b| {
            b.iter(|| {
                let mut hasher = Hasher::new(Algorithms::one(algorithm));
                hasher.update(black_box(&data));
                hasher.finalize()
            })
        });
    }
    group.finish();
}

/// BLAKE3 of 256 MiB fed to `Hasher::update_parallel` (rayon's global pool) in pieces from
/// 128 KiB to the whole: how large the buffers the engine hands it must be for one file to
/// use every core (a worker hands it 2 MiB mapped windows).
fn blake3_units(c: &mut Criterion) {
    let mut group = c.benchmark_group("blake3_units");
    let size = 256 << 20;
    let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    group.throughput(Throughput::Bytes(size as u64));
    group.sample_size(10);
    group.bench_function("update, one thread", |b| {
        b.iter(|| {
            let mut hasher = Hasher::new(Algorithms::one(Algorithm::Blake3));
            hasher.update(black_box(&data));
            hasher.finalize()
        })
    });
    for unit in [128 << 10, 1 << 20, 2 << 20, 8 << 20, 32 << 20, size] {
        group.bench_function(BenchmarkId::new("update_parallel", unit >> 10), |b| {
            b.iter(|| {
                let mut hasher = Hasher::new(Algorithms::one(Algorithm::Blake3));
                for piece in black_box(&data).chunks(unit) {
                    hasher.update_parallel(piece);
                }
                hasher.finalize()
            })
        });
    }
    group.finish();
}

/// SHA-256 of 1 MiB per lane, for 1 to 4 lanes: throughput counts the bytes of all lanes, so
/// it shows what interleaving gains over one stream on this CPU.
fn multibuf_lanes(c: &mut Criterion) {
    let mut group = c.benchmark_group("multibuf");
    let size = 1 << 20;
    let data: Vec<Vec<u8>> = (0..multibuf::MAX_LANES)
        .map(|lane| {
            (0..size)
                .map(|i| ((i * 31 + lane * 7) % 251) as u8)
                .collect()
        })
        .collect();
    for lanes in 1..=multibuf::MAX_LANES {
        group.throughput(Throughput::Bytes((lanes * size) as u64));
        let slices: Vec<&[u8]> = data[..lanes].iter().map(Vec::as_slice).collect();
        group.bench_function(BenchmarkId::from_parameter(lanes), |b| {
            b.iter(|| {
                let mut states = vec![multibuf::INITIAL_STATE; lanes];
                multibuf::compress(&mut states, black_box(&slices), size / multibuf::BLOCK_LEN);
                states
            })
        });
    }
    group.finish();
}

/// Writes `files` files of `size` bytes, ten per directory.
fn make_tree(root: &Path, files: usize, size: usize) {
    for i in 0..files {
        let dir = root.join(format!("d{:03}", i / 10));
        std::fs::create_dir_all(&dir).expect("create bench dir");
        let data: Vec<u8> = (0..size).map(|j| ((i * 7 + j) % 251) as u8).collect();
        std::fs::write(dir.join(format!("f{i:05}")), data).expect("write bench file");
    }
}

fn hash_config(root: PathBuf, jobs: usize, lanes: usize) -> Config {
    Config {
        jobs,
        tuning: Tuning {
            lanes,
            ..Tuning::default()
        },
        io: IoSettings::default(),
        command: Command::Hash(HashConfig {
            inputs: vec![root],
            files_from: None,
            walk: WalkOptions {
                dir_handles: true,
                ..WalkOptions::default()
            },
            format: Format::Text(LineFormat {
                style: LineStyle::Gnu,
                zero: false,
                encoding: Encoding::Hex,
            }),
            hash: HashOptions::default(),
            output: None,
            update: None,
            verbose: false,
            progress: ProgressMode::Never,
        }),
    }
}

fn whole_runs(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let trees = [("2000x4KiB", 2000, 4 << 10), ("40x1MiB", 40, 1 << 20)];
    let mut group = c.benchmark_group("run");
    group.sample_size(20);
    for (name, files, size) in trees {
        let root = dir.path().join(name);
        make_tree(&root, files, size);
        group.throughput(Throughput::Elements(files as u64));
        for (jobs, lanes) in [(1, 1), (1, 4), (2, 1), (2, 4)] {
            let config = hash_config(root.clone(), jobs, lanes);
            let id = BenchmarkId::new(format!("hash/{name}/lanes{lanes}"), jobs);
            group.bench_function(id, |b| {
                b.iter(|| sumpool::run(&config, &mut io::sink(), &mut io::sink()).map(|r| r.hashed))
            });
        }
        // A manifest of the tree, then `check` of it.
        let manifest = dir.path().join(format!("{name}.sums"));
        let mut out = Vec::new();
        sumpool::run(&hash_config(root.clone(), 2, 1), &mut out, &mut io::sink()).expect("hash");
        std::fs::write(&manifest, out).expect("write manifest");
        let check = Config {
            jobs: 2,
            tuning: Tuning::default(),
            io: IoSettings::default(),
            command: Command::Check(CheckConfig {
                lists: vec![manifest],
                verbosity: Verbosity::Quiet,
                strict: false,
                ignore_missing: false,
                zero: false,
                algorithm: None,
                json: false,
                verbose: false,
                progress: ProgressMode::Never,
            }),
        };
        group.bench_function(BenchmarkId::new(format!("check/{name}"), 2), |b| {
            b.iter(|| sumpool::run(&check, &mut io::sink(), &mut io::sink()).map(|r| r.failed))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    hash_in_memory,
    every_algorithm,
    blake3_units,
    multibuf_lanes,
    whole_runs
);
criterion_main!(benches);
