//! The subcommands, one module each: what the user asked for, start to finish.
//!
//! A command takes its settings from [`crate::config`], builds the stream of work (a walk, a
//! checksum list, shard manifests), runs it on the [`crate::engine`], and is the one place
//! that writes its results (with [`crate::format`]) and records failures (in a
//! [`crate::report::Report`]). Every command has the same entry point, `run`, returning the
//! report that decides the exit code.
//!
//! Commands never import each other: what two of them need (the checksum-line parser, the
//! walk, the pool) lives a floor below, in `engine` or `format`.

pub mod audit;
pub mod check;
pub mod hash;
pub mod merge;
