//! `sumpool hash --update`: incremental manifests that plain `sha256sum -c` still reads, and
//! silent corruption told apart from edits (with `audit` too).
//!
//! Files must be older than the racy margin (2 s) to be trusted, so tests that need trusted
//! records wait that long after writing the tree ([`settle`]).

mod util;

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use xxhash_rust::xxh3::xxh3_64;

use util::{Cmd, Run, json_lines, pseudo_random, sha256_hex, temp_dir, write_file};

/// Waits until files written now are safely older than the racy margin.
fn settle() {
    std::thread::sleep(Duration::from_millis(2600));
}

/// A tree of `n` files of assorted sizes (around the lane and map thresholds) under `data/`,
/// plus awkward names.
fn tree(root: &Path, n: usize) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for i in 0..n {
        let size = [0, 1, 100, 5000, 70_000, 300_000][i % 6];
        let name = format!("data/d{}/file-{i:04}.bin", i % 3);
        files.push(write_file(
            root,
            name.as_bytes(),
            &pseudo_random(size, i as u64),
        ));
    }
    files.push(write_file(root, b"data/back\\slash\nnewline", b"awkward"));
    files.push(write_file(root, b"data/\xff-not-utf8", b"bytes"));
    files
}

/// The JSON status of each file of an update run, by path.
fn statuses(run: &Run) -> BTreeMap<String, String> {
    json_lines(run)
        .iter()
        .filter(|o| o["type"] == "file")
        .map(|o| {
            let path = match o["path"]["text"].as_str() {
                Some(text) => text.to_string(),
                None => format!("bytes:{}", o["path"]["bytes"].as_str().unwrap_or("")),
            };
            (path, o["status"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

fn update(dir: &Path, args: &[&str]) -> Run {
    Cmd::sumpool()
        .args(["hash", "--update", "M", "--format", "json"])
        .args(args)
        .dir(dir)
        .run()
}

/// The lines of a manifest that are not comments (state lines are comments).
fn digest_lines(manifest: &[u8], end: u8) -> Vec<u8> {
    manifest
        .split_inclusive(|&b| b == end)
        .filter(|line| !line.starts_with(b"#"))
        .flatten()
        .copied()
        .collect()
}

/// Watches directories for opens of the files in them (inotify), to prove that an update of
/// an unchanged tree reads nothing.
struct OpenWatch {
    fd: i32,
    dirs: BTreeMap<i32, PathBuf>,
}

impl OpenWatch {
    fn new(dirs: &[PathBuf]) -> OpenWatch {
        // SAFETY: plain system calls on a descriptor this value owns.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(fd >= 0, "inotify_init1");
        let mut watch = OpenWatch {
            fd,
            dirs: BTreeMap::new(),
        };
        for dir in dirs {
            let path = CString::new(dir.as_os_str().as_bytes()).unwrap();
            // SAFETY: `path` is a valid C string; `fd` is an inotify descriptor.
            let wd = unsafe { libc::inotify_add_watch(fd, path.as_ptr(), libc::IN_OPEN) };
            assert!(wd >= 0, "inotify_add_watch {dir:?}");
            watch.dirs.insert(wd, dir.clone());
        }
        watch
    }

    /// The files (not directories) opened since the watch began.
    fn opened(&self) -> Vec<PathBuf> {
        let mut opened = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            // SAFETY: reading into a buffer of the given length.
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return opened;
            }
            let mut at = 0;
            while at < n as usize {
                // SAFETY: the kernel writes whole `inotify_event`s followed by their names.
                let event = unsafe { &*(buf.as_ptr().add(at) as *const libc::inotify_event) };
                let name_len = event.len as usize;
                let start = at + std::mem::size_of::<libc::inotify_event>();
                let name = &buf[start..start + name_len];
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
                if event.mask & libc::IN_ISDIR == 0 && !name.is_empty() {
                    opened.push(self.dirs[&event.wd].join(OsStr::from_bytes(name)));
                }
                at = start + name_len;
            }
        }
    }
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        // SAFETY: closing the descriptor this value owns.
        unsafe { libc::close(self.fd) };
    }
}

#[test]
fn an_unchanged_tree_is_updated_without_opening_its_files() {
    let dir = temp_dir();
    let files = tree(dir.path(), 30);
    settle();
    let first = update(dir.path(), &["data"]);
    first.code(0);
    assert!(
        statuses(&first).values().all(|s| s == "new"),
        "{}",
        first.describe()
    );
    let before = fs::read(dir.path().join("M")).unwrap();
    let before_meta = fs::metadata(dir.path().join("M")).unwrap();

    let mut dirs: Vec<PathBuf> = files
        .iter()
        .map(|f| f.parent().unwrap().to_path_buf())
        .collect();
    dirs.sort();
    dirs.dedup();
    let watch = OpenWatch::new(&dirs);
    let second = update(dir.path(), &["data", "-j", "2"]);
    second.code(0).stderr_empty();
    assert_eq!(
        watch.opened(),
        Vec::<PathBuf>::new(),
        "{}",
        second.describe()
    );
    let all = statuses(&second);
    assert_eq!(all.len(), files.len());
    assert!(all.values().all(|s| s == "reused"), "{}", second.describe());
    // Nothing changed, so nothing in the manifest changed either: the file is left as it
    // was (same inode, same modification time), and no temporary file is left beside it.
    assert_eq!(fs::read(dir.path().join("M")).unwrap(), before);
    let after_meta = fs::metadata(dir.path().join("M")).unwrap();
    assert_eq!(after_meta.ino(), before_meta.ino());
    assert_eq!(
        after_meta.modified().unwrap(),
        before_meta.modified().unwrap()
    );
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| name.as_bytes().starts_with(b".sumpool-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The watch does see a run that reads: plain `hash` opens every file.
    let watch = OpenWatch::new(&dirs);
    Cmd::sumpool()
        .args(["hash", "data"])
        .dir(dir.path())
        .run()
        .code(0);
    assert_eq!(watch.opened().len(), files.len());
}

#[test]
fn appended_rewritten_and_new_files_are_read_and_gone_ones_dropped() {
    let dir = temp_dir();
    let d = dir.path();
    tree(d, 12);
    settle();
    update(d, &["data"]).code(0);

    // Appended: size and times move.
    let appended = d.join("data/d0/file-0006.bin");
    let mut data = fs::read(&appended).unwrap();
    data.extend_from_slice(b"more");
    fs::write(&appended, &data).unwrap();
    // Same size, same mtime (put back with touch -d): only the ctime tells.
    let rewritten = d.join("data/d1/file-0004.bin");
    let old = fs::read(&rewritten).unwrap();
    let mtime = Cmd::new("stat")
        .args(["-c", "%y"])
        .arg(&rewritten)
        .run()
        .stdout;
    let mtime = String::from_utf8(mtime).unwrap();
    let mut same_size = old.clone();
    same_size[0] ^= 0xff;
    fs::write(&rewritten, &same_size).unwrap();
    Cmd::new("touch")
        .args(["-d", mtime.trim()])
        .arg(&rewritten)
        .run()
        .code(0);
    fs::remove_file(d.join("data/d2/file-0005.bin")).unwrap();
    write_file(d, b"data/d2/added", b"added");

    let run = update(d, &["data"]);
    run.code(0).stderr_empty();
    let all = statuses(&run);
    assert_eq!(all["data/d0/file-0006.bin"], "modified");
    assert_eq!(all["data/d1/file-0004.bin"], "modified");
    assert_eq!(all["data/d2/added"], "new");
    assert!(!all.contains_key("data/d2/file-0005.bin"));
    assert_eq!(
        all.values().filter(|s| *s == "reused").count(),
        all.len() - 3
    );
    // The new digests are the files' own.
    let manifest = String::from_utf8_lossy(&fs::read(d.join("M")).unwrap()).into_owned();
    assert!(manifest.contains(&format!("{}  data/d0/file-0006.bin\n", sha256_hex(&data))));
    assert!(manifest.contains(&format!(
        "{}  data/d1/file-0004.bin\n",
        sha256_hex(&same_size)
    )));
    let summary = json_lines(&run).pop().unwrap();
    assert_eq!(
        (
            summary["modified"].as_u64(),
            summary["new"].as_u64(),
            summary["dropped"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
}

#[test]
fn a_file_written_just_before_the_scan_is_read_again_next_time() {
    let dir = temp_dir();
    let d = dir.path();
    tree(d, 6);
    settle();
    write_file(d, b"data/fresh", b"written a moment ago");
    let first = update(d, &["data"]);
    first.code(0);
    let manifest = String::from_utf8_lossy(&fs::read(d.join("M")).unwrap()).into_owned();
    let record = manifest
        .lines()
        .zip(manifest.lines().skip(1))
        .find(|(_, next)| next.ends_with("data/fresh"))
        .map(|(state, _)| state.to_string())
        .unwrap();
    assert!(record.contains(" trust=racy "), "{record}");
    let second = update(d, &["data"]);
    second.code(0);
    let all = statuses(&second);
    assert_eq!(all["data/fresh"], "racy");
    assert_eq!(
        all.values().filter(|s| *s == "reused").count(),
        all.len() - 1
    );
}

#[test]
fn a_sorted_or_hand_edited_manifest_never_skips_a_file() {
    let dir = temp_dir();
    let d = dir.path();
    let files = tree(d, 9);
    settle();
    update(d, &["data"]).code(0);
    let manifest = fs::read(d.join("M")).unwrap();
    let lines: Vec<&[u8]> = manifest.split_inclusive(|&b| b == b'\n').collect();

    // Sorted: every state line moves away from its digest line.
    let mut sorted = lines.clone();
    sorted.sort();
    // Edited by hand: the first digest line deleted and added back at the end, so that every
    // state line now precedes the line of the next file; and a comment inserted.
    let (states, digests): (Vec<&[u8]>, Vec<&[u8]>) =
        lines.iter().partition(|l| l.starts_with(b"#"));
    assert_eq!(states.len(), digests.len());
    let mut shifted = Vec::new();
    for (i, state) in states.iter().enumerate() {
        shifted.extend_from_slice(state);
        if i == 2 {
            shifted.extend_from_slice(b"# checked by hand\n");
        }
        shifted.extend_from_slice(digests[(i + 1) % digests.len()]);
    }
    for edited in [sorted.concat(), shifted] {
        fs::write(d.join("M"), &edited).unwrap();
        let mut dirs: Vec<PathBuf> = files.iter().map(|f| f.parent().unwrap().into()).collect();
        dirs.dedup();
        let watch = OpenWatch::new(&dirs);
        let run = update(d, &["data"]);
        run.code(0);
        let all = statuses(&run);
        assert!(
            all.values().all(|s| s != "reused"),
            "a detached record skipped a file\n{}",
            run.describe()
        );
        assert_eq!(watch.opened().len(), files.len());
    }
}

#[test]
fn a_plain_manifest_is_a_valid_start() {
    let dir = temp_dir();
    let d = dir.path();
    tree(d, 8);
    settle();
    let plain = Cmd::sumpool().args(["hash", "data"]).dir(d).run();
    fs::write(d.join("M"), &plain.stdout).unwrap();
    let first = update(d, &["data"]);
    first.code(0);
    assert!(statuses(&first).values().all(|s| s == "without_state"));
    let second = update(d, &["data"]);
    assert!(statuses(&second).values().all(|s| s == "reused"));
}

#[test]
fn digest_lines_are_byte_identical_to_hash_o_and_sha256sum_accepts_the_manifest() {
    let dir = temp_dir();
    let d = dir.path();
    tree(d, 18);
    let cases: [(&[&str], &str); 4] = [
        (&[], "sha256sum"),
        (&["--tag"], "sha256sum"),
        (&["-a", "sha512"], "sha512sum"),
        (&["-a", "sha224", "--tag"], "sha224sum"),
    ];
    for (flags, gnu) in cases {
        let _ = fs::remove_file(d.join("M"));
        for round in 0..2 {
            let run = Cmd::sumpool()
                .args(["hash", "--update", "M"])
                .args(flags)
                .arg("data")
                .dir(d)
                .run();
            run.code(0).stdout_is(b"").stderr_empty();
            let manifest = fs::read(d.join("M")).unwrap();
            let plain = Cmd::sumpool()
                .args(["hash", "-o", "P"])
                .args(flags)
                .arg("data")
                .dir(d)
                .run();
            plain.code(0);
            assert_eq!(
                digest_lines(&manifest, b'\n'),
                fs::read(d.join("P")).unwrap(),
                "{flags:?} round {round}"
            );
            let check = Cmd::new(gnu)
                .args(["-c", "--strict", "-w", "M"])
                .dir(d)
                .run();
            check.code(0).stderr_empty();
            Cmd::sumpool()
                .args(["check", "--strict", "-w", "M"])
                .dir(d)
                .run()
                .code(0)
                .stderr_empty();
        }
    }
    // NUL-terminated manifests too.
    let run = Cmd::sumpool()
        .args(["hash", "-z", "--update", "Z", "data"])
        .dir(d)
        .run();
    run.code(0);
    let plain = Cmd::sumpool().args(["hash", "-z", "data"]).dir(d).run();
    assert_eq!(
        digest_lines(&fs::read(d.join("Z")).unwrap(), 0),
        plain.stdout
    );
    Cmd::sumpool()
        .args(["check", "-z", "--strict", "-w", "Z"])
        .dir(d)
        .run()
        .code(0)
        .stderr_empty();
}

/// Replaces the digest on `name`'s line of an updated manifest by `digest`, and binds its
/// state line to the edited line again, as the state-line format documents: as if the bytes
/// of the file had rotted while nothing else about it changed.
fn forge_digest(manifest: &Path, name: &str, digest: &str) {
    let text = fs::read(manifest).unwrap();
    let mut lines: Vec<Vec<u8>> = text.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    let at = lines
        .iter()
        .position(|l| l.ends_with(format!("  {name}").as_bytes()))
        .unwrap();
    lines[at] = format!("{digest}  {name}").into_bytes();
    let state = String::from_utf8(lines[at - 1].clone()).unwrap();
    let (signed, _) = state.split_once(" check=").unwrap();
    let check = xxh3_64(format!("{signed}\n{digest}  {name}").as_bytes());
    lines[at - 1] = format!("{signed} check={check:016x}").into_bytes();
    fs::write(manifest, lines.join(&b'\n')).unwrap();
}

#[test]
fn a_digest_that_changed_under_an_unchanged_stat_is_corrupt() {
    let dir = temp_dir();
    let d = dir.path();
    tree(d, 6);
    settle();
    update(d, &["data"]).code(0);
    let victim = "data/d1/file-0004.bin";
    let good = sha256_hex(&fs::read(d.join(victim)).unwrap());
    let recorded = sha256_hex(b"the bytes as they were");
    forge_digest(&d.join("M"), victim, &recorded);
    fs::copy(d.join("M"), d.join("A")).unwrap();
    let edited = "data/d0/file-0003.bin";
    fs::write(d.join(edited), "edited").unwrap();

    // audit tells the two apart, corrupt first, and exits 3.
    let audit = Cmd::sumpool().args(["audit", "A", "data"]).dir(d).run();
    audit.code(3);
    let text = String::from_utf8_lossy(&audit.stdout).into_owned();
    let first_lines: Vec<&str> = text.lines().take(2).collect();
    assert_eq!(
        first_lines,
        [&format!("corrupt  {victim}"), &format!("modified {edited}")]
    );
    assert!(
        text.contains("1 corrupt, 1 modified"),
        "{}",
        audit.describe()
    );
    let json = Cmd::sumpool()
        .args(["audit", "--format", "json", "A", "data"])
        .dir(d)
        .run();
    json.code(3);
    let objects = json_lines(&json);
    assert_eq!(objects[0]["type"], "corrupt");
    assert_eq!(objects[0]["listed"], recorded);
    assert_eq!(objects[0]["found"], good);
    assert_eq!(objects[1]["type"], "modified");

    // Without a scrub, an unchanged stat is trusted: the file is not read.
    let trusting = update(d, &["data"]);
    trusting.code(0);
    assert_eq!(statuses(&trusting)[victim], "reused");
    // The scrub reads it: --update keeps the recorded digest, says so on stderr, exits 3;
    // and reads the file again next time, scrub or not, still corrupt.
    for scrub in ["100", "0"] {
        let run = update(d, &["data", "--scrub", scrub]);
        run.code(3)
            .stderr_has(&format!("sumpool: {victim}: corrupt: "));
        assert_eq!(statuses(&run)[victim], "corrupt");
        let manifest = String::from_utf8_lossy(&fs::read(d.join("M")).unwrap()).into_owned();
        assert!(manifest.contains(&format!("{recorded}  {victim}\n")));
        assert!(!manifest.contains(&good));
    }
    // A failure elsewhere does not hide it: 3 wins over 1.
    let both = update(d, &["data", "no-such-file"]);
    both.code(3)
        .stderr_has("sumpool: no-such-file: No such file or directory");
}

#[test]
fn a_tenth_a_run_reads_the_whole_tree_in_ten_runs_and_catches_corruption() {
    let dir = temp_dir();
    let d = dir.path();
    let files = tree(d, 28);
    settle();
    update(d, &["data"]).code(0);
    // A file rots somewhere in the tree: some run of the scrub must find it.
    let rotten = "data/d2/file-0011.bin";
    forge_digest(&d.join("M"), rotten, &"0".repeat(64));
    let mut read = BTreeMap::new();
    let mut found_in = None;
    for run_no in 0..10 {
        let run = update(d, &["data", "--scrub", "10"]);
        let all = statuses(&run);
        // 10% of the 29 or 30 files that could be skipped: 3 a run (a file found corrupt is
        // read every run after that, outside the scrub).
        let scrubbed = all.values().filter(|s| *s == "scrubbed").count();
        let corrupt = all.values().filter(|s| *s == "corrupt").count();
        assert_eq!(
            scrubbed + corrupt - usize::from(found_in.is_some()),
            3,
            "{}",
            run.describe()
        );
        for (name, status) in &all {
            if status != "reused" {
                *read.entry(name.clone()).or_insert(0) += 1;
            }
        }
        if corrupt > 0 {
            run.code(3);
            assert_eq!(all[rotten], "corrupt");
            found_in.get_or_insert(run_no);
        } else {
            run.code(0);
        }
    }
    assert_eq!(read.len(), files.len(), "{read:?}");
    assert!(
        found_in.is_some(),
        "the scrub never reached the corrupt file"
    );
}

#[test]
fn check_audit_and_merge_take_manifests_with_state() {
    let dir = temp_dir();
    let d = dir.path();
    tree(d, 10);
    settle();
    update(d, &["data"]).code(0);
    Cmd::sumpool()
        .args(["audit", "M", "data"])
        .dir(d)
        .run()
        .code(0)
        .stdout_is(b"no differences: 12 unchanged\n");
    // Shards updated one by one merge into one manifest with every state line, which an
    // update of the whole tree then reuses entirely.
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let part = format!("part{k}");
        Cmd::sumpool()
            .args(["hash", "--shard", &shard, "--update", &part, "data"])
            .dir(d)
            .run()
            .code(0);
    }
    let merged = Cmd::sumpool()
        .args(["merge", "part3", "part1", "part2"])
        .dir(d)
        .run();
    merged.code(0);
    fs::write(d.join("M"), &merged.stdout).unwrap();
    let plain = Cmd::sumpool().args(["hash", "data"]).dir(d).run();
    assert_eq!(digest_lines(&merged.stdout, b'\n'), plain.stdout);
    let run = update(d, &["data"]);
    assert!(
        statuses(&run).values().all(|s| s == "reused"),
        "{}",
        run.describe()
    );
}

#[test]
fn a_file_that_changes_while_being_read_gets_no_new_digest() {
    let dir = temp_dir();
    let d = dir.path();
    let file = write_file(d, b"data/growing", &pseudo_random(4 << 20, 1));
    write_file(d, b"data/steady", b"steady");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, file) = (stop.clone(), file.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut f = fs::OpenOptions::new().append(true).open(&file).unwrap();
                std::io::Write::write_all(&mut f, &n.to_le_bytes()).unwrap();
                n += 1;
            }
        })
    };
    // The lines of data/growing (its state line and its digest line) in a manifest.
    let growing = |manifest: &str| -> Vec<String> {
        let lines: Vec<&str> = manifest.lines().collect();
        (0..lines.len())
            .filter(|&i| lines[i].ends_with("  data/growing"))
            .flat_map(|i| lines[i.saturating_sub(1)..=i].iter().map(|l| l.to_string()))
            .collect()
    };
    let mut changed = 0;
    for _ in 0..20 {
        let before = fs::read_to_string(d.join("M")).unwrap_or_default();
        let run = Cmd::sumpool()
            .args(["hash", "--update", "M", "data"])
            .dir(d)
            .run();
        let manifest = fs::read_to_string(d.join("M")).unwrap_or_default();
        if run.code == Some(1) {
            run.stderr_has("sumpool: data/growing: file changed while being read\n");
            // No digest of bytes in flux: the line it had (if any) is kept as it was, since
            // an update never drops what it could not look at.
            assert_eq!(growing(&manifest), growing(&before), "{}", run.describe());
            assert!(manifest.contains("  data/steady\n"));
            changed += 1;
        } else {
            run.code(0);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert!(
        changed > 0,
        "no run overlapped a write: the test proved nothing"
    );
}

#[test]
fn usage_errors() {
    let dir = temp_dir();
    let d = dir.path();
    for args in [
        &["hash", "--scrub", "10", "."][..],
        &["hash", "--update", "M", "--scrub", "101", "."],
        &["hash", "--update", "M", "--scrub", "x", "."],
        &["hash", "--update", "M", "-o", "N", "."],
    ] {
        Cmd::sumpool().args(args).dir(d).run().code(2);
    }
    // A manifest that exists but cannot be read is fatal: it is not replaced.
    fs::create_dir(d.join("M")).unwrap();
    let run = Cmd::sumpool()
        .args(["hash", "--update", "M", "."])
        .dir(d)
        .run();
    run.code(2).stderr_has("sumpool: M: ");
}

#[test]
fn a_million_line_manifest_with_state_fits_in_bounded_memory() {
    let dir = temp_dir();
    let d = dir.path();
    write_file(d, b"tree/one", b"1");
    // One million stated lines of 44-byte names; only one file exists, the rest drop out.
    let mut manifest = Vec::with_capacity(260 << 20);
    for i in 0..1_000_000u32 {
        let line = format!(
            "{}  tree/dir{:04}/some-file-name-{i:09}.bin",
            sha256_hex(&i.to_le_bytes()),
            i % 1000
        );
        let signed = format!(
            "#sumpool-state v1 size={i} mtime=1700000000.000000001 ctime=1700000000.000000001 ino={i} verified=1700000000.000000000 trust=ok"
        );
        let check = xxh3_64(format!("{signed}\n{line}").as_bytes());
        manifest.extend_from_slice(format!("{signed} check={check:016x}\n{line}\n").as_bytes());
    }
    fs::write(d.join("M"), &manifest).unwrap();
    drop(manifest);
    let limited = |args: &[&str]| {
        Cmd::new("prlimit")
            .arg(format!("--data={}", 200 << 20))
            .arg("--")
            .arg(util::sumpool_bin())
            .args(args)
            .dir(d)
            .run()
    };
    let audit = limited(&["audit", "--format", "json", "M", "tree"]);
    audit.code(1);
    let summary = json_lines(&audit).pop().unwrap();
    assert_eq!(summary["missing"], 1_000_000);
    let run = limited(&["hash", "--update", "M", "--format", "json", "tree"]);
    run.code(0);
    let summary = json_lines(&run).pop().unwrap();
    assert_eq!(
        (summary["new"].as_u64(), summary["dropped"].as_u64()),
        (Some(1), Some(1_000_000))
    );
}
