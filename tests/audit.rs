//! `sumpool audit`: a tree compared with a manifest, every path sorted into unchanged,
//! changed, moved, new or missing.

mod util;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use util::{Cmd, json_lines, sha256_hex, temp_dir, write_file};

/// A tree and its manifest, written by GNU sha256sum (not by sumpool).
fn tree_and_manifest(dir: &std::path::Path) {
    for (name, content) in [
        ("data/a", "1"),
        ("data/b", "2"),
        ("data/sub/c", "3"),
        ("data/d", "4"),
        ("other/x", "5"),
    ] {
        write_file(dir, name.as_bytes(), content.as_bytes());
    }
    let manifest = Cmd::new("sh")
        .args([
            "-c",
            "find data other -type f | LC_ALL=C sort | sed 's|^|./|' | xargs sha256sum",
        ])
        .dir(dir)
        .run();
    fs::write(dir.join("M"), &manifest.code(0).stdout).unwrap();
}

#[test]
fn a_matching_tree_exits_0() {
    let dir = temp_dir();
    tree_and_manifest(dir.path());
    // The manifest lists ./data/...; the walk prints data/...: a leading ./ is ignored.
    let run = Cmd::sumpool()
        .args(["audit", "M", "data"])
        .dir(dir.path())
        .run();
    run.code(0)
        .stdout_is(b"no differences: 4 unchanged\n")
        .stderr_empty();
    // The whole directory, with the manifest in it: the manifest itself is not "new".
    let run = Cmd::sumpool().args(["audit", "M"]).dir(dir.path()).run();
    run.code(0).stdout_is(b"no differences: 5 unchanged\n");
}

#[test]
fn every_kind_of_difference_is_reported_grouped() {
    let dir = temp_dir();
    tree_and_manifest(dir.path());
    let d = dir.path();
    fs::write(d.join("data/a"), "changed").unwrap();
    fs::rename(d.join("data/b"), d.join("data/sub/b-moved")).unwrap();
    fs::copy(d.join("data/d"), d.join("data/d-copy")).unwrap();
    fs::remove_file(d.join("data/sub/c")).unwrap();
    write_file(d, b"data/e", b"new");
    let run = Cmd::sumpool().args(["audit", "M", "data"]).dir(d).run();
    run.code(1).stderr_empty().stdout_is(
        b"changed  data/a\n\
          moved    data/b -> data/sub/b-moved\n\
          new      data/d-copy\n\
          new      data/e\n\
          missing  data/sub/c\n\
          5 differences: 1 changed, 1 moved, 2 new, 1 missing; 1 unchanged\n",
    );
    // other/x is listed but outside the walked tree: not missing.
    assert!(!run.stderr_text().contains("other"));

    let json = Cmd::sumpool()
        .args(["audit", "--format", "json", "M", "data"])
        .dir(d)
        .run();
    json.code(1);
    let objects = json_lines(&json);
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["changed", "new", "new", "moved", "missing", "summary"],
        "{}",
        json.describe()
    );
    assert_eq!(objects[0]["listed"], sha256_hex(b"1"));
    assert_eq!(objects[0]["found"], sha256_hex(b"changed"));
    assert_eq!(objects[3]["from"]["text"], "data/b");
    assert_eq!(objects[3]["to"]["text"], "data/sub/b-moved");
    let summary = &objects[5];
    assert_eq!(
        (
            summary["changed"].as_u64(),
            summary["moved"].as_u64(),
            summary["new"].as_u64(),
            summary["missing"].as_u64(),
            summary["unchanged"].as_u64()
        ),
        (Some(1), Some(1), Some(2), Some(1), Some(1))
    );
}

#[test]
fn excluded_and_unreadable_files_are_not_missing() {
    let dir = temp_dir();
    tree_and_manifest(dir.path());
    fs::set_permissions(dir.path().join("data/a"), fs::Permissions::from_mode(0o000)).unwrap();
    let run = Cmd::sumpool()
        .args(["audit", "--exclude", "sub", "M", "data"])
        .dir(dir.path())
        .unprivileged()
        .run();
    run.code(1)
        .stderr_has("sumpool: data/a: Permission denied\n");
    run.stdout_is(b"no differences: 2 unchanged; 1 could not be read\n");
}

#[test]
fn a_million_line_manifest_fits_in_bounded_memory() {
    let dir = temp_dir();
    // One million lines of about 50-byte names, listing files that do not exist: all are
    // missing, so every entry is kept, looked up and reported.
    let mut manifest = Vec::with_capacity(120 << 20);
    for i in 0..1_000_000u32 {
        let digest = sha256_hex(&i.to_le_bytes());
        manifest.extend_from_slice(
            format!(
                "{digest}  gone/dir{:04}/some-file-name-{i:09}.bin\n",
                i % 1000
            )
            .as_bytes(),
        );
    }
    fs::write(dir.path().join("BIG"), &manifest).unwrap();
    fs::create_dir(dir.path().join("gone")).unwrap();
    // Under a 200 MB data limit (a release build measured 110 MB peak RSS for this list).
    let run = Cmd::new("prlimit")
        .arg(format!("--data={}", 200 << 20))
        .arg("--")
        .arg(util::sumpool_bin())
        .args(["audit", "--format", "json", "BIG", "gone"])
        .dir(dir.path())
        .run();
    run.code(1);
    let last = run
        .stdout
        .rsplit(|&b| b == b'\n')
        .find(|l| !l.is_empty())
        .unwrap();
    let summary: serde_json::Value = serde_json::from_slice(last).unwrap();
    assert_eq!(summary["missing"], 1_000_000);
}

#[test]
fn usage_and_fatal_errors_exit_2() {
    let dir = temp_dir();
    Cmd::sumpool().args(["audit"]).dir(dir.path()).run().code(2);
    Cmd::sumpool()
        .args(["audit", "nosuch"])
        .dir(dir.path())
        .run()
        .code(2)
        .stderr_has("sumpool: nosuch: No such file or directory");
}
