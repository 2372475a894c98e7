//! E.164 phone numbers, and the only way they may appear in logs.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A phone number in E.164 form: `+`, then 8 to 15 digits, the first not 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneNumberError {
    /// The text is not `+` followed by 8–15 digits.
    NotE164,
}

impl fmt::Display for PhoneNumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an E.164 phone number (+ and 8 to 15 digits)")
    }
}

impl std::error::Error for PhoneNumberError {}

impl PhoneNumber {
    /// Parses strict E.164. Carriers send E.164 already; anything else is malformed input.
    pub fn parse(text: &str) -> Result<Self, PhoneNumberError> {
        let digits = text.strip_prefix('+').ok_or(PhoneNumberError::NotE164)?;
        let ok = (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(PhoneNumberError::NotE164)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form for logs: country code kept, all but the last two digits masked (`+1********23`).
    pub fn redacted(&self) -> Redacted<'_> {
        Redacted(&self.0)
    }
}

/// Display adapter that never prints a number in full.
pub struct Redacted<'a>(&'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = &self.0[1..];
        let keep_tail = 2;
        f.write_str("+")?;
        f.write_str(&digits[..1])?;
        for _ in 1..digits.len() - keep_tail {
            f.write_str("*")?;
        }
        f.write_str(&digits[digits.len() - keep_tail..])
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneNumberError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_e164() {
        assert_eq!(
            PhoneNumber::parse("+16175550123").unwrap().as_str(),
            "+16175550123"
        );
        assert!(PhoneNumber::parse("+4915123456789").is_ok());
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "16175550123",
            "+1617555012a",
            "+0617555012",
            "+1234567",
            "+1234567890123456",
            "",
            "+",
        ] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redaction_hides_all_but_country_and_last_two() {
        let n = PhoneNumber::parse("+16175550123").unwrap();
        assert_eq!(n.redacted().to_string(), "+1********23");
        assert!(!n.redacted().to_string().contains("617555"));
    }
}
