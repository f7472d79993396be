//! Packing a stream's records into plaintext blocks, one per period T.

use crate::{DataError, StreamParams};

/// Bytes a record adds to a block besides its payload (timestamp and length).
pub const RECORD_OVERHEAD: usize = 12;

/// One sensor record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The reading.
    pub payload: Vec<u8>,
}

/// A packed, not yet encrypted block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlainBlock {
    /// Position of the block in its stream; counts every block ever packed.
    pub seq: u64,
    /// The period T the block's records fall in.
    pub period: u64,
    /// The encryption interval of that period.
    pub interval: u64,
    /// The records: each is `timestamp (u64 BE) ‖ length (u32 BE) ‖ payload`.
    pub bytes: Vec<u8>,
}

impl PlainBlock {
    /// The records of the block.
    pub fn records(&self) -> Result<Vec<Record>, DataError> {
        decode_records(&self.bytes)
    }
}

/// Decodes the records of a block's plaintext.
pub fn decode_records(mut b: &[u8]) -> Result<Vec<Record>, DataError> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < RECORD_OVERHEAD {
            return Err(DataError::malformed("block", "truncated record header"));
        }
        let ts = u64::from_be_bytes(b[..8].try_into().expect("8 bytes"));
        let len = u32::from_be_bytes(b[8..12].try_into().expect("4 bytes")) as usize;
        b = &b[RECORD_OVERHEAD..];
        if b.len() < len {
            return Err(DataError::malformed("block", "truncated record payload"));
        }
        out.push(Record {
            timestamp_ms: ts,
            payload: b[..len].to_vec(),
        });
        b = &b[len..];
    }
    Ok(out)
}

/// Packs records, in time order, into blocks.
#[derive(Debug)]
pub struct Packer {
    params: StreamParams,
    epoch_ms: u64,
    period: Option<u64>,
    buf: Vec<u8>,
    next_seq: u64,
}

impl Packer {
    /// A packer whose period 0 starts at `epoch_ms`; the first block gets `first_seq`.
    pub fn new(params: StreamParams, epoch_ms: u64, first_seq: u64) -> Result<Self, DataError> {
        params.validate()?;
        Ok(Self {
            params,
            epoch_ms,
            period: None,
            buf: Vec::new(),
            next_seq: first_seq,
        })
    }

    /// Adds a record; returns the blocks it closed (a new period closes the open block).
    pub fn push(&mut self, record: &Record) -> Result<Vec<PlainBlock>, DataError> {
        let max = self.params.max_block_bytes as usize;
        let len = record.payload.len() + RECORD_OVERHEAD;
        if len > max {
            return Err(DataError::RecordTooLarge { len, max });
        }
        let period = record.timestamp_ms.saturating_sub(self.epoch_ms) / self.params.period_ms;
        let mut closed = Vec::new();
        match self.period {
            Some(open) if period < open || record.timestamp_ms < self.epoch_ms => {
                return Err(DataError::OutOfOrder {
                    timestamp_ms: record.timestamp_ms,
                    period: open,
                });
            }
            Some(open) if period > open => closed.extend(self.flush()),
            _ => {}
        }
        if self.buf.len() + len > max {
            closed.extend(self.flush());
        }
        self.period = Some(period);
        self.buf
            .extend_from_slice(&record.timestamp_ms.to_be_bytes());
        self.buf
            .extend_from_slice(&(record.payload.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(&record.payload);
        Ok(closed)
    }

    /// Closes the open block, if it holds anything.
    pub fn flush(&mut self) -> Option<PlainBlock> {
        let period = self.period?;
        if self.buf.is_empty() {
            return None;
        }
        let block = PlainBlock {
            seq: self.next_seq,
            period,
            interval: self.params.interval_of_period(period),
            bytes: std::mem::take(&mut self.buf),
        };
        self.next_seq += 1;
        Some(block)
    }

    /// The sequence number the next block gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ts: u64, n: usize) -> Record {
        Record {
            timestamp_ms: ts,
            payload: vec![ts as u8; n],
        }
    }

    #[test]
    fn records_are_cut_by_period_and_size() {
        let params = StreamParams {
            period_ms: 100,
            blocks_per_interval: 2,
            max_block_bytes: 64,
            ..StreamParams::default()
        };
        let mut p = Packer::new(params, 1000, 0).unwrap();
        assert!(p.push(&rec(1000, 10)).unwrap().is_empty());
        assert!(p.push(&rec(1050, 10)).unwrap().is_empty());
        let closed = p.push(&rec(1150, 10)).unwrap();
        assert_eq!(closed.len(), 1);
        assert_eq!(
            (closed[0].seq, closed[0].period, closed[0].interval),
            (0, 0, 0)
        );
        assert_eq!(
            closed[0].records().unwrap(),
            vec![rec(1000, 10), rec(1050, 10)]
        );
        // 22 + 22 + 22 > 64: the third record of period 1 opens a second block.
        assert!(p.push(&rec(1160, 10)).unwrap().is_empty());
        let closed = p.push(&rec(1170, 10)).unwrap();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].records().unwrap().len(), 2);
        let last = p.push(&rec(1420, 1)).unwrap();
        assert_eq!((last[0].seq, last[0].period, last[0].interval), (2, 1, 0));
        let tail = p.flush().unwrap();
        assert_eq!((tail.seq, tail.period, tail.interval), (3, 4, 2));
        assert!(p.flush().is_none());
    }

    #[test]
    fn late_and_oversized_records_are_refused() {
        let params = StreamParams {
            period_ms: 100,
            max_block_bytes: 64,
            ..StreamParams::default()
        };
        let mut p = Packer::new(params, 0, 0).unwrap();
        p.push(&rec(500, 1)).unwrap();
        assert!(matches!(
            p.push(&rec(300, 1)),
            Err(DataError::OutOfOrder { .. })
        ));
        assert!(matches!(
            p.push(&rec(600, 60)),
            Err(DataError::RecordTooLarge { .. })
        ));
        assert!(decode_records(&[0, 0, 0]).is_err());
        assert!(decode_records(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 1]).is_err());
    }
}
