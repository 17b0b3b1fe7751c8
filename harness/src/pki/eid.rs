//! EID (eUICC identifier) check digits: GSMA SGP.29 ("EID Definition and Assignment
//! Process"), which takes the check over the 32 decimal digits from ISO/IEC 7064 MOD 97-10
//! (the same scheme as IBAN): the EID read as one decimal number is ≡ 1 (mod 97), the
//! check digits being digits 31 and 32.
//!
//! Written by hand: it is twelve lines of arithmetic and no maintained crate does EIDs.

use thiserror::Error;

/// An EID has 32 decimal digits (SGP.29; 16 bytes when BCD-packed).
pub const EID_DIGITS: usize = 32;
/// The last two digits are the MOD 97-10 check digits.
pub const EID_CHECK_DIGITS: usize = 2;
/// ISO/IEC 7064 MOD 97-10 modulus.
const MOD_97: u32 = 97;
/// ISO/IEC 7064 MOD 97-10: check digits = 98 − (payload ‖ "00" mod 97).
const CHECK_BASE: u32 = 98;
/// ISO/IEC 7064 MOD 97-10: a number with correct check digits is ≡ 1 (mod 97).
const VALID_REMAINDER: u32 = 1;

/// Why a string is not a valid EID.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EidError {
    /// Not 32 characters (or not 30 for [`complete_eid`]).
    #[error("an EID has {expected} decimal digits, got {got} characters in {eid:?}")]
    WrongLength {
        /// Digits expected.
        expected: usize,
        /// Characters found.
        got: usize,
        /// The rejected input.
        eid: String,
    },
    /// A character other than 0–9.
    #[error("EID {eid:?} has a non-decimal character {found:?} at position {position}; only 0-9 are allowed")]
    NotDecimal {
        /// The rejected input.
        eid: String,
        /// Index of the offending character (0-based).
        position: usize,
        /// The offending character.
        found: char,
    },
    /// The last two digits are not the MOD 97-10 check digits of the first 30.
    #[error("EID {eid} has check digits {found}, but ISO 7064 MOD 97-10 over its first 30 digits gives {expected}")]
    WrongCheckDigits {
        /// The rejected input.
        eid: String,
        /// The check digits computed from digits 1–30.
        expected: String,
        /// The check digits found (digits 31–32).
        found: String,
    },
}

/// Remainder mod 97 of a string of decimal digits, folded digit by digit (no big integers).
fn mod97(digits: impl Iterator<Item = u32>) -> u32 {
    digits.fold(0, |acc, d| (acc * 10 + d) % MOD_97)
}

fn decimal_digits(eid: &str) -> Result<Vec<u32>, EidError> {
    eid.chars()
        .enumerate()
        .map(|(position, c)| {
            c.to_digit(10).ok_or_else(|| EidError::NotDecimal {
                eid: eid.to_owned(),
                position,
                found: c,
            })
        })
        .collect()
}

/// The two check digits for the first 30 EID digits (as a 2-character string, e.g. `"35"`).
pub fn eid_check_digits(first_30: &str) -> Result<String, EidError> {
    let payload_len = EID_DIGITS - EID_CHECK_DIGITS;
    if first_30.chars().count() != payload_len {
        return Err(EidError::WrongLength {
            expected: payload_len,
            got: first_30.chars().count(),
            eid: first_30.to_owned(),
        });
    }
    let digits = decimal_digits(first_30)?;
    // ISO/IEC 7064 MOD 97-10: append "00", take the remainder, subtract from 98.
    let remainder = mod97(digits.into_iter().chain([0, 0]));
    Ok(format!("{:02}", CHECK_BASE - remainder))
}

/// The full 32-digit EID for 30 given digits (appends the check digits).
pub fn complete_eid(first_30: &str) -> Result<String, EidError> {
    Ok(format!("{first_30}{}", eid_check_digits(first_30)?))
}

/// Accepts exactly a 32-digit EID whose check digits are right.
pub fn validate_eid(eid: &str) -> Result<(), EidError> {
    let len = eid.chars().count();
    if len != EID_DIGITS {
        return Err(EidError::WrongLength {
            expected: EID_DIGITS,
            got: len,
            eid: eid.to_owned(),
        });
    }
    let digits = decimal_digits(eid)?;
    if mod97(digits.into_iter()) == VALID_REMAINDER {
        return Ok(());
    }
    let (payload, found) = eid.split_at(EID_DIGITS - EID_CHECK_DIGITS);
    Err(EidError::WrongCheckDigits {
        eid: eid.to_owned(),
        expected: eid_check_digits(payload)?,
        found: found.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    #[rstest]
    // SGP.26 test EID (EUM prefix 89049032)
    #[case("89049032 123451234512345678901 2", "35")]
    #[case("89001012 012341234012345678901 2", "24")]
    #[case("00000000 000000000000000000000 0", "98")]
    fn computes_mod_97_10_check_digits(#[case] first_30: &str, #[case] check: &str) {
        let first_30: String = first_30.split_whitespace().collect();
        assert_eq!(eid_check_digits(&first_30).unwrap(), check);
        let full = complete_eid(&first_30).unwrap();
        assert_eq!(validate_eid(&full), Ok(()));
    }

    #[rstest]
    #[case("89049032123451234512345678901235")]
    #[case("89001012012341234012345678901224")]
    fn accepts_valid_eids(#[case] eid: &str) {
        assert_eq!(validate_eid(eid), Ok(()));
    }

    #[rstest]
    #[case::last_digit_off("89049032123451234512345678901234", "35", "34")]
    #[case::check_digits_swapped("89049032123451234512345678901253", "35", "53")]
    #[case::payload_digit_changed("89049032123451234512345678901335", "32", "35")]
    fn rejects_eid_with_wrong_check_digits(
        #[case] eid: &str,
        #[case] expected: &str,
        #[case] found: &str,
    ) {
        assert_eq!(
            validate_eid(eid),
            Err(EidError::WrongCheckDigits {
                eid: eid.into(),
                expected: expected.into(),
                found: found.into()
            })
        );
    }

    #[rstest]
    #[case::too_short("8904903212345123451234567890123", 31)]
    #[case::too_long("890490321234512345123456789012355", 33)]
    #[case::empty("", 0)]
    fn rejects_eid_of_wrong_length(#[case] eid: &str, #[case] got: usize) {
        assert_eq!(
            validate_eid(eid),
            Err(EidError::WrongLength {
                expected: 32,
                got,
                eid: eid.into()
            })
        );
    }

    #[rstest]
    #[case::hex_digit("8904903212345123451234567890123A", 31, 'A')]
    #[case::space("89049032 23451234512345678901235", 8, ' ')]
    fn rejects_eid_with_non_decimal_characters(
        #[case] eid: &str,
        #[case] position: usize,
        #[case] found: char,
    ) {
        assert_eq!(
            validate_eid(eid),
            Err(EidError::NotDecimal {
                eid: eid.into(),
                position,
                found
            })
        );
    }

    proptest! {
        #[test]
        fn completed_eids_always_validate(first_30 in "[0-9]{30}") {
            let eid = complete_eid(&first_30).unwrap();
            prop_assert_eq!(validate_eid(&eid), Ok(()));
        }

        #[test]
        fn validation_never_panics(s in "\\PC{0,40}") {
            let _ = validate_eid(&s);
        }
    }
}
