//! The command line: clap derive types and their one conversion into a [`Config`].
//!
//! Nothing outside this module sees clap. Defaults that depend on the machine (the number of
//! threads) are resolved here, in [`Cli::into_action`], like fd's `construct_config`, and so
//! are the checks clap cannot express (an invalid `--exclude` glob is a usage error).

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::config::{Command, Config, IoSettings, MergeConfig};
use crate::digest::Algorithm;
use crate::engine::Tuning;
use crate::engine::walk::{Exclude, Shard, WalkOptions};
use crate::progress::ProgressMode;

mod algorithm;
mod convert;
mod values;

use convert::{audit_config, check_config, hash_config, usage_error};
use values::{
    parse_duration, parse_percent, parse_positive_duration, parse_rate, parse_seconds, parse_shard,
    parse_shard_index, parse_threads,
};

const HASH_HELP: &str = "\
Examples:
  sumpool hash ./artifacts > SHA256SUMS        hash a tree into a manifest
  sumpool hash -o SHA256SUMS .                 write it atomically, never hashing itself
  sumpool hash --exclude '*.tmp' --exclude .git src
  find . -name '*.iso' -print0 | sumpool hash --files-from - -0
  sumpool hash -a sha512 --tag big.iso         BSD line, as sha512sum --tag
  sumpool hash -a blake3 dir > SUMS.b3         as b3sum writes them; b3sum -c reads them
  sumpool hash -a blake2b -l 256 dir           as b2sum -l 256
  sumpool hash -a sha3 -l 256 --tag dir        as cksum -a sha3 -l 256
  sumpool hash -a sha256,md5 dir > SUMS        one read per file, two tagged lines; cksum -c SUMS
  sumpool hash -a md5 --base64 --tag dir       as cksum -a md5 --base64
  sumpool hash --format json dir | jq .        JSON Lines
  sumpool hash --update SHA256SUMS data        re-read only what changed since last time
  sumpool hash --update SHA256SUMS --scrub 10 data   and a tenth of the rest, oldest first

Exit status:
  0  every file was hashed
  1  at least one file could not be hashed (each one is reported on stderr)
  2  usage error, or a fatal error such as stdout that cannot be written
  3  --update found a corrupt file: its content changed while its size, times and inode did
     not: bit rot, or a write that bypassed the times (reported on stderr; its recorded
     digest is kept). 3 wins over 1
When the reader of stdout goes away early (as with `| head`), sumpool stops quietly with the
status it had so far: 0, or 1 if a failure was already reported. Stopped by SIGINT or
SIGTERM, it writes out whole lines only and ends by that signal (status 130 or 143).";

const CHECK_HELP: &str = "\
Examples:
  sumpool check SHA256SUMS                     verify, as sha256sum -c
  sumpool check MIXED                          tagged lines of several algorithms, as cksum -c
  sumpool check -a md5 MD5SUMS                 untagged MD5 lines, as md5sum -c
  sumpool check -a blake3 SUMS.b3              as b3sum -c
  sumpool check --quiet --ignore-missing SHA256SUMS
  sumpool hash -z dir > SUMS0 && sumpool check -z SUMS0

Exit status:
  0  every listed file was read and matched
  1  a file did not match or could not be read, a list could not be read or had no valid
     line, or (with --strict) a line was improperly formatted
  2  usage error, or a fatal error such as stdout that cannot be written";

const AUDIT_HELP: &str = "\
Examples:
  sumpool audit SHA256SUMS                     compare the current directory with SHA256SUMS
  sumpool audit SHA256SUMS data                only the data/... lines, against the data tree
  sumpool audit --format json SHA256SUMS | jq 'select(.type == \"moved\")'

A file is unchanged, changed (another digest), missing (listed, not on disk), new (on disk,
not listed), or moved (a listed path that is gone, whose digest now appears at a path that is
not listed; a copy whose original is still there is new). A leading ./ is ignored.

With the state lines of `hash --update`, a changed digest is corrupt (the file's size,
times and inode are as recorded: bit rot, or a write that bypassed the times, such as a
second write through a shared memory map) or modified (a write moved them). Corrupt files
are listed first.

Exit status:
  0  the tree matches the manifest
  1  any difference, a file that could not be read, or an improperly formatted line
  2  usage error, or a fatal error such as a manifest that cannot be opened
  3  a corrupt file (wins over 1)";

const MERGE_HELP: &str = "\
Examples:
  for k in 1 2 3; do sumpool hash --shard $k/3 data > part$k; done
  sumpool merge part3 part1 part2 > SHA256SUMS   same bytes as: sumpool hash data

The shard manifests are read as streams, one line of each at a time. Each starts with a
comment line naming its shard (# sumpool shard K/N, which sha256sum -c skips): a shard given
twice, or missing, is named and nothing is merged. A path listed in two inputs (parts of two
different splits) stops the merge.

Exit status:
  0  merged
  1  the inputs are not the parts of one run: a missing or doubled shard, or a path listed
     twice (the message names the inputs)
  2  usage error, or an input that is not a manifest in walk order";

/// Checksum large trees of files in parallel, with SHA-256 or any algorithm of the *sum tools
/// (MD5, SHA-1, SHA-2, SHA-3, BLAKE2b, BLAKE3), in the exact format of GNU sha256sum, md5sum,
/// b2sum, cksum and b3sum, and verify them later.
#[derive(Debug, Parser)]
#[command(name = "sumpool", version, about, after_help = HASH_HELP, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Hash files and directory trees, printing one sha256sum (md5sum, b2sum, b3sum...) line per
    /// file
    #[command(after_help = HASH_HELP)]
    Hash(HashArgs),
    /// Verify files against checksum lists, exactly like `sha256sum -c` and `cksum -c`
    #[command(after_help = CHECK_HELP)]
    Check(CheckArgs),
    /// Compare a tree with a manifest: changed, moved, new and missing files
    #[command(after_help = AUDIT_HELP)]
    Audit(AuditArgs),
    /// Merge shard manifests (hash --shard) into the manifest one run would print
    #[command(after_help = MERGE_HELP)]
    Merge(MergeArgs),
    /// Print a shell completion script
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff)
    Man,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
enum FormatArg {
    /// sha256sum-compatible text
    #[default]
    Text,
    /// JSON Lines: one object per file, then a summary
    Json,
}

/// How to walk trees, shared by `hash` and `audit`.
#[derive(Debug, Args)]
struct WalkArgs {
    /// Follow symlinks met inside directories (symlinks named as PATH are always followed)
    #[arg(short = 'L', long)]
    follow: bool,

    /// Skip entries matching GLOB, matched against the path relative to the walked argument
    /// and against the base name; a matching directory is not entered. Repeatable
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,

    /// Descend at most N levels: 1 takes only the argument's own entries
    #[arg(long, value_name = "N")]
    max_depth: Option<usize>,

    /// Do not descend into directories on other file systems
    #[arg(short = 'x', long)]
    one_file_system: bool,
}

impl WalkArgs {
    /// The walk these options ask for; an invalid glob is a usage error.
    fn options(&self, shard: Option<Shard>) -> Result<WalkOptions, clap::Error> {
        let exclude = if self.exclude.is_empty() {
            None
        } else {
            let exclude = Exclude::new(&self.exclude)
                .map_err(|e| usage_error(format!("invalid --exclude pattern: {e}")))?;
            Some(Arc::new(exclude))
        };
        Ok(WalkOptions {
            follow_links: self.follow,
            exclude,
            max_depth: self.max_depth,
            one_file_system: self.one_file_system,
            dir_handles: true,
            shard,
            own: Default::default(),
        })
    }
}

/// Options shared by every subcommand that hashes.
#[derive(Debug, Args)]
struct PoolArgs {
    /// Number of worker threads [default: the available parallelism]
    #[arg(short = 'j', long, value_name = "N", value_parser = parse_threads)]
    jobs: Option<NonZeroUsize>,

    /// Show a progress bar on stderr even when it is not a terminal
    #[arg(long, overrides_with = "no_progress")]
    progress: bool,

    /// Never show a progress bar [default: shown when stderr is a terminal and stdout is not]
    #[arg(long, overrides_with = "progress")]
    no_progress: bool,

    /// Print a summary on stderr at the end: counts, bytes, time, throughput
    #[arg(short = 'v', long)]
    verbose: bool,

    /// Output format
    #[arg(long, value_enum, default_value_t, value_name = "FORMAT")]
    format: FormatArg,

    /// Most files per batch dispatched to the pool (for benchmarking the pool)
    #[arg(long, value_name = "N", hide = true)]
    batch_size: Option<NonZeroUsize>,

    /// Most files in flight between the walk and the output (for benchmarking the pool)
    #[arg(long, value_name = "N", hide = true)]
    window: Option<NonZeroUsize>,

    /// Files each worker hashes at once, 1 to 4 (for benchmarking and testing the lanes)
    #[arg(long, value_name = "N", hide = true)]
    lanes: Option<NonZeroUsize>,

    /// Reads in flight: reader threads that open and read files while the workers hash
    /// [default: 64 on a network file system, 2 on a spinning disk, 32 otherwise]. 1 reads
    /// one file at a time
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    io_threads: Option<NonZeroUsize>,

    /// Report a file that makes no progress for SECONDS as a failure (timed out) and go on
    /// with the rest; its stuck read is left to the kernel [default: wait forever]
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    stall_timeout: Option<Duration>,

    /// Read at most RATE bytes per second over the run: 500K, 200M, 1.5G (K, M, G, T are
    /// powers of 1024, as rsync reads them; KB, MB, GB, TB powers of 1000; at least 4K).
    /// Large files are then read rather than mapped, and the kernel is not asked to read
    /// ahead; -v reports the rate achieved
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    bwlimit: Option<u64>,

    /// Leave the page cache as it was found: pages of files this run brings into it are
    /// dropped as soon as they are hashed (window by window in large files), and pages
    /// that were cached before stay cached. For runs beside a service that needs its cache
    #[arg(long)]
    nocache: bool,
}

impl PoolArgs {
    fn tuning(&self) -> Tuning {
        let default = Tuning::default();
        Tuning {
            batch_size: self
                .batch_size
                .map_or(default.batch_size, NonZeroUsize::get),
            window: self.window.map_or(default.window, NonZeroUsize::get),
            lanes: self.lanes.map_or(default.lanes, NonZeroUsize::get),
        }
    }

    fn io(&self) -> IoSettings {
        IoSettings {
            readers: self.io_threads.map(NonZeroUsize::get),
            stall_timeout: self.stall_timeout,
            bwlimit: self.bwlimit,
            nocache: self.nocache,
        }
    }

    fn jobs(&self) -> usize {
        self.jobs
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get)
    }

    fn progress(&self) -> ProgressMode {
        if self.progress {
            ProgressMode::Always
        } else if self.no_progress {
            ProgressMode::Never
        } else {
            ProgressMode::Auto
        }
    }
}

#[derive(Debug, Args)]
struct HashArgs {
    /// Files and directories to hash; `-` reads standard input, as does no PATH at all
    /// (unless --files-from is given). Directories are walked recursively, the entries of
    /// each in byte order of their names
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// Hash algorithm: md5, sha1, sha224, sha256, sha384, sha512, sha2 (with -l), sha3 (with
    /// -l), sha3-224, sha3-256, sha3-384, sha3-512, blake2b, blake3. Several (`-a sha256,md5`,
    /// or -a again) are computed from one read of each file, and print one tagged line each,
    /// in the order given
    #[arg(
        short = 'a',
        long,
        value_name = "ALGORITHM",
        value_delimiter = ',',
        action = clap::ArgAction::Append,
        default_value = "sha256"
    )]
    algorithm: Vec<String>,

    #[arg(short = 'l', long, value_name = "BITS", help = algorithm::LENGTH_HELP, overrides_with = "length")]
    length: Option<String>,

    /// Print BSD-style lines, as cksum: SHA256 (NAME) = DIGEST
    #[arg(long)]
    tag: bool,

    /// Write digests in base64 (padded), as cksum --base64, instead of hex
    #[arg(long)]
    base64: bool,

    /// End each line with NUL instead of newline, and do not escape names
    #[arg(short = 'z', long)]
    zero: bool,

    /// Write the manifest to FILE instead of stdout; FILE itself is never hashed. A regular
    /// file (or a new name, or a symlink to either) is replaced atomically: a temporary file
    /// renamed into place once the run completed, then the directory synced. A device, FIFO
    /// or socket is written as a shell redirection would (`-o /dev/null`); `-` is stdout
    #[arg(short = 'o', long, value_name = "FILE", conflicts_with = "update")]
    output: Option<PathBuf>,

    /// Bring MANIFEST up to date with the tree [PATH default: .]: a file whose size, times
    /// and inode are as recorded keeps its digest without being read; the rest is hashed.
    /// Lines of files this run does not look at (outside the PATHs, excluded, other shards,
    /// unreadable) are kept as they were; lines of files that are gone are dropped. MANIFEST
    /// is replaced atomically, as with -o, and stays a manifest sha256sum -c reads. A file
    /// that holds no checksum line is refused, not replaced
    #[arg(long, value_name = "MANIFEST")]
    update: Option<PathBuf>,

    /// With --update: drop the lines of files outside this run's scope (other paths,
    /// excluded names, other shards) instead of keeping them, so that the manifest lists
    /// exactly what this run covers
    #[arg(long, requires = "update")]
    prune: bool,

    /// With --update: also read again PERCENT of the files that could be skipped, those
    /// verified longest ago first, to catch silent corruption (10 reads the whole tree over
    /// ten runs)
    #[arg(long, value_name = "PERCENT", requires = "update", value_parser = parse_percent)]
    scrub: Option<f64>,

    /// With --update: replace MANIFEST every DURATION (90s, 15m, 2h) with what is known so
    /// far: the lines of the files verified, every line not reached yet as it was, and the
    /// new files found. A run killed at any moment loses at most DURATION of work, and the
    /// next one does not read again what was verified before. 0 never [default: 5m, and
    /// never more often than 50 times what the last checkpoint took]
    #[arg(long, value_name = "DURATION", requires = "update", value_parser = parse_duration)]
    checkpoint: Option<Duration>,

    /// With --update: start no file after DURATION (90s, 15m, 2h), let the files in flight
    /// finish (or give them up after a grace of 5% of DURATION, 1 s to 1 min), and write
    /// MANIFEST as a checkpoint does. The next run starts where this one stopped: nightly
    /// runs of --scrub 100 --max-duration 1h read the whole tree over successive nights
    #[arg(long, value_name = "DURATION", requires = "update", value_parser = parse_positive_duration)]
    max_duration: Option<Duration>,

    #[command(flatten)]
    walk: WalkArgs,

    /// Also hash the paths listed in FILE (`-` for stdin), one per line, after the PATHs
    #[arg(long, value_name = "FILE")]
    files_from: Option<PathBuf>,

    /// With --files-from: paths are NUL-separated, as `find -print0` writes them
    #[arg(short = '0', long, requires = "files_from")]
    null: bool,

    /// Hash only shard K of N (K from 1 to N): the files whose path, relative to the walked
    /// argument, falls in part K by a stable hash. The N shards are disjoint and cover the
    /// tree; `sumpool merge` puts their manifests back together
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    shard: Option<Shard>,

    /// The same split as --shard, with the part counted from 0 (I from 0 to N-1; --shard-index
    /// I/N is --shard I+1/N), as a Kubernetes Indexed Job numbers its pods in
    /// JOB_COMPLETION_INDEX: a container without a shell cannot add 1
    #[arg(long, value_name = "I/N", value_parser = parse_shard_index, conflicts_with = "shard")]
    shard_index: Option<Shard>,

    #[command(flatten)]
    pool: PoolArgs,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// Checksum lists (sha256sum or BSD-tagged lines); `-` or nothing reads standard input
    #[arg(value_name = "FILE")]
    lists: Vec<PathBuf>,

    /// Accept only lines of this algorithm (tagged with it, or untagged), as cksum -a
    /// ALGORITHM -c does; sha2, sha3 and blake2b without -l take any length their lines say
    /// [default: a tagged line names its algorithm; an untagged one is SHA-2, told by its
    /// length]
    #[arg(
        short = 'a',
        long,
        value_name = "ALGORITHM",
        overrides_with = "algorithm"
    )]
    algorithm: Option<String>,

    /// With -a blake2b, sha2 or sha3: accept only lines of this digest length in bits
    #[arg(short = 'l', long, value_name = "BITS", overrides_with = "length")]
    length: Option<String>,

    /// Do not print OK for each successfully verified file
    #[arg(long, overrides_with_all = ["status", "warn"])]
    quiet: bool,

    /// Print nothing on stdout; the exit status shows success
    #[arg(long, overrides_with_all = ["quiet", "warn"])]
    status: bool,

    /// Warn about each improperly formatted checksum line
    #[arg(short = 'w', long, overrides_with_all = ["quiet", "status"])]
    warn: bool,

    /// Exit non-zero for improperly formatted checksum lines
    #[arg(long)]
    strict: bool,

    /// Do not fail or report status for missing files
    #[arg(long)]
    ignore_missing: bool,

    /// Lists are NUL-terminated, as `sumpool hash -z` writes them
    #[arg(short = 'z', long)]
    zero: bool,

    #[command(flatten)]
    pool: PoolArgs,
}

#[derive(Debug, Args)]
struct AuditArgs {
    /// The manifest to compare with (sha256sum or BSD-tagged lines; `-` for stdin)
    #[arg(value_name = "MANIFEST")]
    manifest: PathBuf,

    /// Trees to compare [default: .]
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// The manifest's algorithm (one; see hash --help for the names)
    #[arg(
        short = 'a',
        long,
        default_value = "sha256",
        value_name = "ALGORITHM",
        overrides_with = "algorithm"
    )]
    algorithm: String,

    #[arg(short = 'l', long, value_name = "BITS", help = algorithm::LENGTH_HELP, overrides_with = "length")]
    length: Option<String>,

    /// The manifest's lines end in NUL (hash -z)
    #[arg(short = 'z', long)]
    zero: bool,

    #[command(flatten)]
    walk: WalkArgs,

    #[command(flatten)]
    pool: PoolArgs,
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// Shard manifests, in any order (`-` for stdin)
    #[arg(value_name = "FILE", required = true)]
    inputs: Vec<PathBuf>,

    /// The manifests' lines end in NUL (hash -z)
    #[arg(short = 'z', long)]
    zero: bool,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Action {
    /// Hash, check, audit or merge.
    Run(Box<Config>),
    /// Print a completion script for this shell.
    Completions(clap_complete::Shell),
    /// Print the manual page.
    Man,
}

impl Cli {
    /// Converts the parsed command line into what to do, applying every default. A usage
    /// error that clap cannot see (an invalid glob, options that contradict) is returned as
    /// a clap error, so it is printed and exits like any other usage error.
    pub fn into_action(self) -> Result<Action, clap::Error> {
        let config = match self.command {
            CliCommand::Completions { shell } => return Ok(Action::Completions(shell)),
            CliCommand::Man => return Ok(Action::Man),
            CliCommand::Hash(args) => hash_config(args)?,
            CliCommand::Audit(args) => audit_config(args)?,
            CliCommand::Merge(args) => Config {
                jobs: 1,
                tuning: Tuning::default(),
                io: IoSettings::default(),
                command: Command::Merge(MergeConfig {
                    inputs: args.inputs,
                    zero: args.zero,
                }),
            },
            CliCommand::Check(args) => check_config(args)?,
        };
        Ok(Action::Run(Box::new(config)))
    }

    /// The clap definition, for completions and the manual page.
    pub fn definition() -> clap::Command {
        Cli::command()
    }

    /// Parses the process's arguments. `-V` and `--version` print [`version_text`]: the
    /// version, and the SHA-256 path this CPU takes, as ripgrep's `--version` lists its SIMD
    /// features, since a bug report or a benchmark means little without it.
    pub fn parse_args() -> Result<Cli, clap::Error> {
        static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let text = TEXT.get_or_init(version_text).as_str();
        let matches = Cli::command().version(text).try_get_matches()?;
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches)
    }
}

/// What `sumpool --version` prints after the name: the version, the code each algorithm runs
/// on this CPU (the SHA-256 path first, with its lanes), and how the binary was built.
pub fn version_text() -> String {
    // Measured here, now (`engine::calibrate`): what interleaving gains depends on the CPU.
    let sha = &crate::engine::calibrate::sha_path().reason;
    let linking = if cfg!(target_feature = "crt-static") {
        "statically linked"
    } else {
        "dynamically linked"
    };
    let mut text = format!("{}\nSHA-256: {sha}\n", env!("CARGO_PKG_VERSION"));
    // One line per crate path: SHA-384 runs SHA-512's code, the SHA-3 lengths one Keccak.
    let paths = [
        ("SHA-224", Algorithm::Sha224),
        ("SHA-384, SHA-512", Algorithm::Sha512),
        ("SHA-1", Algorithm::Sha1),
        ("MD5", Algorithm::Md5),
        ("SHA-3", Algorithm::Sha3_256),
        (
            "BLAKE2b",
            Algorithm::Blake2b(crate::digest::Blake2bLen::MAX),
        ),
        ("BLAKE3", Algorithm::Blake3),
    ];
    for (name, algorithm) in paths {
        text.push_str(&format!("{name}: {}\n", algorithm.implementation()));
    }
    text.push_str(&format!(
        "build: {}-{}, {linking}",
        std::env::consts::ARCH,
        std::env::consts::OS
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Format, Verbosity};
    use crate::digest::Algorithms;
    use crate::format::line::{Encoding, LineStyle};

    fn config(args: &[&str]) -> Config {
        let cli =
            Cli::try_parse_from(std::iter::once("sumpool").chain(args.iter().copied())).unwrap();
        match cli.into_action().unwrap() {
            Action::Run(config) => *config,
            other => panic!("not a run: {other:?}"),
        }
    }

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_and_flags_reach_the_config() {
        let config = config(&["hash", "-j", "3", "--tag", "-z", "-L", "-a", "sha512", "a"]);
        assert_eq!(config.jobs, 3);
        let Command::Hash(hash) = config.command else {
            panic!("not hash")
        };
        assert_eq!(hash.inputs, vec![PathBuf::from("a")]);
        assert!(hash.walk.follow_links);
        assert_eq!(hash.hash.algorithm, Algorithms::one(Algorithm::Sha512));
        let Format::Text(format) = hash.format else {
            panic!("not text")
        };
        assert_eq!(format.style, LineStyle::Bsd);
        assert!(format.zero);
        assert_eq!(format.encoding, Encoding::Hex);
    }

    #[test]
    fn no_path_means_stdin_unless_a_list_is_given() {
        let Command::Hash(hash) = config(&["hash"]).command else {
            panic!()
        };
        assert_eq!(hash.inputs, vec![PathBuf::from("-")]);
        let Command::Hash(hash) = config(&["hash", "--files-from", "l"]).command else {
            panic!()
        };
        assert!(hash.inputs.is_empty());
    }

    #[test]
    fn last_of_status_warn_quiet_wins() {
        let verbosity = |args: &[&str]| match config(&[&["check"], args].concat()).command {
            Command::Check(check) => check.verbosity,
            _ => panic!("not check"),
        };
        assert_eq!(verbosity(&[]), Verbosity::Normal);
        assert_eq!(verbosity(&["--warn", "--quiet"]), Verbosity::Quiet);
        assert_eq!(verbosity(&["--quiet", "--warn"]), Verbosity::Warn);
        assert_eq!(verbosity(&["--status", "-w"]), Verbosity::Warn);
        assert_eq!(verbosity(&["-w", "--status"]), Verbosity::Status);
        assert_eq!(verbosity(&["--status", "--quiet"]), Verbosity::Quiet);
    }

    #[test]
    fn usage_errors() {
        assert!(Cli::try_parse_from(["sumpool", "hash", "-j", "0"]).is_err());
        assert!(Cli::try_parse_from(["sumpool", "hash", "-0"]).is_err());
        let bad_glob = Cli::try_parse_from(["sumpool", "hash", "--exclude", "a[", "."]).unwrap();
        assert!(bad_glob.into_action().is_err());
        let json_tag =
            Cli::try_parse_from(["sumpool", "hash", "--format", "json", "--tag"]).unwrap();
        assert!(json_tag.into_action().is_err());
    }
}
