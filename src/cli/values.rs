//! Values of options: thread counts, durations, percentages, shards. Each parser returns
//! the message clap prints after "invalid value": what was wrong and what is accepted.

use std::num::NonZeroUsize;
use std::time::Duration;

use crate::engine::walk::Shard;

/// Most threads `-j` and `--io-threads` may ask for: far past what any storage or CPU gains
/// from, and low enough that the threads can always be made (a million failed with "Cannot
/// allocate memory" inside the thread library, past any error sumpool could report).
pub(super) const MAX_THREADS: usize = 1024;

/// Parses a thread count, from 1 to [`MAX_THREADS`].
pub(super) fn parse_threads(text: &str) -> Result<NonZeroUsize, String> {
    let n: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    match NonZeroUsize::new(n) {
        Some(n) if n.get() <= MAX_THREADS => Ok(n),
        _ => Err(format!("must be from 1 to {MAX_THREADS} (got {n})")),
    }
}

/// Parses a duration in seconds (a decimal number, more than 0).
pub(super) fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 1e9 {
        return Err(format!("must be more than 0 seconds (got {text})"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// What a duration may be written as, for messages.
const DURATION_FORMS: &str =
    "a number with a unit: 90s, 15m, 2h, 1d, or 1h30m (s alone is the default unit)";

/// Parses a duration: numbers each followed by a unit (`s`, `m`, `h`, `d`; a last number
/// without one is seconds), such as `90s`, `15m`, `1.5h` or `1h30m`. `0` is accepted.
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration: expected {DURATION_FORMS}");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut seconds = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            // A bare number only alone (`90`): `1m30` could mean seconds or a typo.
            "" if seconds > 0.0 || digits != text.trim().len() => {
                return Err(bad());
            }
            "" | "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        seconds += number * unit;
    }
    if !seconds.is_finite() || seconds > 1e9 {
        return Err(bad());
    }
    // Finer than a millisecond is no time a run can keep: refused, not rounded to 0 (which
    // turns `--checkpoint` off).
    if seconds > 0.0 && seconds < 1e-3 {
        return Err(format!(
            "{text:?} is shorter than a millisecond: expected {DURATION_FORMS}"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// [`parse_duration`], more than 0.
pub(super) fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err(format!(
            "must be more than 0 (got {text:?}): {DURATION_FORMS}"
        )),
        d => Ok(d),
    }
}

/// The slowest rate `--bwlimit` takes, in bytes per second: below it one read of a sector
/// is more than an eighth of a second's worth (`engine::policy::pace_piece`).
pub(super) const RATE_MIN: u64 = 4096;

/// Parses a rate in bytes per second: a number and a unit, `K`, `M`, `G`, `T` (or `KiB`...)
/// for powers of 1024, as rsync's `--bwlimit` reads them, `KB`, `MB`, `GB`, `TB` for powers
/// of 1000; `B` or none for bytes; an optional `/s`. At least [`RATE_MIN`].
pub(super) fn parse_rate(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "{text:?} is not a rate: expected bytes per second as a number and a unit, such as 500K, 200M or 1.5G (K, M, G, T are powers of 1024; KB, MB, GB, TB powers of 1000)"
        )
    };
    let trimmed = text.trim();
    let trimmed = trimmed.strip_suffix("/s").unwrap_or(trimmed);
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let number: f64 = trimmed[..split].parse().map_err(|_| bad())?;
    let unit = match trimmed[split..].trim() {
        "" | "B" => 1.0,
        "K" | "k" | "KiB" => 1024.0,
        "M" | "MiB" => 1024f64.powi(2),
        "G" | "GiB" => 1024f64.powi(3),
        "T" | "TiB" => 1024f64.powi(4),
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        _ => return Err(bad()),
    };
    let rate = number * unit;
    if !rate.is_finite() || rate >= u64::MAX as f64 {
        return Err(bad());
    }
    if rate < RATE_MIN as f64 {
        return Err(format!(
            "must be at least 4K, 4096 bytes per second (got {text:?})"
        ));
    }
    Ok(rate as u64)
}

/// Parses a percentage from 0 to 100.
pub(super) fn parse_percent(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if !(0.0..=100.0).contains(&value) {
        return Err(format!("must be from 0 to 100 (got {text})"));
    }
    Ok(value)
}

/// Parses `K/N` with 1 <= K <= N.
pub(super) fn parse_shard(text: &str) -> Result<Shard, String> {
    let (index, count) = parse_fraction(text, "K/N, such as 2/8")?;
    if count == 0 || index == 0 || index > count {
        return Err(format!(
            "K must be from 1 to N, and N at least 1 (got {index}/{count})"
        ));
    }
    Ok(Shard { index, count })
}

/// Parses `I/N` with I counted from 0 into the [`Shard`] `I+1/N`.
pub(super) fn parse_shard_index(text: &str) -> Result<Shard, String> {
    let (index, count) = parse_fraction(text, "I/N, such as 0/8")?;
    if count == 0 || index >= count {
        return Err(format!(
            "I must be from 0 to N-1, and N at least 1 (got {index}/{count})"
        ));
    }
    Ok(Shard {
        index: index + 1,
        count,
    })
}

/// Two numbers around a `/`; `expected` says what the form is when it is not that.
pub(super) fn parse_fraction(text: &str, expected: &str) -> Result<(u64, u64), String> {
    let (index, count) = text
        .split_once('/')
        .ok_or_else(|| format!("expected {expected}"))?;
    let number = |part: &str| {
        part.trim()
            .parse::<u64>()
            .map_err(|_| format!("{part:?} is not a number"))
    };
    Ok((number(index)?, number(count)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_values() {
        assert_eq!(parse_shard("2/5"), Ok(Shard { index: 2, count: 5 }));
        assert_eq!(parse_shard("1/1"), Ok(Shard { index: 1, count: 1 }));
        for bad in ["0/3", "4/3", "1/0", "x/2", "2", "-1/3", "1/3/4"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        let secs = |text| parse_duration(text).map(|d| d.as_secs_f64());
        assert_eq!(secs("90s"), Ok(90.0));
        assert_eq!(secs("90"), Ok(90.0));
        assert_eq!(secs("15m"), Ok(900.0));
        assert_eq!(secs("2h"), Ok(7200.0));
        assert_eq!(secs("1.5h"), Ok(5400.0));
        assert_eq!(secs("1h30m"), Ok(5400.0));
        assert_eq!(secs("1d"), Ok(86_400.0));
        assert_eq!(secs("0"), Ok(0.0));
        for bad in [
            "",
            "-1",
            "1x",
            "m",
            "1.2.3s",
            "5 min",
            "1e3",
            "inf",
            "h1",
            "1s30",
            "1m30",
            "0.0000000001",
            "0.0001s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(secs("0.001"), Ok(0.001));
        assert!(parse_positive_duration("0").is_err());
        assert!(parse_positive_duration("0s").is_err());
        assert!(parse_positive_duration("1s").is_ok());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("200M"), Ok(200 << 20));
        assert_eq!(parse_rate("1.5G"), Ok(3 << 29));
        assert_eq!(parse_rate("500K"), Ok(500 << 10));
        assert_eq!(parse_rate("500k"), Ok(500 << 10));
        assert_eq!(parse_rate("500KiB/s"), Ok(500 << 10));
        assert_eq!(parse_rate("2MB"), Ok(2_000_000));
        assert_eq!(parse_rate("4096"), Ok(4096));
        assert_eq!(parse_rate("10MB/s"), Ok(10_000_000));
        for bad in [
            "0", "abc", "-1M", "1x", "", "M", "4095", "1e3M", "inf", "1Q",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
