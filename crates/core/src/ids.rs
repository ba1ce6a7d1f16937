//! Identifiers parsed at the edge, so the core never handles an unchecked string.

use crate::VaultError;

/// A data subject's identifier, chosen by the business (e.g. its customer number).
/// 1-128 characters of `A-Z a-z 0-9 _ . : -`: no `@`, so an email cannot be used as one
/// and end up in plaintext in the database.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubjectId(String);

impl SubjectId {
    pub fn parse(s: &str) -> Result<Self, VaultError> {
        let ok = !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(VaultError::bad_request(
                "invalid_subject_id",
                "subject_id must be 1-128 characters of A-Z, a-z, 0-9, _ . : - (an opaque id, not personal data such as an email)",
            ))
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A record identifier: `rec_` and 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordId(String);

impl RecordId {
    pub(crate) fn generate() -> Result<Self, VaultError> {
        Ok(Self(format!("rec_{}", custodia_crypto::random_hex::<16>()?)))
    }

    /// Parses a record id; one that cannot exist is reported as not found.
    pub fn parse(s: &str) -> Result<Self, VaultError> {
        let ok = s.len() == 36
            && s.starts_with("rec_")
            && s.bytes()
                .skip(4)
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(VaultError::not_found(
                "record_not_found",
                "no such record (record ids look like rec_ and 32 hex digits)",
            ))
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_ids() {
        assert!(SubjectId::parse("cust_42").is_ok());
        assert!(SubjectId::parse("a.b:c-d").is_ok());
        for bad in ["", "alice@example.com", "a b", "x/y", "é", &"x".repeat(129)] {
            assert!(SubjectId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn record_ids() {
        let id = RecordId::generate().unwrap();
        assert_eq!(RecordId::parse(id.as_str()).unwrap(), id);
        for bad in [
            "",
            "rec_",
            "rec_XYZ",
            "../etc/passwd",
            "rec_0123456789abcdef0123456789ABCDEF",
        ] {
            assert!(RecordId::parse(bad).is_err(), "{bad}");
        }
    }
}
