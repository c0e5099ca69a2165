//! From the parsed arguments of each command to its [`Config`]: defaults applied, and the
//! checks clap cannot express (options that contradict) made usage errors.

use std::path::PathBuf;

use clap::CommandFactory;

use super::{AuditArgs, CheckArgs, Cli, FormatArg, HashArgs, algorithm};
use crate::config::{
    AuditConfig, CheckConfig, Command, Config, FilesFrom, Format, HashConfig, UpdateConfig,
    Verbosity,
};
use crate::engine::read::HashOptions;
use crate::format::line::{Encoding, LineFormat, LineStyle};

pub(super) fn usage_error(message: impl std::fmt::Display) -> clap::Error {
    Cli::command().error(clap::error::ErrorKind::ArgumentConflict, message)
}

pub(super) fn check_config(args: CheckArgs) -> Result<Config, clap::Error> {
    let algorithm = algorithm::for_check(args.algorithm.as_deref(), args.length.as_deref())?;
    Ok(Config {
        jobs: args.pool.jobs(),
        tuning: args.pool.tuning(),
        io: args.pool.io(),
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
            algorithm,
            json: args.pool.format == FormatArg::Json,
            verbose: args.pool.verbose,
            progress: args.pool.progress(),
        }),
    })
}

pub(super) fn audit_config(args: AuditArgs) -> Result<Config, clap::Error> {
    let inputs = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths
    };
    Ok(Config {
        jobs: args.pool.jobs(),
        tuning: args.pool.tuning(),
        io: args.pool.io(),
        command: Command::Audit(AuditConfig {
            manifest: args.manifest,
            inputs,
            walk: args.walk.options(None)?,
            algorithm: algorithm::one(&args.algorithm, args.length.as_deref())?,
            zero: args.zero,
            json: args.pool.format == FormatArg::Json,
            progress: args.pool.progress(),
        }),
    })
}

pub(super) fn hash_config(args: HashArgs) -> Result<Config, clap::Error> {
    let algorithms = algorithm::list(&args.algorithm, args.length.as_deref())?;
    if !algorithms.is_single() && args.update.is_some() {
        return Err(usage_error(format!(
            "--update keeps a manifest of one algorithm (got {algorithms})"
        )));
    }
    let lines = LineFormat {
        // Untagged lines do not say their algorithm: several digests of a file must be told
        // apart, so they are tagged, as cksum writes them.
        style: if args.tag || !algorithms.is_single() {
            LineStyle::Bsd
        } else {
            LineStyle::Gnu
        },
        zero: args.zero,
        encoding: if args.base64 {
            Encoding::Base64
        } else {
            Encoding::Hex
        },
    };
    let format = match args.pool.format {
        FormatArg::Text => Format::Text(lines),
        // With --update, --tag, -z and --base64 shape the manifest, and JSON goes to stdout.
        FormatArg::Json if args.update.is_some() => Format::Json,
        FormatArg::Json if args.tag || args.zero || args.base64 => {
            return Err(usage_error(
                "--tag, --zero and --base64 do not apply to --format json",
            ));
        }
        FormatArg::Json => Format::Json,
    };
    let files_from = args.files_from.map(|list| FilesFrom {
        list,
        null: args.null,
    });
    // Like sha256sum, no PATH means standard input; a list of files replaces that default.
    // A manifest to update describes a tree: there, no PATH means the current directory.
    let inputs = if args.paths.is_empty() && files_from.is_none() {
        vec![PathBuf::from(if args.update.is_some() { "." } else { "-" })]
    } else {
        args.paths
    };
    let update = args.update.map(|manifest| UpdateConfig {
        manifest,
        lines,
        scrub: args.scrub.unwrap_or(0.0),
        prune: args.prune,
        checkpoint: match args.checkpoint {
            None => Some(crate::config::CHECKPOINT_DEFAULT),
            Some(every) if every.is_zero() => None,
            Some(every) => Some(every),
        },
        max_duration: args.max_duration,
    });
    Ok(Config {
        jobs: args.pool.jobs(),
        tuning: args.pool.tuning(),
        io: args.pool.io(),
        command: Command::Hash(HashConfig {
            inputs,
            files_from,
            walk: args.walk.options(args.shard.or(args.shard_index))?,
            format,
            hash: HashOptions {
                algorithm: algorithms,
                skip: Vec::new(),
            },
            output: args.output,
            update,
            verbose: args.pool.verbose,
            progress: args.pool.progress(),
        }),
    })
}
