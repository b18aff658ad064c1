//! A strict, minimal POSIX ustar writer and reader.
//!
//! Both the outer packet container and each section's plaintext are ustar archives, so standard `tar` can
//! list and extract them. The reader accepts only what the writer produces: regular files, names from the
//! caller's allow-list, octal fields that parse, correct header checksums, zero padding, and the two zero
//! blocks that end an archive. Anything else is an error that names the offset and the field.

use std::io::{self, Write};

/// Size of a tar block.
pub const BLOCK: u64 = 512;
/// Longest entry name we write or accept (the ustar `name` field, no prefix).
pub const MAX_NAME: usize = 100;
/// Largest size an 11-digit octal size field can carry.
pub const MAX_SIZE: u64 = 0o77_777_777_777;

/// Why a header could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// A field is malformed.
    Field {
        /// Field name (`name`, `size`, `chksum`, `typeflag`, `magic`, ...).
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// A parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Entry name.
    pub name: String,
    /// Data size in bytes.
    pub size: u64,
}

/// Number of zero bytes that pad `size` to a whole block.
pub fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

/// Encodes a header block for a regular file. `mtime` is seconds since the Unix epoch.
pub fn encode_header(name: &str, size: u64, mtime: i64) -> io::Result<[u8; 512]> {
    if name.is_empty() || name.len() > MAX_NAME || !name.is_ascii() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("tar entry name {name:?} must be 1-{MAX_NAME} ASCII characters"),
        ));
    }
    if size > MAX_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("tar entry {name} is {size} bytes, over the ustar limit of {MAX_SIZE}"),
        ));
    }
    let mut h = [0u8; 512];
    put(&mut h, 0, name.as_bytes());
    put(&mut h, 100, b"0000644\0");
    put(&mut h, 108, b"0000000\0");
    put(&mut h, 116, b"0000000\0");
    put(&mut h, 124, format!("{size:011o}\0").as_bytes());
    let mtime = u64::try_from(mtime.max(0)).unwrap_or(0).min(MAX_SIZE);
    put(&mut h, 136, format!("{mtime:011o}\0").as_bytes());
    put(&mut h, 148, b"        ");
    put(&mut h, 156, b"0");
    put(&mut h, 257, b"ustar\0");
    put(&mut h, 263, b"00");
    put(&mut h, 265, b"tessera");
    put(&mut h, 297, b"tessera");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
    Ok(h)
}

fn put(h: &mut [u8; 512], at: usize, bytes: &[u8]) {
    if let Some(dst) = h.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

fn field(h: &[u8; 512], at: usize, len: usize) -> &[u8] {
    h.get(at..at + len).unwrap_or_default()
}

/// Parses an octal numeric field: optional leading spaces/zeros, digits, then NUL or space terminators.
fn octal(h: &[u8; 512], at: usize, len: usize, name: &'static str) -> Result<u64, HeaderError> {
    let raw = field(h, at, len);
    let text: &[u8] = match raw.iter().position(|b| *b == 0 || *b == b' ') {
        Some(end) => {
            if raw.iter().skip(end).any(|b| *b != 0 && *b != b' ') {
                return Err(HeaderError::Field {
                    field: name,
                    reason: "characters after the terminator".into(),
                });
            }
            raw.get(..end).unwrap_or_default()
        }
        None => raw,
    };
    if text.is_empty() {
        return Err(HeaderError::Field {
            field: name,
            reason: "empty".into(),
        });
    }
    let mut v: u64 = 0;
    for b in text {
        if !(b'0'..=b'7').contains(b) {
            return Err(HeaderError::Field {
                field: name,
                reason: format!("byte 0x{b:02x} is not an octal digit"),
            });
        }
        v = v
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(HeaderError::Field {
                field: name,
                reason: "overflows".into(),
            })?;
    }
    Ok(v)
}

/// Whether a block is all zeros (an end-of-archive marker).
pub fn is_zero_block(h: &[u8; 512]) -> bool {
    h.iter().all(|b| *b == 0)
}

/// Decodes and validates a header block.
pub fn decode_header(h: &[u8; 512]) -> Result<Header, HeaderError> {
    let stored = octal(h, 148, 8, "chksum")?;
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                u64::from(b' ')
            } else {
                u64::from(*b)
            }
        })
        .sum();
    if stored != sum {
        return Err(HeaderError::Field {
            field: "chksum",
            reason: format!("stored {stored:o} but the header sums to {sum:o}"),
        });
    }
    if field(h, 257, 6) != b"ustar\0" || field(h, 263, 2) != b"00" {
        return Err(HeaderError::Field {
            field: "magic",
            reason: "not a POSIX ustar header".into(),
        });
    }
    let flag = field(h, 156, 1);
    if flag != b"0" && flag != b"\0" {
        return Err(HeaderError::Field {
            field: "typeflag",
            reason: "only regular files are allowed".into(),
        });
    }
    if field(h, 345, 155).iter().any(|b| *b != 0) {
        return Err(HeaderError::Field {
            field: "prefix",
            reason: "long names are not allowed".into(),
        });
    }
    let raw = field(h, 0, MAX_NAME);
    let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    let name_bytes = raw.get(..end).unwrap_or_default();
    if raw.iter().skip(end).any(|b| *b != 0) {
        return Err(HeaderError::Field {
            field: "name",
            reason: "bytes after the terminating NUL".into(),
        });
    }
    let name = std::str::from_utf8(name_bytes)
        .ok()
        .filter(|n| !n.is_empty() && n.is_ascii())
        .ok_or(HeaderError::Field {
            field: "name",
            reason: "empty or not ASCII".into(),
        })?
        .to_owned();
    let size = octal(h, 124, 12, "size")?;
    Ok(Header { name, size })
}

/// Streams a ustar archive whose entry sizes are known in advance.
#[derive(Debug)]
pub struct Writer<W> {
    inner: W,
    mtime: i64,
}

impl<W: Write> Writer<W> {
    /// A writer stamping every entry with `mtime`.
    pub fn new(inner: W, mtime: i64) -> Self {
        Self { inner, mtime }
    }

    /// Writes a whole entry from memory.
    pub fn append(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        self.inner
            .write_all(&encode_header(name, data.len() as u64, self.mtime)?)?;
        self.inner.write_all(data)?;
        self.pad(data.len() as u64)
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let zeros = [0u8; 512];
        let n = usize::try_from(padding(size)).unwrap_or(0);
        self.inner.write_all(zeros.get(..n).unwrap_or_default())
    }

    /// Writes the two end-of-archive blocks and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.write_all(&[0u8; 1024])?;
        Ok(self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_round_trips() {
        let h = encode_header("id.age", 12345, 1_700_000_000).unwrap();
        assert_eq!(
            decode_header(&h).unwrap(),
            Header {
                name: "id.age".into(),
                size: 12345
            }
        );
    }

    #[test]
    fn checksum_is_checked() {
        let mut h = encode_header("id.age", 1, 0).unwrap();
        h[0] = b'j';
        let e = decode_header(&h).unwrap_err();
        assert!(matches!(e, HeaderError::Field { field: "chksum", .. }));
    }

    #[test]
    fn gnu_tar_reads_what_we_write() {
        let Ok(out) = std::process::Command::new("tar").arg("--version").output() else {
            return;
        };
        if !out.status.success() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        let mut w = Writer::new(std::fs::File::create(&path).unwrap(), 0);
        w.append("hello.txt", b"hello tar").unwrap();
        w.append("empty", b"").unwrap();
        w.finish().unwrap();
        let out = std::process::Command::new("tar")
            .arg("-tf")
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello.txt\nempty\n");
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 512)) {
            let mut h = [0u8; 512];
            h.copy_from_slice(&bytes);
            let _ = decode_header(&h);
        }

        #[test]
        fn round_trip_any_name_and_size(name in "[a-zA-Z0-9._/-]{1,100}", size in 0u64..=MAX_SIZE) {
            let h = encode_header(&name, size, 42).unwrap();
            prop_assert_eq!(decode_header(&h).unwrap(), Header { name, size });
        }
    }
}
