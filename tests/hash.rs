//! `sumpool hash` driven as a user drives it, compared with GNU `sha256sum` and with digests
//! computed here by the sha2 crate.

mod util;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Stdio};

use util::{Cmd, gnu_sha256sum, pseudo_random, sha256_hex, temp_dir, walk_order, write_file};

#[test]
fn published_vectors_and_block_boundaries_match_sha2_and_sha256sum() {
    let dir = temp_dir();
    let mib = 1 << 20;
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("abc", b"abc".to_vec()),
        ("one-mib", pseudo_random(mib, 1)),
        ("one-mib-plus-one", pseudo_random(mib + 1, 2)),
        ("random", pseudo_random(3 * mib + 12345, 3)),
    ];
    for (name, data) in &files {
        write_file(dir.path(), name.as_bytes(), data);
    }
    let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
    let run = Cmd::sumpool()
        .arg("hash")
        .args(&names)
        .dir(dir.path())
        .run();
    run.code(0).stderr_empty();

    let mut want = String::new();
    for (name, data) in &files {
        want.push_str(&format!("{}  {name}\n", sha256_hex(data)));
    }
    run.stdout_is(want.as_bytes());
    assert!(want.starts_with(
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  empty\n\
         ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  abc\n"
    ));
    run.stdout_is(&gnu_sha256sum(dir.path(), &names).code(0).stdout);
}

/// Names that need care: spaces, escapes, a leading `*` or `-`, invalid UTF-8.
const AWKWARD: &[&[u8]] = &[
    b"with space",
    b"back\\slash",
    b"new\nline",
    b"carriage\rreturn",
    b"*star",
    b"-dash",
    b"\xff\xfe not utf-8",
    b"all\\three\n\r",
];

#[test]
fn awkward_names_are_byte_identical_to_sha256sum_and_verify() {
    let dir = temp_dir();
    for (i, name) in AWKWARD.iter().enumerate() {
        write_file(dir.path(), name, &pseudo_random(100 + i, i as u64));
    }
    let names: Vec<&std::ffi::OsStr> = AWKWARD
        .iter()
        .map(|n| std::ffi::OsStr::from_bytes(n))
        .collect();
    let run = Cmd::sumpool()
        .arg("hash")
        .arg("--")
        .args(&names)
        .dir(dir.path())
        .run();
    run.code(0).stderr_empty();
    let gnu = gnu_sha256sum(
        dir.path(),
        std::iter::once("--".as_ref()).chain(names.clone()),
    );
    run.stdout_is(&gnu.code(0).stdout);

    for flag in ["--tag", "-z"] {
        let ours = Cmd::sumpool()
            .args(["hash", flag, "--"])
            .args(&names)
            .dir(dir.path())
            .run();
        let gnu = gnu_sha256sum(
            dir.path(),
            [flag.as_ref(), "--".as_ref()]
                .into_iter()
                .chain(names.clone()),
        );
        ours.code(0).stdout_is(&gnu.code(0).stdout);
    }

    // sha256sum -c accepts what sumpool wrote, and says OK for every file.
    fs::write(dir.path().join("SUMS"), &run.stdout).unwrap();
    let check = Cmd::new("sha256sum")
        .args(["-c", "SUMS"])
        .dir(dir.path())
        .run();
    check.code(0);
    let oks = check
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| l.ends_with(b": OK"))
        .count();
    assert_eq!(oks, AWKWARD.len(), "{}", check.describe());
}

#[test]
fn walked_names_are_what_find_prints() {
    let dir = temp_dir();
    write_file(dir.path(), b"artifacts/sub/a.bin", b"a");
    let digest = sha256_hex(b"a");
    for (arg, shown) in [
        ("./artifacts", "./artifacts/sub/a.bin"),
        ("artifacts", "artifacts/sub/a.bin"),
        ("artifacts/", "artifacts/sub/a.bin"),
    ] {
        let run = Cmd::sumpool().args(["hash", arg]).dir(dir.path()).run();
        run.code(0)
            .stdout_is(format!("{digest}  {shown}\n").as_bytes());
    }
}

#[test]
fn the_readme_first_command_hashes_the_repository_sources() {
    // `cargo run --release -- hash src`, as typed in a fresh clone: the repository root is
    // the working directory, and `src/` is there.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = Cmd::sumpool().args(["hash", "src"]).dir(root).run();
    let files: Vec<_> = walk_order(&root.join("src"))
        .iter()
        .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
        .collect();
    assert!(files.len() > 10, "src/ holds the sources");
    let want = gnu_sha256sum(root, &files);
    want.code(0);
    run.code(0).stderr_empty().stdout_is(&want.stdout);
}

#[test]
fn large_tree_is_identical_for_any_job_count_and_equals_sha256sum_in_walk_order() {
    let dir = temp_dir();
    let root = dir.path().join("tree");
    // 1,200 files over three levels, with names whose byte order differs from a naive sort
    // (upper case, dot-names, digits of different widths), files and directories mixed.
    for i in 0..1200u32 {
        let name = format!(
            "{}/{}/{}{}",
            ["A", "b", ".hidden", "Z9"][(i % 4) as usize],
            ["x", "X", "10", "9", "x.y"][(i % 5) as usize],
            ["f", "F", ".f", "_"][(i % 3) as usize],
            i
        );
        write_file(
            &root,
            name.as_bytes(),
            &pseudo_random((i as usize * 37) % 5000, i as u64),
        );
    }
    write_file(
        &root,
        b"A.txt",
        b"a file sorting right after the directory A",
    );
    write_file(&root, b"a", b"lower case sorts after every upper-case name");
    write_file(&root, b"top-level", b"top");

    let mut outputs = Vec::new();
    for jobs in ["1", "2", "8"] {
        let run = Cmd::sumpool()
            .args(["hash", "-j", jobs, "tree"])
            .dir(dir.path())
            .run();
        run.code(0).stderr_empty();
        outputs.push(run.stdout);
    }
    assert!(
        outputs[0] == outputs[1] && outputs[1] == outputs[2],
        "output depends on --jobs"
    );

    let order: Vec<_> = walk_order(&root)
        .into_iter()
        .map(|p| p.strip_prefix(dir.path()).unwrap().to_owned())
        .collect();
    assert!(order.len() > 1000);
    let gnu = gnu_sha256sum(dir.path(), &order);
    assert!(
        gnu.code(0).stdout == outputs[0],
        "differs from sha256sum in walk order"
    );
}

#[test]
fn any_number_of_lanes_gives_sha256sum_digests() {
    // Sizes around the lane threshold (1 KiB), the 64-byte block and the 128 KiB read chunk,
    // mixed so lanes of unequal lengths end at different times, in one directory.
    let dir = temp_dir();
    let root = dir.path().join("tree");
    let sizes = [
        0usize, 1, 63, 64, 65, 1023, 1024, 1025, 4096, 70_000, 131_071, 131_072, 131_073, 131_136,
        262_144, 300_001, 700_000,
    ];
    for (i, size) in sizes.iter().cycle().take(60).enumerate() {
        let name = format!("f{i:02}");
        write_file(&root, name.as_bytes(), &pseudo_random(*size, i as u64));
    }
    let order: Vec<_> = walk_order(&root)
        .into_iter()
        .map(|p| p.strip_prefix(dir.path()).unwrap().to_owned())
        .collect();
    let gnu = gnu_sha256sum(dir.path(), &order);
    let want = gnu.code(0).stdout.clone();
    for jobs in ["1", "2"] {
        for lanes in ["1", "2", "3", "4"] {
            let run = Cmd::sumpool()
                .args(["hash", "-j", jobs, "--lanes", lanes, "tree"])
                .dir(dir.path())
                .run();
            run.code(0).stderr_empty();
            assert!(
                run.stdout == want,
                "-j {jobs} --lanes {lanes} differs from sha256sum"
            );
        }
    }
    std::fs::write(dir.path().join("SUMS"), &want).unwrap();
    for lanes in ["1", "4"] {
        let run = Cmd::sumpool()
            .args(["check", "--quiet", "--lanes", lanes, "SUMS"])
            .dir(dir.path())
            .run();
        run.code(0).stdout_is(b"").stderr_empty();
    }
}

#[test]
fn any_io_setting_gives_sha256sum_digests_with_large_files_anywhere() {
    // Large files (streamed in chunks) first, in the middle and last in walk order, alone and
    // side by side, with sizes around every threshold of the readers: hashed by the reader
    // (under 1 KiB), read whole (up to 1 MiB), streamed in mapped 2 MiB windows.
    let dir = temp_dir();
    let root = dir.path().join("tree");
    let large = [
        (1 << 20) + 1,
        (2 << 20) - 1,
        2 << 20,
        (2 << 20) + 1,
        (5 << 20) + 63,
    ];
    let small = [
        0usize,
        1,
        100,
        1023,
        1024,
        4096,
        65_536,
        (1 << 20) - 1,
        1 << 20,
    ];
    let mut names: Vec<(String, usize)> = Vec::new();
    names.push(("a-first".into(), large[4]));
    for (i, size) in small.iter().cycle().take(40).enumerate() {
        names.push((format!("b/{i:02}"), *size));
    }
    names.push(("c-middle".into(), large[0]));
    names.push(("c-middle2".into(), large[1]));
    for (i, size) in small.iter().cycle().take(40).enumerate() {
        names.push((format!("d/{i:02}"), size + i % 3));
    }
    names.push(("z-last".into(), large[3]));
    names.push(("z-last2".into(), large[2]));
    for (i, (name, size)) in names.iter().enumerate() {
        write_file(
            &root,
            name.as_bytes(),
            &pseudo_random(*size, 500 + i as u64),
        );
    }
    let order: Vec<_> = walk_order(&root)
        .into_iter()
        .map(|p| p.strip_prefix(dir.path()).unwrap().to_owned())
        .collect();
    let want = gnu_sha256sum(dir.path(), &order).code(0).stdout.clone();
    let settings: [&[&str]; 7] = [
        &["-j", "1", "--io-threads", "1"],
        &["-j", "2", "--io-threads", "1", "--lanes", "1"],
        &["-j", "1", "--io-threads", "2", "--lanes", "3"],
        &["-j", "2", "--io-threads", "3"],
        &["-j", "2", "--io-threads", "64"],
        &["-j", "8", "--io-threads", "5", "--window", "3"],
        &[
            "-j",
            "2",
            "--io-threads",
            "16",
            "--batch-size",
            "1",
            "--window",
            "7",
        ],
    ];
    for args in settings {
        let run = Cmd::sumpool()
            .arg("hash")
            .args(args)
            .arg("tree")
            .dir(dir.path())
            .run();
        run.code(0).stderr_empty();
        assert!(run.stdout == want, "{args:?} differs from sha256sum");
    }
}

#[test]
fn files_in_flight_are_finished_before_a_read_that_blocks() {
    // With one worker, four files go in the first batch, and the next three go with standard
    // input into the second: of unequal sizes, they are still in flight when standard input
    // is claimed. Input stays open until the bar has counted those three, so they must be
    // done while sumpool waits on it, not held until it ends.
    let dir = temp_dir();
    for (i, size) in [5000, 5000, 5000, 5000, 100_000, 200_000, 300_000]
        .iter()
        .enumerate()
    {
        write_file(
            dir.path(),
            format!("t/f{i}").as_bytes(),
            &pseudo_random(*size, i as u64),
        );
    }
    let mut child = Command::new(util::sumpool_bin())
        .args(["hash", "-j", "1", "--progress", "t", "-"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match std::io::Read::read(&mut stderr, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    seen.extend_from_slice(&buf[..n]);
                    if String::from_utf8_lossy(&seen).contains("7/8 files") {
                        let _ = tx.send(());
                    }
                }
            }
        }
    });
    let counted = rx.recv_timeout(std::time::Duration::from_secs(20)).is_ok();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
    assert!(counted, "the files before standard input waited for it");
}

#[test]
fn missing_path_is_reported_and_the_rest_is_hashed() {
    let dir = temp_dir();
    write_file(dir.path(), b"good1", b"1");
    write_file(dir.path(), b"good2", b"2");
    let run = Cmd::sumpool()
        .args(["hash", "good1", "missing", "good2"])
        .dir(dir.path())
        .run();
    run.code(1).stdout_is(
        format!("{}  good1\n{}  good2\n", sha256_hex(b"1"), sha256_hex(b"2")).as_bytes(),
    );
    assert_eq!(
        run.stderr_text(),
        "sumpool: missing: No such file or directory\n\
         sumpool: WARNING: 1 of 3 files could not be hashed\n"
    );
}

#[test]
fn error_messages_quote_names_like_sha256sum() {
    let dir = temp_dir();
    let names: [&[u8]; 6] = [b"a b", b"it's", b"nl\nx", b"\xff", b"x:y", b"plain"];
    for name in names {
        let name = std::ffi::OsStr::from_bytes(name);
        let ours = Cmd::sumpool()
            .args(["hash", "--"])
            .arg(name)
            .dir(dir.path())
            .run();
        let gnu = gnu_sha256sum(dir.path(), ["--".as_ref(), name]);
        let gnu_line = String::from_utf8_lossy(&gnu.stderr).replacen("sha256sum:", "sumpool:", 1);
        let ours_first = ours
            .stderr_text()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
            + "\n";
        ours.code(1);
        assert_eq!(ours_first, gnu_line, "{}", ours.describe());
    }
}

#[test]
fn unreadable_file_and_unlistable_directory_are_failures_not_skips() {
    let dir = temp_dir();
    write_file(dir.path(), b"tree/a-ok", b"ok");
    let secret = write_file(dir.path(), b"tree/b-secret", b"secret");
    write_file(dir.path(), b"tree/c-locked/inside", b"inside");
    write_file(dir.path(), b"tree/d-ok", b"ok too");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(
        dir.path().join("tree/c-locked"),
        fs::Permissions::from_mode(0o000),
    )
    .unwrap();

    let run = Cmd::sumpool()
        .args(["hash", "tree"])
        .dir(dir.path())
        .unprivileged()
        .run();
    run.code(1).stdout_is(
        format!(
            "{}  tree/a-ok\n{}  tree/d-ok\n",
            sha256_hex(b"ok"),
            sha256_hex(b"ok too")
        )
        .as_bytes(),
    );
    assert_eq!(
        run.stderr_text(),
        "sumpool: tree/b-secret: Permission denied\n\
         sumpool: tree/c-locked: Permission denied\n\
         sumpool: WARNING: 2 of 4 files could not be hashed\n"
    );
}

#[test]
fn fifo_inside_a_walk_is_skipped_without_hanging() {
    let dir = temp_dir();
    write_file(dir.path(), b"tree/a", b"a");
    let fifo = dir.path().join("tree/fifo");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    write_file(dir.path(), b"tree/z", b"z");
    let run = Cmd::sumpool().args(["hash", "tree"]).dir(dir.path()).run();
    run.code(0).stderr_empty().stdout_is(
        format!(
            "{}  tree/a\n{}  tree/z\n",
            sha256_hex(b"a"),
            sha256_hex(b"z")
        )
        .as_bytes(),
    );
}

#[test]
fn fifo_named_explicitly_is_read() {
    let dir = temp_dir();
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::write(fifo, b"through a pipe"))
    };
    let run = Cmd::sumpool().args(["hash", "fifo"]).dir(dir.path()).run();
    writer.join().unwrap().unwrap();
    run.code(0)
        .stdout_is(format!("{}  fifo\n", sha256_hex(b"through a pipe")).as_bytes());
}

#[test]
fn symlinks_are_skipped_in_walks_followed_with_l_and_loops_reported() {
    let dir = temp_dir();
    write_file(dir.path(), b"tree/file", b"content");
    symlink("file", dir.path().join("tree/link-to-file")).unwrap();
    symlink(".", dir.path().join("tree/loop")).unwrap();
    symlink("nowhere", dir.path().join("tree/dangling")).unwrap();
    let digest = sha256_hex(b"content");

    let plain = Cmd::sumpool().args(["hash", "tree"]).dir(dir.path()).run();
    plain
        .code(0)
        .stderr_empty()
        .stdout_is(format!("{digest}  tree/file\n").as_bytes());

    let follow = Cmd::sumpool()
        .args(["hash", "-L", "tree"])
        .dir(dir.path())
        .run();
    follow
        .code(1)
        .stdout_is(format!("{digest}  tree/file\n{digest}  tree/link-to-file\n").as_bytes());
    follow
        .stderr_has("sumpool: tree/dangling: No such file or directory\n")
        .stderr_has("sumpool: tree/loop: filesystem loop")
        .stderr_has("sumpool: WARNING: 2 of 4 files could not be hashed\n");

    // A symlink named on the command line is followed.
    let named = Cmd::sumpool()
        .args(["hash", "tree/link-to-file"])
        .dir(dir.path())
        .run();
    named
        .code(0)
        .stdout_is(format!("{digest}  tree/link-to-file\n").as_bytes());
}

#[test]
fn stdin_is_hashed_as_dash() {
    let want = format!("{}  -\n", sha256_hex(b"from stdin"));
    Cmd::sumpool()
        .arg("hash")
        .stdin("from stdin")
        .run()
        .code(0)
        .stdout_is(want.as_bytes());
    Cmd::sumpool()
        .args(["hash", "-"])
        .stdin("from stdin")
        .run()
        .code(0)
        .stdout_is(want.as_bytes());
}

#[test]
fn proc_files_with_zero_size_hash_like_sha256sum() {
    let ours = Cmd::sumpool().args(["hash", "/proc/version"]).run();
    let gnu = Cmd::new("sha256sum").arg("/proc/version").run();
    ours.code(0).stdout_is(&gnu.code(0).stdout);
}

#[test]
fn closed_stdout_ends_quietly() {
    let dir = temp_dir();
    for i in 0..3000u32 {
        write_file(
            dir.path(),
            format!("d{}/f{i}", i % 10).as_bytes(),
            &i.to_le_bytes(),
        );
    }
    let mut child = Command::new(util::sumpool_bin())
        .args(["hash", "-j", "2"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one line, like `head -1`, then close the pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 80];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn full_disk_is_a_fatal_error() {
    let dir = temp_dir();
    write_file(dir.path(), b"f", b"data");
    let full = fs::File::create("/dev/full").unwrap();
    let output = Command::new(util::sumpool_bin())
        .args(["hash", "f"])
        .current_dir(dir.path())
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "sumpool: standard output: No space left on device\n"
    );
}

#[test]
fn usage_errors_exit_2() {
    Cmd::sumpool()
        .args(["hash", "--no-such-flag"])
        .run()
        .code(2);
    Cmd::sumpool().args(["hash", "-j", "0"]).run().code(2);
    // Thread counts the system could not give: a usage error, not an abort.
    for flag in ["-j", "--io-threads"] {
        for n in ["0", "1025", "1000000", "x"] {
            Cmd::sumpool()
                .args(["hash", flag, n, "src"])
                .dir(env!("CARGO_MANIFEST_DIR"))
                .run()
                .code(2)
                .stderr_has(flag);
        }
        Cmd::sumpool()
            .args(["hash", flag, "1024", "src"])
            .dir(env!("CARGO_MANIFEST_DIR"))
            .run()
            .code(0);
    }
    Cmd::sumpool().run().code(2);
    let help = Cmd::sumpool().args(["hash", "--help"]).run();
    help.code(0);
    assert!(String::from_utf8_lossy(&help.stdout).contains("Exit status:"));
}

#[test]
fn hashing_a_directory_path_of_a_file_reports_not_a_directory() {
    let dir = temp_dir();
    write_file(dir.path(), b"f", b"x");
    let run = Cmd::sumpool().args(["hash", "f/"]).dir(dir.path()).run();
    let gnu = gnu_sha256sum(dir.path(), ["f/"]);
    run.code(1);
    assert_eq!(
        run.stderr_text().lines().next(),
        String::from_utf8_lossy(&gnu.stderr)
            .replacen("sha256sum", "sumpool", 1)
            .lines()
            .next()
    );
    assert!(Path::new(&dir.path().join("f")).exists());
}
