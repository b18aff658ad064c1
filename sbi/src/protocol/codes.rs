//! SBI error codes (spec section "Error codes") and the `error` object every response carries.

use serde::{Deserialize, Serialize};

use super::ProtocolError;

/// The `error` object: `{"errorCode": "0", "errorInfo": "Success"}`. The code is a string on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorInfo {
    /// Decimal error code as a string.
    pub error_code: String,
    /// Free text from the device.
    pub error_info: String,
}

impl ErrorInfo {
    /// `{"errorCode":"0","errorInfo":"Success"}`.
    pub fn success() -> Self {
        Self::from_code(SbiErrorCode::Success)
    }

    /// The object for `code` with its standard text.
    pub fn from_code(code: SbiErrorCode) -> Self {
        Self {
            error_code: code.code().to_string(),
            error_info: code.standard_text().to_string(),
        }
    }

    /// The typed code.
    pub fn code(&self) -> Result<SbiErrorCode, ProtocolError> {
        SbiErrorCode::parse(&self.error_code)
    }

    /// Whether the code is 0.
    pub fn is_success(&self) -> bool {
        matches!(self.code(), Ok(SbiErrorCode::Success))
    }
}

/// The SBI 0.9.5 error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SbiErrorCode {
    /// 0: success.
    Success,
    /// 100: device not registered.
    NotRegistered,
    /// 101: unable to detect a biometric object.
    UnableToDetect,
    /// 102: technical error during extraction.
    ExtractionError,
    /// 103: device tamper detected.
    Tamper,
    /// 104: unable to connect to the management server.
    ManagementServerUnreachable,
    /// 105: image orientation error.
    Orientation,
    /// 106: device not found.
    DeviceNotFound,
    /// 107: device public key expired.
    DeviceKeyExpired,
    /// 108: domain public key missing.
    DomainKeyMissing,
    /// 109: requested number of biometrics not supported.
    BioCountNotSupported,
    /// 110: device not ready.
    NotReady,
    /// 111: device busy.
    Busy,
    /// 112: invalid transactionId.
    InvalidTransactionId,
    /// 500-599: vendor-specific.
    Vendor(u16),
    /// Any other number: not defined by SBI 0.9.5.
    Undefined(u32),
}

impl SbiErrorCode {
    /// The numeric code.
    pub fn code(self) -> u32 {
        match self {
            SbiErrorCode::Success => 0,
            SbiErrorCode::NotRegistered => 100,
            SbiErrorCode::UnableToDetect => 101,
            SbiErrorCode::ExtractionError => 102,
            SbiErrorCode::Tamper => 103,
            SbiErrorCode::ManagementServerUnreachable => 104,
            SbiErrorCode::Orientation => 105,
            SbiErrorCode::DeviceNotFound => 106,
            SbiErrorCode::DeviceKeyExpired => 107,
            SbiErrorCode::DomainKeyMissing => 108,
            SbiErrorCode::BioCountNotSupported => 109,
            SbiErrorCode::NotReady => 110,
            SbiErrorCode::Busy => 111,
            SbiErrorCode::InvalidTransactionId => 112,
            SbiErrorCode::Vendor(c) => u32::from(c),
            SbiErrorCode::Undefined(c) => c,
        }
    }

    /// From a number.
    pub fn from_number(n: u32) -> Self {
        match n {
            0 => SbiErrorCode::Success,
            100 => SbiErrorCode::NotRegistered,
            101 => SbiErrorCode::UnableToDetect,
            102 => SbiErrorCode::ExtractionError,
            103 => SbiErrorCode::Tamper,
            104 => SbiErrorCode::ManagementServerUnreachable,
            105 => SbiErrorCode::Orientation,
            106 => SbiErrorCode::DeviceNotFound,
            107 => SbiErrorCode::DeviceKeyExpired,
            108 => SbiErrorCode::DomainKeyMissing,
            109 => SbiErrorCode::BioCountNotSupported,
            110 => SbiErrorCode::NotReady,
            111 => SbiErrorCode::Busy,
            112 => SbiErrorCode::InvalidTransactionId,
            500..=599 => SbiErrorCode::Vendor(u16::try_from(n).unwrap_or(500)),
            other => SbiErrorCode::Undefined(other),
        }
    }

    /// From the wire string.
    pub fn parse(s: &str) -> Result<Self, ProtocolError> {
        let t = s.trim();
        if t.is_empty() || t.len() > 9 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ProtocolError::InvalidErrorCode {
                value: s.chars().take(40).collect(),
            });
        }
        t.parse::<u32>()
            .map(Self::from_number)
            .map_err(|_| ProtocolError::InvalidErrorCode {
                value: s.chars().take(40).collect(),
            })
    }

    /// The standard `errorInfo` text.
    pub fn standard_text(self) -> &'static str {
        match self {
            SbiErrorCode::Success => "Success",
            SbiErrorCode::NotRegistered => "Device not registered",
            SbiErrorCode::UnableToDetect => "Unable to detect a biometric object",
            SbiErrorCode::ExtractionError => "Technical error during extraction",
            SbiErrorCode::Tamper => "Device tamper detected",
            SbiErrorCode::ManagementServerUnreachable => "Unable to connect to management server",
            SbiErrorCode::Orientation => "Image orientation error",
            SbiErrorCode::DeviceNotFound => "Device not found",
            SbiErrorCode::DeviceKeyExpired => "Device public key expired",
            SbiErrorCode::DomainKeyMissing => "Domain public key missing",
            SbiErrorCode::BioCountNotSupported => "Requested number of biometrics not supported",
            SbiErrorCode::NotReady => "Device not ready",
            SbiErrorCode::Busy => "Device busy",
            SbiErrorCode::InvalidTransactionId => "Invalid transactionId",
            SbiErrorCode::Vendor(_) => "Vendor-specific error",
            SbiErrorCode::Undefined(_) => "Undefined error code",
        }
    }

    /// What an operator should do about it.
    pub fn advice(self) -> &'static str {
        match self {
            SbiErrorCode::Success => "nothing",
            SbiErrorCode::NotRegistered | SbiErrorCode::DeviceKeyExpired => {
                "the device needs a (new) certificate from its provider; ask the technician"
            }
            SbiErrorCode::UnableToDetect | SbiErrorCode::Orientation => {
                "place the finger, eye or face correctly and capture again"
            }
            SbiErrorCode::Busy => "wait for the current capture to finish, then try again",
            SbiErrorCode::NotReady | SbiErrorCode::DeviceNotFound => {
                "check the device is plugged in and its service is running"
            }
            SbiErrorCode::Tamper => "stop using this device and report it to the supervisor",
            SbiErrorCode::BioCountNotSupported => "request a count the device part supports",
            _ => "try again; if it repeats, restart the device service",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_defined_codes_round_trip() {
        for n in [
            0, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 500, 599,
        ] {
            let c = SbiErrorCode::from_number(n);
            assert_eq!(c.code(), n);
            assert_eq!(SbiErrorCode::parse(&n.to_string()).unwrap(), c);
            assert!(!matches!(c, SbiErrorCode::Undefined(_)), "{n}");
        }
        assert_eq!(SbiErrorCode::parse("42").unwrap(), SbiErrorCode::Undefined(42));
        assert!(SbiErrorCode::parse("abc").is_err());
        assert!(SbiErrorCode::parse("").is_err());
        assert!(SbiErrorCode::parse("99999999999999").is_err());
    }
}
