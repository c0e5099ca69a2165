//! The run as a whole, over a storage whose faults the test controls: for random numbers of
//! readers, workers and lanes, random batch and window sizes, and files of every size that
//! take every path through the readers, with delays, short reads, cache misses, open and
//! read errors and files that change while read, the results come back in input order,
//! exact, each failure reported once, and no wait times out with its work ready. Runs on the
//! test thread, which is the run's calling thread.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use rustix::fs::Stat;
use sha2::Digest as _;

use crate::digest::Algorithms;
use crate::engine::policy::{self, DeviceClass};
use crate::engine::read::Hashing;
use crate::engine::run::{Completion, Engine, Plan, Sink, Then, Tuning, run};
use crate::engine::source::Source;
use crate::engine::storage::{Handle, Storage};
use crate::report::{Failure, Reason};

/// A sink from a function; `flush` does nothing.
struct FnSink<F>(F);

impl<R, E, F: FnMut(R) -> Result<(), E>> Sink<R> for FnSink<F> {
    type Error = E;
    fn put(&mut self, result: R) -> Result<(), E> {
        (self.0)(result)
    }
    fn flush(&mut self) -> Result<(), E> {
        Ok(())
    }
}

/// What a fake file does when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// Every read waits a moment, as on a slow disk.
    Slow,
    /// Reads return at most a few hundred bytes.
    Short,
    /// Reads that would wait say so (`RWF_NOWAIT`): cache misses.
    Miss,
    /// The open fails.
    NoOpen,
    /// A read of bytes past the first kilobyte fails.
    BadRead,
    /// Its size moves between the first status and the last.
    Grows,
}

#[derive(Debug, Clone)]
struct FakeFile {
    data: Arc<Vec<u8>>,
    fault: Fault,
    ino: u64,
}

/// A file system in memory, with faults.
#[derive(Debug, Default)]
struct Fake {
    files: HashMap<PathBuf, FakeFile>,
}

fn stat_of(size: u64, ino: u64) -> Stat {
    // SAFETY: a plain C struct of integers, for which all zeroes is a valid value.
    let mut stat: Stat = unsafe { std::mem::zeroed() };
    stat.st_mode = 0o100_644;
    stat.st_size = size as _;
    stat.st_ino = ino as _;
    stat.st_dev = 7;
    stat.st_mtime = 1_700_000_000;
    stat
}

impl Storage for Fake {
    fn open(&self, source: &Source) -> io::Result<Box<dyn Handle>> {
        let file = self
            .files
            .get(source.name())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        if file.fault == Fault::NoOpen {
            return Err(io::Error::from_raw_os_error(libc::EACCES));
        }
        Ok(Box::new(FakeHandle {
            file: file.clone(),
            stats: std::sync::atomic::AtomicU32::new(0),
        }))
    }

    fn stat(&self, source: &Source) -> io::Result<Stat> {
        let file = self
            .files
            .get(source.name())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        Ok(stat_of(file.data.len() as u64, file.ino))
    }
}

struct FakeHandle {
    file: FakeFile,
    stats: std::sync::atomic::AtomicU32,
}

impl Handle for FakeHandle {
    fn stat(&self) -> io::Result<Stat> {
        let n = self
            .stats
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let grown = u64::from(self.file.fault == Fault::Grows && n > 0);
        Ok(stat_of(self.file.data.len() as u64 + grown, self.file.ino))
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let data = &self.file.data;
        let start = (offset as usize).min(data.len());
        let mut n = buf.len().min(data.len() - start);
        match self.file.fault {
            Fault::Slow => std::thread::sleep(Duration::from_micros(300)),
            Fault::BadRead if start + n > 1024 => {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            _ => {}
        }
        if self.file.fault == Fault::Short {
            n = n.min(300);
        }
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn read_at_nowait(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        match self.file.fault {
            Fault::Miss => Err(io::ErrorKind::WouldBlock.into()),
            _ => self.read_at(buf, offset),
        }
    }

    fn read(&self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }

    fn will_need(&self, _offset: u64, _len: u64) {}

    fn mappable(&self) -> Option<&std::fs::File> {
        None
    }
}

/// Sizes that take every path: hashed by the reader, read whole, streamed in chunks (with
/// a last chunk that is not whole blocks).
const SIZES: [usize; 10] = [
    0,
    1,
    63,
    64,
    1023,
    1024,
    100_000,
    (1 << 20) + 1,
    (2 << 20) + 100,
    (3 << 20) + 64,
];

const FAULTS: [Fault; 7] = [
    Fault::None,
    Fault::Slow,
    Fault::Short,
    Fault::Miss,
    Fault::NoOpen,
    Fault::BadRead,
    Fault::Grows,
];

/// What the test expects of a file: its digest, or a failure.
fn expected(file: &FakeFile) -> Result<Vec<u8>, &'static str> {
    let len = file.data.len();
    match file.fault {
        Fault::NoOpen => Err("open"),
        Fault::BadRead if len > 1024 => Err("read"),
        // A file that grew (a status that moved) is changed, whatever its size.
        Fault::Grows => Err("changed"),
        _ => Ok(sha2::Sha256::digest(&file.data[..]).to_vec()),
    }
}

/// One item of the run: a file to hash, or a result known at once.
#[derive(Debug, Clone)]
enum Item {
    File(PathBuf),
    Known(u32),
}

#[derive(Debug)]
enum Got {
    Hashed(Vec<u8>),
    Failed(Failure),
    Known(u32),
}

fn files_strategy() -> impl Strategy<Value = Vec<(usize, usize, bool)>> {
    prop::collection::vec((0..SIZES.len(), 0..FAULTS.len(), any::<bool>()), 0..36)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, .. ProptestConfig::default() })]

    #[test]
    fn results_are_exact_in_order_and_each_failure_once(
        files in files_strategy(),
        readers in 1usize..9,
        workers in 1usize..4,
        lanes in prop::sample::select(vec![1usize, 2, 4]),
        batch_size in 1usize..65,
        window in prop::sample::select(vec![1usize, 3, 16, 4096]),
        network in any::<bool>(),
    ) {
        let mut fake = Fake::default();
        let mut items = Vec::new();
        for (i, &(size, fault, known_before)) in files.iter().enumerate() {
            if known_before {
                items.push(Item::Known(i as u32));
            }
            let name = PathBuf::from(format!("f{i:03}"));
            let data: Vec<u8> = (0..SIZES[size]).map(|j| (j * 31 + i * 17) as u8).collect();
            let file = FakeFile { data: Arc::new(data), fault: FAULTS[fault], ino: 100 + i as u64 };
            fake.files.insert(name.clone(), file);
            items.push(Item::File(name));
        }
        let pool = rayon::ThreadPoolBuilder::new().num_threads(workers).build().unwrap();
        let class = if network { DeviceClass::Network("NFS") } else { DeviceClass::Flash("vda".into()) };
        let io = policy::policy(&class, Some(readers), None);
        let tuning = Tuning { batch_size, window, lanes };
        let mut engine = Engine::new(&pool, tuning, io, Default::default());
        let fake = Arc::new(fake);
        engine.storage = Arc::clone(&fake) as Arc<dyn Storage>;
        let plan = |item: Item| match item {
            Item::Known(n) => Plan::Done(Got::Known(n)),
            Item::File(name) => Plan::Hash {
                source: Source::Path(name),
                algorithm: Algorithms::SHA256,
                unless: None,
                then: Then::Own(Box::new(|result: Result<Hashing, Failure>| match result {
                    Ok(Hashing::Hashed(hashed)) => Got::Hashed(hashed.digest.first().as_bytes().to_vec()),
                    Ok(other) => panic!("not hashed: {other:?}"),
                    Err(failure) => Got::Failed(failure),
                })),
            },
        };
        let mut got = Vec::new();
        let mut sink = FnSink(|r: Got| -> Result<(), ()> { got.push(r); Ok(()) });
        let completion = run(&engine, items.clone().into_iter(), plan, &mut sink);
        prop_assert_eq!(completion, Ok(Completion::Finished));
        prop_assert_eq!(got.len(), items.len());
        for (item, got) in items.iter().zip(&got) {
            match (item, got) {
                (Item::Known(a), Got::Known(b)) => prop_assert_eq!(a, b),
                (Item::File(name), result) => {
                    let want = expected(&fake.files[name]);
                    match (want, result) {
                        (Ok(digest), Got::Hashed(d)) => prop_assert_eq!(&digest, d, "{:?}", name),
                        (Err("changed"), Got::Failed(f)) => {
                            prop_assert!(matches!(f.reason, Reason::Changed), "{:?}: {:?}", name, f);
                        }
                        (Err(_), Got::Failed(f)) => {
                            prop_assert!(matches!(f.reason, Reason::Io(_)), "{:?}: {:?}", name, f);
                            prop_assert_eq!(f.path.as_path(), Path::new(name));
                        }
                        (want, result) => prop_assert!(false, "{:?}: want {:?}, got {:?}", name, want, result),
                    }
                }
                (item, result) => prop_assert!(false, "out of order: {:?} got {:?}", item, result),
            }
        }
        prop_assert_eq!(crate::engine::lost_wakeups(), 0, "a wait timed out with its work ready");
    }
}
