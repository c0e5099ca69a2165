//! Criterion benchmarks of the hashing core: SHA-256 over in-memory data through the same
//! `hash_reader` the workers run, in 1 MiB blocks.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sumpool::hash::{BLOCK_SIZE, hash_reader};

fn hash_in_memory(c: &mut Criterion) {
    let mut group = c.benchmark_group("hash_reader");
    let mut buf = vec![0u8; BLOCK_SIZE];
    for size in [4 << 10, 64 << 10, 1 << 20, 16 << 20] {
        let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &data, |b, data| {
            b.iter(|| hash_reader(&mut black_box(&data[..]), &mut buf).map(|r| r.1))
        });
    }
    group.finish();
}

criterion_group!(benches, hash_in_memory);
criterion_main!(benches);
