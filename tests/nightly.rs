//! Unattended runs (`hash --update` from cron): checkpoints a kill cannot spoil, the time box
//! and what the next run does after it, the bandwidth cap, and the page cache left as it was
//! found. No timing is asserted: a slow run is made slow by `--bwlimit`, and what is checked
//! is what the manifest and the page cache hold afterwards.

mod util;

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use util::{
    Cmd, cached_bytes, drop_caches, json_lines, pseudo_random, sha256_hex, skip_unless_root,
    temp_dir,
};

/// Longer than a record's racy margin: files written this long before a run are trusted
/// by its records, and not read again by the next run for being recent.
const RACY: Duration = Duration::from_millis(2200);

/// Writes `count` files of `size` bytes under `dir/data` (seeded by `seed`), in two
/// directories; returns their names relative to `dir` with their contents' digests.
fn tree(dir: &Path, count: usize, size: usize, seed: u64) -> HashMap<String, String> {
    let mut digests = HashMap::new();
    for i in 0..count {
        let name = format!("data/{}/f{i:04}", if i % 2 == 0 { "even" } else { "odd" });
        let path = dir.join(&name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let bytes = pseudo_random(size + i % 7, seed + i as u64);
        fs::write(&path, &bytes).unwrap();
        digests.insert(name, sha256_hex(&bytes));
    }
    digests
}

/// The checksum lines of a manifest: name to digest. Panics on a line that is neither a
/// checksum line nor sumpool's state record, or on a name listed twice.
fn lines_of(manifest: &Path) -> HashMap<String, String> {
    let text = fs::read_to_string(manifest).unwrap();
    let mut lines = HashMap::new();
    for line in text.lines() {
        if line.starts_with("#sumpool-state ") {
            continue;
        }
        let (digest, name) = line
            .split_once("  ")
            .unwrap_or_else(|| panic!("not a checksum line: {line:?}"));
        assert_eq!(digest.len(), 64, "{line:?}");
        assert!(
            lines.insert(name.to_owned(), digest.to_owned()).is_none(),
            "{name} twice"
        );
    }
    lines
}

/// The `verified=` second of each state record, in order.
fn verified_times(manifest: &Path) -> Vec<u64> {
    fs::read_to_string(manifest)
        .unwrap()
        .lines()
        .filter_map(|line| line.split(" verified=").nth(1))
        .map(|rest| rest.split('.').next().unwrap().parse().unwrap())
        .collect()
}

/// GNU `sha256sum -c` over the manifest: every line well formed and every digest right.
fn gnu_accepts(dir: &Path, manifest: &str) {
    let run = Cmd::new("sha256sum")
        .args(["-c", "--strict", "--quiet", manifest])
        .dir(dir)
        .run();
    run.code(0);
}

/// Starts sumpool in `dir` with `args`, sends SIGKILL after `after`, and waits for it.
fn kill_after(dir: &Path, args: &[&str], after: Duration) {
    let mut child = Command::new(util::sumpool_bin())
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let _ = child.kill();
    let _ = child.wait();
}

/// The update summary of a `--format json` run.
fn summary(run: &util::Run) -> serde_json::Value {
    json_lines(run)
        .into_iter()
        .find(|v| v["type"] == "summary")
        .expect("a summary line")
}

#[test]
fn malformed_limits_are_usage_errors() {
    let dir = temp_dir();
    let d = dir.path();
    tree(d, 2, 10, 1);
    let cases: &[&[&str]] = &[
        &["hash", "--bwlimit", "0", "data"],
        &["hash", "--bwlimit", "abc", "data"],
        &["hash", "--bwlimit", "-5M", "data"],
        &["check", "--bwlimit", "1Q", "SUMS"],
        &["hash", "--update", "M", "--max-duration", "-1", "data"],
        &["hash", "--update", "M", "--max-duration", "0", "data"],
        &["hash", "--update", "M", "--max-duration", "1x", "data"],
        &["hash", "--update", "M", "--checkpoint", "soon", "data"],
        // A time box or checkpoints need a manifest to write.
        &["hash", "--max-duration", "5s", "data"],
        &["hash", "--checkpoint", "5s", "data"],
    ];
    for args in cases {
        let run = Cmd::sumpool().args(*args).dir(d).run();
        run.code(2);
        assert!(!d.join("M").exists(), "{args:?} wrote a manifest");
    }
    // The forms the documentation gives are taken.
    for rate in ["200M", "1.5G", "500K", "100MB/s", "64MiB"] {
        Cmd::sumpool()
            .args(["hash", "--bwlimit", rate, "data"])
            .dir(d)
            .run()
            .code(0);
    }
}

#[test]
fn a_limited_run_prints_what_an_unlimited_one_does() {
    let dir = temp_dir();
    let d = dir.path();
    let mut digests = tree(d, 12, 300_000, 7);
    // A file large enough to be streamed in windows, and standard input.
    let big = pseudo_random(9 << 20, 99);
    fs::write(d.join("data/big"), &big).unwrap();
    digests.insert("data/big".into(), sha256_hex(&big));
    let reference = Cmd::sumpool().args(["hash", "data"]).dir(d).run();
    reference.code(0);
    for limits in [
        &["--bwlimit", "64M"][..],
        &["--nocache"],
        &["--bwlimit", "48M", "--nocache"],
    ] {
        let run = Cmd::sumpool()
            .arg("hash")
            .args(limits)
            .arg("data")
            .dir(d)
            .run();
        run.code(0).stdout_is(&reference.stdout);
        fs::write(d.join("SUMS"), &run.stdout).unwrap();
        Cmd::sumpool()
            .arg("check")
            .args(limits)
            .arg("SUMS")
            .dir(d)
            .run()
            .code(0);
        Cmd::sumpool()
            .arg("audit")
            .args(limits)
            .args(["SUMS", "data"])
            .dir(d)
            .run()
            .code(0);
        let stdin = Cmd::sumpool()
            .arg("hash")
            .args(limits)
            .stdin(big.clone())
            .run();
        stdin.code(0);
        assert_eq!(
            stdin.stdout,
            format!("{}  -\n", sha256_hex(&big)).into_bytes()
        );
    }
    gnu_accepts(d, "SUMS");
    assert_eq!(lines_of(&d.join("SUMS")), digests);
    // -v says what rate the run kept to.
    Cmd::sumpool()
        .args(["hash", "-v", "--bwlimit", "64M", "data"])
        .dir(d)
        .run()
        .code(0)
        .stderr_has("sumpool: limits: --bwlimit 64.0 MiB/s, hashed at ");
}

#[test]
fn a_run_killed_at_any_moment_leaves_the_old_manifest_or_a_complete_checkpoint() {
    let dir = temp_dir();
    let d = dir.path();
    // Many short lines, so that kills land in the middle of checkpoint writes too.
    let digests = tree(d, 1200, 6000, 3);
    Cmd::sumpool()
        .args(["hash", "--update", "M", "data"])
        .dir(d)
        .run()
        .code(0);
    let first = verified_times(&d.join("M"));
    assert_eq!(first.len(), digests.len());
    std::thread::sleep(RACY);
    // About 3.5 s of reading at 2 MiB/s, a checkpoint every 0.2 s, killed at moments spread
    // over the run.
    let args = [
        "hash",
        "--update",
        "M",
        "--scrub",
        "100",
        "--checkpoint",
        "0.2s",
        "--bwlimit",
        "2M",
        "data",
    ];
    for (round, millis) in [30u64, 170, 420, 650, 900, 1300, 1900, 2600]
        .into_iter()
        .enumerate()
    {
        kill_after(d, &args, Duration::from_millis(millis));
        let lines = lines_of(&d.join("M"));
        assert_eq!(lines, digests, "round {round}: entries lost or wrong");
        gnu_accepts(d, "M");
        Cmd::sumpool()
            .args(["check", "--quiet", "M"])
            .dir(d)
            .run()
            .code(0);
        // Nothing of the killed run is hashed by the next one.
        let listed = Cmd::sumpool().args(["hash", "data"]).dir(d).run();
        listed.code(0);
        assert_eq!(
            listed.stdout.iter().filter(|&&b| b == b'\n').count(),
            digests.len()
        );
    }
    // The checkpoints recorded what the killed runs verified: some records are newer.
    let later = verified_times(&d.join("M"));
    let newer = later.iter().filter(|&&t| t > first[0]).count();
    assert!(newer > 0, "no checkpoint recorded any verification");
}

#[test]
fn the_run_after_a_kill_does_not_read_again_what_a_checkpoint_recorded() {
    let dir = temp_dir();
    let d = dir.path();
    let old = tree(d, 24, 200_000, 11);
    Cmd::sumpool()
        .args(["hash", "--update", "M", "data"])
        .dir(d)
        .run()
        .code(0);
    // Every file changes; an update must read them all, at 1 MiB/s about 4.7 s.
    let new = tree(d, 24, 200_000, 12);
    std::thread::sleep(RACY);
    kill_after(
        d,
        &[
            "hash",
            "--update",
            "M",
            "--checkpoint",
            "0.5s",
            "--bwlimit",
            "1M",
            "data",
        ],
        Duration::from_millis(3000),
    );
    // Each line holds the old digest or the new one, and some the new.
    let lines = lines_of(&d.join("M"));
    assert_eq!(lines.len(), old.len());
    let mut updated = 0;
    for (name, digest) in &lines {
        if *digest == new[name] {
            updated += 1;
        } else {
            assert_eq!(*digest, old[name], "{name}");
        }
    }
    assert!(
        updated > 0 && updated < old.len(),
        "{updated} lines updated"
    );
    // The next run reads only the rest.
    let next = Cmd::sumpool()
        .args(["hash", "--update", "M", "--format", "json", "data"])
        .dir(d)
        .run();
    next.code(0);
    let s = summary(&next);
    assert_eq!(s["reused"], updated as u64, "{s}");
    // The rest is read: changed since their records (racy ones, written just before the
    // first manifest, count as such).
    let read = s["modified"].as_u64().unwrap() + s["racy"].as_u64().unwrap();
    assert_eq!(read, (old.len() - updated) as u64, "{s}");
    assert_eq!(lines_of(&d.join("M")), new);
    gnu_accepts(d, "M");
}

#[test]
fn a_time_boxed_scrub_carries_on_where_it_stopped_until_the_tree_is_covered() {
    let dir = temp_dir();
    let d = dir.path();
    let digests = tree(d, 30, 500_000, 21);
    Cmd::sumpool()
        .args(["hash", "--update", "M", "data"])
        .dir(d)
        .run()
        .code(0);
    let first = verified_times(&d.join("M"))[0];
    std::thread::sleep(RACY);
    // 15 MB at 4 MiB/s: no one-second run reads it all.
    let mut runs = 0;
    let mut stopped = 0;
    while verified_times(&d.join("M")).iter().any(|&t| t <= first) {
        runs += 1;
        assert!(runs <= 12, "12 time-boxed runs did not cover the tree");
        let run = Cmd::sumpool()
            .args(["hash", "--update", "M", "--scrub", "100"])
            .args([
                "--max-duration",
                "1s",
                "--bwlimit",
                "4M",
                "--format",
                "json",
            ])
            .arg("data")
            .dir(d)
            .run();
        run.code(0);
        let s = summary(&run);
        if s["time_up"] == true {
            stopped += 1;
            assert!(s["not_reached"].as_u64().unwrap() > 0, "{s}");
            run.stderr_has("time is up (--max-duration)");
        }
        let met: u64 = ["reused", "racy", "scrubbed", "not_reached"]
            .iter()
            .map(|k| s[k].as_u64().unwrap())
            .sum();
        assert_eq!(met, digests.len() as u64, "{s}");
        assert_eq!(s["corrupt"], 0, "{s}");
        assert_eq!(lines_of(&d.join("M")), digests);
        gnu_accepts(d, "M");
    }
    assert!(stopped > 0, "no run was cut by its time box");
    assert!(
        runs >= 2,
        "one run covered the tree: the time box did not bite"
    );
}

#[test]
fn a_time_box_not_reached_changes_nothing() {
    let dir = temp_dir();
    let d = dir.path();
    tree(d, 6, 1000, 5);
    std::thread::sleep(RACY);
    Cmd::sumpool()
        .args(["hash", "--update", "M", "data"])
        .dir(d)
        .run()
        .code(0);
    fs::write(d.join("data/even/f0000"), b"changed").unwrap();
    let run = Cmd::sumpool()
        .args([
            "hash",
            "--update",
            "M",
            "--max-duration",
            "1h",
            "--format",
            "json",
        ])
        .arg("data")
        .dir(d)
        .run();
    run.code(0);
    let s = summary(&run);
    assert_eq!(
        (s["modified"].as_u64(), s["time_up"].as_bool()),
        (Some(1), Some(false))
    );
    assert_eq!(s["not_reached"], 0);
    assert_eq!(
        lines_of(&d.join("M"))["data/even/f0000"],
        sha256_hex(b"changed")
    );
}

#[test]
fn bwlimit_charges_what_files_hold_not_their_buffers() {
    let dir = temp_dir();
    let d = dir.path();
    // 600 files of about 1,000 bytes: 0.6 MB, about 6 s at 100 KiB/s. Charged a 64 KiB
    // buffer each, they would take over six minutes, and the run would be killed by the
    // harness's timeout.
    let digests = tree(d, 600, 1000, 31);
    let run = Cmd::sumpool()
        .args(["hash", "--bwlimit", "100K", "data"])
        .dir(d)
        .run();
    run.code(0);
    fs::write(d.join("SUMS"), &run.stdout).unwrap();
    assert_eq!(lines_of(&d.join("SUMS")), digests);
    // Empty files are charged nothing.
    for i in 0..300 {
        fs::write(d.join(format!("data/even/empty{i}")), b"").unwrap();
    }
    Cmd::sumpool()
        .args(["hash", "--bwlimit", "4K", "data/even"])
        .arg("--exclude")
        .arg("f*")
        .dir(d)
        .run()
        .code(0);
}

#[test]
fn a_file_too_long_for_the_time_box_is_left_and_said_and_the_rest_goes_on() {
    let dir = temp_dir();
    let d = dir.path();
    let mut digests = tree(d, 10, 2000, 41);
    let huge = pseudo_random(8 << 20, 42);
    fs::write(d.join("data/huge"), &huge).unwrap();
    digests.insert("data/huge".into(), sha256_hex(&huge));
    std::thread::sleep(RACY);
    Cmd::sumpool()
        .args(["hash", "--update", "M", "data"])
        .dir(d)
        .run()
        .code(0);
    // Every file changes; the huge one would take 8 s at 1 MiB/s, in a box of 2 s.
    let new = tree(d, 10, 2000, 43);
    fs::write(d.join("data/huge"), pseudo_random(8 << 20, 44)).unwrap();
    std::thread::sleep(RACY);
    let run = Cmd::sumpool()
        .args([
            "hash",
            "--update",
            "M",
            "--max-duration",
            "2s",
            "--bwlimit",
            "1M",
        ])
        .args(["--format", "json", "data"])
        .dir(d)
        .run();
    run.code(0)
        .stderr_has("sumpool: data/huge: not read: 8388608 bytes at the --bwlimit rate");
    let s = summary(&run);
    assert_eq!(s["modified"], 10, "{s}");
    let lines = lines_of(&d.join("M"));
    for (name, digest) in &new {
        assert_eq!(lines[name], *digest, "{name}");
    }
    // Its old line stays, for a run with more time or a higher rate.
    assert_eq!(lines["data/huge"], digests["data/huge"]);
}

#[test]
fn nocache_drops_what_the_run_brought_in_and_keeps_what_was_cached() {
    if skip_unless_root("dropping the page cache") {
        return;
    }
    let dir = temp_dir();
    let d = dir.path();
    // Files of every kind of read: small ones read whole, 2 MiB ones, and large ones read in
    // windows; and many of 1 MiB, read whole by many readers at once, where the kernel has
    // part of a file in by the time its first read looks.
    let mut files = Vec::new();
    let kinds = [3000, 200_000, 900_000, 2 << 20, 5 << 20, 40 << 20, 70 << 20];
    for (i, size) in kinds
        .iter()
        .cycle()
        .take(14)
        .chain([1 << 20; 80].iter())
        .enumerate()
    {
        let path = d.join(format!("data/f{i:02}"));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, pseudo_random(*size, i as u64)).unwrap();
        files.push(path);
    }
    let total: u64 = files.iter().map(|f| fs::metadata(f).unwrap().len()).sum();
    for command in [
        &["hash", "--nocache", "data"][..],
        &["hash", "--nocache", "-j", "1", "data"],
    ] {
        // Cold: at most 2 % stays cached.
        drop_caches();
        Cmd::sumpool().args(command).dir(d).run().code(0);
        let left = cached_bytes(&files);
        assert!(
            left * 50 <= total,
            "{command:?}: {left} of {total} bytes still cached"
        );
        // Half warm: what was cached before stays cached.
        drop_caches();
        let warm: Vec<_> = files.iter().step_by(2).cloned().collect();
        for f in &warm {
            fs::read(f).unwrap();
        }
        let before = cached_bytes(&warm);
        Cmd::sumpool().args(command).dir(d).run().code(0);
        let after = cached_bytes(&warm);
        assert!(
            after * 100 >= before * 98,
            "{command:?}: {after} of {before} bytes kept"
        );
        let cold: Vec<_> = files.iter().skip(1).step_by(2).cloned().collect();
        let cold_total: u64 = cold.iter().map(|f| fs::metadata(f).unwrap().len()).sum();
        let cold_left = cached_bytes(&cold);
        assert!(
            cold_left * 50 <= cold_total,
            "{command:?}: {cold_left} of {cold_total}"
        );
    }
    // check and audit too.
    let sums = Cmd::sumpool().args(["hash", "data"]).dir(d).run();
    fs::write(d.join("SUMS"), &sums.stdout).unwrap();
    for command in [
        &["check", "--nocache", "SUMS"][..],
        &["audit", "--nocache", "SUMS", "data"],
    ] {
        drop_caches();
        Cmd::sumpool().args(command).dir(d).run().code(0);
        let left = cached_bytes(&files);
        assert!(
            left * 50 <= total,
            "{command:?}: {left} of {total} bytes still cached"
        );
    }
    // A regular file on standard input.
    let big = files.last().unwrap().clone();
    drop_caches();
    let script = "exec \"$1\" hash --nocache - < \"$2\"";
    Cmd::new("sh")
        .args(["-c", script, "sh"])
        .arg(util::sumpool_bin())
        .arg(&big)
        .dir(d)
        .run()
        .code(0);
    let size = fs::metadata(&big).unwrap().len();
    let left = cached_bytes(std::slice::from_ref(&big));
    assert!(
        left * 50 <= size,
        "standard input: {left} of {size} bytes still cached"
    );
    // Without --nocache the tree stays cached: the measure can fail.
    drop_caches();
    Cmd::sumpool().args(["hash", "data"]).dir(d).run().code(0);
    assert!(cached_bytes(&files) * 2 > total);
}
