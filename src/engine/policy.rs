//! How many reads to keep in flight, and in which order: a policy per device.
//!
//! The storage a tree lives on decides how reading should go:
//!
//! - a network or user-space file system (NFS, SMB, FUSE, 9P, Ceph...): every open and every
//!   read is a round trip, so many requests in flight hide the latency: [`NETWORK_READERS`];
//! - flash (SSD, NVMe), memory, or a virtual disk: the device serves tens of requests at once
//!   and wants them: [`FLASH_READERS`];
//! - a spinning disk: parallel readers make the head seek between files, and throughput
//!   collapses (published measurements: 100-120 MB/s sequential falling to 10-20 MB/s with
//!   four readers), while reading in inode order, which on ext4 and XFS is close to the
//!   order of the data on disk, gains several times over walk order. So few readers
//!   ([`ROTATIONAL_READERS`]), taking files in inode order within a short lookahead.
//!
//! The kernel's rotational flag alone is not trusted: virtual disks (virtio `vd*`, Xen
//! `xvd*`) and disks of a virtual machine report "rotational" for what is usually flash or
//! network storage behind the hypervisor. A disk counts as spinning only when it says so and
//! is neither virtual nor seen from inside a virtual machine; everything else is treated as
//! flash, which on a real spinning disk is slower but never wrong. `--io-threads N` overrides
//! the count (1 reads strictly one file at a time); `-v` shows the choice and why.
//!
//! The decision is taken once per run, from the first input; [`classify`] is pure (it takes
//! the facts, not the system), so the rules are unit-tested here.

use std::path::Path;
use std::time::Duration;

/// Readers on a network or user-space file system. On a FUSE passthrough adding 10 ms to
/// every open and read, 1,000 files of 16 KiB took 0.77 s with `xargs -P64 cat` against
/// 1.5 s with `-P16`: round trips want many in flight.
pub const NETWORK_READERS: usize = 64;

/// Readers on flash, memory or a virtual disk. Chosen from `benches/cold.sh` on this
/// project's machines (2 cores, a virtio disk backed by flash): cold trees of 4 KiB files
/// read fastest with 32 requests in flight; 64 gained nothing more and cost memory.
pub const FLASH_READERS: usize = 32;

/// Readers on a spinning disk: one opening the next file while the other reads.
pub const ROTATIONAL_READERS: usize = 2;

/// How many requests, on a spinning disk, a reader looks ahead for the smallest inode.
pub const INODE_LOOKAHEAD: usize = 64;

/// In which order readers take files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOrder {
    /// The order of the walk (of the list).
    Walk,
    /// The smallest inode number first, among the next `lookahead` files.
    Inode {
        /// How far ahead to look.
        lookahead: usize,
    },
}

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

/// The I/O settings of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoPolicy {
    /// Reader threads: requests in flight.
    pub readers: usize,
    /// In which order they take files.
    pub order: ReadOrder,
    /// Give up on a file that makes no progress for this long (`--stall-timeout`).
    pub stall_timeout: Option<Duration>,
    /// A network file system: every open and read is a round trip, so every reader works
    /// all the time.
    pub network: bool,
    /// What the storage was taken for, and why, for `-v`.
    pub reason: String,
}

impl Default for IoPolicy {
    /// Flash-like: what a library caller gets without a device to look at.
    fn default() -> IoPolicy {
        IoPolicy {
            readers: FLASH_READERS,
            order: ReadOrder::Walk,
            stall_timeout: None,
            network: false,
            reason: "default".into(),
        }
    }
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

/// The policy for a device class; `readers` (`--io-threads`) overrides the count.
pub fn policy(class: &DeviceClass, readers: Option<usize>, stall: Option<Duration>) -> IoPolicy {
    let (default, order, what) = match class {
        DeviceClass::Network(name) => (
            NETWORK_READERS,
            ReadOrder::Walk,
            format!("{name}: a network or user-space file system"),
        ),
        DeviceClass::Rotational(disk) => (
            ROTATIONAL_READERS,
            ReadOrder::Inode {
                lookahead: INODE_LOOKAHEAD,
            },
            format!("{disk}: a spinning disk"),
        ),
        DeviceClass::Flash(disk) => (
            FLASH_READERS,
            ReadOrder::Walk,
            format!("{disk}: flash (not rotational)"),
        ),
        DeviceClass::Virtual(disk) => (
            FLASH_READERS,
            ReadOrder::Walk,
            format!("{disk}: says rotational, but is a virtual disk: taken for flash"),
        ),
        DeviceClass::Other => (
            FLASH_READERS,
            ReadOrder::Walk,
            "no block device (memory or a virtual file system): taken for flash".into(),
        ),
    };
    let readers = readers.unwrap_or(default).max(1);
    let order_text = match order {
        ReadOrder::Walk => "walk order",
        ReadOrder::Inode { .. } => "inode order",
    };
    let count = match readers {
        1 => "1 reader (one file at a time)".to_string(),
        n => format!("{n} readers"),
    };
    IoPolicy {
        readers,
        order,
        stall_timeout: stall,
        network: matches!(class, DeviceClass::Network(_)),
        reason: format!("{count} in {order_text}; {what}"),
    }
}

/// The policy for the storage `path` is on, within the descriptors the process may open.
pub fn for_path(path: &Path, readers: Option<usize>, stall: Option<Duration>) -> IoPolicy {
    let budget = descriptor_budget();
    crate::engine::source::limit_dir_handles(dir_handles_for(budget));
    within_descriptors(policy(&classify(&facts_of(path)), readers, stall), budget)
}

/// Descriptors kept for what is not a reader's: the walk (walkdir keeps up to 10
/// directories open), the manifests of `-o` and `--update`, the signal watchdog's pipe.
const RESERVED_DESCRIPTORS: usize = 16;

/// Descriptors a reader may hold at once: the file it reads, a large file it handed over
/// and not yet closed, a directory handle.
const DESCRIPTORS_PER_READER: usize = 4;

/// `policy` with no more readers than `budget` descriptors (those the process may still
/// open) can serve: with `ulimit -n 32`, a run of 32 readers would fail files with "Too many
/// open files" where `sha256sum` works.
pub fn within_descriptors(mut policy: IoPolicy, budget: usize) -> IoPolicy {
    let most = (budget.saturating_sub(RESERVED_DESCRIPTORS) / DESCRIPTORS_PER_READER).max(1);
    if policy.readers > most {
        policy.readers = most;
        policy.reason = format!(
            "{}; {most} reader{} at most within the limit of open files",
            policy.reason,
            if most == 1 { "" } else { "s" }
        );
    }
    policy
}

/// Directory handles a walk may keep open within `budget` descriptors: at most 256, and
/// a quarter of what is left.
pub fn dir_handles_for(budget: usize) -> usize {
    (budget.saturating_sub(RESERVED_DESCRIPTORS) / 4).min(256)
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
/// waits on a local disk at worst, never on a server that may not answer.
pub fn maps_safely(file: &std::fs::File) -> bool {
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
    fn policies_and_the_override() {
        let hdd = policy(&DeviceClass::Rotational("sda".into()), None, None);
        assert_eq!(hdd.readers, ROTATIONAL_READERS);
        assert!(matches!(hdd.order, ReadOrder::Inode { .. }));
        let vda = policy(&DeviceClass::Virtual("vda".into()), None, None);
        assert_eq!((vda.readers, vda.order), (FLASH_READERS, ReadOrder::Walk));
        let nfs = policy(&DeviceClass::Network("NFS"), None, None);
        assert_eq!(nfs.readers, NETWORK_READERS);
        let one = policy(&DeviceClass::Flash("nvme0n1".into()), Some(1), None);
        assert_eq!(one.readers, 1);
        assert!(
            one.reason
                .starts_with("1 reader (one file at a time) in walk order"),
            "{}",
            one.reason
        );
        assert!(vda.reason.contains("vda"), "{}", vda.reason);
    }

    #[test]
    fn readers_fit_in_the_descriptors_left() {
        let flash = || policy(&DeviceClass::Flash("nvme0n1".into()), None, None);
        assert_eq!(within_descriptors(flash(), 1 << 20).readers, FLASH_READERS);
        // ulimit -n 64: 60 left, 16 reserved, 4 per reader.
        let at_64 = within_descriptors(flash(), 60);
        assert_eq!(at_64.readers, 11);
        assert!(
            at_64.reason.contains("limit of open files"),
            "{}",
            at_64.reason
        );
        // However few are left, one reader reads (as sha256sum does, one file at a time).
        assert_eq!(within_descriptors(flash(), 20).readers, 1);
        assert_eq!(within_descriptors(flash(), 0).readers, 1);
        assert_eq!(dir_handles_for(1 << 20), 256);
        assert_eq!(dir_handles_for(28), 3);
        assert_eq!(dir_handles_for(10), 0);
    }

    #[test]
    fn this_machine_is_classified_without_error() {
        let facts = facts_of(Path::new("."));
        let _ = classify(&facts);
        assert_ne!(facts.fs_type, 0);
    }
}
