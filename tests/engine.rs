//! The engine through the library, as benches call it: exact digests in walk order for any
//! number of readers, workers, lanes, batch and window, and no lost wake-up.
//!
//! Every wait in the engine has a timeout only as a safety net. A wait that times out and
//! then finds its work ready was a wake-up that went missing, which costs a whole poll
//! interval each time (with one or two readers, every 2 MiB of a large file waited out
//! 100 ms: 2.7 s for 64 MiB instead of 0.04 s). The engine counts those waits; this test
//! asserts the count stays zero, a counter rather than a timing.

mod util;

use std::fs;
use std::path::{Path, PathBuf};

use sumpool::config::{Command, Config, Format, HashConfig, IoSettings};
use sumpool::engine::Tuning;
use sumpool::engine::read::HashOptions;
use sumpool::engine::walk::WalkOptions;
use sumpool::format::line::{Encoding, LineFormat, LineStyle};
use sumpool::progress::ProgressMode;

use util::{pseudo_random, sha256_hex, temp_dir, write_file};

/// Files of every size class the engine treats apart: empty and tiny (hashed by their
/// reader), small and up to 1 MiB (read whole, hashed in lanes), larger (streamed in
/// chunks, mapped or read).
fn tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let sizes: &[usize] = &[
        0,
        1,
        63,
        64,
        1000,
        4096,
        100_000,
        (1 << 20) - 1,
        1 << 20,
        (1 << 20) + 1,
        3 << 20,
        (9 << 20) + 7,
    ];
    let mut files = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        for copy in 0..3 {
            let name = format!("t/d{copy}/f{i:02}");
            let data = pseudo_random(size, (i * 3 + copy) as u64);
            files.push((write_file(root, name.as_bytes(), &data), data));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

fn config(input: &Path, readers: usize, jobs: usize, tuning: Tuning) -> Config {
    Config {
        command: Command::Hash(HashConfig {
            inputs: vec![input.to_path_buf()],
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
        jobs,
        tuning,
        io: IoSettings {
            readers: Some(readers),
            ..IoSettings::default()
        },
    }
}

#[test]
fn exact_in_order_and_no_lost_wake_up_at_any_setting() {
    let dir = temp_dir();
    let files = tree(dir.path());
    let mut want = Vec::new();
    for (path, data) in &files {
        want.extend_from_slice(format!("{}  {}\n", sha256_hex(data), path.display()).as_bytes());
    }
    let input = dir.path().join("t");
    for readers in [1, 2, 3, 8] {
        for jobs in [1, 2] {
            for lanes in [1, 4] {
                for (batch_size, window) in [(1, 8), (64, 4096)] {
                    let tuning = Tuning {
                        batch_size,
                        window,
                        lanes,
                    };
                    let config = config(&input, readers, jobs, tuning);
                    let (mut out, mut err) = (Vec::new(), Vec::new());
                    let report = sumpool::run(&config, &mut out, &mut err).expect("the run");
                    let setting = format!("readers {readers}, jobs {jobs}, {tuning:?}");
                    assert_eq!(
                        report.failed,
                        0,
                        "{setting}: {}",
                        String::from_utf8_lossy(&err)
                    );
                    assert!(out == want, "{setting}: output differs");
                    assert_eq!(
                        sumpool::engine::lost_wakeups(),
                        0,
                        "{setting}: a wait timed out with its work ready"
                    );
                }
            }
        }
    }
    drop(fs::remove_dir_all(dir.path()));
}
