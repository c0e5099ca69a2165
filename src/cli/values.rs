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
}
