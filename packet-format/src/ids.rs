//! Identifiers shared by the station and the server, each a newtype that validates on parse.
//!
//! | identifier | digits | layout |
//! |---|---|---|
//! | [`CenterId`] | 5 | registration center |
//! | [`MachineId`] | 5 | registration station |
//! | [`Rid`] | 29 | center (5) + machine (5) + sequence (5) + UTC `yyyyMMddHHmmss` (14) |
//! | [`Uin`] | 10 | random, last digit a Verhoeff check digit |
//! | [`Vid`] | 16 | random, last digit a Verhoeff check digit |
//! | [`PreRegId`] | 14 | pre-registration booking |
//!
//! Errors never echo a whole UIN or VID (they identify a person); they say which part is wrong.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

/// Why an identifier failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The identifier has the wrong number of characters.
    #[error("{kind} must be {expected} digits, got {actual} characters")]
    Length {
        /// Which identifier (e.g. "RID").
        kind: &'static str,
        /// The required length.
        expected: usize,
        /// The length received.
        actual: usize,
    },
    /// A character is not an ASCII digit.
    #[error("{kind} must contain only digits; character {position} (1-based) is not a digit")]
    NotDigit {
        /// Which identifier.
        kind: &'static str,
        /// 1-based position of the first offending character.
        position: usize,
    },
    /// A part of a composite identifier is invalid.
    #[error("{kind}: the {part} (characters {from}-{to}) is invalid: {reason}")]
    Part {
        /// Which identifier.
        kind: &'static str,
        /// Which part, e.g. "timestamp".
        part: &'static str,
        /// 1-based first character of the part.
        from: usize,
        /// 1-based last character of the part.
        to: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The Verhoeff check digit does not match.
    #[error("{kind} check digit is wrong: the number was mistyped or is not a {kind}")]
    Checksum {
        /// Which identifier.
        kind: &'static str,
    },
}

fn check_digits(kind: &'static str, s: &str, len: usize) -> Result<(), IdError> {
    let actual = s.chars().count();
    if actual != len {
        return Err(IdError::Length {
            kind,
            expected: len,
            actual,
        });
    }
    if let Some(position) = s.chars().position(|c| !c.is_ascii_digit()) {
        return Err(IdError::NotDigit {
            kind,
            position: position + 1,
        });
    }
    Ok(())
}

macro_rules! digit_newtype {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $len:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Number of digits.
            pub const LEN: usize = $len;

            /// The digits as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                s.parse()
            }
        }
    };
}

digit_newtype!(
    /// A registration center id: 5 digits.
    CenterId, "center id", 5
);
digit_newtype!(
    /// A registration machine (station) id: 5 digits.
    MachineId, "machine id", 5
);
digit_newtype!(
    /// A pre-registration (appointment) id: 14 digits.
    PreRegId, "pre-registration id", 14
);

impl fmt::Debug for CenterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CenterId({})", self.0)
    }
}
impl fmt::Debug for MachineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MachineId({})", self.0)
    }
}
impl fmt::Debug for PreRegId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PreRegId({})", self.0)
    }
}

impl FromStr for CenterId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        check_digits("center id", s, 5)?;
        Ok(Self(s.to_owned()))
    }
}
impl FromStr for MachineId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        check_digits("machine id", s, 5)?;
        Ok(Self(s.to_owned()))
    }
}
impl FromStr for PreRegId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        check_digits("pre-registration id", s, 14)?;
        Ok(Self(s.to_owned()))
    }
}

impl CenterId {
    /// A center id from a number below 100000, zero-padded.
    pub fn from_number(n: u32) -> Result<Self, IdError> {
        format!("{n:05}").parse()
    }
}
impl MachineId {
    /// A machine id from a number below 100000, zero-padded.
    pub fn from_number(n: u32) -> Result<Self, IdError> {
        format!("{n:05}").parse()
    }
}

/// A registration id (RID): 29 digits, generated offline by the station.
///
/// Layout: center id (5) + machine id (5) + sequence (5) + UTC timestamp `yyyyMMddHHmmss` (14).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Rid(String);

const RID_KIND: &str = "RID";
const RID_TS_FORMAT: &str = "%Y%m%d%H%M%S";

impl Rid {
    /// Number of digits.
    pub const LEN: usize = 29;

    /// Builds a RID. `sequence` must be in `1..=99999`; the timestamp is truncated to whole seconds.
    pub fn new(
        center: &CenterId,
        machine: &MachineId,
        sequence: u32,
        at: DateTime<Utc>,
    ) -> Result<Self, IdError> {
        if sequence == 0 || sequence > 99_999 {
            return Err(IdError::Part {
                kind: RID_KIND,
                part: "sequence",
                from: 11,
                to: 15,
                reason: format!("sequence {sequence} is outside 1-99999"),
            });
        }
        let s = format!("{center}{machine}{sequence:05}{}", at.format(RID_TS_FORMAT));
        s.parse()
    }

    /// The digits as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The center id part.
    pub fn center_id(&self) -> CenterId {
        CenterId(self.0.get(0..5).unwrap_or_default().to_owned())
    }

    /// The machine id part.
    pub fn machine_id(&self) -> MachineId {
        MachineId(self.0.get(5..10).unwrap_or_default().to_owned())
    }

    /// The sequence part.
    pub fn sequence(&self) -> u32 {
        self.0
            .get(10..15)
            .and_then(|s| s.parse().ok())
            .unwrap_or_default()
    }

    /// The embedded UTC creation timestamp.
    pub fn timestamp(&self) -> DateTime<Utc> {
        self.0
            .get(15..29)
            .and_then(|s| NaiveDateTime::parse_from_str(s, RID_TS_FORMAT).ok())
            .map(|n| n.and_utc())
            .unwrap_or_default()
    }
}

impl FromStr for Rid {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        check_digits(RID_KIND, s, Self::LEN)?;
        let seq = s.get(10..15).unwrap_or_default();
        if seq == "00000" {
            return Err(IdError::Part {
                kind: RID_KIND,
                part: "sequence",
                from: 11,
                to: 15,
                reason: "sequence 00000 is not allowed".into(),
            });
        }
        let ts = s.get(15..29).unwrap_or_default();
        if NaiveDateTime::parse_from_str(ts, RID_TS_FORMAT).is_err() {
            return Err(IdError::Part {
                kind: RID_KIND,
                part: "timestamp",
                from: 16,
                to: 29,
                reason: format!("{ts} is not a valid UTC date and time yyyyMMddHHmmss"),
            });
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for Rid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for Rid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rid({})", self.0)
    }
}
impl From<Rid> for String {
    fn from(v: Rid) -> String {
        v.0
    }
}
impl TryFrom<String> for Rid {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}

digit_newtype!(
    /// A unique identification number (UIN): 10 digits, the last a Verhoeff check digit.
    ///
    /// `Debug` masks all but the last 4 digits so a UIN never lands whole in a log.
    Uin, "UIN", 10
);
digit_newtype!(
    /// A virtual id (VID): 16 digits, the last a Verhoeff check digit. `Debug` masks it.
    Vid, "VID", 16
);

fn masked(f: &mut fmt::Formatter<'_>, name: &str, s: &str) -> fmt::Result {
    let tail = s.get(s.len().saturating_sub(4)..).unwrap_or_default();
    write!(f, "{name}(******{tail})")
}
impl fmt::Debug for Uin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        masked(f, "Uin", &self.0)
    }
}
impl fmt::Debug for Vid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        masked(f, "Vid", &self.0)
    }
}

fn parse_checked(kind: &'static str, s: &str, len: usize) -> Result<(), IdError> {
    check_digits(kind, s, len)?;
    if !verhoeff::validate(s) {
        return Err(IdError::Checksum { kind });
    }
    Ok(())
}

impl FromStr for Uin {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        parse_checked("UIN", s, Self::LEN)?;
        Ok(Self(s.to_owned()))
    }
}
impl FromStr for Vid {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        parse_checked("VID", s, Self::LEN)?;
        Ok(Self(s.to_owned()))
    }
}

impl Uin {
    /// Completes 9 body digits with their Verhoeff check digit. Filtering (no leading 0 or 1, no long
    /// runs, restricted numbers) is the allocator's job, not this constructor's.
    pub fn from_body(body: &str) -> Result<Self, IdError> {
        check_digits("UIN body", body, Self::LEN - 1)?;
        let d = verhoeff::check_digit(body).ok_or(IdError::Checksum { kind: "UIN" })?;
        Ok(Self(format!("{body}{d}")))
    }
}
impl Vid {
    /// Completes 15 body digits with their Verhoeff check digit.
    pub fn from_body(body: &str) -> Result<Self, IdError> {
        check_digits("VID body", body, Self::LEN - 1)?;
        let d = verhoeff::check_digit(body).ok_or(IdError::Checksum { kind: "VID" })?;
        Ok(Self(format!("{body}{d}")))
    }
}

/// The Verhoeff check-digit scheme (dihedral group D5), which catches every single-digit error and every
/// transposition of adjacent digits.
pub mod verhoeff {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    const INV: [u8; 10] = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9];

    fn fold(digits: &str, offset: usize) -> Option<u8> {
        let mut c = 0u8;
        for (i, ch) in digits.bytes().rev().enumerate() {
            let d = ch.checked_sub(b'0').filter(|d| *d <= 9)?;
            let p = P.get((i + offset) % 8)?.get(usize::from(d))?;
            c = *D.get(usize::from(c))?.get(usize::from(*p))?;
        }
        Some(c)
    }

    /// The check digit ('0'-'9') to append to `body`, or `None` if `body` has a non-digit.
    pub fn check_digit(body: &str) -> Option<char> {
        let c = fold(body, 1)?;
        let inv = INV.get(usize::from(c))?;
        Some(char::from(b'0' + inv))
    }

    /// Whether `number` (body followed by its check digit) is valid.
    pub fn validate(number: &str) -> bool {
        !number.is_empty() && fold(number, 0) == Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    #[test]
    fn rid_round_trips_its_parts() {
        let at = Utc.with_ymd_and_hms(2022, 1, 28, 22, 36, 18).unwrap();
        let rid = Rid::new(&"10001".parse().unwrap(), &"10077".parse().unwrap(), 10069, at).unwrap();
        assert_eq!(rid.as_str(), "10001100771006920220128223618");
        assert_eq!(rid.center_id().as_str(), "10001");
        assert_eq!(rid.machine_id().as_str(), "10077");
        assert_eq!(rid.sequence(), 10069);
        assert_eq!(rid.timestamp(), at);
    }

    #[test]
    fn rid_errors_name_the_bad_part() {
        let e = "1000110077100692022012822361".parse::<Rid>().unwrap_err();
        assert_eq!(
            e,
            IdError::Length {
                kind: "RID",
                expected: 29,
                actual: 28
            }
        );
        let e = "10001100771006920221328223618".parse::<Rid>().unwrap_err();
        assert!(
            matches!(
                e,
                IdError::Part {
                    part: "timestamp",
                    from: 16,
                    to: 29,
                    ..
                }
            ),
            "{e}"
        );
        let e = "1000110077x0069202201282236180"
            .get(0..29)
            .unwrap()
            .parse::<Rid>()
            .unwrap_err();
        assert_eq!(
            e,
            IdError::NotDigit {
                kind: "RID",
                position: 11
            }
        );
        let e = "10001100770000020220128223618".parse::<Rid>().unwrap_err();
        assert!(matches!(e, IdError::Part { part: "sequence", .. }));
        assert!(e.to_string().contains("characters 11-15"));
    }

    #[test]
    fn verhoeff_known_values() {
        // Published example: 236 -> check digit 3.
        assert_eq!(verhoeff::check_digit("236"), Some('3'));
        assert!(verhoeff::validate("2363"));
        assert!(!verhoeff::validate("2364"));
        assert_eq!(verhoeff::check_digit("12345"), Some('1'));
        assert!(verhoeff::validate("123451"));
    }

    #[test]
    fn uin_rejects_bad_checksum_without_echoing_it() {
        let uin = Uin::from_body("234567891").unwrap();
        let mut bad = uin.as_str().to_owned();
        let last = bad.pop().unwrap();
        bad.push(if last == '9' {
            '0'
        } else {
            char::from(last as u8 + 1)
        });
        let e = bad.parse::<Uin>().unwrap_err();
        assert_eq!(e, IdError::Checksum { kind: "UIN" });
        assert!(!e.to_string().contains(&bad));
        assert!(format!("{uin:?}").starts_with("Uin(******"));
    }

    #[test]
    fn serde_validates() {
        let ok: Result<CenterId, _> = serde_json::from_str("\"10001\"");
        assert!(ok.is_ok());
        let bad: Result<CenterId, _> = serde_json::from_str("\"1000\"");
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("center id must be 5 digits")
        );
    }

    proptest! {
        #[test]
        fn verhoeff_catches_single_digit_errors(body in "[0-9]{9}", pos in 0usize..10, delta in 1u8..10) {
            let uin = Uin::from_body(&body).unwrap();
            let mut bytes = uin.as_str().as_bytes().to_vec();
            bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
            let s = String::from_utf8(bytes).unwrap();
            prop_assert!(s.parse::<Uin>().is_err());
        }

        #[test]
        fn verhoeff_catches_adjacent_transpositions(body in "[0-9]{15}", pos in 0usize..15) {
            let vid = Vid::from_body(&body).unwrap();
            let mut bytes = vid.as_str().as_bytes().to_vec();
            prop_assume!(bytes[pos] != bytes[pos + 1]);
            bytes.swap(pos, pos + 1);
            let s = String::from_utf8(bytes).unwrap();
            prop_assert!(s.parse::<Vid>().is_err());
        }

        #[test]
        fn rid_parse_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<Rid>();
        }
    }
}
