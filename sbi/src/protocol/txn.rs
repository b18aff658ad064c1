//! The capture `transactionId` (SBI 0.9.5, Oct 2023 revision): 4 to 50 characters of `[A-Za-z0-9-]`.

use super::ProtocolError;

/// A validated transaction id. One registration uses one transaction id for all its captures, and the
/// hash chain runs across them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionId(String);

impl TransactionId {
    /// Validates `s`.
    pub fn parse(s: &str) -> Result<Self, ProtocolError> {
        let ok = (4..=50).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(ProtocolError::InvalidTransactionId {
                value: s.chars().take(60).collect(),
            })
        }
    }

    /// A fresh random id (32 hex digits) from the OS random source.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b)?;
        Ok(Self(hex::encode(b)))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TransactionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bounds() {
        assert!(TransactionId::parse("abc").is_err());
        assert!(TransactionId::parse("abcd").is_ok());
        assert!(TransactionId::parse(&"a".repeat(50)).is_ok());
        assert!(TransactionId::parse(&"a".repeat(51)).is_err());
        assert!(TransactionId::parse("ab_cd").is_err());
        assert!(TransactionId::parse("ab cd").is_err());
        assert!(TransactionId::parse("é-abc").is_err());
        assert!(TransactionId::parse("2c7d-19AF").is_ok());
        let r = TransactionId::random().unwrap();
        assert!(TransactionId::parse(r.as_str()).is_ok());
    }

    proptest! {
        #[test]
        fn valid_ids_accepted(s in "[A-Za-z0-9-]{4,50}") {
            prop_assert!(TransactionId::parse(&s).is_ok());
        }
        #[test]
        fn arbitrary_never_panics(s in ".{0,80}") {
            let r = TransactionId::parse(&s);
            let expect = (4..=50).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            prop_assert_eq!(r.is_ok(), expect);
        }
    }
}
