//! What kind of storage a path is on, as the system tells it: the file system (`statfs`),
//! the block device under it and whether it spins (`/sys/dev/block`), whether this machine
//! is a virtual one, and how many more files the process may open. The facts are gathered
//! here, on the calling thread before a run; what to make of them is `policy`'s.
//!
//! The kernel's rotational flag alone is not trusted: virtual disks (virtio `vd*`, Xen
//! `xvd*`) and disks of a virtual machine report "rotational" for what is usually flash or
//! network storage behind the hypervisor. A disk counts as spinning only when it says so and
//! is neither virtual nor seen from inside a virtual machine; everything else is treated as
//! flash, which on a real spinning disk is slower but never wrong. [`classify`] is pure (it
//! takes the facts, not the system), so the rules are unit-tested here.

use std::path::Path;

/// What kind of storage a path is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceClass {
    /// A network or user-space file system, by name.
    Network(&'static str),
    /// A disk that spins, by device name.
    Rotational(String),
    /// Flash, or a device that reports no rotation.
    Flash(String),
    /// A disk that reports rotation, not trusted: virtual, or in a virtual machine.
    Virtual(String),
    /// Memory, or a file system without a block device we can see (tmpfs, overlay...).
    Other,
}

/// The facts about a device that the policy is decided from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFacts {
    /// `f_type` of the file system (statfs).
    pub fs_type: i64,
    /// The whole-disk block device under it (`vda`, `sda`, `nvme0n1`), if any.
    pub disk: Option<String>,
    /// Its `queue/rotational` flag; for a stacked device (dm, md), whether any disk under
    /// it is rotational.
    pub rotational: bool,
    /// Whether the device's driver is a paravirtual one (virtio, Xen, Hyper-V, VMware).
    pub paravirtual: bool,
    /// Whether this machine runs under a hypervisor (the CPU's `hypervisor` flag).
    pub in_vm: bool,
}

/// Network and user-space file systems, by statfs magic.
const NETWORK_FS: &[(i64, &str)] = &[
    (0x6969, "NFS"),
    (0xFF53_4D42, "CIFS/SMB"),
    (0xFE53_4D42, "SMB2"),
    (0x517B, "SMB"),
    (0x6573_5546, "FUSE"),
    (0x0102_1997, "9P"),
    (0x00C3_6400, "Ceph"),
    (0x5346_414F, "AFS"),
    (0x6B41_4653, "kAFS"),
    (0x7375_7245, "Coda"),
    (0x564C, "NCP"),
    (0x0BD0_0BD0, "Lustre"),
    (0x4750_4653, "GPFS"),
];

/// The class of a device from its facts: see the module header for the rules.
pub fn classify(facts: &DeviceFacts) -> DeviceClass {
    if let Some(&(_, name)) = NETWORK_FS.iter().find(|(magic, _)| *magic == facts.fs_type) {
        return DeviceClass::Network(name);
    }
    let Some(disk) = &facts.disk else {
        return DeviceClass::Other;
    };
    let virtual_name = ["vd", "xvd"].iter().any(|prefix| disk.starts_with(prefix));
    match facts.rotational {
        false => DeviceClass::Flash(disk.clone()),
        true if virtual_name || facts.paravirtual || facts.in_vm => {
            DeviceClass::Virtual(disk.clone())
        }
        true => DeviceClass::Rotational(disk.clone()),
    }
}

/// How many more descriptors the process may open: its soft limit (which `main` raised to
/// the hard one) less those open now.
pub fn descriptor_budget() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let open = std::fs::read_dir("/proc/self/fd").map_or(16, |dir| dir.count());
    limit.saturating_sub(open)
}

/// Looks up the facts about the device of `path` (what cannot be read stays at its default).
pub fn facts_of(path: &Path) -> DeviceFacts {
    let mut facts = DeviceFacts::default();
    let probe = if path.as_os_str() == "-" || path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    if let Ok(statfs) = rustix::fs::statfs(probe) {
        facts.fs_type = fs_magic(&statfs);
    }
    facts.in_vm = std::fs::read_to_string("/proc/cpuinfo")
        .is_ok_and(|info| info.split_whitespace().any(|flag| flag == "hypervisor"));
    let Ok(stat) = rustix::fs::stat(probe) else {
        return facts;
    };
    let (major, minor) = (
        rustix::fs::major(stat.st_dev),
        rustix::fs::minor(stat.st_dev),
    );
    let sys = format!("/sys/dev/block/{major}:{minor}");
    let Ok(device) = std::fs::canonicalize(&sys) else {
        return facts;
    };
    // A partition's queue is its disk's: one level up.
    let disk_dir = if device.join("partition").exists() {
        device.parent().map(Path::to_path_buf).unwrap_or(device)
    } else {
        device
    };
    let Some(name) = disk_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        return facts;
    };
    facts.rotational = rotational(&disk_dir, 0);
    let driver = std::fs::read_link(disk_dir.join("device/driver"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    facts.paravirtual = ["virtio", "xen", "vmw", "hv_storvsc"]
        .iter()
        .any(|p| driver.starts_with(p));
    facts.disk = Some(name);
    facts
}

/// Whether the disk at `dir` (in /sys), or any disk under it (device mapper, md), rotates.
fn rotational(dir: &Path, depth: usize) -> bool {
    if let Ok(flag) = std::fs::read_to_string(dir.join("queue/rotational"))
        && flag.trim() == "1"
    {
        return true;
    }
    if depth > 4 {
        return false;
    }
    std::fs::read_dir(dir.join("slaves")).is_ok_and(|slaves| {
        slaves.flatten().any(|slave| {
            std::fs::canonicalize(slave.path()).is_ok_and(|p| rotational(&p, depth + 1))
        })
    })
}

/// The file-system magic number of a `statfs` answer. Its field is an `i64` on x86-64 and a
/// narrower or unsigned type on other targets, hence the cast this target does not need.
#[allow(clippy::unnecessary_cast)]
fn fs_magic(statfs: &rustix::fs::StatFs) -> i64 {
    statfs.f_type as i64
}

/// Whether the file system of `file` is local, so mapping it is safe: a page fault there
/// waits on a local disk at worst, never on a server that may not answer. Asked by the
/// reader that opened the file (`statfs` may wait on a file server: never under a lock).
pub(crate) fn is_local(file: &std::fs::File) -> bool {
    match rustix::fs::fstatfs(file) {
        Ok(statfs) => !NETWORK_FS
            .iter()
            .any(|(magic, _)| *magic == fs_magic(&statfs)),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(
        fs_type: i64,
        disk: Option<&str>,
        rotational: bool,
        pv: bool,
        vm: bool,
    ) -> DeviceFacts {
        DeviceFacts {
            fs_type,
            disk: disk.map(str::to_string),
            rotational,
            paravirtual: pv,
            in_vm: vm,
        }
    }

    const EXT4: i64 = 0xEF53;

    #[test]
    fn classification_table() {
        let cases = [
            (
                facts(0x6969, Some("sda"), true, false, false),
                DeviceClass::Network("NFS"),
            ),
            (
                facts(0x6573_5546, None, false, false, true),
                DeviceClass::Network("FUSE"),
            ),
            (
                facts(0xFE53_4D42, None, false, false, false),
                DeviceClass::Network("SMB2"),
            ),
            (
                facts(EXT4, Some("nvme0n1"), false, false, false),
                DeviceClass::Flash("nvme0n1".into()),
            ),
            (
                facts(EXT4, Some("sda"), true, false, false),
                DeviceClass::Rotational("sda".into()),
            ),
            // The flag of a virtio disk, of a paravirtual driver, or seen from a VM, is not
            // trusted.
            (
                facts(EXT4, Some("vda"), true, false, false),
                DeviceClass::Virtual("vda".into()),
            ),
            (
                facts(EXT4, Some("xvdb"), true, false, false),
                DeviceClass::Virtual("xvdb".into()),
            ),
            (
                facts(EXT4, Some("sdb"), true, true, false),
                DeviceClass::Virtual("sdb".into()),
            ),
            (
                facts(EXT4, Some("sdb"), true, false, true),
                DeviceClass::Virtual("sdb".into()),
            ),
            (
                facts(0x0102_1994, None, false, false, false),
                DeviceClass::Other,
            ),
        ];
        for (facts, want) in cases {
            assert_eq!(classify(&facts), want, "{facts:?}");
        }
    }

    #[test]
    fn this_machine_is_classified_without_error() {
        let facts = facts_of(Path::new("."));
        let _ = classify(&facts);
        assert_ne!(facts.fs_type, 0);
    }
}
