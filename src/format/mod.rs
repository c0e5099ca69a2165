//! Bytes in and out: the formats sumpool writes and reads, as pure functions over bytes.
//!
//! - [`line`](mod@line): `sha256sum` lines (GNU and BSD), GNU escaping of names, and the stdout
//!   writer.
//! - [`parse`]: the checksum-line parser, shared by `check`, `audit` and `merge`.
//! - [`manifest`]: a manifest read into a compact index, with its state records.
//! - [`entries`]: a manifest read entry by entry, as bytes to copy (merges), and walk order.
//! - [`records`]: delimited records (lines, NUL-terminated names) from a stream, bounded.
//! - [`json`]: JSON Lines, with lossless paths.
//! - [`quote`]: names in diagnostics, quoted as GNU tools quote them.
//! - [`state`]: the state lines `hash --update` keeps in a manifest.
//!
//! Nothing here opens files, walks trees or knows about threads, failures or exit codes;
//! callers hand in bytes and a writer.

pub mod entries;
pub mod json;
pub mod line;
pub mod manifest;
pub mod parse;
pub mod quote;
pub mod records;
pub mod state;
