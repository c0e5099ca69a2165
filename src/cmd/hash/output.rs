//! The manifest written with `-o` or `--update`: a temporary file beside the target, renamed
//! over it only once the run completed, so a reader never sees half a manifest and an
//! interrupted run leaves the old one in place.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::engine::source::FileId;
use crate::format::state::Time;

/// The manifest being written with `-o`: a temporary file in the target's directory.
pub struct AtomicOutput {
    /// The temporary file the manifest is written to.
    pub temp: tempfile::NamedTempFile,
    target: PathBuf,
}

impl AtomicOutput {
    /// Creates the temporary file for `target`. An existing target's permissions are kept.
    pub fn create(target: &Path) -> anyhow::Result<AtomicOutput> {
        let dir = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        // As a plain `create` would make it, before the umask; or as the file it replaces.
        let replaced = fs::metadata(target).map(|meta| meta.permissions()).ok();
        let temp = tempfile::Builder::new()
            .prefix(".sumpool-")
            .suffix(".tmp")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .tempfile_in(dir)
            .with_context(|| target.display().to_string())?;
        if let Some(permissions) = replaced {
            // Set after creation, so the umask does not narrow them.
            let _ = temp.as_file().set_permissions(permissions);
        }
        Ok(AtomicOutput {
            temp,
            target: target.to_path_buf(),
        })
    }

    /// The files the run must not hash: the temporary file, and the target if it exists.
    pub fn identities(&self) -> Vec<FileId> {
        let mut ids = Vec::new();
        if let Ok(id) = FileId::of(self.temp.as_file()) {
            ids.push(id);
        }
        if let Ok(id) = fs::File::open(&self.target).and_then(|file| FileId::of(&file)) {
            ids.push(id);
        }
        ids
    }

    /// The time the file system stamped on the temporary file when it was created: its own
    /// clock's "now", which may differ from this machine's.
    pub fn created(&self) -> Option<Time> {
        let stat = rustix::fs::fstat(self.temp.as_file()).ok()?;
        Some(Time {
            secs: stat.st_mtime,
            nanos: stat.st_mtime_nsec as u32,
        })
    }

    /// Makes the manifest durable, then puts it in place in one rename.
    pub fn commit(self) -> anyhow::Result<()> {
        let target = self.target.display().to_string();
        self.temp
            .as_file()
            .sync_all()
            .with_context(|| target.clone())?;
        self.temp
            .persist(&self.target)
            .map_err(|e| e.error)
            .with_context(|| target)?;
        Ok(())
    }
}
