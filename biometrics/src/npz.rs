//! A minimal reader for NumPy `.npz` archives (a zip of `.npy` arrays, stored or deflated), enough to load
//! the quality model. Bounded: entry sizes are checked against the archive and a hard limit.

use std::collections::BTreeMap;

use crate::codec::Reader;
use crate::error::FormatError;

/// Largest decompressed array accepted (the model's largest is ~550 KB).
const MAX_ENTRY: usize = 16 << 20;

/// One array: little-endian element type descriptor, shape, raw bytes.
#[derive(Debug, Clone)]
pub struct Array {
    /// numpy `descr`, e.g. `<f4`, `<i4`, `<i2`, `<U38`.
    pub descr: String,
    /// Shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// Raw little-endian data.
    pub data: Vec<u8>,
}

fn le<const N: usize>(c: &[u8]) -> [u8; N] {
    <[u8; N]>::try_from(c).unwrap_or([0; N])
}

impl Array {
    /// Elements as f32 (`<f4` as is; integer types converted).
    pub fn to_f32(&self) -> Vec<f32> {
        match self.descr.as_str() {
            "<f4" => self
                .data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(le(c)))
                .collect(),
            _ => self.to_i64().into_iter().map(|v| v as f32).collect(),
        }
    }

    /// Elements as i64 (`<i2`, `<i4`, `<i8`; other types give an empty vector).
    pub fn to_i64(&self) -> Vec<i64> {
        match self.descr.as_str() {
            "<i2" => self
                .data
                .chunks_exact(2)
                .map(|c| i64::from(i16::from_le_bytes(le(c))))
                .collect(),
            "<i4" => self
                .data
                .chunks_exact(4)
                .map(|c| i64::from(i32::from_le_bytes(le(c))))
                .collect(),
            "<i8" => self
                .data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(le(c)))
                .collect(),
            _ => Vec::new(),
        }
    }
}

fn parse_npy(name: &str, bytes: &[u8]) -> Result<Array, FormatError> {
    let mut r = Reader::new(bytes);
    r.expect(b"\x93NUMPY", "npy magic")?;
    let major = r.u8("npy major version")?;
    let _minor = r.u8("npy minor version")?;
    let header_len = if major == 1 {
        usize::from(u16::from_le_bytes(r.array::<2>("npy header length")?))
    } else {
        u32::from_le_bytes(r.array::<4>("npy header length")?) as usize
    };
    let header = r.bytes(header_len, "npy header")?;
    let header = String::from_utf8_lossy(header);
    let bad = |what: &'static str| FormatError::Image {
        what: format!("npy array {name}"),
        message: format!("cannot read {what} from header {header}"),
    };
    let descr = header
        .split("'descr':")
        .nth(1)
        .and_then(|s| s.split('\'').nth(1))
        .ok_or_else(|| bad("descr"))?
        .to_string();
    if header.contains("'fortran_order': True") {
        return Err(bad("C order"));
    }
    let shape_txt = header
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split('(').nth(1))
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("shape"))?;
    let shape: Vec<usize> = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad("shape")))
        .collect::<Result<_, _>>()?;
    let data = r.bytes(r.remaining(), "npy data")?.to_vec();
    Ok(Array { descr, shape, data })
}

/// Reads every array of an `.npz` archive.
pub fn read(bytes: &[u8]) -> Result<BTreeMap<String, Array>, FormatError> {
    let mut out = BTreeMap::new();
    let mut r = Reader::new(bytes);
    while r.remaining() >= 4 {
        let sig_offset = r.offset();
        let sig = u32::from_le_bytes(r.array::<4>("zip signature")?);
        if sig != 0x0403_4b50 {
            // central directory or end record: done with the entries
            if sig == 0x0201_4b50 || sig == 0x0605_4b50 || sig == 0x0606_4b50 {
                break;
            }
            return Err(FormatError::InvalidValue {
                offset: sig_offset,
                field: "zip local header signature",
                value: u64::from(sig),
                expected: "PK\\x03\\x04",
            });
        }
        let le16 = |r: &mut Reader<'_>, f: &'static str| -> Result<u16, FormatError> {
            Ok(u16::from_le_bytes(r.array::<2>(f)?))
        };
        let le32 = |r: &mut Reader<'_>, f: &'static str| -> Result<u32, FormatError> {
            Ok(u32::from_le_bytes(r.array::<4>(f)?))
        };
        let _version = le16(&mut r, "zip version")?;
        let flags_offset = r.offset();
        let flags = le16(&mut r, "zip flags")?;
        if flags & 0x0009 != 0 {
            return Err(FormatError::Unsupported {
                offset: flags_offset,
                field: "zip flags",
                value: u64::from(flags),
                reason: "encrypted entries and data descriptors are not supported",
            });
        }
        let method_offset = r.offset();
        let method = le16(&mut r, "zip compression method")?;
        let _time = le16(&mut r, "zip time")?;
        let _date = le16(&mut r, "zip date")?;
        let _crc = le32(&mut r, "zip crc")?;
        let mut comp = u64::from(le32(&mut r, "zip compressed size")?);
        let mut uncomp = u64::from(le32(&mut r, "zip uncompressed size")?);
        let name_len = usize::from(le16(&mut r, "zip name length")?);
        let extra_len = usize::from(le16(&mut r, "zip extra length")?);
        let name = String::from_utf8_lossy(r.bytes(name_len, "zip file name")?).into_owned();
        let extra = r.bytes(extra_len, "zip extra field")?;
        // zip64 extra: id 0x0001, then uncompressed and compressed sizes
        let mut e = Reader::new(extra);
        while e.remaining() >= 4 {
            let id = u16::from_le_bytes(e.array::<2>("zip extra id")?);
            let len = usize::from(u16::from_le_bytes(e.array::<2>("zip extra length")?));
            let body = e.bytes(len, "zip extra body")?;
            if id == 1 && len >= 16 {
                let mut b = Reader::new(body);
                let u = u64::from_le_bytes(b.array::<8>("zip64 uncompressed size")?);
                let c = u64::from_le_bytes(b.array::<8>("zip64 compressed size")?);
                if uncomp == 0xFFFF_FFFF {
                    uncomp = u;
                }
                if comp == 0xFFFF_FFFF {
                    comp = c;
                }
            }
        }
        let size_offset = r.offset();
        if uncomp > MAX_ENTRY as u64 {
            return Err(FormatError::Unsupported {
                offset: size_offset,
                field: "npz entry size",
                value: uncomp,
                reason: "entry larger than the 16 MiB limit",
            });
        }
        let data = r.bytes(usize::try_from(comp).unwrap_or(usize::MAX), "zip entry data")?;
        let raw = match method {
            0 => data.to_vec(),
            8 => miniz_oxide::inflate::decompress_to_vec_with_limit(data, MAX_ENTRY).map_err(|e| {
                FormatError::Image {
                    what: format!("npz entry {name}"),
                    message: format!("deflate error: {e:?}"),
                }
            })?,
            m => {
                return Err(FormatError::Unsupported {
                    offset: method_offset,
                    field: "zip compression method",
                    value: u64::from(m),
                    reason: "only stored (0) and deflate (8) are supported",
                });
            }
        };
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        out.insert(key, parse_npy(&name, &raw)?);
    }
    Ok(out)
}
