//! `-a/--algorithm` and `-l/--length`: from the words of a command line to the algorithms of a
//! run, with the usage errors worded as GNU `cksum` words them (coreutils 9.8, `src/digest.c`,
//! `main`; the quotes are those of a UTF-8 locale, as on this project's reference machines).
//!
//! `hash` takes a list (`-a sha256,md5`, or `-a` again) and needs one definite algorithm per
//! name; `audit` and `hash --update` take one; `check` takes one name that may stay a family
//! (`sha2`, `sha3`, `blake2b` without `-l`: the lines say their length, as `cksum -c` reads
//! them).

use crate::digest::{Algorithm, Algorithms, LengthError, ListError, Selector};

use super::usage_error;

/// The help text of `-l`, shared by the commands that take it.
pub const LENGTH_HELP: &str = "Digest length in bits: for blake2b a multiple of 8 up to 512 \
                               [default: 512]; for sha2 and sha3 224, 256, 384 or 512";

/// What `-a NAME` names, or GNU's message for a name it does not know.
pub fn selector(name: &str) -> Result<Selector, clap::Error> {
    Selector::from_name(name).ok_or_else(|| {
        let valid: String = Selector::NAMES
            .iter()
            .map(|name| format!("\n  - ‘{name}’"))
            .collect();
        usage_error(format!(
            "invalid argument ‘{name}’ for ‘--algorithm’\nValid arguments are:{valid}"
        ))
    })
}

/// The number `-l TEXT` gives, as GNU's `xnumtoumax` reads it: decimal digits only; a number
/// too large for 64 bits is the largest (and then too long for every algorithm).
fn length_bits(text: &str) -> Result<u64, clap::Error> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(usage_error(format!("invalid length: ‘{text}’")));
    }
    Ok(text.parse().unwrap_or(u64::MAX))
}

/// GNU's words for a length that does not fit, `text` being what `-l` said.
fn length_error(text: &str, error: LengthError) -> clap::Error {
    let invalid = format!("invalid length: ‘{text}’\n");
    usage_error(match error {
        LengthError::NotSupported => {
            "--length is only supported with --algorithm blake2b, sha2, or sha3".to_owned()
        }
        LengthError::Required(name) => {
            format!("--algorithm={name} requires specifying --length 224, 256, 384, or 512")
        }
        LengthError::NotMultipleOf8 => format!("{invalid}length is not a multiple of 8"),
        LengthError::TooLong => format!("{invalid}maximum digest length for ‘BLAKE2b’ is 512 bits"),
        LengthError::NotSha(family) => {
            format!("{invalid}digest length for ‘{family}’ must be 224, 256, 384, or 512")
        }
    })
}

/// The one algorithm `selector` and `-l` make, where a definite one is needed (to hash).
fn exact(selector: Selector, length: Option<&str>) -> Result<Algorithm, clap::Error> {
    match length {
        Some(text) => selector
            .with_length(length_bits(text)?)
            .map_err(|e| length_error(text, e)),
        None => selector.exact().map_err(|e| length_error("", e)),
    }
}

/// The algorithms of `hash`: every name, in order, with `-l` applied to those that take a
/// length (a list with none of them refuses `-l`, as `cksum -a md5 -l 128` does). Two of a
/// kind are refused: each would print the same lines twice.
pub fn list(names: &[String], length: Option<&str>) -> Result<Algorithms, clap::Error> {
    let selectors = names
        .iter()
        .map(|name| selector(name))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(text) = length
        && !selectors.iter().any(|s| s.takes_length())
    {
        return Err(length_error(text, LengthError::NotSupported));
    }
    let algorithms = selectors
        .into_iter()
        .map(|s| exact(s, length.filter(|_| s.takes_length())))
        .collect::<Result<Vec<_>, _>>()?;
    Algorithms::new(&algorithms).map_err(|e| match e {
        ListError::Empty => usage_error("no algorithm given to --algorithm"),
        ListError::Twice(a) => usage_error(format!(
            "--algorithm names {} twice: each algorithm may be given once",
            kind_name(a)
        )),
    })
}

/// How an algorithm's kind is named when it is given twice (any BLAKE2b length is one kind).
fn kind_name(algorithm: Algorithm) -> String {
    match algorithm {
        Algorithm::Blake2b(_) => "blake2b".to_owned(),
        other => other.to_string(),
    }
}

/// The one algorithm of a manifest (`audit`, `hash --update`).
pub fn one(name: &str, length: Option<&str>) -> Result<Algorithm, clap::Error> {
    exact(selector(name)?, length)
}

/// What `check -a NAME [-l BITS]` accepts: with `-l`, one algorithm (GNU checks the value of
/// `-l` and then reads each line's length anyway; sumpool holds the lines to it); without, the
/// name, which may be a family. No `-a` takes every line's own algorithm, and refuses `-l`.
pub fn for_check(
    name: Option<&str>,
    length: Option<&str>,
) -> Result<Option<Selector>, clap::Error> {
    match (name, length) {
        (None, None) => Ok(None),
        (None, Some(text)) => Err(length_error(text, LengthError::NotSupported)),
        (Some(name), None) => selector(name).map(Some),
        (Some(name), Some(text)) => {
            let selector = selector(name)?;
            let bits = length_bits(text)?;
            let algorithm = selector
                .with_length(bits)
                .map_err(|e| length_error(text, e))?;
            Ok(Some(Selector::Exact(algorithm)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(error: clap::Error) -> String {
        error.to_string()
    }

    #[test]
    fn gnu_words_for_bad_lengths() {
        let cases = [
            (
                "md5",
                "8",
                "--length is only supported with --algorithm blake2b, sha2, or sha3",
            ),
            (
                "blake2b",
                "7",
                "invalid length: ‘7’\nlength is not a multiple of 8",
            ),
            (
                "blake2b",
                "1024",
                "invalid length: ‘1024’\nmaximum digest length for ‘BLAKE2b’ is 512 bits",
            ),
            ("blake2b", "x", "invalid length: ‘x’"),
            ("blake2b", "-8", "invalid length: ‘-8’"),
            (
                "blake2b",
                "18446744073709551616",
                "maximum digest length for ‘BLAKE2b’ is 512 bits",
            ),
            (
                "sha3",
                "248",
                "invalid length: ‘248’\ndigest length for ‘SHA3’ must be 224, 256, 384, or 512",
            ),
            (
                "sha2",
                "0",
                "digest length for ‘SHA2’ must be 224, 256, 384, or 512",
            ),
            (
                "sha256",
                "256",
                "--length is only supported with --algorithm blake2b, sha2, or sha3",
            ),
        ];
        for (name, length, want) in cases {
            let got = message(list(&[name.to_owned()], Some(length)).unwrap_err());
            assert!(got.contains(want), "-a {name} -l {length}: {got}");
        }
        let got = message(list(&["sha3".to_owned()], None).unwrap_err());
        assert!(
            got.contains("--algorithm=sha3 requires specifying --length 224, 256, 384, or 512"),
            "{got}"
        );
        let got = message(list(&["crc".to_owned()], None).unwrap_err());
        assert!(
            got.contains(
                "invalid argument ‘crc’ for ‘--algorithm’\nValid arguments are:\n  - ‘md5’"
            ),
            "{got}"
        );
    }

    #[test]
    fn lengths_that_fit() {
        let names = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let got = list(&names(&["sha2"]), Some("384")).unwrap();
        assert_eq!(got.as_slice(), [Algorithm::Sha384]);
        let got = list(&names(&["sha3", "md5", "blake2b"]), Some("256")).unwrap();
        assert_eq!(
            got.as_slice(),
            [
                Algorithm::Sha3_256,
                Algorithm::Md5,
                Algorithm::blake2b(256).unwrap()
            ]
        );
        // 0 is BLAKE2b's default, as `b2sum -l 0`.
        let got = list(&names(&["blake2b"]), Some("0")).unwrap();
        assert_eq!(got.as_slice(), [Algorithm::blake2b(512).unwrap()]);
        assert_eq!(
            list(&names(&["blake2b"]), None).unwrap().first(),
            Algorithm::blake2b(512).unwrap()
        );
        // Two of a kind, however spelt.
        assert!(list(&names(&["sha256", "sha2"]), Some("256")).is_err());
        assert!(list(&names(&["md5", "md5"]), None).is_err());
        // check keeps a family without -l, and holds lines to -l with it.
        assert_eq!(for_check(Some("sha3"), None).unwrap(), Some(Selector::Sha3));
        assert_eq!(
            for_check(Some("blake2b"), Some("256")).unwrap(),
            Some(Selector::Exact(Algorithm::blake2b(256).unwrap()))
        );
        assert!(for_check(None, Some("256")).is_err());
    }
}
