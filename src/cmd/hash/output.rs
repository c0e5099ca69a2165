//! Where the manifest of `-o FILE` or `--update FILE` goes, and how it gets there without
//! ever destroying what FILE was.
//!
//! What FILE is decides how it is written ([`Target::open`]):
//!
//! - `-` (with `-o`): standard output, as `-` means everywhere else on the command line.
//! - a regular file, or a name that does not exist yet: the manifest is written to a
//!   temporary file beside it and renamed over it only once the run completed, so a reader
//!   never sees half a manifest and an interrupted run leaves the old one in place
//!   ([`AtomicOutput`]). The new file keeps the old one's permissions (and owner, when
//!   sumpool may set it). After the rename the directory is synced, so that a power cut
//!   cannot lose the new name.
//! - a symlink: followed to its final target, which is replaced as above; the link stays a
//!   link. A dangling link makes its target, as a shell's `>` would.
//! - a character device, a FIFO or a socket (and a file reached through `/dev/stdout`,
//!   `/dev/fd/N` or `/proc/.../fd/N`): opened and written like a shell redirection
//!   (`-o /dev/null` is a run without output; `/dev/full` fails with "No space left on
//!   device"). Never replaced by a regular file. The open of a FIFO that nobody reads waits
//!   for a reader, and a signal ends that wait.
//! - a directory is refused, and so is a block device: a manifest written over a disk is
//!   never what was meant (a shell's `>` is there for whoever does mean it).
//!
//! `--update` needs a manifest it can read and replace: a regular file, a new name, or a
//! symlink to either.
//!
//! # The temporary file
//!
//! It is made with `O_TMPFILE`: a file without a name in the target's directory, which gets
//! one (a link, then a rename over the target) only at commit. A run killed by SIGKILL or a
//! power cut before that leaves no file behind, so no later run can hash a half-written
//! manifest into a new one. File systems without `O_TMPFILE` (NFS, SMB, FUSE, FAT) get a
//! named temporary file, `.sumpool-XXXXXX.tmp`, locked with `flock` while the run lives. A
//! signal that ends the run removes it (`signals::TempName`); after SIGKILL it stays, and
//! the next `-o` or `--update` into that directory removes every such file whose lock no
//! run holds; the walk never hashes one (`engine::walk`).
//!
//! A manifest whose bytes are exactly those of the file already at the target (an update of
//! a tree where nothing changed, `-o` run twice) is not put in place: the old file stays as it
//! is, with its inode and times, and nothing is synced. Syncing a manifest to the disk is
//! most of the cost of an update that reads no file (17 ms of 0.4 s for 100,000 files), and a
//! scheduled job that changes nothing should not rewrite the file either (backup tools, `make`
//! and `rsync` all see an unchanged manifest).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags};

use crate::engine::source::FileId;
use crate::format::state::Time;
use crate::signals::{self, TempName};

/// What the manifest is for: `-o` writes any kind of file; `--update` also reads it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `-o FILE`.
    Output,
    /// `--update FILE`.
    Update,
}

/// Where the manifest goes.
pub enum Target {
    /// Standard output (`-o -`).
    Stdout,
    /// A device, FIFO or socket (or a file reached through a descriptor link), opened as a
    /// shell redirection opens it.
    Direct {
        /// The open file.
        file: fs::File,
        /// Its identity, if it is a regular file (never hashed into itself).
        id: Option<FileId>,
    },
    /// A regular file or a new name, replaced atomically.
    Atomic(AtomicOutput),
}

/// Prefix and suffix of the names of sumpool's temporary files.
pub use crate::engine::walk::{TEMP_PREFIX, TEMP_SUFFIX};

impl Target {
    /// Opens the target `name` for `purpose`: see the module header for what each kind of
    /// file gets.
    pub fn open(name: &Path, purpose: Purpose) -> anyhow::Result<Target> {
        let shown = || name.display().to_string();
        if name.as_os_str() == "-" {
            if purpose == Purpose::Update {
                bail!("-: --update needs a manifest file, not standard output");
            }
            return Ok(Target::Stdout);
        }
        let (last, through_descriptor) = final_target(name).with_context(shown)?;
        let meta = match fs::metadata(name) {
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(shown),
        };
        let kind = meta.as_ref().map(fs::Metadata::file_type);
        if kind.is_some_and(|k| k.is_dir()) {
            return Err(io::Error::from_raw_os_error(libc::EISDIR)).with_context(shown);
        }
        if kind.is_some_and(|k| k.is_block_device()) {
            bail!(
                "{}: refusing to write a manifest onto a block device",
                shown()
            );
        }
        let regular = kind.is_none_or(|k| k.is_file());
        if regular && !through_descriptor {
            return Ok(Target::Atomic(AtomicOutput::create(&last, name)?));
        }
        if purpose == Purpose::Update {
            bail!(
                "{}: --update needs a regular file to read and replace, not a device, FIFO or socket",
                shown()
            );
        }
        let file = open_for_writing(name).with_context(shown)?;
        let id = if regular {
            FileId::of(&file).ok()
        } else {
            None
        };
        Ok(Target::Direct { file, id })
    }

    /// A buffered writer to the file (none for standard output, which the caller has).
    pub fn writer(&self) -> Option<io::BufWriter<&fs::File>> {
        let file = match self {
            Target::Stdout => return None,
            Target::Direct { file, .. } => file,
            Target::Atomic(atomic) => atomic.file(),
        };
        Some(io::BufWriter::with_capacity(64 * 1024, file))
    }

    /// The files the run must not hash: the temporary file, and the target if it exists.
    pub fn identities(&self) -> Vec<FileId> {
        match self {
            Target::Stdout => Vec::new(),
            Target::Direct { id, .. } => id.iter().copied().collect(),
            Target::Atomic(atomic) => atomic.identities(),
        }
    }
}

/// The final target of `name` through symlinks (the name itself if it is none), and whether
/// the way there went through a descriptor link (`/dev/stdout`, `/dev/fd/N`,
/// `/proc/self/fd/N`), which names an open file rather than a place to put a new one.
fn final_target(name: &Path) -> io::Result<(PathBuf, bool)> {
    let descriptor = |p: &Path| p.starts_with("/proc") || p.starts_with("/dev/fd");
    let mut path = name.to_path_buf();
    let mut through = descriptor(&path);
    // As many links as the kernel follows (MAXSYMLINKS).
    for _ in 0..40 {
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = fs::read_link(&path)?;
                path = match path.parent() {
                    Some(parent) if link.is_relative() => parent.join(link),
                    _ => link,
                };
                through |= descriptor(&path);
            }
            Ok(_) => return Ok((path, through)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((path, through)),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::from_raw_os_error(libc::ELOOP))
}

/// Opens `name` for writing as `> name` does (created if needed, truncated), in a way a
/// signal can end: the open of a FIFO waits for a reader, and the standard library would
/// retry it after every signal.
fn open_for_writing(name: &Path) -> io::Result<fs::File> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOCTTY | OFlags::CLOEXEC;
    loop {
        match rustix::fs::open(name, flags, Mode::from_raw_mode(0o666)) {
            Ok(fd) => return Ok(fs::File::from(fd)),
            Err(rustix::io::Errno::INTR) => {
                if signals::stop_requested().is_some() {
                    return Err(io::ErrorKind::Interrupted.into());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The manifest being written: a temporary file in the final target's directory.
pub struct AtomicOutput {
    /// The temporary file the manifest is written to (readable too: an update reads it
    /// back to compare and to merge).
    file: fs::File,
    /// The directory it goes into, open.
    dir: OwnedFd,
    /// The target's name in that directory.
    name: OsString,
    /// The target as the user named it, for messages.
    shown: PathBuf,
    /// The temporary file's name, if it has one (file systems without `O_TMPFILE`).
    temp_name: Option<(OsString, TempName)>,
}

/// The directory and name of a target, open: see [`AtomicOutput::place`].
pub struct Place {
    dir: OwnedFd,
    name: OsString,
    shown: PathBuf,
}

impl Place {
    /// A new temporary file for the target.
    pub fn temp(&self) -> anyhow::Result<AtomicOutput> {
        let dir = self
            .dir
            .try_clone()
            .with_context(|| self.shown.display().to_string())?;
        AtomicOutput::in_dir(dir, self.name.clone(), &self.shown)
    }
}

/// How long a leftover temporary file must have been left unwritten before another run
/// removes it: a live run locks its file a moment after it creates it, and writes to it as
/// it goes, so a file that is both unlocked and this old is no live run's.
const STALE_AFTER: Duration = Duration::from_secs(10);

impl AtomicOutput {
    /// Creates the temporary file that will replace `target` (reached from `shown`, the
    /// name given). An existing target's permissions, and owner where allowed, are kept.
    pub fn create(target: &Path, shown: &Path) -> anyhow::Result<AtomicOutput> {
        let context = || shown.display().to_string();
        let (dir_path, name) = split(target);
        let dir = rustix::fs::open(
            &dir_path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)
        .with_context(context)?;
        remove_stale_temps(&dir);
        AtomicOutput::in_dir(dir, name, shown)
    }

    /// Another temporary file for the same target (an update merges into it).
    pub fn replacement(&self) -> anyhow::Result<AtomicOutput> {
        self.place()?.temp()
    }

    /// Where the target is, to make more temporary files for it on another thread (an
    /// update's checkpoints).
    pub fn place(&self) -> anyhow::Result<Place> {
        let dir = self
            .dir
            .try_clone()
            .with_context(|| self.shown.display().to_string())?;
        Ok(Place {
            dir,
            name: self.name.clone(),
            shown: self.shown.clone(),
        })
    }

    /// The temporary file's identity.
    pub fn id(&self) -> Option<FileId> {
        FileId::of(&self.file).ok()
    }

    /// The temporary file for the target `name` in the open directory `dir`.
    fn in_dir(dir: OwnedFd, name: OsString, shown: &Path) -> anyhow::Result<AtomicOutput> {
        let context = || shown.display().to_string();
        let (file, temp_name) = match rustix::fs::openat(
            &dir,
            ".",
            OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        ) {
            Ok(fd) if linkable() => (fs::File::from(fd), None),
            _ => {
                let (file, temp) = create_named(&dir).with_context(context)?;
                (file, Some(temp))
            }
        };
        // Held while the run lives: a leftover temporary file is one no run holds.
        let _ = rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive);
        if let Ok(old) = rustix::fs::statat(&dir, name.as_os_str(), AtFlags::empty()) {
            // Set after creation, so the umask does not narrow them.
            let _ = rustix::fs::fchown(
                &file,
                Some(rustix::fs::Uid::from_raw(old.st_uid)),
                Some(rustix::fs::Gid::from_raw(old.st_gid)),
            );
            let _ = file.set_permissions(fs::Permissions::from_mode(old.st_mode & 0o7777));
        }
        Ok(AtomicOutput {
            file,
            dir,
            name,
            shown: shown.to_path_buf(),
            temp_name,
        })
    }

    /// The temporary file.
    pub fn file(&self) -> &fs::File {
        &self.file
    }

    /// The files the run must not hash: the temporary file, and the target if it exists.
    pub fn identities(&self) -> Vec<FileId> {
        let mut ids = Vec::new();
        if let Ok(id) = FileId::of(&self.file) {
            ids.push(id);
        }
        if let Ok(stat) = rustix::fs::statat(&self.dir, self.name.as_os_str(), AtFlags::empty()) {
            ids.push(FileId {
                dev: stat.st_dev,
                ino: stat.st_ino,
            });
        }
        ids
    }

    /// The time the file system stamped on the temporary file when it was created: its own
    /// clock's "now", which may differ from this machine's.
    pub fn created(&self) -> Option<Time> {
        let stat = rustix::fs::fstat(&self.file).ok()?;
        Some(Time {
            secs: stat.st_mtime,
            nanos: stat.st_mtime_nsec as u32,
        })
    }

    /// Makes the manifest durable, puts it in place in one rename, and syncs the directory;
    /// or, when the target already holds exactly these bytes, leaves it alone.
    pub fn commit(self) -> anyhow::Result<()> {
        if self.same_bytes().unwrap_or(false) {
            return Ok(());
        }
        self.put_in_place()
    }

    /// Makes the manifest durable, puts it in place in one rename, and syncs the directory,
    /// whatever the target holds (a checkpoint: comparing would read the whole manifest).
    pub fn put_in_place(mut self) -> anyhow::Result<()> {
        let shown = self.shown.display().to_string();
        self.file.sync_all().with_context(|| shown.clone())?;
        let temp = match self.temp_name.take() {
            Some((name, registered)) => (name, registered),
            None => self.link().with_context(|| shown.clone())?,
        };
        rustix::fs::renameat(
            &self.dir,
            temp.0.as_os_str(),
            &self.dir,
            self.name.as_os_str(),
        )
        .map_err(io::Error::from)
        .with_context(|| shown.clone())?;
        drop(temp.1);
        rustix::fs::fsync(&self.dir)
            .map_err(io::Error::from)
            .with_context(|| shown)?;
        Ok(())
    }

    /// Gives the unnamed temporary file a name in the directory, registered for removal by
    /// a signal until it is renamed.
    fn link(&self) -> io::Result<(OsString, TempName)> {
        loop {
            let name = temp_name();
            let registered = TempName::register(self.dir.as_raw_fd(), name.as_bytes());
            // Without CAP_DAC_READ_SEARCH, AT_EMPTY_PATH is refused; the descriptor's link in
            // /proc does the same for anyone (`linkable` checked that it is there).
            let linked = rustix::fs::linkat(
                &self.file,
                "",
                &self.dir,
                name.as_os_str(),
                AtFlags::EMPTY_PATH,
            )
            .or_else(|_| {
                let proc_link = format!("/proc/self/fd/{}", self.file.as_raw_fd());
                rustix::fs::linkat(
                    rustix::fs::CWD,
                    proc_link.as_str(),
                    &self.dir,
                    name.as_os_str(),
                    AtFlags::SYMLINK_FOLLOW,
                )
            });
            match linked {
                Ok(()) => return Ok((name, registered)),
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Whether the regular file at the target holds the same bytes as the temporary file
    /// (read back from the page cache, where both just were: the target was read by
    /// `--update`).
    fn same_bytes(&self) -> io::Result<bool> {
        let old = rustix::fs::openat(
            &self.dir,
            self.name.as_os_str(),
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK,
            Mode::empty(),
        )?;
        let old = fs::File::from(old);
        let (old_meta, new_meta) = (old.metadata()?, self.file.metadata()?);
        if !old_meta.is_file() || old_meta.len() != new_meta.len() {
            return Ok(false);
        }
        same_contents(&old, &self.file, new_meta.len())
    }
}

impl Drop for AtomicOutput {
    /// An uncommitted named temporary file is removed; an unnamed one goes with its
    /// descriptor.
    fn drop(&mut self) {
        if let Some((name, registered)) = self.temp_name.take() {
            let _ = rustix::fs::unlinkat(&self.dir, name.as_os_str(), AtFlags::empty());
            drop(registered);
        }
    }
}

/// Whether the first `len` bytes of `a` and `b` are the same.
fn same_contents(a: &fs::File, b: &fs::File, len: u64) -> io::Result<bool> {
    const BLOCK: usize = 256 << 10;
    let (mut x, mut y) = (vec![0u8; BLOCK], vec![0u8; BLOCK]);
    let mut offset = 0u64;
    while offset < len {
        let n = (len - offset).min(BLOCK as u64) as usize;
        a.read_exact_at(&mut x[..n], offset)?;
        b.read_exact_at(&mut y[..n], offset)?;
        if x[..n] != y[..n] {
            return Ok(false);
        }
        offset += n as u64;
    }
    Ok(true)
}

/// The directory of `target` and its name in it.
fn split(target: &Path) -> (PathBuf, OsString) {
    let dir = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map_or_else(|| OsString::from("."), OsStr::to_os_string);
    (dir, name)
}

/// Whether an unnamed temporary file can be given a name: with CAP_DAC_READ_SEARCH
/// (`AT_EMPTY_PATH`), or through its link in `/proc`.
fn linkable() -> bool {
    Path::new("/proc/self/fd").is_dir()
}

/// A fresh temporary name: `.sumpool-XXXXXX.tmp`.
fn temp_name() -> OsString {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut random = [0u8; 6];
    // SAFETY: getrandom fills at most the length it is given.
    let filled = unsafe { libc::getrandom(random.as_mut_ptr().cast(), random.len(), 0) };
    if filled != random.len() as isize {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mixed = nanos ^ (u128::from(std::process::id()) << 64);
        random = std::array::from_fn(|i| (mixed >> (i * 8)) as u8);
    }
    let mut name = TEMP_PREFIX.as_bytes().to_vec();
    name.extend(random.iter().map(|&r| CHARS[r as usize % CHARS.len()]));
    name.extend_from_slice(TEMP_SUFFIX.as_bytes());
    OsString::from(OsStr::from_bytes(&name))
}

/// Creates a named temporary file in `dir`, registered for removal by a signal.
fn create_named(dir: &OwnedFd) -> io::Result<(fs::File, (OsString, TempName))> {
    loop {
        let name = temp_name();
        let registered = TempName::register(dir.as_raw_fd(), name.as_bytes());
        match rustix::fs::openat(
            dir,
            name.as_os_str(),
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        ) {
            Ok(fd) => return Ok((fs::File::from(fd), (name, registered))),
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Removes the temporary files that runs killed outright left in `dir`: sumpool's names,
/// regular files, unwritten for [`STALE_AFTER`], whose lock no live run holds.
fn remove_stale_temps(dir: &OwnedFd) {
    let Ok(listing) = rustix::fs::Dir::read_from(dir) else {
        return;
    };
    for entry in listing.flatten() {
        let name = entry.file_name().to_bytes();
        if !is_temp_name(name) {
            continue;
        }
        let Ok(fd) = rustix::fs::openat(
            dir.as_fd(),
            entry.file_name(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            continue;
        };
        let Ok(stat) = rustix::fs::fstat(&fd) else {
            continue;
        };
        let regular = rustix::fs::FileType::from_raw_mode(stat.st_mode).is_file();
        let age = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
            - stat.st_mtime;
        if !regular || age < STALE_AFTER.as_secs() as i64 {
            continue;
        }
        if rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok() {
            let _ = rustix::fs::unlinkat(dir, entry.file_name(), AtFlags::empty());
        }
    }
}

/// Whether `name` is one of sumpool's temporary file names.
pub fn is_temp_name(name: &[u8]) -> bool {
    crate::engine::walk::is_temp_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_recognised() {
        let name = temp_name();
        assert!(is_temp_name(name.as_bytes()), "{name:?}");
        assert!(!is_temp_name(b".sumpool-.tmp"));
        assert!(!is_temp_name(b"sumpool-abcdef.tmp"));
    }

    #[test]
    fn a_symlink_chain_is_followed_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::os::unix::fs::symlink("real", dir.path().join("b")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("b"), dir.path().join("a")).unwrap();
        // Dangling: the final name is where a new file goes.
        assert_eq!(
            final_target(&dir.path().join("a")).unwrap(),
            (real.clone(), false)
        );
        fs::write(&real, b"x").unwrap();
        assert_eq!(final_target(&dir.path().join("a")).unwrap(), (real, false));
        assert!(final_target(Path::new("/dev/stdout")).unwrap().1);
    }
}
