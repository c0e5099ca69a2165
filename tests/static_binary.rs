//! The static binary of `dist/build-static.sh` runs where no shared library exists: in an
//! empty root holding nothing but what the Containerfile puts in the image (the binary) and a
//! data directory. There it must hash, and check, with output identical to the dynamic
//! build's.
//!
//! The empty root is built from the Containerfile itself: it must start `FROM scratch`, and
//! every `COPY SRC DEST` is carried out, so the root holds exactly what the image would.
//! Running it needs `chroot` (root, or `unshare -r` where user namespaces are allowed) and the
//! static binary (`SUMPOOL_STATIC_BIN`, or the path the build script writes). CI builds it
//! and sets SUMPOOL_REQUIRE_STATIC=1, so there the test fails rather than skips.

mod util;

use std::fs;
use std::path::{Path, PathBuf};

use util::{Cmd, is_root, pseudo_random, sha256_hex, temp_dir, write_file};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The Containerfile's COPY instructions, after checking that the image starts from nothing
/// and runs the copied binary.
fn image_files() -> Vec<(PathBuf, PathBuf)> {
    let text = fs::read_to_string(Path::new(REPO).join("Containerfile")).unwrap();
    let instructions: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(instructions.first(), Some(&"FROM scratch"), "{text}");
    let mut copies = Vec::new();
    for line in &instructions[1..] {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["COPY", src, dest] => copies.push((Path::new(REPO).join(src), PathBuf::from(dest))),
            ["ENTRYPOINT", ..] => assert_eq!(*line, r#"ENTRYPOINT ["/sumpool"]"#),
            _ => panic!("an instruction this test does not reproduce: {line}"),
        }
    }
    assert_eq!(
        copies.len(),
        1,
        "the image holds the binary and nothing else"
    );
    assert_eq!(copies[0].1, Path::new("/sumpool"));
    copies
}

/// Why the test cannot run here, if it cannot.
fn cannot_run(binary: &Path) -> Option<String> {
    if !binary.exists() {
        return Some(format!(
            "{} does not exist (run dist/build-static.sh)",
            binary.display()
        ));
    }
    let probe = chroot_cmd(Path::new("/"), &["true"]).run();
    if probe.code != Some(0) {
        return Some(format!("chroot does not work here: {}", probe.describe()));
    }
    None
}

/// `chroot ROOT ARGS...`, through a user namespace when not root.
fn chroot_cmd(root: &Path, args: &[&str]) -> Cmd {
    let cmd = if is_root() {
        Cmd::new("chroot")
    } else {
        Cmd::new("unshare").args(["-r", "chroot"])
    };
    cmd.arg(root).args(args)
}

/// The program headers of an ELF64 little-endian file: whether one is PT_INTERP (a request
/// for a dynamic loader).
fn asks_for_loader(elf: &[u8]) -> bool {
    assert!(elf.len() > 64 && &elf[..4] == b"\x7fELF" && elf[4] == 2 && elf[5] == 1);
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).any(|i| {
        let at = phoff + i * size;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == 3
    })
}

/// A data tree with the names that need escaping, empty files and sizes around the block.
fn data_tree(root: &Path) {
    let names: &[&[u8]] = &[
        b"a/x",
        b"a/y/z",
        b"with space",
        b"new\nline",
        b"back\\slash",
        b"cr\rx",
        b"\xff\xfe",
        b"empty",
    ];
    for (i, name) in names.iter().enumerate() {
        let len = if *name == b"empty" { 0 } else { 100 + i * 4099 };
        write_file(root, name, &pseudo_random(len, i as u64));
    }
    write_file(root, b"big/one", &pseudo_random(3 << 20, 99));
}

#[test]
fn static_binary_runs_alone_in_an_empty_root_with_the_dynamic_builds_output() {
    let binary = std::env::var_os("SUMPOOL_STATIC_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(REPO).join("target/x86_64-unknown-linux-gnu/dist/sumpool"));
    let files = image_files();
    if let Some(why) = cannot_run(&binary) {
        assert!(
            std::env::var_os("SUMPOOL_REQUIRE_STATIC").is_none(),
            "SUMPOOL_REQUIRE_STATIC is set, but the test cannot run: {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    assert!(
        !asks_for_loader(&fs::read(&binary).unwrap()),
        "{} is dynamically linked",
        binary.display()
    );

    // The image's files, from the Containerfile, with the binary under test as its one COPY.
    let dir = temp_dir();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    for (_, dest) in &files {
        let into = root.join(dest.strip_prefix("/").unwrap());
        fs::copy(&binary, &into).unwrap();
    }
    data_tree(&root.join("data"));
    let mut held: Vec<String> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    held.sort();
    assert_eq!(held, ["data", "sumpool"], "the root holds no library");

    let version = chroot_cmd(&root, &["/sumpool", "--version"]).run();
    version.code(0);
    let text = String::from_utf8_lossy(&version.stdout);
    assert!(text.contains("statically linked"), "{text}");

    // chroot starts in /, so `data` names the same tree as in the dynamic build's run in ROOT.
    let runs: &[&[&str]] = &[
        &["hash", "data"],
        &["hash", "--tag", "-a", "sha512", "data"],
        &["hash", "-z", "-j", "1", "data/a", "data/big"],
        &["hash", "--format", "json", "data/big"],
    ];
    for args in runs {
        let mut inside = vec!["/sumpool"];
        inside.extend_from_slice(args);
        let alone = chroot_cmd(&root, &inside).run();
        alone.code(0).stderr_empty();
        let dynamic = Cmd::sumpool().args(*args).dir(&root).run();
        dynamic.code(0);
        let (a, d) = (alone.stdout.clone(), dynamic.stdout.clone());
        if args.contains(&"json") {
            // The JSON summary carries the elapsed time; compare the file records.
            let records = |out: &[u8]| -> Vec<String> {
                String::from_utf8_lossy(out)
                    .lines()
                    .filter(|l| l.contains(r#""type":"file""#))
                    .map(str::to_owned)
                    .collect()
            };
            assert!(!records(&a).is_empty());
            assert_eq!(records(&a), records(&d), "{}", args.join(" "));
        } else {
            assert_eq!(a, d, "{}", args.join(" "));
        }
    }
    // The digests are right, not only equal: the big file against sha2.
    let plain = chroot_cmd(&root, &["/sumpool", "hash", "data/big/one"]).run();
    let want = format!(
        "{}  data/big/one\n",
        sha256_hex(&fs::read(root.join("data/big/one")).unwrap())
    );
    plain.code(0).stdout_is(want.as_bytes());

    // A manifest written and checked inside the empty root.
    chroot_cmd(&root, &["/sumpool", "hash", "-o", "/data.sums", "data"])
        .run()
        .code(0);
    let check = chroot_cmd(&root, &["/sumpool", "check", "/data.sums"]).run();
    check.code(0);
    let dynamic = Cmd::sumpool().args(["check", "data.sums"]).dir(&root).run();
    dynamic.code(0);
    assert_eq!(check.stdout, dynamic.stdout);
}
