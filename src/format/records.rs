//! Reading delimited records (lines, or NUL-terminated names) from a stream, in bounded memory.
//!
//! Both checksum lists (`check`) and file lists (`hash --files-from`) are read here, record by
//! record, never whole. A record longer than [`MAX_RECORD`] is skipped in pieces and reported
//! as too long, so a hostile input (a single 100 MB line, a gigabyte without a newline) costs
//! at most one record's worth of memory. What a record means is the caller's business.

use std::io::{self, BufRead, BufReader, Read};

/// Longest record kept: far beyond any usable line or name (a name cannot be opened past
/// PATH_MAX, 4096 bytes), small enough that a hostile list cannot exhaust memory.
pub const MAX_RECORD: usize = 1 << 20;

/// One record from a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// A complete record is in the buffer, including its delimiter if it had one.
    Complete,
    /// A record longer than [`MAX_RECORD`]; it was skipped and the buffer is empty.
    TooLong,
}

/// Reads `delim`-terminated records of at most [`MAX_RECORD`] bytes.
pub struct RecordReader<R> {
    reader: BufReader<R>,
    delim: u8,
    /// Bytes consumed so far: where the next record starts in the stream.
    position: u64,
}

impl<R: Read> RecordReader<R> {
    /// Records of `reader` ending in `delim` (`\n` or `\0`).
    pub fn new(reader: R, delim: u8) -> RecordReader<R> {
        RecordReader {
            reader: BufReader::with_capacity(64 * 1024, reader),
            delim,
            position: 0,
        }
    }

    /// Where the next record starts, in bytes from the start of the stream.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Reads the next record into `buf`; `None` at the end of the stream.
    pub fn next_record(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<Record>> {
        buf.clear();
        let limit = MAX_RECORD as u64 + 1;
        let n = (&mut self.reader).take(limit).read_until(self.delim, buf)?;
        self.position += n as u64;
        if n == 0 {
            return Ok(None);
        }
        if buf.len() <= MAX_RECORD || buf.last() == Some(&self.delim) {
            return Ok(Some(Record::Complete));
        }
        // Skip to the end of the oversized record without keeping it.
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            match chunk.iter().position(|&b| b == self.delim) {
                Some(pos) => {
                    self.reader.consume(pos + 1);
                    self.position += pos as u64 + 1;
                    break;
                }
                None => {
                    let len = chunk.len();
                    self.reader.consume(len);
                    self.position += len as u64;
                }
            }
        }
        buf.clear();
        Ok(Some(Record::TooLong))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_longer_than_the_limit_are_skipped_whole() {
        let mut data = vec![b'x'; MAX_RECORD * 3];
        data.extend_from_slice(b"\nnext\n");
        let mut reader = RecordReader::new(&data[..], b'\n');
        let mut buf = Vec::new();
        assert_eq!(reader.next_record(&mut buf).unwrap(), Some(Record::TooLong));
        assert!(buf.capacity() <= 2 * MAX_RECORD + 64);
        assert_eq!(reader.position(), MAX_RECORD as u64 * 3 + 1);
        assert_eq!(
            reader.next_record(&mut buf).unwrap(),
            Some(Record::Complete)
        );
        assert_eq!(buf, b"next\n");
        assert_eq!(reader.next_record(&mut buf).unwrap(), None);
    }

    #[test]
    fn last_record_without_delimiter_and_nul_records() {
        let mut reader = RecordReader::new(&b"a\0b\0c"[..], b'\0');
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        while reader.next_record(&mut buf).unwrap().is_some() {
            seen.push(buf.clone());
        }
        assert_eq!(seen, vec![b"a\0".to_vec(), b"b\0".to_vec(), b"c".to_vec()]);
    }
}
