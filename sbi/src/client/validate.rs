//! Validation of an RCAPTURE response.
//!
//! In order, for each returned segment: the device's error code; the data block's JWS (signature,
//! `x5c` chain to a trusted provider CA, validity at the clock); the strict payload shape; the signed
//! digital id (same checks), which must name the device that was asked (serial = device code, same
//! modality, same signer for L0 devices); the echoed transaction id; the segment (belongs to the
//! modality, was requested, is not an exception, not duplicated); and the hash chain. Then the count:
//! requested segments minus declared exceptions must all be present (certified clients have shipped
//! without this check). Last, quality against the requested score: a capture below it is returned
//! (by the average over its segments, as the spec scores slaps) inside
//! [`ClientError::QualityBelowThreshold`] so the station can retry or force-capture.

use std::collections::BTreeSet;
use std::time::Duration;

use tessera_packet::clock::Clock;

use super::{ClientError, FoundDevice};
use crate::jws::TrustStore;
use crate::protocol::{
    BioSubType, BioType, CaptureData, CaptureResponse, Certification, DeviceSubId, DigitalId, HashChain,
    Purpose, SbiErrorCode, TransactionId, b64url_decode, chain_hash, parse, parse_hash,
};
use crate::session::{EncryptedBio, SessionKeyDecryptor};

/// What the station asks for in one RCAPTURE.
#[derive(Debug, Clone)]
pub struct CaptureSpec {
    /// Transaction of the whole registration.
    pub transaction_id: TransactionId,
    /// Modality.
    pub bio_type: BioType,
    /// Device id from discovery.
    pub device_id: String,
    /// Device part.
    pub device_sub_id: DeviceSubId,
    /// Segments requested (4 for a slap, 2 for thumbs or both irises, 1 otherwise).
    pub count: u32,
    /// Segments wanted; empty = what the device part captures.
    pub bio_sub_type: Vec<BioSubType>,
    /// Segments the resident lacks.
    pub exceptions: Vec<BioSubType>,
    /// Quality threshold 1-100.
    pub requested_score: u8,
    /// Capture timeout sent to the device.
    pub timeout: Duration,
}

impl CaptureSpec {
    /// The segments that must come back: requested (or the part's) minus exceptions.
    pub fn expected_segments(&self) -> Vec<BioSubType> {
        let base: Vec<BioSubType> =
            if self.bio_sub_type.is_empty() || self.bio_sub_type.iter().all(|s| *s == BioSubType::Unknown) {
                BioSubType::segments_of(self.bio_type, self.device_sub_id).to_vec()
            } else {
                self.bio_sub_type.clone()
            };
        base.into_iter()
            .filter(|s| !self.exceptions.contains(s))
            .collect()
    }

    fn part_name(&self) -> &'static str {
        match (self.bio_type, self.device_sub_id) {
            (BioType::Finger, DeviceSubId::Left | DeviceSubId::Right) => "the slap",
            (BioType::Finger, DeviceSubId::Both) => "the thumbs",
            (BioType::Iris, _) => "the iris capture",
            _ => "the capture",
        }
    }
}

/// How the segments' `bioValue` travels.
#[derive(Debug, Clone, Copy)]
pub enum CaptureMode<'a> {
    /// RCAPTURE: plain ISO records; the hash chain is verified.
    Registration,
    /// CAPTURE: encrypted to the IDA certificate whose thumbprint is given. With the IDA private key
    /// (`decryptor`: the authentication server, or tests) the records are decrypted and the hash chain
    /// verified; without it the hashes are only checked for form and taken as the chain, and IDA
    /// verifies them after decryption.
    Auth {
        /// Expected uppercase hex SHA-256 of the IDA certificate.
        thumbprint: &'a str,
        /// The IDA private key, when held.
        decryptor: Option<&'a SessionKeyDecryptor>,
    },
}

/// One validated segment.
#[derive(Debug, Clone)]
pub struct CapturedSegment {
    /// Segment (None for face).
    pub bio_sub_type: Option<BioSubType>,
    /// Quality reported by the device.
    pub quality: u32,
    /// The ISO 19794 record (empty for an auth capture that was not decrypted).
    pub iso: Vec<u8>,
    /// Auth capture: the encrypted value, wrapped session key and certificate thumbprint as received.
    pub encrypted: Option<EncryptedBio>,
    /// The signed data block as received (kept for the packet's CBEFF `PAYLOAD`/`SB`).
    pub data_jws: String,
    /// The decoded payload.
    pub data: CaptureData,
    /// The chained hash after this segment (uppercase hex).
    pub hash: String,
}

/// A validated capture.
#[derive(Debug, Clone)]
pub struct Capture {
    /// Segments in the order received.
    pub segments: Vec<CapturedSegment>,
    /// The digital id of the device that signed.
    pub digital_id: DigitalId,
    /// The hash chain after this capture: keep it as the transaction's chain if the capture is kept.
    pub chain_after: HashChain,
}

fn seg_label(s: Option<BioSubType>, bio_type: BioType) -> String {
    match s {
        Some(s) => format!("{} data block", s.human()),
        None => format!("{} data block", bio_type.as_str()),
    }
}

/// Validates the RCAPTURE response `resp` for `spec` on `device`, continuing `previous`.
pub fn validate_capture(
    resp: &CaptureResponse,
    spec: &CaptureSpec,
    device: &FoundDevice,
    previous: &HashChain,
    trust: &TrustStore,
    clock: &dyn Clock,
) -> Result<Capture, ClientError> {
    validate_capture_as(
        resp,
        spec,
        device,
        previous,
        trust,
        clock,
        CaptureMode::Registration,
    )
}

/// Validates an RCAPTURE or CAPTURE response (see [`CaptureMode`]).
pub fn validate_capture_as(
    resp: &CaptureResponse,
    spec: &CaptureSpec,
    device: &FoundDevice,
    previous: &HashChain,
    trust: &TrustStore,
    clock: &dyn Clock,
    mode: CaptureMode<'_>,
) -> Result<Capture, ClientError> {
    let port = device.port;
    let verb = match mode {
        CaptureMode::Registration => "RCAPTURE",
        CaptureMode::Auth { .. } => "CAPTURE",
    };
    let protocol = |source| ClientError::Protocol { verb, port, source };
    let mut chain = previous.clone();
    let mut segments = Vec::with_capacity(resp.biometrics.len());
    let mut seen = BTreeSet::new();
    let mut digital: Option<DigitalId> = None;
    let expected = spec.expected_segments();
    for entry in &resp.biometrics {
        let code = entry.error.code().map_err(protocol)?;
        if code != SbiErrorCode::Success {
            return Err(ClientError::Device {
                verb,
                port,
                code,
                info: entry.error.error_info.clone(),
            });
        }
        let token = entry.data.as_deref().ok_or_else(|| ClientError::Device {
            verb,
            port,
            code,
            info: "success without a data block".into(),
        })?;
        let v = trust
            .verify("capture data block", token, clock)
            .map_err(|source| ClientError::Signature {
                what: "capture data block".into(),
                source: Box::new(source),
            })?;
        let data: CaptureData = parse("capture data payload", &v.payload).map_err(protocol)?;
        let label = seg_label(data.bio_sub_type, data.bio_type);
        let d = trust
            .verify("digital id", &data.digital_id, clock)
            .map_err(|source| ClientError::Signature {
                what: format!("digital id in the {label}"),
                source: Box::new(source),
            })?;
        let did: DigitalId = parse("digitalId payload", &d.payload).map_err(protocol)?;
        // The digital id must describe the device that was asked and that signed this block.
        if did.serial_no != data.device_code {
            return Err(ClientError::DeviceMismatch {
                detail: format!(
                    "the {label} names device {} but its digital id names serial {}",
                    data.device_code, did.serial_no
                ),
            });
        }
        if data.device_code != device.entry.device_code {
            return Err(ClientError::DeviceMismatch {
                detail: format!(
                    "asked device {} on port {port}, but the {label} comes from device {}",
                    device.entry.device_code, data.device_code
                ),
            });
        }
        if did.bio_type != data.bio_type || data.bio_type != spec.bio_type {
            return Err(ClientError::DeviceMismatch {
                detail: format!(
                    "asked for {}, the data block is {} and the digital id is a {} device",
                    spec.bio_type.as_str(),
                    data.bio_type.as_str(),
                    did.bio_type.as_str()
                ),
            });
        }
        if !did.device_sub_type.allowed_for(did.bio_type) {
            return Err(ClientError::DeviceMismatch {
                detail: format!(
                    "digital id sub-type {:?} is not valid for {}",
                    did.device_sub_type,
                    did.bio_type.as_str()
                ),
            });
        }
        if device.entry.certification == Certification::L0 && d.signer_der != v.signer_der {
            return Err(ClientError::DeviceMismatch {
                detail: format!(
                    "the {label} is signed by {} but its digital id by {}",
                    v.signer_subject, d.signer_subject
                ),
            });
        }
        if let Some(cn) = &v.signer_cn
            && cn != &did.serial_no
        {
            return Err(ClientError::DeviceMismatch {
                detail: format!(
                    "the {label} is signed by the certificate of device {cn}, not {}",
                    did.serial_no
                ),
            });
        }
        if let Some(prev) = &digital
            && prev.serial_no != did.serial_no
        {
            return Err(ClientError::DeviceMismatch {
                detail: "segments of one capture come from different devices".into(),
            });
        }
        if data.transaction_id != spec.transaction_id.as_str() {
            return Err(ClientError::TransactionMismatch {
                expected: spec.transaction_id.to_string(),
                got: data.transaction_id.chars().take(60).collect(),
            });
        }
        match (spec.bio_type, data.bio_sub_type) {
            (BioType::Face, _) => {
                if !seen.insert(None) {
                    return Err(ClientError::TooManySegments {
                        expected: 1,
                        got: resp.biometrics.len(),
                    });
                }
            }
            (bt, Some(s)) => {
                if !s.belongs_to(bt)
                    || spec.exceptions.contains(&s)
                    || !(expected.contains(&s) || s == BioSubType::Unknown && spec.count == 1)
                {
                    return Err(ClientError::UnexpectedSegment {
                        segment: s,
                        exception: spec.exceptions.contains(&s),
                    });
                }
                if !seen.insert(Some(s)) {
                    return Err(ClientError::DuplicateSegment { segment: s });
                }
            }
            (_, None) => {
                return Err(protocol(crate::protocol::ProtocolError::InvalidNumber {
                    field: "bioSubType",
                    value: "missing for a finger or iris segment".into(),
                }));
            }
        }
        let want_purpose = match mode {
            CaptureMode::Registration => Purpose::Registration,
            CaptureMode::Auth { .. } => Purpose::Auth,
        };
        if data.purpose != want_purpose {
            return Err(ClientError::DeviceMismatch {
                detail: format!(
                    "the {label} was captured for purpose {:?}, not {want_purpose:?}",
                    data.purpose
                ),
            });
        }
        let (iso, encrypted) = match mode {
            CaptureMode::Registration => (
                Some(b64url_decode("bioValue", &data.bio_value).map_err(protocol)?),
                None,
            ),
            CaptureMode::Auth {
                thumbprint,
                decryptor,
            } => {
                let enc = EncryptedBio {
                    bio_value: data.bio_value.clone(),
                    session_key: entry.session_key.clone().unwrap_or_default(),
                    thumbprint: entry.thumbprint.clone().unwrap_or_default(),
                };
                if enc.thumbprint != thumbprint {
                    return Err(ClientError::Encryption {
                        what: label,
                        source: crate::session::SessionError::Thumbprint {
                            expected: thumbprint.to_string(),
                            got: enc.thumbprint.chars().take(64).collect(),
                        },
                    });
                }
                if enc.session_key.is_empty() {
                    return Err(ClientError::Encryption {
                        what: label,
                        source: crate::session::SessionError::Encoding { field: "sessionKey" },
                    });
                }
                let iso = match decryptor {
                    Some(d) => Some(d.decrypt(&enc, &data.timestamp, &data.transaction_id).map_err(
                        |source| ClientError::Encryption {
                            what: label.clone(),
                            source,
                        },
                    )?),
                    None => None,
                };
                (iso, Some(enc))
            }
        };
        let got_hash = entry.hash.as_deref().unwrap_or_default();
        let got = parse_hash("hash", got_hash).map_err(protocol)?;
        let want = match &iso {
            Some(iso) => chain_hash(&chain.current(), iso),
            // Encrypted and not decryptable here: the form is checked, IDA checks the value.
            None => got,
        };
        if got_hash.trim().is_empty() || got != want {
            return Err(ClientError::HashMismatch {
                what: label,
                expected: hex::encode_upper(want),
                got: got_hash.chars().take(80).collect(),
            });
        }
        chain = HashChain::from_hash(want);
        segments.push(CapturedSegment {
            bio_sub_type: data.bio_sub_type,
            quality: data.quality_score.get(),
            iso: iso.unwrap_or_default(),
            encrypted,
            data_jws: token.to_string(),
            hash: hex::encode_upper(want),
            data,
        });
        digital = Some(did);
    }
    // Count: everything requested minus exceptions must be there.
    if spec.bio_type == BioType::Face {
        if segments.is_empty() {
            return Err(ClientError::TooManySegments { expected: 1, got: 0 });
        }
    } else {
        let single_unknown = spec.count == 1 && seen.contains(&Some(BioSubType::Unknown));
        let missing: Vec<BioSubType> = expected
            .iter()
            .copied()
            .filter(|s| !seen.contains(&Some(*s)))
            .collect();
        if !missing.is_empty() && !single_unknown {
            return Err(ClientError::MissingSegments {
                missing,
                part: spec.part_name(),
            });
        }
        let want = usize::try_from(spec.count).unwrap_or(usize::MAX).saturating_sub(
            spec.exceptions
                .iter()
                .filter(|e| BioSubType::segments_of(spec.bio_type, spec.device_sub_id).contains(e))
                .count(),
        );
        if segments.len() > want.max(expected.len()) {
            return Err(ClientError::TooManySegments {
                expected: want,
                got: segments.len(),
            });
        }
    }
    let digital_id = digital.ok_or(ClientError::MissingSegments {
        missing: expected.clone(),
        part: spec.part_name(),
    })?;
    let capture = Capture {
        segments,
        digital_id,
        chain_after: chain,
    };
    // The spec scores a multi-segment capture by the average of its segments (a slap's requestedScore
    // is the average of the four fingers); the segments below the threshold are named for the operator.
    let required = u32::from(spec.requested_score);
    let n = u32::try_from(capture.segments.len()).unwrap_or(u32::MAX).max(1);
    let average = capture.segments.iter().map(|s| s.quality).sum::<u32>() / n;
    if average < required {
        let mut low: Vec<(BioSubType, u32)> = capture
            .segments
            .iter()
            .filter(|s| s.quality < required)
            .map(|s| (s.bio_sub_type.unwrap_or(BioSubType::Unknown), s.quality))
            .collect();
        if low.is_empty() {
            low = capture
                .segments
                .iter()
                .map(|s| (s.bio_sub_type.unwrap_or(BioSubType::Unknown), s.quality))
                .collect();
        }
        return Err(ClientError::QualityBelowThreshold {
            low,
            average,
            required: spec.requested_score,
            capture: Box::new(capture),
        });
    }
    Ok(capture)
}
