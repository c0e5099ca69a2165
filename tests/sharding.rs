//! `hash --shard K/N` and `merge`: shards are disjoint, cover the tree, and merge back into
//! exactly the bytes of a single run, whatever the order of the shard files.

mod util;

use std::collections::HashSet;
use std::fs;

use util::{Cmd, pseudo_random, temp_dir, write_file};

/// A tree with names that test the walk order and the escaping: `a` (a directory) sorts
/// before `a-b` and `a.c`, but a plain string sort would put `a-b` before `a/...`.
fn awkward_tree(root: &std::path::Path) {
    let names: &[&[u8]] = &[
        b"a/x",
        b"a/y/z",
        b"a-b",
        b"a.c",
        b"B",
        b".hidden/f",
        b"with space",
        b"new\nline",
        b"back\\slash",
        b"\xff\xfe",
        b"cr\rx",
        b"d/e/f/g/h",
    ];
    for (i, name) in names.iter().enumerate() {
        write_file(root, name, &pseudo_random(10 + i * 37, i as u64));
    }
    for i in 0..200u32 {
        write_file(
            root,
            format!("many/{}/f{i}", i % 7).as_bytes(),
            &i.to_le_bytes(),
        );
    }
}

fn lines(output: &[u8], delim: u8) -> Vec<Vec<u8>> {
    output
        .split(|&b| b == delim)
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn merged_shards_equal_the_single_run_byte_for_byte() {
    let dir = temp_dir();
    awkward_tree(&dir.path().join("tree"));
    for flags in [&[][..], &["--tag"][..], &["-z"][..]] {
        let single = Cmd::sumpool()
            .arg("hash")
            .args(flags)
            .arg("tree")
            .dir(dir.path())
            .run();
        single.code(0);
        let delim = if flags == ["-z"] { b'\0' } else { b'\n' };
        for n in 1..=5u32 {
            let mut files = Vec::new();
            let mut seen = HashSet::new();
            for k in 1..=n {
                let shard = Cmd::sumpool()
                    .arg("hash")
                    .args(flags)
                    .args(["--shard", &format!("{k}/{n}"), "tree"])
                    .dir(dir.path())
                    .run();
                shard.code(0);
                // Each shard manifest starts by naming its shard, for `merge`.
                let all = lines(&shard.stdout, delim);
                assert_eq!(all[0], format!("# sumpool shard {k}/{n}").into_bytes());
                for line in all.into_iter().skip(1) {
                    assert!(seen.insert(line), "a line is in two shards ({k}/{n})");
                }
                let file = format!("part{k}");
                fs::write(dir.path().join(&file), &shard.stdout).unwrap();
                files.push(file);
            }
            assert_eq!(
                seen.len(),
                lines(&single.stdout, delim).len(),
                "shards do not cover the tree"
            );
            // Any order of the shard files gives the same bytes.
            files.reverse();
            files.rotate_left(n as usize / 2);
            let zero: &[&str] = if delim == b'\0' { &["-z"] } else { &[] };
            let merged = Cmd::sumpool()
                .arg("merge")
                .args(zero)
                .args(&files)
                .dir(dir.path())
                .run();
            merged.code(0).stderr_empty().stdout_is(&single.stdout);
        }
    }
}

#[test]
fn shard_spec_is_checked_and_stable() {
    let dir = temp_dir();
    awkward_tree(&dir.path().join("tree"));
    for bad in ["0/3", "4/3", "1/0", "x/2", "3", "1/2/3"] {
        Cmd::sumpool()
            .args(["hash", "--shard", bad, "tree"])
            .dir(dir.path())
            .run()
            .code(2);
    }
    // The same shard twice gives the same files, whichever way the tree is named.
    let first = Cmd::sumpool()
        .args(["hash", "--shard", "2/3", "tree"])
        .dir(dir.path())
        .run();
    let again = Cmd::sumpool()
        .args(["hash", "-j", "1", "--shard", "2/3", "tree"])
        .dir(dir.path())
        .run();
    again.stdout_is(&first.stdout);
    let dotted = Cmd::sumpool()
        .args(["hash", "--shard", "2/3", "./tree"])
        .dir(dir.path())
        .run();
    let strip = |out: &[u8]| String::from_utf8_lossy(out).replace("./tree/", "tree/");
    assert_eq!(strip(&dotted.stdout), strip(&first.stdout));
}

/// `--shard-index I/N` (counted from 0, as a Kubernetes Indexed Job numbers its pods) is the
/// same split as `--shard I+1/N`.
#[test]
fn shard_index_counts_from_zero() {
    let dir = temp_dir();
    awkward_tree(&dir.path().join("tree"));
    for n in 1..=4u32 {
        for i in 0..n {
            let by_index = Cmd::sumpool()
                .args(["hash", "--shard-index", &format!("{i}/{n}"), "tree"])
                .dir(dir.path())
                .run();
            by_index.code(0);
            let by_part = Cmd::sumpool()
                .args(["hash", "--shard", &format!("{}/{n}", i + 1), "tree"])
                .dir(dir.path())
                .run();
            by_index.stdout_is(&by_part.stdout);
        }
    }
    for bad in ["3/3", "1/0", "-1/2", "x/2", "0"] {
        Cmd::sumpool()
            .args(["hash", "--shard-index", bad, "tree"])
            .dir(dir.path())
            .run()
            .code(2);
    }
    Cmd::sumpool()
        .args(["hash", "--shard-index", "0/2", "--shard", "1/2", "tree"])
        .dir(dir.path())
        .run()
        .code(2);
}

#[test]
fn merge_refuses_what_is_not_a_manifest_in_walk_order() {
    let dir = temp_dir();
    let hex = "0".repeat(64);
    fs::write(dir.path().join("junk"), "not a checksum line\n").unwrap();
    fs::write(dir.path().join("unsorted"), format!("{hex}  b\n{hex}  a\n")).unwrap();
    Cmd::sumpool()
        .args(["merge", "junk"])
        .dir(dir.path())
        .run()
        .code(2)
        .stderr_has("junk: line 1 is not a checksum line");
    Cmd::sumpool()
        .args(["merge", "unsorted"])
        .dir(dir.path())
        .run()
        .code(2)
        .stderr_has("out of walk order");
    Cmd::sumpool()
        .args(["merge", "missing"])
        .dir(dir.path())
        .run()
        .code(2)
        .stderr_has("sumpool: missing: No such file or directory");
    Cmd::sumpool().arg("merge").run().code(2);
}
