//! Everyday use: progress, filters, file lists, atomic manifests, JSON, algorithms,
//! completions and the manual page, driven through the binary.

mod util;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use util::{Cmd, Run, json_lines, sha256_hex, temp_dir, write_file};

/// Names of the lines sumpool printed (plain names only, no escapes expected here).
fn names(run: &Run) -> Vec<String> {
    String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|l| l.get(66..).unwrap_or_default().to_owned())
        .collect()
}

fn tree(root: &Path) {
    for name in [
        "a.txt",
        "b.tmp",
        "keep/c.txt",
        "keep/d.tmp",
        "keep/deeper/e.txt",
        "build/f.o",
        "build/sub/g.o",
        ".git/config",
        "src/.git/ignored",
    ] {
        write_file(root, name.as_bytes(), name.as_bytes());
    }
}

#[test]
fn exclude_matches_relative_paths_and_base_names_and_prunes_directories() {
    let dir = temp_dir();
    tree(&dir.path().join("t"));
    let run = Cmd::sumpool()
        .args([
            "hash",
            "-v",
            "--exclude",
            "*.tmp",
            "--exclude",
            ".git",
            "--exclude",
            "build/*.o",
            "t",
        ])
        .dir(dir.path())
        .run();
    run.code(0);
    assert_eq!(
        names(&run),
        [
            "t/a.txt",
            "t/build/sub/g.o",
            "t/keep/c.txt",
            "t/keep/deeper/e.txt"
        ],
        "{}",
        run.describe()
    );
    // b.tmp, keep/d.tmp, build/f.o, .git (one directory), src/.git (one directory).
    run.stderr_has("0 special files, 5 excluded; 0 failed");

    // `**` crosses directories; a pattern naming a directory prunes all of it.
    let run = Cmd::sumpool()
        .args(["hash", "--exclude", "build", "--exclude", "**/*.txt", "t"])
        .dir(dir.path())
        .run();
    assert_eq!(
        names(&run),
        [
            "t/.git/config",
            "t/b.tmp",
            "t/keep/d.tmp",
            "t/src/.git/ignored"
        ]
    );

    Cmd::sumpool()
        .args(["hash", "--exclude", "[", "t"])
        .dir(dir.path())
        .run()
        .code(2)
        .stderr_has("--exclude");
}

#[test]
fn max_depth_counts_like_find() {
    let dir = temp_dir();
    tree(&dir.path().join("t"));
    let depth1 = Cmd::sumpool()
        .args(["hash", "--max-depth", "1", "t"])
        .dir(dir.path())
        .run();
    assert_eq!(names(&depth1), ["t/a.txt", "t/b.tmp"]);
    let depth2 = Cmd::sumpool()
        .args(["hash", "--max-depth", "2", "t"])
        .dir(dir.path())
        .run();
    let find = Command::new("find")
        .args(["t", "-maxdepth", "2", "-type", "f"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let mut want: Vec<String> = String::from_utf8_lossy(&find.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    want.sort();
    assert_eq!(names(&depth2), want);
    let depth0 = Cmd::sumpool()
        .args(["hash", "--max-depth", "0", "t"])
        .dir(dir.path())
        .run();
    depth0.code(0).stdout_is(b"");
}

#[test]
fn one_file_system_does_not_descend_into_mounts() {
    let dir = temp_dir();
    write_file(dir.path(), b"t/here", b"here");
    fs::create_dir(dir.path().join("t/mnt")).unwrap();
    let bin = util::sumpool_bin();
    // In a private mount namespace, so the mount goes away with the command.
    let script = format!(
        "mount -t tmpfs none t/mnt && echo there > t/mnt/there && {bin} hash t && echo --- && {bin} hash -x t",
        bin = bin.display()
    );
    let unshare: &[&str] = if util::is_root() {
        &["-m"]
    } else {
        &["-r", "-m"]
    };
    let run = Cmd::new("unshare")
        .args(unshare)
        .args(["sh", "-c", &script])
        .dir(dir.path())
        .run();
    run.code(0);
    let text = String::from_utf8_lossy(&run.stdout).into_owned();
    let (all, same_fs) = text.split_once("---\n").expect("two runs");
    assert!(
        all.contains("t/mnt/there") && all.contains("t/here"),
        "{}",
        run.describe()
    );
    assert!(
        !same_fs.contains("t/mnt/there") && same_fs.contains("t/here"),
        "{}",
        run.describe()
    );
}

#[test]
fn files_from_keeps_list_order_walks_directories_and_reads_nul_lists() {
    let dir = temp_dir();
    tree(&dir.path().join("t"));
    write_file(dir.path(), b"with space", b"s");
    fs::write(
        dir.path().join("list"),
        "t/keep/c.txt\nt/build\n\nwith space\nt/a.txt\n",
    )
    .unwrap();
    let run = Cmd::sumpool()
        .args(["hash", "--files-from", "list"])
        .dir(dir.path())
        .run();
    run.code(0);
    assert_eq!(
        names(&run),
        [
            "t/keep/c.txt",
            "t/build/f.o",
            "t/build/sub/g.o",
            "with space",
            "t/a.txt"
        ]
    );

    // NUL-separated, from stdin, as `find -print0` writes it.
    let list = b"t/a.txt\0with space\0t/keep/deeper\0".to_vec();
    let run = Cmd::sumpool()
        .args(["hash", "--files-from", "-", "-0"])
        .stdin(list)
        .dir(dir.path())
        .run();
    assert_eq!(
        names(&run),
        ["t/a.txt", "with space", "t/keep/deeper/e.txt"]
    );

    // PATH arguments come first; a missing listed path is a failure like any other.
    fs::write(dir.path().join("list2"), "missing\n").unwrap();
    let run = Cmd::sumpool()
        .args(["hash", "--files-from", "list2", "t/a.txt"])
        .dir(dir.path())
        .run();
    run.code(1)
        .stderr_has("sumpool: missing: No such file or directory");
    assert_eq!(names(&run), ["t/a.txt"]);

    Cmd::sumpool()
        .args(["hash", "--files-from", "nosuch"])
        .dir(dir.path())
        .run()
        .code(2)
        .stderr_has("sumpool: nosuch: No such file or directory");
}

#[test]
fn output_file_is_atomic_and_never_hashes_itself() {
    let dir = temp_dir();
    tree(&dir.path().join("t"));
    // An old manifest inside the walked tree, as after `sha256sum * > SHA256SUMS`.
    fs::write(dir.path().join("t/SHA256SUMS"), "old\n").unwrap();
    let run = Cmd::sumpool()
        .args(["hash", "-o", "t/SHA256SUMS", "t"])
        .dir(dir.path())
        .run();
    run.code(0).stdout_is(b"").stderr_empty();
    let manifest = fs::read(dir.path().join("t/SHA256SUMS")).unwrap();
    let text = String::from_utf8_lossy(&manifest);
    assert!(
        !text.contains("SHA256SUMS") && !text.contains(".sumpool-"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 9);
    let mode = fs::metadata(dir.path().join("t/SHA256SUMS"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o666 & !current_umask(), "mode {mode:o}");
    // It verifies, and no temporary file was left behind.
    Cmd::new("sha256sum")
        .args(["-c", "--quiet", "t/SHA256SUMS"])
        .dir(dir.path())
        .run()
        .code(0);
    let leftovers: Vec<_> = fs::read_dir(dir.path().join("t"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().as_bytes().starts_with(b".sumpool-"))
        .collect();
    assert!(leftovers.is_empty());

    // Run again over the same tree: the same bytes, so the file is left as it is (its
    // inode and permissions kept). After a change, it is replaced by a new file.
    let target = dir.path().join("t/SHA256SUMS");
    fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).unwrap();
    let ino = fs::metadata(&target).unwrap().ino();
    let again = || {
        Cmd::sumpool()
            .args(["hash", "-o", "t/SHA256SUMS", "t"])
            .dir(dir.path())
            .run()
            .code(0)
            .stderr_empty();
    };
    again();
    assert_eq!(fs::read(&target).unwrap(), manifest);
    assert_eq!(fs::metadata(&target).unwrap().ino(), ino);
    fs::write(dir.path().join("t/a.txt"), "changed\n").unwrap();
    again();
    let changed = fs::read(&target).unwrap();
    assert_ne!(changed, manifest);
    assert_ne!(fs::metadata(&target).unwrap().ino(), ino);
    assert_eq!(
        fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o640
    );
    Cmd::new("sha256sum")
        .args(["-c", "--quiet", "t/SHA256SUMS"])
        .dir(dir.path())
        .run()
        .code(0);

    // A target in a directory that does not exist is fatal, and nothing is written.
    let run = Cmd::sumpool()
        .args(["hash", "-o", "nodir/SUMS", "t"])
        .dir(dir.path())
        .run();
    run.code(2)
        .stderr_has("sumpool: nodir/SUMS: No such file or directory");
}

fn current_umask() -> u32 {
    // SAFETY: umask has no preconditions; the old mask is put back at once.
    unsafe {
        let old = libc::umask(0o022);
        libc::umask(old);
        old
    }
}

#[test]
fn an_interrupted_run_leaves_the_old_manifest_in_place() {
    let dir = temp_dir();
    for i in 0..4000u32 {
        write_file(
            dir.path(),
            format!("t/d{}/f{i}", i % 40).as_bytes(),
            &i.to_le_bytes(),
        );
    }
    fs::write(dir.path().join("SUMS"), "previous manifest\n").unwrap();
    let mut child = Command::new(util::sumpool_bin())
        .args(["hash", "-j", "1", "-o", "SUMS", "t", "/dev/zero"])
        .current_dir(dir.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // /dev/zero never ends: the run is still going when the signal comes.
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGTERM)
    );
    assert_eq!(
        fs::read(dir.path().join("SUMS")).unwrap(),
        b"previous manifest\n"
    );
    let leftovers = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().as_bytes().starts_with(b".sumpool-"))
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn json_lines_for_hash_are_lossless_and_summarised() {
    let dir = temp_dir();
    write_file(dir.path(), b"t/plain", b"plain");
    write_file(dir.path(), b"t/\xff\xfe", b"bytes");
    let run = Cmd::sumpool()
        .args(["hash", "--format", "json", "t", "missing"])
        .dir(dir.path())
        .run();
    run.code(1)
        .stderr_has("sumpool: missing: No such file or directory");
    let objects = json_lines(&run);
    assert_eq!(objects.len(), 4, "{}", run.describe());
    // Walk order: bytes 0x70 ('p') before 0xff.
    assert_eq!(objects[0]["type"], "file");
    assert_eq!(objects[0]["path"]["text"], "t/plain");
    assert_eq!(objects[0]["digest"], sha256_hex(b"plain"));
    assert_eq!(objects[0]["size"], 5);
    assert_eq!(objects[0]["algorithm"], "sha256");
    let encoded = objects[1]["path"]["bytes"].as_str().unwrap();
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
        b"t/\xff\xfe"
    );
    assert_eq!(objects[2]["type"], "failure");
    assert_eq!(objects[2]["kind"], "not_found");
    assert_eq!(objects[2]["message"], "No such file or directory");
    assert_eq!(objects[3]["type"], "summary");
    assert_eq!(objects[3]["files"], 2);
    assert_eq!(objects[3]["failed"], 1);
    assert_eq!(objects[3]["bytes"], 10);
    assert!(objects[3]["seconds"].as_f64().unwrap() >= 0.0);
}

#[test]
fn json_lines_for_check_follow_list_order() {
    let dir = temp_dir();
    write_file(dir.path(), b"good", b"good");
    write_file(dir.path(), b"bad", b"bad");
    let list = format!(
        "{}  good\njunk\n{}  bad\n{}  gone\n",
        sha256_hex(b"good"),
        sha256_hex(b"not bad"),
        sha256_hex(b"x")
    );
    fs::write(dir.path().join("SUMS"), list).unwrap();
    let run = Cmd::sumpool()
        .args(["check", "--format", "json", "SUMS"])
        .dir(dir.path())
        .run();
    run.code(1);
    let objects = json_lines(&run);
    let statuses: Vec<String> = objects
        .iter()
        .map(|o| {
            format!(
                "{}:{}",
                o["type"].as_str().unwrap(),
                o["status"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            "check:OK",
            "bad_line:",
            "check:FAILED",
            "check:unreadable",
            "summary:"
        ],
        "{}",
        run.describe()
    );
    assert_eq!(objects[3]["message"], "No such file or directory");
    assert_eq!(objects[4]["ok"], 1);
    assert_eq!(objects[4]["failed"], 1);
    assert_eq!(objects[4]["unreadable"], 1);
    assert_eq!(objects[4]["improperly_formatted"], 1);
}

#[test]
fn algorithms_are_byte_identical_to_the_gnu_tools() {
    let dir = temp_dir();
    write_file(dir.path(), b"a", b"abc");
    write_file(dir.path(), b"new\nline", &util::pseudo_random(300_000, 4));
    write_file(dir.path(), b"big", &util::pseudo_random(3 << 20, 5));
    let files = ["a", "new\nline", "big"];
    for (algorithm, tool) in [
        ("sha224", "sha224sum"),
        ("sha256", "sha256sum"),
        ("sha384", "sha384sum"),
        ("sha512", "sha512sum"),
    ] {
        for flags in [&[][..], &["--tag"][..], &["-z"][..]] {
            let ours = Cmd::sumpool()
                .args(["hash", "-a", algorithm])
                .args(flags)
                .args(files)
                .dir(dir.path())
                .run();
            let gnu = Cmd::new(tool).args(flags).args(files).dir(dir.path()).run();
            ours.code(0).stdout_is(&gnu.code(0).stdout);
        }
        // What sumpool wrote, the GNU tool verifies, and so does sumpool check.
        let ours = Cmd::sumpool()
            .args(["hash", "-a", algorithm])
            .args(files)
            .dir(dir.path())
            .run();
        fs::write(dir.path().join("SUMS"), &ours.stdout).unwrap();
        Cmd::new(tool)
            .args(["-c", "SUMS"])
            .dir(dir.path())
            .run()
            .code(0);
        Cmd::sumpool()
            .args(["check", "SUMS"])
            .dir(dir.path())
            .run()
            .code(0);
    }
}

#[test]
fn check_takes_the_algorithm_line_by_line() {
    let dir = temp_dir();
    write_file(dir.path(), b"a", b"abc");
    let mut list = Vec::new();
    for (algorithm, tool) in [
        ("sha512", "sha512sum"),
        ("sha224", "sha224sum"),
        ("sha256", "sha256sum"),
        ("sha384", "sha384sum"),
    ] {
        let tagged = Cmd::new(tool).args(["--tag", "a"]).dir(dir.path()).run();
        list.extend_from_slice(&tagged.stdout);
        let plain = Cmd::sumpool()
            .args(["hash", "-a", algorithm, "a"])
            .dir(dir.path())
            .run();
        list.extend_from_slice(&plain.stdout);
    }
    fs::write(dir.path().join("MIXED"), &list).unwrap();
    let run = Cmd::sumpool()
        .args(["check", "MIXED"])
        .dir(dir.path())
        .run();
    run.code(0).stdout_is("a: OK\n".repeat(8).as_bytes());
    // Restricted to one algorithm, the others are improperly formatted, as for sha256sum -c.
    let strict = Cmd::sumpool()
        .args(["check", "-a", "sha256", "MIXED"])
        .dir(dir.path())
        .run();
    let gnu = Cmd::new("sha256sum")
        .args(["-c", "MIXED"])
        .dir(dir.path())
        .run();
    strict.stdout_is(&gnu.stdout);
    assert_eq!(strict.code, gnu.code);
    strict.stderr_has("WARNING: 6 lines are improperly formatted");
}

#[test]
fn verbose_check_summarises() {
    let dir = temp_dir();
    write_file(dir.path(), b"a", b"abc");
    fs::write(
        dir.path().join("SUMS"),
        format!("{}  a\n{}  a\n", sha256_hex(b"abc"), sha256_hex(b"x")),
    )
    .unwrap();
    let run = Cmd::sumpool()
        .args(["check", "-v", "SUMS"])
        .dir(dir.path())
        .run();
    run.code(1)
        .stderr_has("sumpool: 2 files verified, 6 bytes in ")
        .stderr_has("; 1 OK, 1 FAILED, 0 unreadable, 0 missing, 0 improperly formatted lines\n");
}

#[test]
fn progress_is_off_in_pipes_forced_on_stderr_only_and_never_on_stdout() {
    let dir = temp_dir();
    for i in 0..300u32 {
        write_file(
            dir.path(),
            format!("t/f{i:03}").as_bytes(),
            &i.to_le_bytes(),
        );
    }
    let plain = Cmd::sumpool().args(["hash", "t"]).dir(dir.path()).run();
    plain.code(0).stderr_empty();
    let forced = Cmd::sumpool()
        .args(["hash", "--progress", "t"])
        .dir(dir.path())
        .run();
    forced.code(0).stdout_is(&plain.stdout);
    forced.stderr_has("files");
    // The bar is erased at the end: the last thing on stderr is the erase-line sequence.
    assert!(
        forced.stderr.ends_with(b"\r\x1b[2K"),
        "{:?}",
        forced.stderr_text()
    );
    let off = Cmd::sumpool()
        .args(["hash", "--progress", "--no-progress", "t"])
        .dir(dir.path())
        .run();
    off.code(0).stderr_empty();
    fs::write(dir.path().join("SUMS"), &plain.stdout).unwrap();
    let check = Cmd::sumpool()
        .args(["check", "--progress", "--quiet", "SUMS"])
        .dir(dir.path())
        .run();
    check.code(0).stdout_is(b"");
    check.stderr_has("files");
}

#[test]
fn completions_manual_and_help() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let run = Cmd::sumpool().args(["completions", shell]).run();
        run.code(0);
        assert!(
            String::from_utf8_lossy(&run.stdout).contains("sumpool"),
            "{shell}"
        );
        assert!(
            String::from_utf8_lossy(&run.stdout).contains("files-from"),
            "{shell}"
        );
    }
    let man = Cmd::sumpool().arg("man").run();
    man.code(0);
    assert!(String::from_utf8_lossy(&man.stdout).contains(".TH sumpool"));
    let help = Cmd::sumpool().args(["hash", "--help"]).run();
    help.code(0);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("Examples:") && text.contains("Exit status:") && text.contains("--exclude")
    );
    Cmd::sumpool().args(["completions", "tcsh"]).run().code(2);
}

/// `--version` (and `-V`) name the version and the SHA-256 path this CPU takes: the SHA
/// extensions with interleaved lanes where /proc/cpuinfo lists `sha_ni`, else the portable code;
/// then the code of every other algorithm, as /proc/cpuinfo's flags say the crates pick it.
/// Whether /proc/cpuinfo lists `flag` for the CPU.
fn text_has_flag(flag: &str) -> bool {
    fs::read_to_string("/proc/cpuinfo")
        .map(|text| {
            text.lines()
                .filter(|l| l.starts_with("flags"))
                .any(|l| l.split_whitespace().any(|f| f == flag))
        })
        .unwrap_or(false)
}

#[test]
fn version_names_the_sha256_path_of_this_cpu() {
    let cpu_has_sha = fs::read_to_string("/proc/cpuinfo")
        .map(|text| {
            text.lines()
                .filter(|l| l.starts_with("flags"))
                .any(|l| l.split_whitespace().any(|flag| flag == "sha_ni"))
        })
        .unwrap_or(false);
    for flag in ["--version", "-V"] {
        let run = Cmd::sumpool().arg(flag).run();
        run.code(0).stderr_empty();
        let text = String::from_utf8_lossy(&run.stdout).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.first().copied(),
            Some(concat!("sumpool ", env!("CARGO_PKG_VERSION"))),
            "{text}"
        );
        let sha = lines.get(1).copied().unwrap_or_default();
        if cpu_has_sha && cfg!(target_arch = "x86_64") {
            assert!(
                sha.starts_with("SHA-256: SHA extensions, 4 files"),
                "{text}"
            );
        } else {
            assert!(sha.starts_with("SHA-256: portable"), "{text}");
        }
        let flag_of = |name: &str| text_has_flag(name);
        let sha512 = if flag_of("avx2") { "AVX2" } else { "portable" };
        let blake3 = if flag_of("avx512f") && flag_of("avx512vl") {
            "AVX-512"
        } else if flag_of("avx2") {
            "AVX2"
        } else {
            "SSE4.1"
        };
        if cfg!(target_arch = "x86_64") {
            let sha = if cpu_has_sha {
                "SHA extensions"
            } else {
                "portable"
            };
            let want = [
                format!("SHA-224: {sha}"),
                format!("SHA-384, SHA-512: {sha512}"),
                format!("SHA-1: {sha}"),
                "MD5: portable".to_owned(),
                "SHA-3: portable".to_owned(),
                "BLAKE2b: portable".to_owned(),
                format!("BLAKE3: {blake3}"),
            ];
            assert_eq!(lines[2..lines.len() - 1], want, "{text}");
        }
        let build = lines.last().copied().unwrap_or_default();
        assert!(build.starts_with("build: x86_64-linux, ") || !cfg!(target_arch = "x86_64"));
        // The test build is the dynamic one.
        assert!(build.ends_with("dynamically linked"), "{text}");
    }
}
