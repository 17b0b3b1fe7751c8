//! Access rules in expanded format, as EF.ARR records hold them (ETSI TS 102 221 §9.2.4,
//! ISO/IEC 7816-4 §9.3): an access mode data object (AM DO, tag '80') names the operations,
//! the security condition data objects (SC DOs) after it say what must hold.

use crate::tlv::{self, TlvIter};

/// AM DO: the access mode byte follows.
const TAG_AM_DO: u32 = 0x80;
/// AM DO carrying a command header instead of a mode byte (not used for file operations).
const TAG_AM_DO_INS: u32 = 0x84;
/// SC DO: always allowed.
const TAG_SC_ALWAYS: u32 = 0x90;
/// SC DO: never allowed.
const TAG_SC_NEVER: u32 = 0x97;
/// SC DO: control reference template for user authentication ('83' key reference inside).
const TAG_SC_CRT: u32 = 0xA4;
/// SC DO: one of the nested conditions suffices.
const TAG_SC_OR: u32 = 0xA0;
/// SC DO: all nested conditions must hold.
const TAG_SC_AND: u32 = 0xAF;
/// INS of INCREASE inside an AM DO '84'.
const INS_INCREASE: u8 = 0x32;
/// Key reference inside a CRT.
const TAG_KEY_REF: u32 = 0x83;

/// An operation on a file, as its bit in the access mode byte (ISO 7816-4 Tables 16–17).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// b1 on an EF: READ BINARY / READ RECORD / SEARCH RECORD.
    Read,
    /// b2 on an EF: UPDATE BINARY / UPDATE RECORD.
    Update,
    /// b4: DEACTIVATE FILE.
    Deactivate,
    /// b5: ACTIVATE FILE.
    Activate,
    /// INCREASE: no access mode bit; an AM DO '84' naming its instruction '32' covers it
    /// (TS 102 221 §9.2.4).
    Increase,
}

impl Operation {
    fn bit(self) -> u8 {
        match self {
            Operation::Read => 0x01,
            Operation::Update => 0x02,
            Operation::Deactivate => 0x08,
            Operation::Activate => 0x10,
            Operation::Increase => 0,
        }
    }
}

/// Whether `op` is allowed by the rule `record`, given which key references are satisfied
/// (verified in this session, or disabled). A rule that does not mention `op` forbids it.
pub fn allows(record: &[u8], op: Operation, satisfied: &dyn Fn(u8) -> bool) -> bool {
    let mut covered = false;
    let mut allowed = false;
    for item in TlvIter::new(record) {
        let Ok(item) = item else { break };
        match item.tag {
            TAG_AM_DO => covered = item.value.first().is_some_and(|am| am & op.bit() != 0),
            // An AM DO naming a command header: only INCREASE ('32') is such a command here.
            TAG_AM_DO_INS => {
                covered = op == Operation::Increase && item.value.contains(&INS_INCREASE)
            }
            // Records are padded with 'FF' (TS 102 221 §9.2.4).
            0xFF => break,
            _ if covered => allowed |= condition_holds(&item, satisfied),
            _ => {}
        }
    }
    allowed
}

fn condition_holds(sc: &tlv::Tlv<'_>, satisfied: &dyn Fn(u8) -> bool) -> bool {
    match sc.tag {
        TAG_SC_ALWAYS => true,
        TAG_SC_NEVER => false,
        TAG_SC_CRT => sc
            .find(TAG_KEY_REF)
            .and_then(|k| k.value.first().copied())
            .is_some_and(satisfied),
        TAG_SC_OR => sc
            .children()
            .map_while(Result::ok)
            .any(|c| condition_holds(&c, satisfied)),
        TAG_SC_AND => sc
            .children()
            .map_while(Result::ok)
            .all(|c| condition_holds(&c, satisfied)),
        _ => false,
    }
}

/// Builders for the rules a card definition uses.
pub mod rule {
    use crate::tlv;

    /// `80 01 <am> 90 00`: the operations in `am` are always allowed.
    pub fn always(am: u8) -> Vec<u8> {
        [
            tlv::encode(super::TAG_AM_DO, &[am]),
            tlv::encode(super::TAG_SC_ALWAYS, &[]),
        ]
        .concat()
    }

    /// `80 01 <am> 97 00`: never.
    pub fn never(am: u8) -> Vec<u8> {
        [
            tlv::encode(super::TAG_AM_DO, &[am]),
            tlv::encode(super::TAG_SC_NEVER, &[]),
        ]
        .concat()
    }

    /// `84 01 32 A4 06 83 01 <key> 95 01 08`: INCREASE after user verification of `key`.
    pub fn increase_key(key_ref: u8) -> Vec<u8> {
        let crt = [
            tlv::encode(super::TAG_KEY_REF, &[key_ref]),
            tlv::encode(0x95, &[0x08]),
        ]
        .concat();
        [
            tlv::encode(super::TAG_AM_DO_INS, &[super::INS_INCREASE]),
            tlv::encode(super::TAG_SC_CRT, &crt),
        ]
        .concat()
    }

    /// `80 01 <am> A4 06 83 01 <key> 95 01 08`: after user verification of `key`.
    pub fn key(am: u8, key_ref: u8) -> Vec<u8> {
        // '95 01 08': usage qualifier "user authentication, knowledge based" (TS 102 221 §9.5.1).
        let crt = [
            tlv::encode(super::TAG_KEY_REF, &[key_ref]),
            tlv::encode(0x95, &[0x08]),
        ]
        .concat();
        [
            tlv::encode(super::TAG_AM_DO, &[am]),
            tlv::encode(super::TAG_SC_CRT, &crt),
        ]
        .concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pin::{KEY_ADM1, KEY_PIN1};
    use rstest::rstest;

    fn pin1_read_adm_update() -> Vec<u8> {
        [
            rule::key(0x01, KEY_PIN1),
            rule::key(0x1A, KEY_ADM1),
            vec![0xFF; 4],
        ]
        .concat()
    }

    #[rstest]
    #[case::read_without_pin(Operation::Read, &[], false)]
    #[case::read_with_pin1(Operation::Read, &[KEY_PIN1], true)]
    #[case::update_with_pin1(Operation::Update, &[KEY_PIN1], false)]
    #[case::update_with_adm(Operation::Update, &[KEY_ADM1], true)]
    #[case::deactivate_with_adm(Operation::Deactivate, &[KEY_ADM1], true)]
    fn evaluates_key_conditions(
        #[case] op: Operation,
        #[case] verified: &[u8],
        #[case] expected: bool,
    ) {
        let record = pin1_read_adm_update();
        assert_eq!(allows(&record, op, &|k| verified.contains(&k)), expected);
    }

    #[test]
    fn always_and_never_need_no_key() {
        let record = [rule::always(0x01), rule::never(0x02)].concat();
        assert!(allows(&record, Operation::Read, &|_| false));
        assert!(!allows(&record, Operation::Update, &|_| true));
    }

    #[test]
    fn an_operation_no_rule_mentions_is_forbidden() {
        assert!(!allows(&rule::always(0x01), Operation::Activate, &|_| true));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_records(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = allows(&bytes, Operation::Read, &|_| true);
        }
    }
}
