//! What a hostile or careless user tries with manifests and limits: a README given to
//! `--update`, an update of part of a tree, an unreadable file, parts of two splits given to
//! `merge`, a shared map written through, too few threads or descriptors. Each test here
//! failed on the build before the fix it guards (the outputs and signals are in
//! `hardening.rs`).

mod util;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use util::{
    Cmd, pseudo_random, reference, sha256_hex, skip_unless_root, small_tree, sumpool_bin, temp_dir,
    write_file,
};

#[test]
fn update_refuses_a_file_that_is_not_a_manifest() {
    let dir = temp_dir();
    let d = dir.path();
    small_tree(d);
    // A text that quotes a few checksum lines among its prose is still no manifest.
    let quoted = reference(d, &["data/a/f1"]);
    let mut notes = b"# Notes\n\nHow we verify releases:\n\n".to_vec();
    notes.extend_from_slice(&quoted);
    notes.extend_from_slice(b"\nThat is all.\n");
    fs::write(d.join("notes.md"), &notes).unwrap();
    let refused = Cmd::sumpool()
        .args(["hash", "--update", "notes.md", "data"])
        .dir(d)
        .run();
    refused
        .code(2)
        .stderr_has("sumpool: notes.md: not a sha256 manifest: 2 lines are neither");
    assert_eq!(fs::read(d.join("notes.md")).unwrap(), notes);
    // A manifest of another algorithm is not replaced by one of this algorithm.
    let sha512 = Cmd::new("sha512sum")
        .args(["data/a/f1"])
        .dir(d)
        .run()
        .stdout;
    fs::write(d.join("SHA512SUMS"), &sha512).unwrap();
    Cmd::sumpool()
        .args(["hash", "--update", "SHA512SUMS", "data"])
        .dir(d)
        .run()
        .code(2);
    assert_eq!(fs::read(d.join("SHA512SUMS")).unwrap(), sha512);
    // A new name, or an empty file, starts a manifest.
    fs::write(d.join("empty"), b"").unwrap();
    for name in ["empty", "new"] {
        Cmd::sumpool()
            .args(["hash", "--update", name, "data"])
            .dir(d)
            .run()
            .code(0);
        Cmd::new("sha256sum")
            .args(["-c", "--strict", "--quiet", name])
            .dir(d)
            .run()
            .code(0);
    }
}

/// The digest lines of a manifest (state lines left out), as text.
fn digest_lines(manifest: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(manifest)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The lines of a manifest for names under `prefix`, state lines included.
fn entries_under(manifest: &[u8], prefix: &str) -> Vec<String> {
    let lines: Vec<String> = String::from_utf8_lossy(manifest)
        .lines()
        .map(str::to_string)
        .collect();
    let mut kept = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with('#') && line.contains(&format!("  {prefix}")) {
            if i > 0 && lines[i - 1].starts_with('#') {
                kept.push(lines[i - 1].clone());
            }
            kept.push(line.clone());
        }
    }
    kept
}

#[test]
fn an_update_of_part_of_the_tree_keeps_the_rest_byte_for_byte() {
    let dir = temp_dir();
    let d = dir.path();
    small_tree(d);
    // Times safely in the past, so every line is trusted.
    let old = std::time::SystemTime::now() - Duration::from_secs(600);
    for f in util::walk_order(&d.join("data")) {
        fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let update = |args: &[&str]| {
        let run = Cmd::sumpool()
            .args(["hash", "--update", "M", "--format", "json"])
            .args(args)
            .dir(d)
            .run();
        run.code(0);
        run
    };
    update(&["data"]);
    let full = fs::read(d.join("M")).unwrap();
    let b_lines = entries_under(&full, "data/b/");
    assert_eq!(b_lines.len(), 6, "{}", String::from_utf8_lossy(&full));
    // Over a sub-path, with an exclude, with a shard: what was not looked at stays.
    for (args, b_untouched) in [
        (&["data/a"][..], true),
        (&["--exclude", "b", "data"], true),
        (&["--exclude", "f2", "data"], false),
        (&["--shard", "1/3", "data"], false),
        (&["--shard", "3/3", "data"], false),
    ] {
        let before = fs::read(d.join("M")).unwrap();
        let run = update(args);
        let now = fs::read(d.join("M")).unwrap();
        if b_untouched {
            // Not looked at: byte for byte, state lines included.
            assert_eq!(
                entries_under(&now, "data/b/"),
                entries_under(&before, "data/b/"),
                "{args:?}"
            );
        }
        assert_eq!(
            digest_lines(&now),
            digest_lines(&full),
            "{args:?}: lines lost or gained"
        );
        let summary = util::json_lines(&run).pop().unwrap();
        let kept = summary["out_of_scope"].as_u64().unwrap();
        assert!(kept > 0, "{args:?}: {summary}");
        assert_eq!(summary["dropped"], 0, "{args:?}");
    }
    assert_eq!(
        digest_lines(
            entries_under(&fs::read(d.join("M")).unwrap(), "data/b/")
                .join("\n")
                .as_bytes()
        ),
        digest_lines(b_lines.join("\n").as_bytes())
    );
    // Spelled with ./ it matches; spelled from the root it is refused; nothing doubles.
    update(&["./data/a"]);
    assert_eq!(
        digest_lines(&fs::read(d.join("M")).unwrap()),
        digest_lines(&full)
    );
    let absolute = d.join("data").display().to_string();
    Cmd::sumpool()
        .args(["hash", "--update", "M", &absolute])
        .dir(d)
        .run()
        .code(2)
        .stderr_has("the manifest names this data");
    assert_eq!(
        digest_lines(&fs::read(d.join("M")).unwrap()),
        digest_lines(&full)
    );
    // A file that is gone is dropped, and only that one.
    fs::remove_file(d.join("data/b/f2")).unwrap();
    let run = update(&["data/b"]);
    let summary = util::json_lines(&run).pop().unwrap();
    assert_eq!(summary["dropped"], 1, "{summary}");
    let now = digest_lines(&fs::read(d.join("M")).unwrap());
    assert_eq!(now.len(), 5);
    assert!(!now.iter().any(|l| l.ends_with("data/b/f2")));
    // --prune: the manifest describes exactly this run.
    let pruned = Cmd::sumpool()
        .args(["hash", "--update", "M", "--prune", "-v", "data/a"])
        .dir(d)
        .run();
    pruned.code(0).stderr_has("; 0 dropped (gone), 2 pruned\n");
    let now = digest_lines(&fs::read(d.join("M")).unwrap());
    assert_eq!(now.len(), 3);
    assert!(now.iter().all(|l| l.contains("  data/a/")));
}

#[test]
fn an_unreadable_file_keeps_its_old_line() {
    if skip_unless_root("a file root cannot read") {
        return;
    }
    let dir = temp_dir();
    let d = dir.path();
    small_tree(d);
    let update = || {
        Cmd::sumpool()
            .args(["hash", "--update", "M", "data"])
            .dir(d)
            .unprivileged()
            .run()
    };
    fs::set_permissions(d, fs::Permissions::from_mode(0o777)).unwrap();
    update().code(0);
    let before = fs::read(d.join("M")).unwrap();
    fs::set_permissions(d.join("data/b/f1"), fs::Permissions::from_mode(0o000)).unwrap();
    let run = update();
    run.code(1)
        .stderr_has("sumpool: data/b/f1: Permission denied\n");
    assert_eq!(
        entries_under(&fs::read(d.join("M")).unwrap(), "data/b/f1"),
        entries_under(&before, "data/b/f1")
    );
}

#[test]
fn merge_refuses_overlapping_stale_parts_and_names_missing_shards() {
    let dir = temp_dir();
    let d = dir.path();
    for i in 0..20 {
        write_file(
            d,
            format!("data/f{i:02}").as_bytes(),
            &pseudo_random(100, i),
        );
    }
    let shard = |k: u32, n: u32, out: &str| {
        Cmd::sumpool()
            .args(["hash", "--shard", &format!("{k}/{n}"), "-o", out, "data"])
            .dir(d)
            .run()
            .code(0);
    };
    for k in 1..=4 {
        shard(k, 4, &format!("part-old-{k}"));
    }
    for k in 1..=3 {
        shard(k, 3, &format!("part-{k}"));
    }
    let single = Cmd::sumpool().args(["hash", "data"]).dir(d).run().stdout;
    // A complete set merges to the single run's bytes.
    Cmd::sumpool()
        .args(["merge", "part-3", "part-1", "part-2"])
        .dir(d)
        .run()
        .code(0)
        .stdout_is(&single);
    // Stale parts of another split beside the new ones.
    let mixed = Cmd::sumpool()
        .args([
            "merge",
            "part-old-1",
            "part-old-2",
            "part-old-3",
            "part-old-4",
            "part-1",
            "part-2",
            "part-3",
        ])
        .dir(d)
        .run();
    mixed.code(1).stderr_has("parts of different splits");
    // Without their shard lines, the overlap itself is named, with both inputs.
    for k in 1..=4 {
        let name = format!("part-old-{k}");
        let text = fs::read_to_string(d.join(&name)).unwrap();
        let body: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
        fs::write(d.join(format!("bare-old-{k}")), body).unwrap();
    }
    let overlap = Cmd::sumpool()
        .args([
            "merge",
            "bare-old-1",
            "bare-old-2",
            "bare-old-3",
            "bare-old-4",
            "part-1",
        ])
        .dir(d)
        .run();
    overlap.code(1).stderr_has("both list");
    let text = overlap.stderr_text();
    assert!(
        text.contains("part-1") && text.contains("bare-old-"),
        "{text}"
    );
    // A shard missing, or given twice.
    Cmd::sumpool()
        .args(["merge", "part-1", "part-3"])
        .dir(d)
        .run()
        .code(1)
        .stderr_has("missing shard 2/3");
    Cmd::sumpool()
        .args(["merge", "part-1", "part-2", "part-2", "part-3"])
        .dir(d)
        .run()
        .code(1)
        .stderr_has("shard 2/3 is given twice: part-2 and part-2");
    // A line per algorithm for each file is no overlap; the same lines twice are.
    let multi = |k: u32, out: &str| {
        Cmd::sumpool()
            .args([
                "hash",
                "-a",
                "sha256,md5",
                "--shard",
                &format!("{k}/2"),
                "-o",
                out,
                "data",
            ])
            .dir(d)
            .run()
            .code(0);
    };
    multi(1, "multi-1");
    multi(2, "multi-2");
    let single = Cmd::sumpool()
        .args(["hash", "-a", "sha256,md5", "data"])
        .dir(d)
        .run()
        .stdout;
    Cmd::sumpool()
        .args(["merge", "multi-2", "multi-1"])
        .dir(d)
        .run()
        .code(0)
        .stdout_is(&single);
    let text = fs::read_to_string(d.join("multi-1")).unwrap();
    let body: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    fs::write(d.join("multi-bare"), body).unwrap();
    Cmd::sumpool()
        .args(["merge", "multi-bare", "multi-1", "multi-2"])
        .dir(d)
        .run()
        .code(1)
        .stderr_has("both list");
}

#[test]
fn a_write_through_a_shared_map_is_described_truthfully() {
    let dir = temp_dir();
    let d = dir.path();
    let file = write_file(d, b"data/mapped", &pseudo_random(8192, 3));
    let f = fs::File::options()
        .read(true)
        .write(true)
        .open(&file)
        .unwrap();
    // SAFETY: a shared writable mapping of a file this test owns, 8192 bytes long, unmapped
    // at the end of the test, before the file is closed.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            8192,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            std::os::fd::AsRawFd::as_raw_fd(&f),
            0,
        )
    };
    assert_ne!(map, libc::MAP_FAILED);
    // The first write through the map dirties the page and stamps the times; the update
    // records them once they are old enough to be trusted (two seconds).
    // SAFETY: within the mapping.
    unsafe { *(map as *mut u8) ^= 0xff };
    std::thread::sleep(Duration::from_millis(2500));
    Cmd::sumpool()
        .args(["hash", "--update", "M", "data"])
        .dir(d)
        .run()
        .code(0);
    // A second write to the page, still dirty, moves neither size nor times.
    let before = fs::metadata(&file).unwrap();
    // SAFETY: within the mapping.
    unsafe { *(map as *mut u8).add(100) ^= 0xff };
    let after = fs::metadata(&file).unwrap();
    let moved = (
        after.mtime(),
        after.mtime_nsec(),
        after.ctime(),
        after.ctime_nsec(),
    ) != (
        before.mtime(),
        before.mtime_nsec(),
        before.ctime(),
        before.ctime_nsec(),
    );
    let audit = Cmd::sumpool().args(["audit", "M", "data"]).dir(d).run();
    // SAFETY: unmapping the mapping made above.
    unsafe { libc::munmap(map, 8192) };
    if moved {
        // This kernel stamped the second write too (the page was written back between):
        // then it is a plain modification, and the case cannot be made here.
        eprintln!("skipped: the kernel moved the times of the second mapped write");
        return;
    }
    audit.code(3);
    assert!(
        audit
            .stderr_text()
            .contains("bit rot, or a write that bypassed the times"),
        "{}",
        audit.describe()
    );
}

#[test]
fn a_thread_that_cannot_start_ends_the_run_with_status_2_never_a_hang() {
    if skip_unless_root("setpriv and prlimit as another user") {
        return;
    }
    let dir = temp_dir();
    let d = dir.path();
    small_tree(d);
    fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    let want = Cmd::sumpool().args(["hash", "data"]).dir(d).run().stdout;
    let mut failed = 0;
    // Threads of the user `nobody` at most: from too few for the pool to enough for all.
    for nproc in 1..=12 {
        for command in [
            &["hash", "-j", "1", "--io-threads", "2", "data"][..],
            &["hash", "data"],
        ] {
            let run = Cmd::new("prlimit")
                .arg(format!("--nproc={nproc}"))
                .arg("--")
                .arg(sumpool_bin())
                .args(command)
                .dir(d)
                .unprivileged()
                .run();
            match run.code {
                Some(0) => assert_eq!(run.stdout, want, "{}", run.describe()),
                Some(2) => {
                    run.stderr_has("cannot start");
                    failed += 1;
                }
                _ => panic!("neither done nor a clear failure\n{}", run.describe()),
            }
        }
    }
    assert!(
        failed > 0,
        "no limit was low enough: the test proved nothing"
    );
}

#[test]
fn low_limits_of_open_files_still_hash_every_file() {
    let dir = temp_dir();
    let d = dir.path();
    for k in 0..500 {
        for f in 0..4 {
            let data = pseudo_random(2000 + f * 7, (k * 4 + f) as u64);
            write_file(d, format!("t/d{k:03}/f{f}").as_bytes(), &data);
        }
    }
    // A few large files too (streamed in chunks, each holding a descriptor a while).
    for i in 0..6 {
        write_file(
            d,
            format!("t/large{i}").as_bytes(),
            &pseudo_random(3 << 20, 90 + i),
        );
    }
    let files: Vec<String> = util::walk_order(&d.join("t"))
        .iter()
        .map(|p| p.strip_prefix(d).unwrap().display().to_string())
        .collect();
    let mut want = Vec::new();
    for name in &files {
        want.extend_from_slice(
            format!("{}  {name}\n", sha256_hex(&fs::read(d.join(name)).unwrap())).as_bytes(),
        );
    }
    for limit in [128, 64, 32, 16] {
        let run = Cmd::new("prlimit")
            .arg(format!("--nofile={limit}"))
            .arg("--")
            .arg(sumpool_bin())
            .args(["hash", "t"])
            .dir(d)
            .run();
        run.code(0).stderr_empty();
        assert!(run.stdout == want, "limit {limit}: output differs");
    }
    fs::write(d.join("SUMS"), &want).unwrap();
    for args in [
        &["check", "--quiet", "SUMS"][..],
        &["hash", "--update", "UPD", "t"],
    ] {
        Cmd::new("prlimit")
            .arg("--nofile=32")
            .arg("--")
            .arg(sumpool_bin())
            .args(args)
            .dir(d)
            .run()
            .code(0)
            .stderr_empty();
    }
}
