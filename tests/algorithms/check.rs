//! Every algorithm in `check`, `audit`, `merge` and `--update`: lists checked as `cksum -c`,
//! `md5sum -c` and `b2sum -c` check them, several digests from one read, and the usage errors
//! of options that do not combine. The fixture and the reference digests are `main.rs`'s.

use super::*;

/// `sumpool check OURS ARGS` and `tool -c ARGS` give the same stdout, the same stderr lines
/// (program name aside) and the same status.
#[track_caller]
fn same_as(dir: &Path, tool: &[&str], ours: &[&str], args: &[&str]) {
    let ours = Cmd::sumpool()
        .arg("check")
        .args(ours)
        .args(args)
        .dir(dir)
        .run();
    let gnu = Cmd::new(tool[0])
        .args(&tool[1..])
        .arg("-c")
        .args(args)
        .dir(dir)
        .run();
    assert_eq!(
        ours.code,
        gnu.code,
        "status\n{}\n{}",
        ours.describe(),
        gnu.describe()
    );
    assert_eq!(
        ours.stdout,
        gnu.stdout,
        "stdout\n{}\n{}",
        ours.describe(),
        gnu.describe()
    );
    assert_eq!(
        stderr_lines(&ours, "sumpool"),
        stderr_lines(&gnu, tool[0]),
        "stderr\n{}\n{}",
        ours.describe(),
        gnu.describe()
    );
}

/// One list mixing the tags of every algorithm GNU 9.1 has, with lines that are bad, a file
/// that changed and one that is gone: `check` says what `cksum -c` says, with every output
/// option.
#[test]
fn mixed_algorithms_check_as_cksum_c() {
    let dir = temp_dir();
    let names = fixture(dir.path());
    let d = dir.path();
    let mut list = Vec::new();
    let algorithms: [&[&str]; 7] = [
        &["-a", "md5"],
        &["-a", "sha1"],
        &["-a", "sha256"],
        &["-a", "sha512"],
        &["-a", "blake2b"],
        &["-a", "blake2b", "-l", "256"],
        &["-a", "sha224"],
    ];
    for (i, name) in names.iter().enumerate() {
        let run = Cmd::new("cksum")
            .args(algorithms[i % algorithms.len()])
            .arg(os(name))
            .dir(d)
            .run();
        run.code(0);
        list.extend_from_slice(&run.stdout);
        if i == 3 {
            // A line of no algorithm, a tag with a bad digest, a truncated BLAKE2b length, a
            // SHA-512 tag on a digest of SHA-256's length (improperly formatted, and named
            // SHA512 in the warning), and a well-formed MD5 line of the wrong digest (FAILED:
            // a tag names its algorithm, whatever the lines around it).
            list.extend_from_slice(b"not a checksum line\n");
            list.extend_from_slice(b"MD5 (f00000000) = 0123\n");
            list.extend_from_slice(b"BLAKE2b-7 (f00000000) = ab\n");
            list.extend_from_slice(
                format!("SHA512 (f00000000) = {}\n", "ab".repeat(32)).as_bytes(),
            );
            list.extend_from_slice(format!("MD5 (f00000000) = {}\n", "0".repeat(32)).as_bytes());
        }
    }
    write_file(d, b"MIXED", &list);
    same_as(d, &["cksum"], &[], &["MIXED"]);
    // A changed file and a missing one.
    write_file(d, &names[5], b"changed");
    fs::remove_file(d.join(os(&names[8]))).expect("remove");
    for args in [
        &["MIXED"][..],
        &["--warn", "MIXED"],
        &["--quiet", "MIXED"],
        &["--status", "MIXED"],
        &["--strict", "MIXED"],
        &["--ignore-missing", "MIXED"],
    ] {
        same_as(d, &["cksum"], &[], args);
    }
}

/// Untagged lists of one algorithm, checked with `-a` as `md5sum -c`, `sha1sum -c` and
/// `b2sum -c` (whose lines may have any length) check them, and as `cksum -a ALGO -c`.
#[test]
fn untagged_lists_check_with_a() {
    let dir = temp_dir();
    let names = fixture(dir.path());
    let d = dir.path();
    let cases: [(&str, &[&str], &[&str]); 4] = [
        ("md5", &["md5sum"], &["-a", "md5"]),
        ("sha1", &["sha1sum"], &["-a", "sha1"]),
        ("sha384", &["sha384sum"], &["-a", "sha384"]),
        ("blake2b", &["b2sum"], &["-a", "blake2b"]),
    ];
    for (name, tool, args) in cases {
        let mut list = Vec::new();
        for (i, file) in names.iter().enumerate() {
            // BLAKE2b lines of several lengths in one list: b2sum -c reads each one's.
            let length: &[&str] = if name == "blake2b" && i % 2 == 1 {
                &["-l", "128"]
            } else {
                &[]
            };
            let run = Cmd::new(tool[0]).args(length).arg(os(file)).dir(d).run();
            run.code(0);
            list.extend_from_slice(&run.stdout);
        }
        list.extend_from_slice(b"0123  too-short-for-any-digest\n");
        write_file(d, b"LIST", &list);
        same_as(d, tool, args, &["--warn", "LIST"]);
        let ours = Cmd::sumpool()
            .arg("check")
            .args(args)
            .arg("LIST")
            .dir(d)
            .run();
        let cksum = Cmd::new("cksum")
            .args(args)
            .args(["-c", "LIST"])
            .dir(d)
            .run();
        assert_eq!(
            ours.stdout,
            cksum.stdout,
            "{}\n{}",
            ours.describe(),
            cksum.describe()
        );
        assert_eq!(ours.code, cksum.code);
        // Without -a, an untagged line is SHA-2 told by its length: MD5 and SHA-1 lines are
        // improperly formatted, never checked as something else.
        if name == "md5" || name == "sha1" {
            Cmd::sumpool()
                .args(["check", "LIST"])
                .dir(d)
                .run()
                .code(1)
                .stderr_has("no properly formatted checksum lines found");
        }
    }
}

/// SHA-3, BLAKE3 and base64 lines (which GNU 9.1 cannot check) from the references: tagged
/// lines in one mixed list without `-a`, untagged ones with `-a sha3` (any length), `-a sha3
/// -l 256` (that length only) and `-a blake3`; a changed file FAILS; base64 spelt with spare
/// bits FAILS (GNU compares encodings), never OK.
#[test]
fn sha3_blake3_and_base64_lines_check() {
    let dir = temp_dir();
    let d = dir.path();
    let names = fixture(d);
    let sha3_256 = python_digests(d, "sha3_256", &names);
    let sha3_512 = python_digests(d, "sha3_512", &names);
    let md5 = python_digests(d, "md5", &names);
    let b3 = blake3_digests(d, &names);
    let mut tagged = Vec::new();
    let mut untagged = Vec::new();
    for (i, name) in names.iter().enumerate() {
        tagged.extend(gnu_line(Some("SHA3-256"), &sha3_256[i].0, name));
        tagged.extend(gnu_line(Some("BLAKE3"), &b3[i].1, name));
        tagged.extend(gnu_line(Some("MD5"), &md5[i].1, name));
        let (digest, _) = if i % 2 == 0 {
            &sha3_256[i]
        } else {
            &sha3_512[i]
        };
        untagged.extend(gnu_line(
            None,
            if i % 3 == 0 { &sha3_256[i].1 } else { digest },
            name,
        ));
    }
    write_file(d, b"TAGGED", &tagged);
    write_file(d, b"UNTAGGED", &untagged);
    let all_ok = |run: &Run, lines: usize| {
        run.code(0).stderr_empty();
        let text = String::from_utf8_lossy(&run.stdout).into_owned();
        assert_eq!(text.matches(": OK\n").count(), lines, "{}", run.describe());
    };
    let check = |args: &[&str]| Cmd::sumpool().arg("check").args(args).dir(d).run();
    all_ok(&check(&["TAGGED"]), 3 * names.len());
    all_ok(&check(&["-a", "sha3", "UNTAGGED"]), names.len());
    // With -l, other lengths are improperly formatted (GNU would read each line's length).
    let held = check(&["-a", "sha3", "-l", "256", "--warn", "UNTAGGED"]);
    held.code(0)
        .stderr_has("improperly formatted SHA3 checksum line");
    let b3_list: Vec<u8> = names
        .iter()
        .zip(&b3)
        .flat_map(|(name, (hex, _))| gnu_line(None, hex, name))
        .collect();
    write_file(d, b"B3", &b3_list);
    all_ok(&check(&["-a", "blake3", "B3"]), names.len());
    // Without -a the same 64 hex digits are SHA-256, and do not match.
    check(&["B3"]).code(1).stderr_has("did NOT match");

    // A changed file fails under every algorithm.
    write_file(d, &names[2], b"changed");
    let run = check(&["TAGGED"]);
    run.code(1);
    assert_eq!(
        String::from_utf8_lossy(&run.stdout)
            .matches(": FAILED\n")
            .count(),
        3,
        "{}",
        run.describe()
    );
    // MD5 of "abc" in base64 is kAFQmDzST7DWlj99KOF/cg==; with the spare bits of its last
    // letter set it decodes to the same bytes, and still FAILS.
    write_file(d, b"abc", b"abc");
    write_file(d, b"CANON", b"MD5 (abc) = kAFQmDzST7DWlj99KOF/cg==\n");
    write_file(d, b"SPARE", b"MD5 (abc) = kAFQmDzST7DWlj99KOF/ch==\n");
    check(&["CANON"]).code(0).stdout_is(b"abc: OK\n");
    check(&["SPARE"])
        .code(1)
        .stdout_is(b"abc: FAILED\n")
        .stderr_has("1 computed checksum did NOT match");
}

/// Several algorithms in one read: one tagged line per algorithm, in list order, per file;
/// `cksum -c` and `sumpool check` verify them; `-v` counts each file's bytes once; and a FIFO,
/// which can be read only once, gets every digest of its bytes.
#[test]
fn several_digests_in_one_read() {
    let dir = temp_dir();
    let d = dir.path();
    let names = fixture(d);
    let run = sumpool_hash(
        d,
        &["-a", "sha256,md5", "-a", "blake2b", "-a", "sha1", "-j", "2"],
        &names,
    );
    let md5 = python_digests(d, "md5", &names);
    let sha256 = python_digests(d, "sha256", &names);
    let blake2b = python_digests(d, "blake2b-512", &names);
    let sha1 = python_digests(d, "sha1", &names);
    let want: Vec<u8> = (0..names.len())
        .flat_map(|i| {
            [
                gnu_line(Some("SHA256"), &sha256[i].0, &names[i]),
                gnu_line(Some("MD5"), &md5[i].0, &names[i]),
                gnu_line(Some("BLAKE2b"), &blake2b[i].0, &names[i]),
                gnu_line(Some("SHA1"), &sha1[i].0, &names[i]),
            ]
            .concat()
        })
        .collect();
    run.stdout_is(&want);
    write_file(d, b"MULTI", &run.stdout);
    let gnu = Cmd::new("cksum").args(["-c", "MULTI"]).dir(d).run();
    gnu.code(0);
    Cmd::sumpool()
        .args(["check", "MULTI"])
        .dir(d)
        .run()
        .code(0)
        .stdout_is(&gnu.stdout);

    let total: usize = SIZES.iter().sum();
    let verbose = Cmd::sumpool()
        .args(["hash", "-v", "-a", "sha256,md5,sha3-256,blake3"])
        .args(names.iter().map(|n| os(n)))
        .dir(d)
        .run();
    verbose
        .code(0)
        .stderr_has(&format!("{} files hashed, {total} bytes in", names.len()));
    verbose.stderr_has("sumpool: algorithms: sha256 (");
    verbose.stderr_has("), blake3 (");

    let fifo = d.join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let writer = std::thread::spawn(move || fs::write(&fifo, b"abc").expect("write fifo"));
    Cmd::sumpool()
        .args(["hash", "-a", "md5,sha3-256", "fifo"])
        .dir(d)
        .run()
        .code(0)
        .stdout_is(
            b"MD5 (fifo) = 900150983cd24fb0d6963f7d28e17f72\n\
              SHA3-256 (fifo) = 3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532\n",
        );
    writer.join().expect("writer");
}

/// `audit`, `merge` and `hash --update` under other algorithms than SHA-256.
#[test]
fn audit_merge_and_update_for_every_algorithm() {
    let dir = temp_dir();
    let d = dir.path();
    let names = fixture(&d.join("t"));
    assert!(!names.is_empty());
    for algorithm in [
        &["-a", "md5"][..],
        &["-a", "blake2b", "-l", "256"],
        &["-a", "sha3-384"],
        &["-a", "blake3"],
    ] {
        for extra in [&[][..], &["--tag", "--base64"]] {
            let args = [algorithm, extra].concat();
            let hashed = Cmd::sumpool().arg("hash").args(&args).arg("t").dir(d).run();
            hashed.code(0);
            write_file(d, b"M", &hashed.stdout);
            // Nothing changed: the audit says so.
            Cmd::sumpool()
                .arg("audit")
                .args(algorithm)
                .args(["M", "t"])
                .dir(d)
                .run()
                .code(0)
                .stdout_is(format!("no differences: {} unchanged\n", SIZES.len()).as_bytes());
            // Shards merge into the same bytes.
            let mut parts = Vec::new();
            for k in 1..=3 {
                let part = Cmd::sumpool()
                    .arg("hash")
                    .args(&args)
                    .args(["--shard", &format!("{k}/3"), "t"])
                    .dir(d)
                    .run();
                part.code(0);
                let name = format!("part{k}");
                write_file(d, name.as_bytes(), &part.stdout);
                parts.push(name);
            }
            Cmd::sumpool()
                .arg("merge")
                .args(parts.iter().rev())
                .dir(d)
                .run()
                .code(0)
                .stdout_is(&hashed.stdout);
            // An update keeps the same digest lines (with state lines before them).
            let update = Cmd::sumpool()
                .arg("hash")
                .args(&args)
                .args(["--update", "U", "t"])
                .dir(d)
                .run();
            update.code(0);
            let manifest = fs::read(d.join("U")).expect("manifest");
            let lines: Vec<u8> = manifest
                .split_inclusive(|&b| b == b'\n')
                .filter(|l| !l.starts_with(b"#"))
                .flatten()
                .copied()
                .collect();
            assert_eq!(
                lines,
                hashed.stdout,
                "{}",
                String::from_utf8_lossy(&manifest)
            );
            fs::remove_file(d.join("U")).expect("remove");
        }
        // A change is seen.
        let hashed = Cmd::sumpool()
            .arg("hash")
            .args(algorithm)
            .arg("t")
            .dir(d)
            .run();
        write_file(d, b"M", &hashed.stdout);
        let victim = [b"t/".as_slice(), &names[4]].concat();
        let before = fs::read(d.join(os(&victim))).expect("read");
        write_file(d, &victim, b"changed");
        let audit = Cmd::sumpool()
            .arg("audit")
            .args(algorithm)
            .args(["M", "t"])
            .dir(d)
            .run();
        audit.code(1);
        assert!(
            String::from_utf8_lossy(&audit.stdout).starts_with("changed "),
            "{}",
            audit.describe()
        );
        write_file(d, &victim, &before);
    }
    // A GNU md5sum manifest audits clean.
    let md5 = Cmd::new("sh")
        .args(["-c", "find t -type f -print0 | xargs -0 md5sum"])
        .dir(d)
        .run();
    md5.code(0);
    write_file(d, b"MD5SUMS", &md5.stdout);
    Cmd::sumpool()
        .args(["audit", "-a", "md5", "MD5SUMS", "t"])
        .dir(d)
        .run()
        .code(0);
}

/// Bad combinations are usage errors (status 2), worded as GNU cksum words them.
#[test]
fn bad_combinations_are_usage_errors() {
    let dir = temp_dir();
    write_file(dir.path(), b"f", b"x");
    let cases: [(&[&str], &str); 10] = [
        (
            &["hash", "-a", "md5", "-l", "8", "f"],
            "--length is only supported with --algorithm blake2b, sha2, or sha3",
        ),
        (
            &["hash", "-a", "blake2b", "-l", "7", "f"],
            "invalid length: ‘7’\nlength is not a multiple of 8",
        ),
        (
            &["hash", "-a", "blake2b", "-l", "1024", "f"],
            "maximum digest length for ‘BLAKE2b’ is 512 bits",
        ),
        (
            &["hash", "-a", "sha3", "f"],
            "--algorithm=sha3 requires specifying --length 224, 256, 384, or 512",
        ),
        (
            &["hash", "-a", "sha2", "-l", "100", "f"],
            "digest length for ‘SHA2’ must be 224, 256, 384, or 512",
        ),
        (
            &["hash", "-a", "crc", "f"],
            "invalid argument ‘crc’ for ‘--algorithm’",
        ),
        (
            &["hash", "-a", "sha256,sha256", "f"],
            "--algorithm names sha256 twice",
        ),
        (
            &["hash", "-a", "sha256,md5", "--update", "M", "f"],
            "--update keeps a manifest of one algorithm",
        ),
        (
            &["check", "-l", "256", "f"],
            "--length is only supported with --algorithm blake2b, sha2, or sha3",
        ),
        (
            &["audit", "-a", "sha3", "M"],
            "--algorithm=sha3 requires specifying --length",
        ),
    ];
    for (args, message) in cases {
        Cmd::sumpool()
            .args(args)
            .dir(dir.path())
            .run()
            .code(2)
            .stderr_has(message);
    }
    // -l given twice: the last counts, as in GNU.
    Cmd::sumpool()
        .args(["hash", "-a", "sha3", "-l", "253", "-l", "256", "f"])
        .dir(dir.path())
        .run()
        .code(0);
}

/// The JSON of a run of several algorithms carries every digest, by name, in list order.
#[test]
fn json_of_several_algorithms() {
    let dir = temp_dir();
    write_file(dir.path(), b"abc", b"abc");
    let run = Cmd::sumpool()
        .args(["hash", "--format", "json", "-a", "blake3,md5", "abc"])
        .dir(dir.path())
        .run();
    run.code(0);
    let text = String::from_utf8_lossy(&run.stdout);
    let first = text.lines().next().expect("a line");
    assert!(
        first.contains(
            r#""digests":{"blake3":"6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85","md5":"900150983cd24fb0d6963f7d28e17f72"}"#
        ),
        "{}",
        run.describe()
    );
    let one = Cmd::sumpool()
        .args(["hash", "--format", "json", "-a", "sha3-256", "abc"])
        .dir(dir.path())
        .run();
    let value = &util::json_lines(&one)[0];
    assert_eq!(value["algorithm"], "sha3-256");
    assert_eq!(
        value["digest"],
        "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
    );
}
