//! PINs, PUKs and administrative keys (ETSI TS 102 221 §9.4 key references, §11.1.9–13
//! VERIFY / CHANGE / DISABLE / ENABLE / UNBLOCK PIN).
//!
//! Retry counters and values are persistent; which PINs were verified is volatile and lives
//! in the card's session, not here.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

/// Key reference of PIN Appl 1 ("PIN1", TS 102 221 Table 9.3).
pub const KEY_PIN1: u8 = 0x01;
/// Key reference of second-level PIN Appl 1 ("PIN2").
pub const KEY_PIN2: u8 = 0x81;
/// Key reference of the universal PIN.
pub const KEY_UNIVERSAL_PIN: u8 = 0x11;
/// Key reference of ADM1.
pub const KEY_ADM1: u8 = 0x0A;

/// PIN values travel padded with 'FF' to 8 bytes (TS 102 221 §9.5.1).
pub const PIN_BLOCK_LEN: usize = 8;

/// One PIN with its unblocking key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// The PIN as sent on the wire (ASCII digits, FF-padded).
    pub value: [u8; PIN_BLOCK_LEN],
    pub max_attempts: u8,
    pub attempts_left: u8,
    /// A disabled PIN's access conditions count as satisfied (TS 102 221 §9.5.2).
    pub enabled: bool,
    /// ADM keys cannot be disabled; only PIN1/PIN2/universal PIN can.
    pub can_disable: bool,
    pub puk: Option<Puk>,
}

/// The PUK ("unblock PIN") of a PIN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Puk {
    pub value: [u8; PIN_BLOCK_LEN],
    pub max_attempts: u8,
    pub attempts_left: u8,
}

/// What a PIN operation ended with; the card maps it to a status word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PinError {
    #[error("key reference not found")]
    NotFound,
    #[error("wrong PIN, {0} tries left")]
    Wrong(u8),
    #[error("PIN or PUK blocked")]
    Blocked,
    #[error("the PIN value is not 4 to 8 ASCII digits padded with FF")]
    BadFormat,
    #[error("PIN is disabled")]
    Disabled,
    #[error("this PIN cannot be disabled, or is already in that state")]
    NotAllowed,
}

/// Checks the PIN format of TS 102 221 §9.5.1: 4–8 ASCII digits, then FF padding.
pub fn check_format(block: &[u8]) -> Result<[u8; PIN_BLOCK_LEN], PinError> {
    let block: [u8; PIN_BLOCK_LEN] = block.try_into().map_err(|_| PinError::BadFormat)?;
    let digits = block.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits < 4 || block.iter().skip(digits).any(|b| *b != 0xFF) {
        return Err(PinError::BadFormat);
    }
    Ok(block)
}

/// Pads a PIN given as digits (`"0000"`) to its 8-byte block.
pub fn pad(digits: &str) -> Result<[u8; PIN_BLOCK_LEN], PinError> {
    if !(4..=8).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PinError::BadFormat);
    }
    let mut block = [0xFF; PIN_BLOCK_LEN];
    for (slot, b) in block.iter_mut().zip(digits.bytes()) {
        *slot = b;
    }
    Ok(block)
}

/// All PINs of a card (or of one eUICC profile), by key reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinStore {
    pins: BTreeMap<u8, Pin>,
}

impl PinStore {
    pub fn insert(&mut self, key_ref: u8, pin: Pin) {
        self.pins.insert(key_ref, pin);
    }

    pub fn get(&self, key_ref: u8) -> Option<&Pin> {
        self.pins.get(&key_ref)
    }

    pub fn iter(&self) -> impl Iterator<Item = (u8, &Pin)> {
        self.pins.iter().map(|(k, v)| (*k, v))
    }

    fn pin_mut(&mut self, key_ref: u8) -> Result<&mut Pin, PinError> {
        self.pins.get_mut(&key_ref).ok_or(PinError::NotFound)
    }

    /// VERIFY PIN with a value: a wrong value costs one attempt, a right one restores them.
    pub fn verify(&mut self, key_ref: u8, block: &[u8]) -> Result<(), PinError> {
        let pin = self.pin_mut(key_ref)?;
        if pin.attempts_left == 0 {
            return Err(PinError::Blocked);
        }
        // A badly formatted value is still a presentation of the PIN, and a wrong one.
        if block == pin.value {
            pin.attempts_left = pin.max_attempts;
            Ok(())
        } else {
            pin.attempts_left = pin.attempts_left.saturating_sub(1);
            Err(if pin.attempts_left == 0 {
                PinError::Blocked
            } else {
                PinError::Wrong(pin.attempts_left)
            })
        }
    }

    /// CHANGE PIN: old value checked as in VERIFY, then replaced.
    pub fn change(&mut self, key_ref: u8, old: &[u8], new: &[u8]) -> Result<(), PinError> {
        let new = check_format(new)?;
        if self.get(key_ref).is_some_and(|p| !p.enabled) {
            return Err(PinError::Disabled);
        }
        self.verify(key_ref, old)?;
        self.pin_mut(key_ref)?.value = new;
        Ok(())
    }

    /// DISABLE (`enable == false`) or ENABLE PIN verification, after checking the value.
    pub fn set_enabled(&mut self, key_ref: u8, block: &[u8], enable: bool) -> Result<(), PinError> {
        let pin = self.get(key_ref).ok_or(PinError::NotFound)?;
        if !pin.can_disable || pin.enabled == enable {
            return Err(PinError::NotAllowed);
        }
        self.verify(key_ref, block)?;
        self.pin_mut(key_ref)?.enabled = enable;
        Ok(())
    }

    /// UNBLOCK PIN with the PUK: a right PUK sets the new PIN and restores its attempts.
    pub fn unblock(&mut self, key_ref: u8, puk: &[u8], new: &[u8]) -> Result<(), PinError> {
        let pin = self.pin_mut(key_ref)?;
        let stored = pin.puk.as_mut().ok_or(PinError::NotFound)?;
        if stored.attempts_left == 0 {
            return Err(PinError::Blocked);
        }
        if puk != stored.value {
            stored.attempts_left = stored.attempts_left.saturating_sub(1);
            return Err(if stored.attempts_left == 0 {
                PinError::Blocked
            } else {
                PinError::Wrong(stored.attempts_left)
            });
        }
        let new = check_format(new)?;
        stored.attempts_left = stored.max_attempts;
        pin.value = new;
        pin.attempts_left = pin.max_attempts;
        Ok(())
    }

    /// Retries left of the PUK of `key_ref`.
    pub fn puk_attempts(&self, key_ref: u8) -> Result<u8, PinError> {
        self.get(key_ref)
            .and_then(|p| p.puk.as_ref())
            .map(|p| p.attempts_left)
            .ok_or(PinError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn store() -> PinStore {
        let mut s = PinStore::default();
        s.insert(
            KEY_PIN1,
            Pin {
                value: pad("1234").unwrap(),
                max_attempts: 3,
                attempts_left: 3,
                enabled: true,
                can_disable: true,
                puk: Some(Puk {
                    value: pad("12345678").unwrap(),
                    max_attempts: 10,
                    attempts_left: 10,
                }),
            },
        );
        s
    }

    #[rstest]
    #[case("1234", true)]
    #[case("12345678", true)]
    #[case("123", false)]
    #[case("123456789", false)]
    #[case("12a4", false)]
    fn pads_only_4_to_8_digits(#[case] digits: &str, #[case] ok: bool) {
        assert_eq!(pad(digits).is_ok(), ok);
    }

    #[test]
    fn three_wrong_pins_block_and_the_puk_unblocks() {
        let mut s = store();
        let wrong = pad("0000").unwrap();
        assert_eq!(s.verify(KEY_PIN1, &wrong), Err(PinError::Wrong(2)));
        assert_eq!(s.verify(KEY_PIN1, &wrong), Err(PinError::Wrong(1)));
        assert_eq!(s.verify(KEY_PIN1, &wrong), Err(PinError::Blocked));
        assert_eq!(
            s.verify(KEY_PIN1, &pad("1234").unwrap()),
            Err(PinError::Blocked)
        );
        s.unblock(KEY_PIN1, &pad("12345678").unwrap(), &pad("4321").unwrap())
            .unwrap();
        s.verify(KEY_PIN1, &pad("4321").unwrap()).unwrap();
        assert_eq!(s.get(KEY_PIN1).unwrap().attempts_left, 3);
    }

    #[test]
    fn a_right_pin_restores_the_counter() {
        let mut s = store();
        let _ = s.verify(KEY_PIN1, &pad("0000").unwrap());
        s.verify(KEY_PIN1, &pad("1234").unwrap()).unwrap();
        assert_eq!(s.get(KEY_PIN1).unwrap().attempts_left, 3);
    }

    #[test]
    fn disabling_twice_is_refused() {
        let mut s = store();
        s.set_enabled(KEY_PIN1, &pad("1234").unwrap(), false)
            .unwrap();
        assert_eq!(
            s.set_enabled(KEY_PIN1, &pad("1234").unwrap(), false),
            Err(PinError::NotAllowed)
        );
    }
}
