//! Errors of the record codecs and image handling.

use thiserror::Error;

/// Why a biometric record or image could not be decoded or encoded.
///
/// Every decoding variant names the byte offset (from the start of the record) and the field, so that a
/// device vendor or an operator can find the fault in a hex dump.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FormatError {
    /// The input ended inside a field. The record is cut short: recapture or resend the whole record.
    #[error(
        "record truncated at byte {offset} reading {field}: needed {needed} bytes, only {available} left"
    )]
    Truncated {
        /// Byte offset where the field starts.
        offset: usize,
        /// Field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// A format identifier or version did not match. The bytes are another format or another version.
    #[error(
        "bad {field} at byte {offset}: expected {expected:?}, found {found:?} (is this the right record type and version?)"
    )]
    BadMagic {
        /// Byte offset of the identifier.
        offset: usize,
        /// Which identifier (format identifier or version number).
        field: &'static str,
        /// The expected bytes.
        expected: &'static [u8],
        /// The bytes found.
        found: Vec<u8>,
    },
    /// A field holds a value the standard does not allow.
    #[error("invalid {field} at byte {offset}: value {value}, expected {expected}")]
    InvalidValue {
        /// Byte offset of the field.
        offset: usize,
        /// Field name.
        field: &'static str,
        /// Value found.
        value: u64,
        /// What the standard allows.
        expected: &'static str,
    },
    /// A declared length disagrees with the bytes present or with the sum of its parts.
    #[error("{field} at byte {offset} declares {declared} bytes but the record structure gives {actual}")]
    LengthMismatch {
        /// Byte offset of the length field.
        offset: usize,
        /// Which length field.
        field: &'static str,
        /// Declared value.
        declared: u64,
        /// Value implied by the data.
        actual: u64,
    },
    /// Bytes left over after a complete structure. Strict decoding refuses them (they may hide data).
    #[error("{count} unexpected trailing bytes at byte {offset} after the {what}")]
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
        /// Structure that was complete.
        what: &'static str,
        /// Number of extra bytes.
        count: usize,
    },
    /// A valid value this implementation does not handle (for example 16-bit images or WSQ pixels).
    #[error("unsupported {field} at byte {offset}: {value} ({reason})")]
    Unsupported {
        /// Byte offset of the field (0 when not tied to a record offset).
        offset: usize,
        /// Field name.
        field: &'static str,
        /// Value found.
        value: u64,
        /// Why and what to do instead.
        reason: &'static str,
    },
    /// The embedded image could not be decoded or encoded, or its size disagrees with the record header.
    #[error("image data of {what}: {message}")]
    Image {
        /// Which image (record type and representation index).
        what: String,
        /// What went wrong.
        message: String,
    },
}
