//! Big-endian byte reader and writer shared by the ISO record codecs.
//!
//! The reader never panics and never allocates more than the input it was given: every read checks the
//! remaining length first and reports the byte offset and the field it was reading.

use crate::error::FormatError;

/// A cursor over untrusted bytes that reports offsets and field names in its errors.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Offset of the next byte to be read, from the start of the record.
    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    /// Bytes left after the cursor.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], FormatError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(FormatError::Truncated {
                offset: self.pos,
                field,
                needed: n,
                available: self.remaining(),
            })?;
        let out = self.buf.get(self.pos..end).ok_or(FormatError::Truncated {
            offset: self.pos,
            field,
            needed: n,
            available: self.remaining(),
        })?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], FormatError> {
        let s = self.bytes(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, FormatError> {
        Ok(u8::from_be_bytes(self.array::<1>(field)?))
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, FormatError> {
        Ok(u16::from_be_bytes(self.array::<2>(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, FormatError> {
        Ok(u32::from_be_bytes(self.array::<4>(field)?))
    }

    /// Reads a fixed magic value and fails with [`FormatError::BadMagic`] if it differs.
    pub(crate) fn expect(&mut self, expected: &'static [u8], field: &'static str) -> Result<(), FormatError> {
        let offset = self.pos;
        let found = self.bytes(expected.len(), field)?;
        if found != expected {
            return Err(FormatError::BadMagic {
                offset,
                field,
                expected,
                found: found.to_vec(),
            });
        }
        Ok(())
    }

    /// Fails with [`FormatError::TrailingBytes`] if anything is left.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), FormatError> {
        if self.remaining() != 0 {
            return Err(FormatError::TrailingBytes {
                offset: self.pos,
                what,
                count: self.remaining(),
            });
        }
        Ok(())
    }
}

/// Converts a length to the on-the-wire integer type, saturating so that an impossible record (over 4 GiB,
/// over 65,535 entries) still encodes without panicking and is then rejected by the strict decoder.
/// Reads the prefix shared by the ISO/IEC 19794-4/-5/-6:2011 general headers: format identifier, version,
/// a u32 record length that must equal the whole input, and a non-zero u16 representation count (named
/// `count_field` in errors). Returns the count.
pub(crate) fn image_record_prefix(
    r: &mut Reader<'_>,
    format_id: &'static [u8],
    version: &'static [u8],
    total_len: usize,
    count_field: &'static str,
) -> Result<u16, FormatError> {
    r.expect(format_id, "format identifier")?;
    r.expect(version, "version number")?;
    let len_offset = r.offset();
    let record_len = r.u32("record length")?;
    if u64::from(record_len) != total_len as u64 {
        return Err(FormatError::LengthMismatch {
            offset: len_offset,
            field: "record length",
            declared: u64::from(record_len),
            actual: total_len as u64,
        });
    }
    let count_offset = r.offset();
    let count = r.u16(count_field)?;
    if count == 0 {
        return Err(FormatError::InvalidValue {
            offset: count_offset,
            field: count_field,
            value: 0,
            expected: "at least 1",
        });
    }
    Ok(count)
}

pub(crate) fn sat_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// See [`sat_u32`].
pub(crate) fn sat_u16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// See [`sat_u32`].
pub(crate) fn sat_u8(n: usize) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

/// A capture date and time as ISO/IEC 19794-x:2011 stores it (9 bytes). All bytes 0xFF means "not recorded".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CaptureDateTime;

impl CaptureDateTime {
    /// The "not recorded" value the encoders write.
    pub(crate) const UNKNOWN: [u8; 9] = [0xFF; 9];

    /// Validates a 9-byte capture date/time: either all 0xFF (unknown) or a plausible UTC date and time.
    pub(crate) fn check(r: &mut Reader<'_>) -> Result<(), FormatError> {
        let offset = r.offset();
        let raw = r.array::<9>("capture date/time")?;
        if raw == Self::UNKNOWN {
            return Ok(());
        }
        let [y0, y1, month, day, hour, minute, second, ms0, ms1] = raw;
        let year = u16::from_be_bytes([y0, y1]);
        let ms = u16::from_be_bytes([ms0, ms1]);
        let ok = (1900..=9999).contains(&year)
            && (1..=12).contains(&month)
            && (1..=31).contains(&day)
            && hour < 24
            && minute < 60
            && second < 60
            && (ms < 1000 || ms == 0xFFFF);
        if !ok {
            return Err(FormatError::InvalidValue {
                offset,
                field: "capture date/time",
                value: u64::from(year),
                expected: "all bytes 0xFF (unknown) or a valid date (year 1900-9999, month 1-12, day 1-31, \
                           hour < 24, minute < 60, second < 60, millisecond < 1000)",
            });
        }
        Ok(())
    }
}

/// Reads the ISO/IEC 19794-x:2011 quality blocks (count byte + 5 bytes each) and returns the first score,
/// or 255 ("not computed / failed") when there is none.
pub(crate) fn read_quality_blocks(r: &mut Reader<'_>) -> Result<u8, FormatError> {
    let count = r.u8("number of quality blocks")?;
    let mut first = None;
    for _ in 0..count {
        let offset = r.offset();
        let score = r.u8("quality score")?;
        if score > 100 && score != 255 {
            return Err(FormatError::InvalidValue {
                offset,
                field: "quality score",
                value: u64::from(score),
                expected: "0-100, or 255 for a failed quality computation",
            });
        }
        let _vendor = r.u16("quality algorithm vendor identifier")?;
        let _algorithm = r.u16("quality algorithm identifier")?;
        first.get_or_insert(score);
    }
    Ok(first.unwrap_or(255))
}

/// Writes one quality block holding `quality` (vendor and algorithm identifiers 0: not registered).
pub(crate) fn write_quality_block(out: &mut Vec<u8>, quality: u8) {
    out.push(1);
    out.push(quality);
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_read_names_offset_and_field() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16("a").ok(), Some(0x0102));
        let err = r.u32("record length").unwrap_err();
        assert_eq!(
            err,
            FormatError::Truncated {
                offset: 2,
                field: "record length",
                needed: 4,
                available: 1
            }
        );
    }

    #[test]
    fn date_unknown_and_valid_accepted_invalid_rejected() {
        let mut ok = Reader::new(&CaptureDateTime::UNKNOWN);
        assert!(CaptureDateTime::check(&mut ok).is_ok());
        let valid = [0x07, 0xEA, 11, 29, 8, 30, 0, 0, 5];
        assert!(CaptureDateTime::check(&mut Reader::new(&valid)).is_ok());
        let bad = [0x07, 0xEA, 13, 29, 8, 30, 0, 0, 5];
        assert!(matches!(
            CaptureDateTime::check(&mut Reader::new(&bad)),
            Err(FormatError::InvalidValue { offset: 0, .. })
        ));
    }
}
