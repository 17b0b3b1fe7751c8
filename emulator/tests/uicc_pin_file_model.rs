//! Model-based test of the card's PIN and file life cycle (ETSI TS 102 221 V17.1.0 §9.5,
//! §11.1.9–§11.1.15), driven only through APDUs against vectors/cards/uicc.toml: random
//! VERIFY / CHANGE / DISABLE / ENABLE / UNBLOCK PIN with right and wrong values, resets, ADM
//! verification, UPDATE and READ BINARY of EF.LOCI (PIN1-protected, TS 31.102 §4.2.17),
//! DEACTIVATE / ACTIVATE FILE of EF.SPN (ADM) — every status word and every byte read back
//! compared with a small reference model of counters, verification state and file content.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};
use simlab_emulator::{CardDefinition, Uicc};

const PINS: [&str; 2] = ["30303030FFFFFFFF", "31323334FFFFFFFF"];
const WRONG: &str = "39393939FFFFFFFF";
const PUK: &str = "3131313131313131";
const WRONG_PUK: &str = "3838383838383838";
const ADM1: &str = "3535353535353535";
const USIM: &str = "00A4040C0CA0000000871002FF49FF0589";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Model {
    pin: usize,
    enabled: bool,
    tries: u8,
    verified: bool,
    puk_tries: u8,
    adm: bool,
    loci: Vec<u8>,
    spn_active: bool,
}

impl Model {
    fn satisfied(&self) -> bool {
        self.verified || !self.enabled
    }
    /// A wrong PIN: one try less (TS 102 221 §9.5.1); at zero the PIN is blocked.
    fn wrong_pin(&mut self) {
        self.tries = self.tries.saturating_sub(1);
        self.verified = false;
    }
    fn right_pin(&mut self) {
        self.tries = 3;
        self.verified = true;
    }
}

#[derive(Debug, Clone)]
enum Op {
    Verify(bool),
    Status,
    Change { right: bool, new: usize },
    Disable(bool),
    Enable(bool),
    Unblock { right: bool, new: usize },
    Reset,
    Adm,
    UpdateLoci(Vec<u8>),
    ReadLoci,
    Deactivate,
    Activate,
    SelectSpn,
}

struct Ref;

impl ReferenceStateMachine for Ref {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model {
            pin: 0,
            enabled: true,
            tries: 3,
            verified: false,
            puk_tries: 10,
            adm: false,
            loci: hex::decode("FFFFFFFFFFFFFFFFFEFF01").unwrap(),
            spn_active: true,
        })
        .boxed()
    }

    fn transitions(_: &Model) -> BoxedStrategy<Op> {
        prop_oneof![
            3 => any::<bool>().prop_map(Op::Verify),
            1 => Just(Op::Status),
            1 => (any::<bool>(), 0..2usize).prop_map(|(right, new)| Op::Change { right, new }),
            1 => any::<bool>().prop_map(Op::Disable),
            1 => any::<bool>().prop_map(Op::Enable),
            1 => (proptest::bool::weighted(0.8), 0..2usize)
                .prop_map(|(right, new)| Op::Unblock { right, new }),
            2 => Just(Op::Reset),
            1 => Just(Op::Adm),
            2 => proptest::collection::vec(any::<u8>(), 11).prop_map(Op::UpdateLoci),
            2 => Just(Op::ReadLoci),
            1 => Just(Op::Deactivate),
            1 => Just(Op::Activate),
            1 => Just(Op::SelectSpn),
        ]
        .boxed()
    }

    /// Keeps runs away from blocking the PUK for good (a card no test can use again).
    fn preconditions(m: &Model, op: &Op) -> bool {
        match op {
            Op::Unblock { right: false, .. } => m.puk_tries > 2,
            // CHANGE and DISABLE need an enabled PIN; ENABLE a disabled one.
            Op::Change { .. } | Op::Disable(_) => m.enabled,
            Op::Enable(_) => !m.enabled,
            _ => true,
        }
    }

    fn apply(mut m: Model, op: &Op) -> Model {
        match op {
            Op::Verify(right) | Op::Disable(right) | Op::Enable(right) if m.tries > 0 => {
                if *right {
                    m.right_pin();
                    match op {
                        Op::Disable(_) => m.enabled = false,
                        Op::Enable(_) => m.enabled = true,
                        _ => {}
                    }
                } else {
                    m.wrong_pin();
                }
            }
            Op::Change { right, new } if m.tries > 0 => {
                if *right {
                    m.pin = *new;
                    m.right_pin();
                } else {
                    m.wrong_pin();
                }
            }
            Op::Unblock { right, new } if m.puk_tries > 0 => {
                if *right {
                    m.pin = *new;
                    m.puk_tries = 10;
                    m.right_pin();
                } else {
                    // A failed UNBLOCK PIN also ends PIN1's verified state (the card treats
                    // any failed PIN1 command so; TS 102 221 §9.5.1 leaves it open).
                    m.puk_tries -= 1;
                    m.verified = false;
                }
            }
            Op::Reset => {
                m.verified = false;
                m.adm = false;
            }
            Op::Adm => m.adm = true,
            Op::UpdateLoci(bytes) if m.satisfied() => m.loci = bytes.clone(),
            Op::Deactivate if m.adm => m.spn_active = false,
            Op::Activate if m.adm => m.spn_active = true,
            _ => {}
        }
        m
    }
}

struct Sut {
    card: Uicc,
    before: Model,
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

impl Sut {
    fn send(&mut self, apdu: &str) -> Vec<u8> {
        self.card.transmit(&h(apdu))
    }
    fn sw(&mut self, apdu: &str) -> u16 {
        let r = self.send(apdu);
        u16::from_be_bytes([r[r.len() - 2], r[r.len() - 1]])
    }
}

fn pin_answer(m: &Model, right: bool) -> u16 {
    if m.tries == 0 {
        0x6983
    } else if right {
        0x9000
    } else if m.tries == 1 {
        0x6983
    } else {
        0x63C0 | u16::from(m.tries - 1)
    }
}

struct Test;

impl StateMachineTest for Test {
    type SystemUnderTest = Sut;
    type Reference = Ref;

    fn init_test(m: &Model) -> Sut {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/cards/uicc.toml");
        let (atr, state) = CardDefinition::load(std::path::Path::new(path))
            .unwrap()
            .build()
            .unwrap();
        let mut card = Uicc::new(atr, state);
        card.power_on();
        Sut {
            card,
            before: m.clone(),
        }
    }

    fn apply(mut sut: Sut, after: &Model, op: Op) -> Sut {
        let m = sut.before.clone();
        let pin = |n: usize| PINS[n];
        match &op {
            Op::Verify(right) => {
                let v = if *right { pin(m.pin) } else { WRONG };
                assert_eq!(sut.sw(&format!("0020000108{v}")), pin_answer(&m, *right));
            }
            Op::Status => {
                let want = if m.tries == 0 {
                    0x6983
                } else if m.satisfied() {
                    0x9000
                } else {
                    0x63C0 | u16::from(m.tries)
                };
                assert_eq!(sut.sw("00200001"), want, "PIN1 status");
            }
            Op::Change { right, new } => {
                let old = if *right { pin(m.pin) } else { WRONG };
                assert_eq!(
                    sut.sw(&format!("0024000110{old}{}", pin(*new))),
                    pin_answer(&m, *right)
                );
            }
            Op::Disable(right) | Op::Enable(right) => {
                let ins = if matches!(op, Op::Disable(_)) {
                    "26"
                } else {
                    "28"
                };
                let v = if *right { pin(m.pin) } else { WRONG };
                assert_eq!(
                    sut.sw(&format!("00{ins}000108{v}")),
                    pin_answer(&m, *right),
                    "{op:?}"
                );
            }
            Op::Unblock { right, new } => {
                let puk = if *right { PUK } else { WRONG_PUK };
                let want = if m.puk_tries == 0 {
                    0x6983
                } else if *right {
                    0x9000
                } else {
                    0x63C0 | u16::from(m.puk_tries - 1)
                };
                assert_eq!(
                    sut.sw(&format!("002C000110{puk}{}", pin(*new))),
                    want,
                    "{op:?}"
                );
            }
            Op::Reset => {
                sut.card.reset();
            }
            Op::Adm => assert_eq!(sut.sw(&format!("0020000A08{ADM1}")), 0x9000),
            Op::UpdateLoci(bytes) => {
                assert_eq!(sut.sw(USIM), 0x9000);
                assert_eq!(sut.sw("00A4000C026F7E"), 0x9000);
                let want = if m.satisfied() { 0x9000 } else { 0x6982 };
                assert_eq!(
                    sut.sw(&format!("00D600000B{}", hex::encode(bytes))),
                    want,
                    "UPDATE BINARY EF.LOCI"
                );
            }
            Op::ReadLoci => {
                assert_eq!(sut.sw(USIM), 0x9000);
                assert_eq!(sut.sw("00A4000C026F7E"), 0x9000);
                let got = sut.send("00B000000B");
                if m.satisfied() {
                    let mut want = m.loci.clone();
                    want.extend([0x90, 0x00]);
                    assert_eq!(got, want, "EF.LOCI read back");
                } else {
                    assert_eq!(got, h("6982"));
                }
            }
            Op::Deactivate | Op::Activate => {
                assert_eq!(sut.sw(USIM), 0x9000);
                let sel = sut.sw("00A4000C026F46");
                assert_eq!(sel, if m.spn_active { 0x9000 } else { 0x6283 });
                let ins = if matches!(op, Op::Deactivate) {
                    "04"
                } else {
                    "44"
                };
                let want = if m.adm { 0x9000 } else { 0x6982 };
                assert_eq!(sut.sw(&format!("00{ins}0000")), want, "{op:?}");
            }
            Op::SelectSpn => {
                assert_eq!(sut.sw(USIM), 0x9000);
                let want = if m.spn_active { 0x9000 } else { 0x6283 };
                assert_eq!(sut.sw("00A4000C026F46"), want, "SELECT EF.SPN");
            }
        }
        sut.before = after.clone();
        sut
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        max_shrink_iters: 1024,
        .. ProptestConfig::default()
    })]

    #[test]
    fn pins_and_files_follow_the_model(sequential 1..40 => Test);
}
