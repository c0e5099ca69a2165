//! The command line: clap derive types and their one conversion into a [`Config`].
//!
//! Nothing outside this module sees clap. Defaults that depend on the machine (the number of
//! threads) are resolved here, in [`Cli::into_config`], like fd's `construct_config`.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{CheckConfig, Command, Config, HashConfig, Verbosity};
use crate::output::{LineFormat, LineStyle};
use crate::pool::Tuning;
use crate::walk::WalkOptions;

const EXIT_CODES: &str = "\
Exit status:
  0  every file was hashed
  1  at least one file could not be hashed (each one is reported on stderr)
  2  usage error, or a fatal error such as stdout that cannot be written
When the reader of stdout goes away early (as with `| head`), sumpool stops quietly with the
status it had so far: 0, or 1 if a failure was already reported.";

/// Checksum large trees of files with SHA-256, in parallel, in the exact format of
/// GNU sha256sum.
#[derive(Debug, Parser)]
#[command(name = "sumpool", version, about, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Hash files and directory trees, printing one sha256sum line per file
    #[command(after_help = EXIT_CODES)]
    Hash(HashArgs),
    /// Verify files against checksum lists, exactly like `sha256sum -c`
    #[command(after_help = CHECK_EXIT_CODES)]
    Check(CheckArgs),
}

const CHECK_EXIT_CODES: &str = "\
Exit status:
  0  every listed file was read and matched
  1  a file did not match or could not be read, a list could not be read or had no valid
     line, or (with --strict) a line was improperly formatted
  2  usage error, or a fatal error such as stdout that cannot be written";

#[derive(Debug, Args)]
struct CheckArgs {
    /// Checksum lists (sha256sum or BSD-tagged lines); `-` or nothing reads standard input
    #[arg(value_name = "FILE")]
    lists: Vec<PathBuf>,

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

/// Options shared by every subcommand that hashes.
#[derive(Debug, Args)]
struct PoolArgs {
    /// Number of worker threads [default: the available parallelism]
    #[arg(short = 'j', long, value_name = "N")]
    jobs: Option<NonZeroUsize>,

    /// Most files per batch dispatched to the pool (for benchmarking the pool)
    #[arg(long, value_name = "N", hide = true)]
    batch_size: Option<NonZeroUsize>,

    /// Most files in flight between the walk and the output (for benchmarking the pool)
    #[arg(long, value_name = "N", hide = true)]
    window: Option<NonZeroUsize>,
}

impl PoolArgs {
    fn tuning(&self) -> Tuning {
        let default = Tuning::default();
        Tuning {
            batch_size: self
                .batch_size
                .map_or(default.batch_size, NonZeroUsize::get),
            window: self.window.map_or(default.window, NonZeroUsize::get),
        }
    }
}

#[derive(Debug, Args)]
struct HashArgs {
    /// Files and directories to hash; `-` or nothing reads standard input. Directories are
    /// walked recursively, entries in byte order of their names
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// Follow symlinks met inside directories (symlinks named as PATH are always followed)
    #[arg(short = 'L', long)]
    follow: bool,

    /// Print BSD-style lines: SHA256 (NAME) = HEX
    #[arg(long)]
    tag: bool,

    /// End each line with NUL instead of newline, and do not escape names
    #[arg(short = 'z', long)]
    zero: bool,

    /// Print a summary on stderr at the end: files and bytes hashed, time, throughput,
    /// skipped symlinks and special files, failures
    #[arg(short = 'v', long)]
    verbose: bool,

    #[command(flatten)]
    pool: PoolArgs,
}

impl Cli {
    /// Converts the parsed command line into a [`Config`], applying every default.
    pub fn into_config(self) -> Config {
        match self.command {
            CliCommand::Hash(args) => Config {
                jobs: jobs(&args.pool),
                tuning: args.pool.tuning(),
                command: Command::Hash(HashConfig {
                    inputs: args.paths,
                    walk: WalkOptions {
                        follow_links: args.follow,
                    },
                    format: LineFormat {
                        style: if args.tag {
                            LineStyle::Bsd
                        } else {
                            LineStyle::Gnu
                        },
                        zero: args.zero,
                        tag: "SHA256",
                    },
                    verbose: args.verbose,
                }),
            },
            CliCommand::Check(args) => Config {
                jobs: jobs(&args.pool),
                tuning: args.pool.tuning(),
                command: Command::Check(CheckConfig {
                    lists: args.lists,
                    // clap's overrides leave at most one of the three set: the last given.
                    verbosity: if args.status {
                        Verbosity::Status
                    } else if args.warn {
                        Verbosity::Warn
                    } else if args.quiet {
                        Verbosity::Quiet
                    } else {
                        Verbosity::Normal
                    },
                    strict: args.strict,
                    ignore_missing: args.ignore_missing,
                    zero: args.zero,
                }),
            },
        }
    }
}

fn jobs(args: &PoolArgs) -> usize {
    args.jobs
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_and_flags_reach_the_config() {
        let cli =
            Cli::try_parse_from(["sumpool", "hash", "-j", "3", "--tag", "-z", "-L", "a"]).unwrap();
        let config = cli.into_config();
        assert_eq!(config.jobs, 3);
        let Command::Hash(hash) = config.command else {
            panic!("not hash")
        };
        assert_eq!(hash.inputs, vec![PathBuf::from("a")]);
        assert!(hash.walk.follow_links);
        assert_eq!(hash.format.style, LineStyle::Bsd);
        assert!(hash.format.zero);
    }

    #[test]
    fn last_of_status_warn_quiet_wins() {
        let verbosity = |args: &[&str]| {
            let cli = Cli::try_parse_from(["sumpool", "check"].iter().chain(args)).unwrap();
            match cli.into_config().command {
                Command::Check(check) => check.verbosity,
                Command::Hash(_) => panic!("not check"),
            }
        };
        assert_eq!(verbosity(&[]), Verbosity::Normal);
        assert_eq!(verbosity(&["--warn", "--quiet"]), Verbosity::Quiet);
        assert_eq!(verbosity(&["--quiet", "--warn"]), Verbosity::Warn);
        assert_eq!(verbosity(&["--status", "-w"]), Verbosity::Warn);
        assert_eq!(verbosity(&["-w", "--status"]), Verbosity::Status);
        assert_eq!(verbosity(&["--status", "--quiet"]), Verbosity::Quiet);
    }

    #[test]
    fn zero_jobs_is_a_usage_error() {
        assert!(Cli::try_parse_from(["sumpool", "hash", "-j", "0"]).is_err());
    }
}
