//! Model-based test of the eUICC profile life cycle (GSMA SGP.22 v2.5 §2.4.4, §3.1–§3.3,
//! §5.7.6, §5.7.16–§5.7.19, §3.5), driven only through APDUs: random sequences of
//! downloads (the whole SGP.22 session with the test SM-DP+ of `euicc_support`), enable,
//! disable, delete, memory reset, card resets and notification removal, each checked against
//! a small reference model. After every step, read back through ES10:
//! - at most one profile is enabled, and it is the model's;
//! - ICCIDs are unique and exactly the model's, in the model's states;
//! - pending notifications have strictly increasing sequence numbers, and every new one is
//!   above every number ever seen (SGP.22 §3.5: seqNumber increases);
//! - after a reset, the card's EF.ICCID and USIM are the enabled profile's (none: no USIM).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod euicc_support;

use euicc_support::*;
use proptest::prelude::*;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};
use simlab_emulator::rsp::es10::*;
use simlab_emulator::Uicc;

/// The packages the model downloads (distinct ICCIDs).
const PACKAGES: [&str; 3] = [
    "TS48V1-A-UNIQUE",
    "TS48V1-B-UNIQUE",
    "TS48V2-SAIP2-1-NOBERTLV-UNIQUE",
];

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Model {
    /// Installed packages (index into PACKAGES) and whether each is enabled, in install order.
    installed: Vec<(usize, bool)>,
}

impl Model {
    fn find(&self, p: usize) -> Option<usize> {
        self.installed.iter().position(|(i, _)| *i == p)
    }
    fn enabled(&self) -> Option<usize> {
        self.installed.iter().find(|(_, e)| *e).map(|(i, _)| *i)
    }
}

#[derive(Debug, Clone)]
enum Op {
    Download(usize),
    Enable(usize),
    Disable(usize),
    Delete(usize),
    MemoryReset,
    Reset,
    RemoveOldestNotification,
}

struct LifeCycle;

impl ReferenceStateMachine for LifeCycle {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(_: &Model) -> BoxedStrategy<Op> {
        let p = 0..PACKAGES.len();
        prop_oneof![
            2 => p.clone().prop_map(Op::Download),
            3 => p.clone().prop_map(Op::Enable),
            2 => p.clone().prop_map(Op::Disable),
            2 => p.prop_map(Op::Delete),
            1 => Just(Op::MemoryReset),
            2 => Just(Op::Reset),
            1 => Just(Op::RemoveOldestNotification),
        ]
        .boxed()
    }

    fn apply(mut m: Model, op: &Op) -> Model {
        match *op {
            Op::Download(p) => {
                if m.find(p).is_none() {
                    m.installed.push((p, false));
                }
            }
            Op::Enable(p) => {
                if let Some(i) = m.find(p) {
                    if !m.installed[i].1 {
                        // SGP.22 §5.7.16: the enabled profile, if any, is disabled first.
                        for e in &mut m.installed {
                            e.1 = false;
                        }
                        m.installed[i].1 = true;
                    }
                }
            }
            Op::Disable(p) => {
                if let Some(i) = m.find(p) {
                    m.installed[i].1 = false;
                }
            }
            Op::Delete(p) => {
                if let Some(i) = m.find(p) {
                    if !m.installed[i].1 {
                        m.installed.remove(i);
                    }
                }
            }
            Op::MemoryReset => m.installed.clear(),
            Op::Reset | Op::RemoveOldestNotification => {}
        }
        m
    }
}

struct Sut {
    card: Uicc,
    smdp: SmDp,
    iccids: Vec<Iccid>,
    before: Model,
    /// Every notification sequence number seen so far.
    seen: std::collections::BTreeSet<u64>,
}

impl Sut {
    /// Runs `f` with an LPA on a fresh logical channel, closed afterwards.
    fn with_lpa<R>(&mut self, f: impl FnOnce(&mut Lpa<'_>) -> R) -> R {
        let mut lpa = Lpa::new(&mut self.card);
        let ch = lpa.open();
        let r = f(&mut lpa);
        lpa.apdu(&[0x00, 0x70, 0x80, ch]);
        r
    }

    fn check_profiles(&mut self, m: &Model) {
        let iccids = self.iccids.clone();
        let listed = self.with_lpa(|l| l.profiles());
        let enabled: Vec<_> = listed
            .iter()
            .filter(|p| p.state == Some(ProfileState::Enabled))
            .collect();
        assert!(enabled.len() <= 1, "two enabled profiles: {listed:?}");
        let mut seen = std::collections::BTreeSet::new();
        for p in &listed {
            assert!(seen.insert(p.iccid), "ICCID listed twice: {listed:?}");
        }
        let got: Vec<(Iccid, bool)> = listed
            .iter()
            .map(|p| (p.iccid.unwrap(), p.state == Some(ProfileState::Enabled)))
            .collect();
        let want: Vec<(Iccid, bool)> = m.installed.iter().map(|(i, e)| (iccids[*i], *e)).collect();
        let mut g = got.clone();
        let mut w = want.clone();
        g.sort();
        w.sort();
        assert_eq!(g, w, "profiles on the card vs the model");
    }

    fn check_notifications(&mut self) {
        let list = self.with_lpa(|l| l.notifications());
        let seqs: Vec<u64> = list.iter().map(|n| n.seq_number).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "sequence numbers not increasing: {seqs:?}"
        );
        let max_seen = self.seen.iter().next_back().copied().unwrap_or(0);
        for s in &seqs {
            if !self.seen.contains(s) {
                assert!(*s > max_seen, "new notification {s} not above {max_seen}");
            }
        }
        self.seen.extend(seqs);
    }

    /// After a reset, the card's telecom content is the enabled profile's (SGP.22 §3.2.1).
    fn check_visible_usim(&mut self, m: &Model) {
        let iccid_ef = self.card.transmit(&h("00A4000C022FE2"));
        let iccid_read = self.card.transmit(&h("00B000000A"));
        let usim = self.card.transmit(&h("00A4040C07A0000000871002"));
        match m.enabled() {
            Some(p) => {
                assert_eq!(iccid_ef, h("9000"));
                let mut want = self.iccids[p].0.to_vec();
                want.extend([0x90, 0x00]);
                assert_eq!(iccid_read, want, "EF.ICCID");
                assert_eq!(usim, h("9000"), "the enabled profile's USIM");
            }
            None => {
                assert_eq!(iccid_ef, h("6A82"), "no profile: no EF.ICCID");
                assert_eq!(usim, h("6A82"), "no profile: no USIM");
            }
        }
    }
}

struct LifeCycleTest;

impl StateMachineTest for LifeCycleTest {
    type SystemUnderTest = Sut;
    type Reference = LifeCycle;

    fn init_test(_: &Model) -> Sut {
        let iccids = PACKAGES.iter().map(|n| Order::of(ts48(n)).iccid).collect();
        Sut {
            card: card(),
            smdp: SmDp::new(),
            iccids,
            before: Model::default(),
            seen: Default::default(),
        }
    }

    fn apply(mut sut: Sut, after: &Model, op: Op) -> Sut {
        let before = sut.before.clone();
        let iccids = sut.iccids.clone();
        let iccid = |p: usize| iccids[p];
        match op {
            Op::Download(p) => {
                let order = Order::of(ts48(PACKAGES[p]));
                let mut smdp = std::mem::replace(&mut sut.smdp, SmDp::new());
                let pir = sut.with_lpa(|l| download(l, &mut smdp, &order));
                sut.smdp = smdp;
                match (before.find(p), checked_result(&pir)) {
                    (None, FinalResult::Success { .. }) => {}
                    (Some(_), FinalResult::Error { error_reason, .. }) => assert_eq!(
                        error_reason,
                        ErrorReason::InstallFailedDueToIccidAlreadyExistsOnEuicc
                    ),
                    (installed, r) => panic!("download of {p} (installed: {installed:?}): {r:?}"),
                }
            }
            Op::Enable(p) => {
                let id = iccid(p);
                let r = sut.with_lpa(|l| l.enable(id));
                let want = match before.find(p).map(|i| before.installed[i].1) {
                    None => EnableProfileResult::IccidOrAidNotFound,
                    Some(true) => EnableProfileResult::ProfileNotInDisabledState,
                    Some(false) => EnableProfileResult::Ok,
                };
                assert_eq!(r, want, "enable {p}");
            }
            Op::Disable(p) => {
                let id = iccid(p);
                let r = sut.with_lpa(|l| l.disable(id));
                let want = match before.find(p).map(|i| before.installed[i].1) {
                    None => DisableProfileResult::IccidOrAidNotFound,
                    Some(false) => DisableProfileResult::ProfileNotInEnabledState,
                    Some(true) => DisableProfileResult::Ok,
                };
                assert_eq!(r, want, "disable {p}");
            }
            Op::Delete(p) => {
                let id = iccid(p);
                let r = sut.with_lpa(|l| l.delete(id));
                let want = match before.find(p).map(|i| before.installed[i].1) {
                    None => DeleteProfileResult::IccidOrAidNotFound,
                    Some(true) => DeleteProfileResult::ProfileNotInDisabledState,
                    Some(false) => DeleteProfileResult::Ok,
                };
                assert_eq!(r, want, "delete {p}");
            }
            Op::MemoryReset => {
                let r: EuiccMemoryResetResponse = sut.with_lpa(|l| {
                    l.call(&EuiccMemoryResetRequest {
                        delete_operational_profiles: true,
                        delete_field_loaded_test_profiles: true,
                        reset_default_smdp_address: false,
                    })
                });
                let want = if before.installed.is_empty() {
                    EuiccMemoryResetResult::NothingToDelete
                } else {
                    EuiccMemoryResetResult::Ok
                };
                assert_eq!(r.result, want);
            }
            Op::Reset => {
                sut.card.reset();
                sut.check_visible_usim(after);
            }
            Op::RemoveOldestNotification => {
                let list = sut.with_lpa(|l| l.notifications());
                if let Some(first) = list.first() {
                    let seq_number = first.seq_number;
                    let r: NotificationSentResponse =
                        sut.with_lpa(|l| l.call(&NotificationSentRequest { seq_number }));
                    assert_eq!(r.result, NotificationSentResult::Ok);
                }
            }
        }
        sut.check_profiles(after);
        sut.check_notifications();
        sut.before = after.clone();
        sut
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        max_shrink_iters: 256,
        .. ProptestConfig::default()
    })]

    #[test]
    fn the_profile_life_cycle_follows_the_model(sequential 1..14 => LifeCycleTest);
}
