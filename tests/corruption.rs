//! Silent corruption end to end, on a real file system: a byte of a file flipped underneath
//! ext4 (written into the disk image at the file's physical offset, as a failing disk or a
//! cosmic ray would leave it), with nothing about the file's size, times or inode changed.
//! `audit` and `hash --update` must call it corrupt and exit 3.
//!
//! Needs root, loop devices, e2fsprogs (mkfs.ext4, filefrag) and a writable
//! /proc/sys/vm/drop_caches. CI has them and sets SUMPOOL_REQUIRE_LOOP=1, so there the test
//! fails rather than skips when one is missing; elsewhere it says why it did not run.

mod util;

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use util::{
    Cmd, drop_caches, is_root, json_lines, pseudo_random, sha256_hex, temp_dir, write_file,
};

/// Whether the test can run here; `Err` says why not.
fn can_run() -> Result<(), String> {
    if !is_root() {
        return Err("not root".into());
    }
    for tool in ["mkfs.ext4", "filefrag", "mount", "umount"] {
        let found = Cmd::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .run();
        if found.code != Some(0) {
            return Err(format!("{tool} is not installed"));
        }
    }
    if !Path::new("/dev/loop-control").exists() {
        return Err("no loop devices (/dev/loop-control)".into());
    }
    Ok(())
}

/// An ext4 image mounted on a loop device, unmounted when dropped (even by a failing test).
struct Mounted {
    mnt: PathBuf,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Cmd::new("umount").arg(&self.mnt).run();
    }
}

/// The byte offset in the image of the first byte of `file`, from `filefrag -v` (in blocks of
/// `block` bytes).
fn physical_offset(file: &Path, block: u64) -> u64 {
    let run = Cmd::new("filefrag")
        .args(["-v".to_string(), format!("-b{block}")])
        .arg(file)
        .run();
    run.code(0);
    let text = String::from_utf8_lossy(&run.stdout).into_owned();
    // "   0:        0..      15:      33024..     33039:     16:             last,eof"
    let extent = text
        .lines()
        .find(|line| line.trim_start().starts_with("0:"))
        .unwrap_or_else(|| panic!("no first extent in\n{text}"));
    let physical = extent.split(':').nth(2).unwrap().trim();
    let start: u64 = physical.split("..").next().unwrap().trim().parse().unwrap();
    start * block
}

#[test]
fn a_byte_flipped_under_ext4_is_corrupt_with_status_3() {
    flip_a_byte_and_check(false);
}

/// An update over part of the tree before the scrub: the parts it did not look at keep their
/// lines and state, so the scrub still tells the rot (an update that dropped them would have
/// recorded the rotten bytes as new, and `audit` would then find nothing).
#[test]
fn an_update_of_another_part_first_does_not_launder_a_flipped_byte() {
    flip_a_byte_and_check(true);
}

fn flip_a_byte_and_check(partial_update_first: bool) {
    if let Err(why) = can_run() {
        assert!(
            std::env::var_os("SUMPOOL_REQUIRE_LOOP").is_none(),
            "SUMPOOL_REQUIRE_LOOP is set, but the test cannot run: {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let dir = temp_dir();
    let d = dir.path();
    let image = d.join("disk.img");
    fs::File::create(&image)
        .and_then(|f| f.set_len(64 << 20))
        .unwrap();
    Cmd::new("mkfs.ext4")
        .args(["-q", "-F", "-b", "4096", "-O", "^inline_data"])
        .arg(&image)
        .run()
        .code(0);
    let mnt = d.join("mnt");
    fs::create_dir(&mnt).unwrap();
    Cmd::new("mount")
        .args(["-o", "loop"])
        .arg(&image)
        .arg(&mnt)
        .run()
        .code(0);
    let mounted = Mounted { mnt: mnt.clone() };

    let victim_data = pseudo_random(256 << 10, 7);
    for i in 0..6 {
        write_file(
            &mnt,
            format!("data/f{i}").as_bytes(),
            &pseudo_random(70_000, i),
        );
    }
    let victim = write_file(&mnt, b"data/victim.bin", &victim_data);
    write_file(&mnt, b"data/sub/other", &pseudo_random(5000, 99));
    Cmd::new("sync").run().code(0);
    // Older than the racy margin, so the state is trusted.
    std::thread::sleep(Duration::from_millis(2600));
    let first = Cmd::sumpool()
        .args(["hash", "--update", "M", "mnt/data"])
        .dir(d)
        .run();
    first.code(0).stderr_empty();
    let manifest = String::from_utf8_lossy(&fs::read(d.join("M")).unwrap()).into_owned();
    assert!(manifest.contains(&format!(
        "{}  mnt/data/victim.bin\n",
        sha256_hex(&victim_data)
    )));

    // Flip one byte in the middle of the file, in the image, beneath the file system.
    let before = fs::metadata(&victim).unwrap();
    let at = physical_offset(&victim, 4096) + 100_000;
    let mut disk = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&image)
        .unwrap();
    let mut byte = [0u8];
    disk.seek(SeekFrom::Start(at)).unwrap();
    disk.read_exact(&mut byte).unwrap();
    assert_eq!(
        byte[0], victim_data[100_000],
        "filefrag pointed at the wrong block"
    );
    disk.seek(SeekFrom::Start(at)).unwrap();
    disk.write_all(&[byte[0] ^ 0x20]).unwrap();
    disk.sync_all().unwrap();
    drop(disk);
    drop_caches();
    let after = fs::metadata(&victim).unwrap();
    let stat = |m: &fs::Metadata| {
        (
            m.len(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
            m.ino(),
        )
    };
    assert_eq!(
        stat(&before),
        stat(&after),
        "the flip must not touch the inode"
    );
    let mut rotten = victim_data.clone();
    rotten[100_000] ^= 0x20;
    assert_eq!(
        fs::read(&victim).unwrap(),
        rotten,
        "the file system must see the flip"
    );
    drop_caches();

    if partial_update_first {
        Cmd::sumpool()
            .args(["hash", "--update", "M", "--scrub", "100", "mnt/data/sub"])
            .dir(d)
            .run()
            .code(0);
        drop_caches();
    }
    let audit = Cmd::sumpool()
        .args(["audit", "--format", "json", "M", "mnt/data"])
        .dir(d)
        .run();
    audit.code(3);
    let objects = json_lines(&audit);
    assert_eq!(objects[0]["type"], "corrupt", "{}", audit.describe());
    assert_eq!(objects[0]["path"]["text"], "mnt/data/victim.bin");
    assert_eq!(objects[0]["found"], sha256_hex(&rotten));
    assert_eq!(objects.last().unwrap()["corrupt"], 1);

    drop_caches();
    let update = Cmd::sumpool()
        .args(["hash", "--update", "M", "--scrub", "100", "mnt/data"])
        .dir(d)
        .run();
    update
        .code(3)
        .stderr_has("sumpool: mnt/data/victim.bin: corrupt: ");
    let kept = String::from_utf8_lossy(&fs::read(d.join("M")).unwrap()).into_owned();
    assert!(kept.contains(&format!(
        "{}  mnt/data/victim.bin\n",
        sha256_hex(&victim_data)
    )));
    assert!(!kept.contains(&sha256_hex(&rotten)));
    drop(mounted);
}
