//! Client errors: each message says what happened and what the operator can do.

use std::time::Duration;

use crate::jws::JwsError;
use crate::protocol::{BioSubType, ProtocolError, SbiErrorCode};

use super::validate::Capture;

/// Lists segments for a message: "Right index finger and Right ring finger".
fn list(segments: &[BioSubType]) -> String {
    let names: Vec<&str> = segments.iter().map(|s| s.human()).collect();
    match names.as_slice() {
        [] => "No segment".to_string(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {}", init.join(", "), last),
    }
}

/// An SBI client failure.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The HTTP client could not be set up.
    #[error("the SBI client could not be set up: {0}")]
    Setup(String),
    /// Nothing accepted the connection on the port.
    #[error(
        "no biometric device service on 127.0.0.1:{port} ({verb}): {reason}; check the device service is running"
    )]
    Connect {
        /// Verb attempted.
        verb: &'static str,
        /// Port.
        port: u16,
        /// OS message.
        reason: String,
    },
    /// The device did not answer within the verb's timeout.
    #[error(
        "the device on port {port} did not answer {verb} within {after:?}; check it is connected and not stuck, then try again"
    )]
    Timeout {
        /// Verb.
        verb: &'static str,
        /// Port.
        port: u16,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// The connection broke while reading (e.g. the service closed the port mid-response).
    #[error(
        "the connection to the device on port {port} broke during {verb}: {reason}; try again, and restart the device service if it repeats"
    )]
    Read {
        /// Verb.
        verb: &'static str,
        /// Port.
        port: u16,
        /// What the transport said.
        reason: String,
    },
    /// A non-2xx HTTP status: not an SBI service, or a broken one.
    #[error("port {port} answered {verb} with HTTP status {status}; it is not a working SBI device service")]
    HttpStatus {
        /// Verb.
        verb: &'static str,
        /// Port.
        port: u16,
        /// HTTP status.
        status: u16,
    },
    /// The response is larger than accepted.
    #[error("the {verb} response from port {port} exceeds {max} bytes; refusing it")]
    TooLarge {
        /// Verb.
        verb: &'static str,
        /// Port.
        port: u16,
        /// Limit.
        max: usize,
    },
    /// The response does not follow SBI 0.9.5.
    #[error(
        "the device on port {port} answered {verb} with a message that does not follow SBI 0.9.5: {source}"
    )]
    Protocol {
        /// Verb.
        verb: &'static str,
        /// Port.
        port: u16,
        /// What was wrong.
        #[source]
        source: ProtocolError,
    },
    /// The device reported an SBI error code.
    #[error("the device on port {port} refused {verb}: {info} (SBI error {}); {}", .code.code(), .code.advice())]
    Device {
        /// Verb.
        verb: &'static str,
        /// Port.
        port: u16,
        /// Typed code.
        code: SbiErrorCode,
        /// The device's text.
        info: String,
    },
    /// A signature, certificate chain or validity check failed.
    #[error("the {what} cannot be trusted: {source}")]
    Signature {
        /// Which item (e.g. "Right index finger data block").
        what: String,
        /// The JWS failure.
        #[source]
        source: Box<JwsError>,
    },
    /// An auth capture's encryption is not for our IDA certificate, or does not decrypt.
    #[error("the {what} of the authentication capture cannot be used: {source}; capture again")]
    Encryption {
        /// Which segment.
        what: String,
        /// What failed.
        #[source]
        source: crate::session::SessionError,
    },
    /// The data block's device does not match the device asked, or its digital id.
    #[error(
        "the capture does not come from the device that was asked: {detail}; do not use this capture, check which devices are connected"
    )]
    DeviceMismatch {
        /// What differs.
        detail: String,
    },
    /// The data block echoes another transaction id.
    #[error("the capture belongs to transaction {got}, not {expected}; capture again")]
    TransactionMismatch {
        /// Asked.
        expected: String,
        /// Returned.
        got: String,
    },
    /// The device returned a segment that was not asked for (or was declared an exception).
    #[error("the device returned {} which was not requested{}; capture again", .segment.human(), if *.exception { " (it is marked as an exception)" } else { "" })]
    UnexpectedSegment {
        /// The segment.
        segment: BioSubType,
        /// Whether it was declared an exception.
        exception: bool,
    },
    /// The same segment came twice.
    #[error("the device returned {} twice; capture again", .segment.human())]
    DuplicateSegment {
        /// The segment.
        segment: BioSubType,
    },
    /// Fewer segments than requested minus exceptions.
    #[error("{} missing from {part}: capture again or mark an exception", list(.missing))]
    MissingSegments {
        /// What is missing.
        missing: Vec<BioSubType>,
        /// The capture it is missing from, e.g. "the slap", "the thumbs", "the iris capture".
        part: &'static str,
    },
    /// More segments than requested.
    #[error("the device returned {got} images but {expected} were requested; capture again")]
    TooManySegments {
        /// Requested minus exceptions.
        expected: usize,
        /// Returned.
        got: usize,
    },
    /// A returned hash does not continue the transaction's hash chain.
    #[error(
        "the integrity hash of {what} does not match its image and the previous captures (expected {expected}, device sent {got}); the capture may have been altered: capture again"
    )]
    HashMismatch {
        /// Which segment.
        what: String,
        /// Computed hash.
        expected: String,
        /// Device's hash.
        got: String,
    },
    /// The capture is valid but some segments are below the requested quality.
    #[error("quality too low: average {average}, required {required} ({}); ask the resident to clean and reposition, then capture again", .low.iter().map(|(s, q)| format!("{} {q}", s.human())).collect::<Vec<_>>().join(", "))]
    QualityBelowThreshold {
        /// Segments below threshold and their scores.
        low: Vec<(BioSubType, u32)>,
        /// Average quality of the capture.
        average: u32,
        /// The threshold requested.
        required: u8,
        /// The complete, otherwise valid capture (for force-capture after the allowed retries).
        capture: Box<Capture>,
    },
}

impl ClientError {
    pub(crate) fn from_reqwest(verb: &'static str, port: u16, timeout: Duration, e: reqwest::Error) -> Self {
        if e.is_timeout() {
            ClientError::Timeout {
                verb,
                port,
                after: timeout,
            }
        } else if e.is_connect() {
            ClientError::Connect {
                verb,
                port,
                reason: error_chain(&e),
            }
        } else {
            ClientError::Read {
                verb,
                port,
                reason: error_chain(&e),
            }
        }
    }

    /// The signature/chain/validity failure, for `Signature` errors.
    pub fn jws_error(&self) -> Option<&JwsError> {
        match self {
            ClientError::Signature { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The SBI error code when the device reported one.
    pub fn sbi_code(&self) -> Option<SbiErrorCode> {
        match self {
            ClientError::Device { code, .. } => Some(*code),
            _ => None,
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_finger_message_is_operator_readable() {
        let e = ClientError::MissingSegments {
            missing: vec![BioSubType::RightIndex],
            part: "the slap",
        };
        assert_eq!(
            e.to_string(),
            "Right index finger missing from the slap: capture again or mark an exception"
        );
        let e = ClientError::MissingSegments {
            missing: vec![BioSubType::RightIndex, BioSubType::RightRing],
            part: "the slap",
        };
        assert_eq!(
            e.to_string(),
            "Right index finger and Right ring finger missing from the slap: capture again or mark an exception"
        );
    }
}
