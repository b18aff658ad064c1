//! Numbers that SBI sends as JSON strings (`"count": "4"`).

use serde::{Deserialize, Serialize};

use super::ProtocolError;

/// A non-negative integer carried as a JSON string of decimal digits (at most 9 digits).
/// Serialises as a string; deserialising a JSON number is an error, as in the CTK schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NumStr(pub u32);

impl NumStr {
    /// The value.
    pub fn get(self) -> u32 {
        self.0
    }

    /// Parses the wire form; `field` names the field in the error.
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ProtocolError> {
        if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ProtocolError::InvalidNumber {
                field,
                value: s.chars().take(40).collect(),
            });
        }
        s.parse::<u32>()
            .map(NumStr)
            .map_err(|_| ProtocolError::InvalidNumber {
                field,
                value: s.chars().take(40).collect(),
            })
    }
}

impl From<u32> for NumStr {
    fn from(v: u32) -> Self {
        NumStr(v)
    }
}

impl std::fmt::Display for NumStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for NumStr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for NumStr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        NumStr::parse("number", &s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn strings_only() {
        assert_eq!(serde_json::to_string(&NumStr(40)).unwrap(), "\"40\"");
        assert_eq!(serde_json::from_str::<NumStr>("\"4\"").unwrap(), NumStr(4));
        assert!(serde_json::from_str::<NumStr>("4").is_err());
        assert!(serde_json::from_str::<NumStr>("\"-4\"").is_err());
        assert!(serde_json::from_str::<NumStr>("\"4.5\"").is_err());
        assert!(serde_json::from_str::<NumStr>("\"\"").is_err());
    }

    proptest! {
        #[test]
        fn round_trips(v in 0u32..999_999_999) {
            let j = serde_json::to_string(&NumStr(v)).unwrap();
            prop_assert_eq!(serde_json::from_str::<NumStr>(&j).unwrap(), NumStr(v));
        }

        #[test]
        fn never_panics(s in ".{0,20}") {
            let _ = NumStr::parse("x", &s);
        }
    }
}
