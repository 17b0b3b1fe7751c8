//! Model-based test of the operator network under random interleavings of the seed's FLOWS
//! (issue 10 §2(3); docs/flows.md, docs/network.md). Where `network_model.rs` posts the
//! SM-DP+'s progress events itself, here every event comes from real cards: the flows' steps
//! run through `harness::device` (in-process UICCs and eUICCs, the LPA downloading over ES9+
//! HTTPS, ES10c enable / disable / delete, notifications) and `harness::flows::net` (the
//! devices' view of the network: TS.43 requests, one-time codes by SMS, the contract page,
//! SMS-PP to the old UICC) against ONE embedded network. Each transition is one segment of a
//! flow, so segments of different flows interleave at random:
//!
//! | transition | flow steps (JP7540673B2) |
//! |---|---|
//! | `Order` | companion-download 403–407, bind-with-download 503–507, contract 6000–6070 (accept or decline) |
//! | `Download` | 408–409 / 508–509 / 1609: the eUICC downloads, enables, notifies |
//! | `Bind` | 410 / 1104 (multi-imsi-uicc with the second UICC of the account) |
//! | `Unbind` | 1304 |
//! | `Remove` | 1307: ES10c disable + delete on an eUICC, notifications |
//! | `Transfer` | euicc-upgrade 1601–1608 / euicc-migration 1701–1708 (code to the old device) |
//! | `Retire` | 1609+ / 1709+: the old UICC gets the RFM SMS-PP, the old eUICC disables its profile |
//! | `Race` | euicc-migration/concurrent: two new devices ask for the number at once |
//! | `Together` | two segments of different flows run at the same moment on two threads |
//!
//! A small reference model (lines, orders, transfers, each eUICC's profiles) predicts every
//! answer (its stable code) and every state; after every transition the test reads back
//! through the admin API and from the cards:
//! - every line's state and number, every transfer's state, the number of orders and lines
//!   are the model's; every eUICC's profiles (GetProfilesInfo) are the model's;
//! - an MSISDN never maps to a disabled IMSI: a call rings only active lines, a group lists no
//!   disabled member;
//! - no group without its primary;
//! - a number never ends with two active IMSIs from a migration: never the old and the new
//!   card of a transfer both active, at most one active primary per number;
//! - every binding is consistent: a line on another number than its own is a member of that
//!   number's group; every order is known to the SM-DP+ with its line's EID; an active eUICC
//!   line's profile is on that eUICC; the old UICC's USIM answers `62 83` once retired.
//!
//! `Together` is checked against both serial orders: it is generated only when the model
//! says the two segments commute, so the concurrent run must end in that one state. `Race`
//! is the exception the model resolves by symmetry: the two new eUICCs are empty (the same in
//! the model), so whichever wins is called the first.
//!
//! Cases: 16 per run (`SIMLAB_FLOWS_MODEL_CASES` for more); each runs a fresh network.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};
use simlab_harness::device::{Device, Recorder, Slot};
use simlab_harness::flows::engine::error_code;
use simlab_harness::flows::net::{self, Doc, LineId, Net, Request};
use simlab_harness::flows::{Env, Scenario};
use simlab_harness::network::client::extract_code;
use simlab_harness::network::db::{LineState, LineView, Policy};
use std::collections::{BTreeMap, BTreeSet};

/// eUICCs (each in its own device): the built-in `euicc`, `euicc-2`, `euicc-3`.
const EUICCS: usize = 3;
const EUICC_CARDS: [&str; EUICCS] = ["euicc", "euicc-2", "euicc-3"];
/// Profiles (installed or ordered) one eUICC takes in a case.
const CAPACITY: usize = 3;
/// Number 0 is the primary's (`uicc`), 1 the second UICC's (`uicc-2`, same account), then the
/// BOSS's own numbers for companions.
const N0: usize = 0;
const NQ: usize = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Pending,
    Active,
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Card {
    /// The primary's UICC (`uicc`, with OTA keys: the old card of an upgrade).
    P,
    /// The second UICC of the account (`uicc-2`).
    Q,
    /// A profile on model eUICC `e`.
    E(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Subscribe,
    /// A SharedNumber companion (born on the primary's number).
    Bind,
    Transfer(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct MLine {
    msisdn: usize,
    home: usize,
    state: St,
    card: Card,
    /// The order that made it (`None` for the provisioned UICCs).
    order: Option<usize>,
    purpose: Option<Purpose>,
}

impl MLine {
    /// docs/network.md §1 "Groups and their primary".
    fn secondary(&self) -> bool {
        self.home != self.msisdn || self.purpose == Some(Purpose::Bind)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct MTransfer {
    old: usize,
    state: &'static str,
}

/// An answer: `Ok(outcome)` or `Err(the network's stable code)`.
type Answer = Result<&'static str, &'static str>;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Model {
    lines: Vec<MLine>,
    /// Each order's line.
    orders: Vec<usize>,
    transfers: Vec<MTransfer>,
    /// Orders waiting on each eUICC to be downloaded, oldest first.
    queue: [Vec<usize>; EUICCS],
    /// Each eUICC's profiles: (order, enabled).
    cards: [Vec<(usize, bool)>; EUICCS],
    /// Old lines of completed transfers whose device has yet to act (1609+).
    retire: Vec<usize>,
    /// The old UICC's USIM was deactivated by the network's RFM command.
    p_deactivated: bool,
    /// The subscriber signed the service contract (policy `contract` is on for number 0).
    signed: bool,
    /// Own numbers handed out.
    numbers: usize,
    /// The last transition's answers.
    expected: Vec<Answer>,
}

impl Default for Model {
    fn default() -> Self {
        let uicc = |msisdn, card| MLine {
            msisdn,
            home: msisdn,
            state: St::Active,
            card,
            order: None,
            purpose: None,
        };
        Self {
            lines: vec![uicc(N0, Card::P), uicc(NQ, Card::Q)],
            orders: Vec::new(),
            transfers: Vec::new(),
            queue: Default::default(),
            cards: Default::default(),
            retire: Vec::new(),
            p_deactivated: false,
            signed: false,
            numbers: 0,
            expected: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Order {
        e: usize,
        shared: bool,
        accept: bool,
    },
    Download {
        e: usize,
    },
    Bind {
        line: usize,
    },
    Unbind {
        line: usize,
    },
    Remove {
        e: usize,
        slot: usize,
    },
    Transfer {
        e: usize,
        migration: bool,
    },
    Retire,
    Race {
        e1: usize,
        e2: usize,
        migration: bool,
    },
    Together(Box<Op>, Box<Op>),
}

impl Op {
    /// The device a segment acts on (for `Together`: two different ones).
    fn device(&self, m: &Model) -> Option<Card> {
        match *self {
            Op::Download { e } | Op::Remove { e, .. } => Some(Card::E(e)),
            Op::Retire => m.retire.first().map(|&l| m.lines[l].card),
            _ => None,
        }
    }
}

impl Model {
    fn active_on(&self, n: usize) -> bool {
        self.lines
            .iter()
            .any(|l| l.msisdn == n && l.state == St::Active)
    }

    /// A group never outlives its primary (docs/network.md §1).
    fn end_group_without_primary(&mut self, n: usize) {
        let members: Vec<usize> = (0..self.lines.len())
            .filter(|&i| self.lines[i].msisdn == n && self.lines[i].state != St::Disabled)
            .collect();
        if members.iter().any(|&i| !self.lines[i].secondary()) {
            return;
        }
        for i in members {
            let l = &mut self.lines[i];
            if l.home != n {
                l.msisdn = l.home;
            } else {
                l.state = St::Disabled;
            }
        }
    }

    fn room(&self, e: usize) -> bool {
        self.cards[e].len() + self.queue[e].len() < CAPACITY
    }

    fn new_order(&mut self, e: usize, msisdn: usize, purpose: Purpose) {
        let k = self.orders.len();
        self.lines.push(MLine {
            msisdn,
            home: msisdn,
            state: St::Pending,
            card: Card::E(e),
            order: Some(k),
            purpose: Some(purpose),
        });
        self.orders.push(self.lines.len() - 1);
        self.queue[e].push(k);
    }

    /// The number's own active card, the old card of a transfer.
    fn own_card(&self) -> Option<usize> {
        (0..self.lines.len()).find(|&i| {
            let l = &self.lines[i];
            l.msisdn == N0 && l.state == St::Active && !l.secondary()
        })
    }

    fn transfer(&mut self, e: usize, migration: bool) -> Answer {
        let Some(old) = self.own_card() else {
            return Err("imsi-disabled");
        };
        let uicc = self.lines[old].card == Card::P;
        if migration == uicc {
            return Err("invalid-parameter");
        }
        if self.transfers.iter().any(|t| t.state == "pending") {
            return Err("transfer-in-progress");
        }
        let t = self.transfers.len();
        self.transfers.push(MTransfer {
            old,
            state: "pending",
        });
        self.new_order(e, N0, Purpose::Transfer(t));
        Ok("ordered")
    }

    fn step(&mut self, op: &Op) {
        let answer = match *op {
            Op::Order { e, shared, accept } => {
                if !self.active_on(N0) {
                    Err("imsi-not-active")
                } else if !self.signed && !accept {
                    Ok("declined")
                } else {
                    let page = !self.signed;
                    self.signed = true;
                    let n = if shared {
                        N0
                    } else {
                        self.numbers += 1;
                        NQ + self.numbers
                    };
                    let purpose = if shared {
                        Purpose::Bind
                    } else {
                        Purpose::Subscribe
                    };
                    self.new_order(e, n, purpose);
                    Ok(if page {
                        "signed-and-ordered"
                    } else {
                        "ordered"
                    })
                }
            }
            Op::Download { e } => {
                let k = self.queue[e].remove(0);
                // EnableProfile disables the enabled one (its order becomes `disabled`: no
                // change to its line).
                for p in &mut self.cards[e] {
                    p.1 = false;
                }
                self.cards[e].push((k, true));
                let li = self.orders[k];
                if self.lines[li].state == St::Pending {
                    self.lines[li].state = St::Active;
                    if let Some(Purpose::Transfer(t)) = self.lines[li].purpose {
                        let old = self.transfers[t].old;
                        self.lines[old].state = St::Disabled;
                        self.transfers[t].state = "done";
                        self.retire.push(old);
                    }
                }
                Ok("enabled")
            }
            Op::Remove { e, slot } => {
                let (k, _) = self.cards[e].remove(slot % self.cards[e].len());
                let li = self.orders[k];
                if self.lines[li].state != St::Disabled {
                    self.lines[li].state = St::Disabled;
                    let n = self.lines[li].msisdn;
                    self.end_group_without_primary(n);
                    if let Some(Purpose::Transfer(t)) = self.lines[li].purpose {
                        if self.transfers[t].state == "pending" {
                            self.transfers[t].state = "failed";
                        }
                    }
                }
                Ok("deleted")
            }
            Op::Bind { line } => {
                let i = line % self.lines.len();
                let t = self.lines[i].clone();
                let on_its_number = self
                    .lines
                    .iter()
                    .filter(|l| l.msisdn == t.msisdn && l.state != St::Disabled)
                    .count();
                if !self.active_on(N0) {
                    Err("imsi-not-active")
                } else if t.msisdn == N0 {
                    Err("already-in-group")
                } else if t.state == St::Disabled {
                    Err("imsi-disabled")
                } else if !t.secondary() && on_its_number > 1 {
                    Err("already-in-group")
                } else {
                    self.lines[i].msisdn = N0;
                    Ok("bound")
                }
            }
            Op::Unbind { line } => {
                let i = line % self.lines.len();
                let t = self.lines[i].clone();
                if !self.active_on(N0) {
                    Err("imsi-not-active")
                } else if t.msisdn != N0 || t.state == St::Disabled {
                    Err("not-in-group")
                } else if !t.secondary() {
                    Err("invalid-parameter")
                } else {
                    if t.home != N0 {
                        self.lines[i].msisdn = t.home;
                    } else {
                        self.lines[i].state = St::Disabled;
                    }
                    Ok("unbound")
                }
            }
            Op::Transfer { e, migration } => self.transfer(e, migration),
            Op::Retire => {
                let old = self.retire.remove(0);
                match self.lines[old].card {
                    Card::P => self.p_deactivated = true,
                    Card::E(e) => {
                        let k = self.lines[old].order;
                        if let Some(p) = self.cards[e].iter_mut().find(|p| Some(p.0) == k) {
                            p.1 = false;
                        }
                    }
                    Card::Q => {}
                }
                Ok("retired")
            }
            Op::Race { e1, migration, .. } => {
                // Exactly one may win; the other finds the number reserved.
                let a = self.transfer(e1, migration);
                self.expected.push(a);
                match a {
                    Ok(_) => Err("transfer-in-progress"),
                    Err(e) => Err(e),
                }
            }
            Op::Together(ref a, ref b) => {
                self.step(a);
                self.step(b);
                return;
            }
        };
        self.expected.push(answer);
    }

    /// Whether `op` can run from this state.
    fn can(&self, op: &Op) -> bool {
        match op {
            Op::Order { e, .. } | Op::Transfer { e, .. } => self.room(*e),
            Op::Download { e } => !self.queue[*e].is_empty(),
            Op::Remove { e, .. } => !self.cards[*e].is_empty(),
            Op::Retire => !self.retire.is_empty(),
            Op::Bind { .. } | Op::Unbind { .. } => true,
            Op::Race { e1, e2, .. } => {
                // Symmetric: both empty, so the model may call the winner `e1`.
                e1 != e2
                    && [e1, e2]
                        .iter()
                        .all(|&&e| self.cards[e].is_empty() && self.queue[e].is_empty())
            }
            Op::Together(a, b) => {
                if !self.can(a) || !self.can(b) {
                    return false;
                }
                let (Some(da), Some(db)) = (a.device(self), b.device(self)) else {
                    return false;
                };
                if da == db {
                    return false;
                }
                // Both serial orders must end in the same state with the same answers.
                let mut ab = self.clone();
                ab.expected.clear();
                ab.step(a);
                if !ab.can(b) {
                    return false;
                }
                ab.step(b);
                let mut ba = self.clone();
                ba.expected.clear();
                if !ba.can(b) {
                    return false;
                }
                ba.step(b);
                if !ba.can(a) {
                    return false;
                }
                ba.step(a);
                ba.expected.reverse();
                ab == ba
            }
        }
    }
}

struct FlowsModel;

/// The one-device segments that can run from `m` (the parts of a `Together`).
fn segments(m: &Model) -> Vec<Op> {
    let mut v: Vec<Op> = (0..EUICCS)
        .flat_map(|e| {
            let download = (!m.queue[e].is_empty()).then_some(Op::Download { e });
            let remove = (0..m.cards[e].len()).map(move |slot| Op::Remove { e, slot });
            download.into_iter().chain(remove)
        })
        .collect();
    if !m.retire.is_empty() {
        v.push(Op::Retire);
    }
    v
}

impl ReferenceStateMachine for FlowsModel {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(m: &Model) -> BoxedStrategy<Op> {
        // Mostly the transfer type that fits the number's card, sometimes the other.
        let euicc = m.own_card().is_some_and(|l| m.lines[l].card != Card::P);
        let migration = move || prop::bool::weighted(if euicc { 0.85 } else { 0.15 });
        let segs = segments(m);
        let together = if segs.len() >= 2 {
            let n = segs.len();
            (0..n, 1..n)
                .prop_map(move |(i, j)| {
                    let b = (i + j) % n;
                    Op::Together(Box::new(segs[i].clone()), Box::new(segs[b].clone()))
                })
                .boxed()
        } else {
            Just(Op::Retire).boxed()
        };
        prop_oneof![
            5 => (0..EUICCS, any::<bool>(), prop::bool::weighted(0.7))
                .prop_map(|(e, shared, accept)| Op::Order { e, shared, accept }),
            6 => (0..EUICCS).prop_map(|e| Op::Download { e }),
            3 => (0..8usize).prop_map(|line| Op::Bind { line }),
            2 => (0..8usize).prop_map(|line| Op::Unbind { line }),
            2 => (0..EUICCS, 0..CAPACITY).prop_map(|(e, slot)| Op::Remove { e, slot }),
            3 => (0..EUICCS, migration())
                .prop_map(|(e, migration)| Op::Transfer { e, migration }),
            2 => Just(Op::Retire),
            2 => (0..EUICCS, 0..EUICCS, migration())
                .prop_map(|(e1, e2, migration)| Op::Race { e1, e2, migration }),
            4 => together,
        ]
        .boxed()
    }

    fn preconditions(m: &Model, op: &Op) -> bool {
        m.can(op)
    }

    fn apply(mut m: Model, op: &Op) -> Model {
        m.expected.clear();
        m.step(op);
        m
    }
}

/// What a segment needs of the test's bookkeeping (shared by the threads of `Together`).
struct Known {
    net: Net,
    /// Real EID of each real eUICC.
    eids: Vec<String>,
    /// Number `n` of the model.
    numbers: Vec<String>,
    /// ICCIDs of the two UICCs (read once: a deactivated USIM no longer answers).
    uicc_iccids: [String; 2],
    /// IMSI of each model line; ICCID and activation code of each model order.
    imsis: Vec<String>,
    iccids: Vec<String>,
    acs: Vec<String>,
    /// The model eUICC → the real one (a `Race` may swap two).
    map: [usize; EUICCS],
}

fn code(e: &anyhow::Error) -> String {
    error_code(e).unwrap_or_else(|| format!("{e:#}"))
}

impl Known {
    fn number(&self, n: usize) -> String {
        match self.numbers.get(n) {
            Some(s) => s.clone(),
            // The BOSS's own numbers, in the order it hands them out (docs/network.md §4).
            None => format!("+1555{:07}", 2_000_000 + (n - NQ)),
        }
    }

    /// The device on number 0 that receives its SMS: an active line of the number.
    fn receiver(&self, m: &Model) -> Option<String> {
        (0..m.lines.len())
            .find(|&i| m.lines[i].msisdn == N0 && m.lines[i].state == St::Active)
            .map(|i| self.imsis[i].clone())
    }

    /// The user asks on number 0, authenticated by the code the network sends to the number
    /// (read on the device that got it): the answer after the code.
    fn by_code(&self, m: &Model, req: &Request) -> Result<Doc, String> {
        let n0 = self.number(N0);
        let asked = self.net.by_code(&n0, req).map_err(|e| code(&e))?;
        let op = asked.operation_id().map_err(|e| format!("{e:#}"))?;
        let imsi = self
            .receiver(m)
            .ok_or("a code went out, but no line is active")?;
        let otp = self
            .net
            .client
            .latest_code(&imsi)
            .map_err(|e| e.to_string())?
            .ok_or("no code in the inbox")?;
        self.net
            .continue_op(&op, Some(&otp), None)
            .map_err(|e| code(&e))
    }

    /// The order a document's DownloadInfo names: (IMSI, ICCID, activation code).
    fn ordered(&self, doc: &Doc) -> Result<(String, String, String), String> {
        let ac = doc.activation_code().map_err(|e| format!("{e:#}"))?;
        let iccid = doc.iccid.clone().ok_or("no ProfileIccid")?;
        let imsi = self
            .net
            .orders()
            .map_err(|e| format!("{e:#}"))?
            .into_iter()
            .find(|o| o.order.iccid == iccid)
            .ok_or("the BOSS lists no such order")?
            .order
            .imsi;
        Ok((imsi, iccid, ac))
    }

    fn transfer_request(&self, e_real: usize, migration: bool) -> Request {
        Request::Transfer {
            msisdn: self.number(N0),
            eid: self.eids[e_real].clone(),
            migration,
        }
    }

    /// A segment on one device (`Download`, `Remove`, `Retire`): may run beside another.
    fn segment(&self, m: &Model, op: &Op, dev: &mut Device) -> Result<&'static str, String> {
        let s = |e: anyhow::Error| format!("{e:#}");
        match *op {
            Op::Download { e } => {
                let k = m.queue[e][0];
                let done = dev
                    .download(&self.acs[k], None, &self.net.roots)
                    .map_err(s)?;
                let iccid = done.iccid.ok_or("no ICCID installed")?;
                if iccid != self.iccids[k] {
                    return Err(format!("installed {iccid}, ordered {}", self.iccids[k]));
                }
                dev.enable(&iccid).map_err(s)?;
                dev.process_notifications(&self.net.roots).map_err(s)?;
                Ok("enabled")
            }
            Op::Remove { e, slot } => {
                let (k, enabled) = m.cards[e][slot % m.cards[e].len()];
                if enabled {
                    dev.disable(&self.iccids[k]).map_err(s)?;
                }
                dev.delete(&self.iccids[k]).map_err(s)?;
                dev.process_notifications(&self.net.roots).map_err(s)?;
                Ok("deleted")
            }
            Op::Retire => {
                let old = m.retire[0];
                match m.lines[old].card {
                    Card::P => {
                        // Fig. 16: the network's RFM command, as SMS-PP to the old UICC.
                        let messages = self.net.sms_pp(&self.imsis[old]).map_err(s)?;
                        if messages.is_empty() {
                            return Err("no SMS-PP for the old UICC".into());
                        }
                        for (_, tpdu) in &messages {
                            dev.deliver_sms_pp(tpdu).map_err(s)?;
                        }
                    }
                    Card::E(e) => {
                        // Fig. 17: the old device disables its profile, if still enabled.
                        let k = m.lines[old].order.ok_or("an eUICC line without order")?;
                        if m.cards[e].iter().any(|&(o, on)| o == k && on) {
                            dev.disable(&self.iccids[k]).map_err(s)?;
                            dev.process_notifications(&self.net.roots).map_err(s)?;
                        }
                    }
                    Card::Q => return Err("the second UICC is never transferred".into()),
                }
                Ok("retired")
            }
            _ => Err(format!("{op:?} is not a one-device segment")),
        }
    }
}

struct Sut {
    known: Known,
    /// 0: the primary (UICC `uicc`), 1: the second UICC, 2..: the eUICC devices (real order).
    devices: Vec<Option<Device>>,
    before: Model,
}

fn device(name: &str, card: &str, rec: &Recorder) -> Device {
    let def = simlab_harness::defaults::card(card).unwrap();
    let place = format!("built-in:{card}");
    let transport: simlab_harness::device::slot::CardTransport =
        Box::new(simlab_harness::transport::InProcess::new(
            simlab_harness::cards::build_card(&def, &place, None).unwrap(),
        ));
    let euicc = def.euicc.is_some();
    let slot = Slot::new(name, &place, transport, Some(def), rec);
    if euicc {
        Device::new(name, None, Some(slot), rec)
    } else {
        Device::new(name, Some(slot), None, rec)
    }
}

impl Sut {
    fn index(&self, card: Card) -> usize {
        match card {
            Card::P => 0,
            Card::Q => 1,
            Card::E(e) => 2 + self.known.map[e],
        }
    }

    fn dev(&mut self, card: Card) -> &mut Device {
        let i = self.index(card);
        self.devices[i].as_mut().unwrap()
    }

    /// A request of the number's user: through the primary's own card by EAP-AKA (Fig. 4
    /// 403) while that card holds the number, else by the code the network sends to it.
    fn ask(&mut self, m: &Model, req: &Request) -> Result<Doc, String> {
        if m.lines[0].state == St::Active {
            let p = self.devices[0].as_mut().unwrap();
            return self.known.net.eap_aka(p, req).map_err(|e| code(&e));
        }
        self.known.by_code(m, req)
    }

    fn record(&mut self, doc: &Doc) -> Result<(), String> {
        let (imsi, iccid, ac) = self.known.ordered(doc)?;
        self.known.imsis.push(imsi);
        self.known.iccids.push(iccid);
        self.known.acs.push(ac);
        Ok(())
    }

    /// Runs one transition: the answers, in the model's order.
    fn run(&mut self, op: &Op) -> Vec<Result<&'static str, String>> {
        let m = self.before.clone();
        match op {
            Op::Download { .. } | Op::Remove { .. } | Op::Retire => {
                let i = self.index(op.device(&m).unwrap());
                let mut dev = self.devices[i].take().unwrap();
                let r = self.known.segment(&m, op, &mut dev);
                self.devices[i] = Some(dev);
                vec![r]
            }
            Op::Together(a, b) => {
                let (ia, ib) = (
                    self.index(a.device(&m).unwrap()),
                    self.index(b.device(&m).unwrap()),
                );
                let mut da = self.devices[ia].take().unwrap();
                let mut db = self.devices[ib].take().unwrap();
                // The second segment sees the model after the first: they commute, so the
                // indices it picks are the same either way.
                let mut after_a = m.clone();
                after_a.step(a);
                let known = &self.known;
                let (ra, rb) = std::thread::scope(|scope| {
                    let ta = scope.spawn(|| known.segment(&m, a, &mut da));
                    let tb = scope.spawn(|| known.segment(&after_a, b, &mut db));
                    (ta.join().unwrap(), tb.join().unwrap())
                });
                self.devices[ia] = Some(da);
                self.devices[ib] = Some(db);
                vec![ra, rb]
            }
            Op::Order { e, shared, accept } => {
                let eid = self.known.eids[self.known.map[*e]].clone();
                let r = (|| {
                    let mut doc = self.ask(
                        &m,
                        &Request::Companion {
                            eid,
                            shared_number: *shared,
                        },
                    )?;
                    let mut page = false;
                    if doc.subscription_result.as_deref() == Some(net::CONTINUE_TO_WEBSHEET) {
                        // Fig. 6 6020–6040: the contract page, then the request continues.
                        page = true;
                        let url = doc.contract_url.clone().ok_or("no contract URL")?;
                        let op_id = doc.operation_id().map_err(|e| format!("{e:#}"))?;
                        let token = doc.token.clone();
                        self.known
                            .net
                            .answer_contract(&url, *accept)
                            .map_err(|e| code(&e))?;
                        doc = self
                            .known
                            .net
                            .continue_op(&op_id, None, token.as_deref())
                            .map_err(|e| code(&e))?;
                        if doc.subscription_result.as_deref() == Some(net::DISMISS) {
                            return Ok("declined");
                        }
                    }
                    self.record(&doc)?;
                    Ok(if page {
                        "signed-and-ordered"
                    } else {
                        "ordered"
                    })
                })();
                vec![r]
            }
            Op::Bind { line } | Op::Unbind { line } => {
                let iccid = self.line_iccid(&m, line % m.lines.len());
                let secondary = LineId::Iccid(iccid);
                let req = if matches!(op, Op::Bind { .. }) {
                    Request::Bind {
                        primary: None,
                        secondary,
                        ring_mode: None,
                    }
                } else {
                    Request::Unbind {
                        primary: None,
                        secondary,
                    }
                };
                let outcome = if matches!(op, Op::Bind { .. }) {
                    "bound"
                } else {
                    "unbound"
                };
                vec![self.ask(&m, &req).map(|_| outcome)]
            }
            Op::Transfer { e, migration } => {
                let req = self.known.transfer_request(self.known.map[*e], *migration);
                let r = self
                    .known
                    .by_code(&m, &req)
                    .and_then(|doc| self.record(&doc).map(|_| "ordered"));
                vec![r]
            }
            Op::Race { e1, e2, migration } => self.race(&m, *e1, *e2, *migration),
        }
    }

    /// Two new devices ask for number 0 at the same moment, each with the code the old device
    /// received (euicc-migration/concurrent): at most one may win.
    fn race(
        &mut self,
        m: &Model,
        e1: usize,
        e2: usize,
        migration: bool,
    ) -> Vec<Result<&'static str, String>> {
        let known = &self.known;
        let n0 = known.number(N0);
        let reqs = [e1, e2].map(|e| known.transfer_request(known.map[e], migration));
        let asked: Vec<Result<String, String>> = std::thread::scope(|scope| {
            let hs: Vec<_> = reqs
                .iter()
                .map(|req| {
                    scope.spawn(|| {
                        let doc = known.net.by_code(&n0, req).map_err(|e| code(&e))?;
                        doc.operation_id().map_err(|e| format!("{e:#}"))
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let codes: Vec<String> = match known.receiver(m) {
            Some(imsi) => known
                .net
                .client
                .inbox(&imsi, None)
                .unwrap()
                .iter()
                .rev()
                .filter_map(|s| extract_code(&s.text))
                .collect(),
            None => Vec::new(),
        };
        let answers: Vec<Result<Doc, String>> = std::thread::scope(|scope| {
            let hs: Vec<_> = asked
                .iter()
                .map(|a| {
                    let codes = &codes;
                    scope.spawn(move || {
                        let op = a.clone()?;
                        let mut last = "no code".to_owned();
                        for c in codes.iter().take(2) {
                            match known.net.continue_op(&op, Some(c), None) {
                                Ok(doc) => return Ok(doc),
                                Err(e) => {
                                    last = code(&e);
                                    if last != "code-wrong" {
                                        break;
                                    }
                                }
                            }
                        }
                        Err(last)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut answers = answers;
        if answers[0].is_err() && answers[1].is_ok() {
            // The second device won: by symmetry it is the model's first.
            self.known.map.swap(e1, e2);
            answers.swap(0, 1);
        }
        let mut out = Vec::new();
        for a in answers {
            out.push(match a {
                Ok(doc) => self.record(&doc).map(|_| "ordered"),
                Err(c) => Err(c),
            });
        }
        out
    }

    fn line_iccid(&self, m: &Model, i: usize) -> String {
        match (m.lines[i].order, m.lines[i].card) {
            (Some(k), _) => self.known.iccids[k].clone(),
            (None, Card::Q) => self.known.uicc_iccids[1].clone(),
            (None, _) => self.known.uicc_iccids[0].clone(),
        }
    }

    /// Every eUICC's profiles, read from the cards: EID → ICCID → state.
    fn cards(&mut self) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for (i, eid) in self.known.eids.clone().into_iter().enumerate() {
            let profiles = self.devices[2 + i].as_mut().unwrap().profiles().unwrap();
            out.insert(
                eid,
                profiles.into_iter().map(|p| (p.iccid, p.state)).collect(),
            );
        }
        out
    }

    /// The invariants, from the network's answers (admin API, calls) and the cards alone.
    fn invariants(&mut self, cards: &BTreeMap<String, BTreeMap<String, String>>) {
        let client = &self.known.net.client;
        let views: Vec<LineView> = client
            .subscribers()
            .unwrap()
            .into_iter()
            .flat_map(|s| s.imsis)
            .collect();
        let orders = client.orders().unwrap();
        let transfers = client.transfers().unwrap();
        let groups = client.groups().unwrap();
        let born_shared: BTreeSet<&str> = orders
            .iter()
            .filter(|o| o.order.purpose == "bind")
            .map(|o| o.order.iccid.as_str())
            .collect();
        // A number's own line: not bound in, not born on the shared number.
        let primary = |l: &LineView| {
            l.msisdn == l.home_msisdn
                && !l.iccid.as_deref().is_some_and(|i| born_shared.contains(i))
        };
        let state_of = |imsi: &str| views.iter().find(|l| l.imsi == imsi).unwrap().state;

        // An MSISDN never maps to a disabled IMSI; at most one active primary per number.
        let numbers: BTreeSet<&str> = views.iter().map(|l| l.msisdn.as_str()).collect();
        for n in &numbers {
            let call = client.call(n, None).unwrap();
            for step in &call.rings {
                for imsi in &step.imsis {
                    assert_eq!(state_of(imsi), LineState::Active, "{n} rings {imsi}");
                }
            }
            let primaries = views
                .iter()
                .filter(|l| l.msisdn == *n && l.state == LineState::Active && primary(l))
                .count();
            assert!(primaries <= 1, "{n} has {primaries} active primaries");
        }
        // No group without its primary, no disabled member.
        for g in &groups {
            assert!(
                g.members.iter().all(|l| l.state != LineState::Disabled),
                "a disabled IMSI in {g:?}"
            );
            assert!(
                g.members.iter().any(primary),
                "group {} without its primary: {g:?}",
                g.msisdn
            );
        }
        // Never the old and the new card of a transfer both active.
        for t in &transfers {
            let new = t
                .order_iccid
                .as_deref()
                .and_then(|i| orders.iter().find(|o| o.order.iccid == i))
                .map(|o| state_of(&o.order.imsi));
            assert!(
                !(state_of(&t.old_imsi) == LineState::Active && new == Some(LineState::Active)),
                "transfer {} of {} left two active IMSIs",
                t.id,
                t.msisdn
            );
        }
        // Every binding consistent: a line on another number is in that number's group; an
        // active eUICC line's profile is on its eUICC; every order is the SM-DP+'s, for its
        // line's EID.
        for l in &views {
            if l.msisdn != l.home_msisdn && l.state != LineState::Disabled {
                let g = groups.iter().find(|g| g.msisdn == l.msisdn);
                assert!(
                    g.is_some_and(|g| g.members.iter().any(|x| x.imsi == l.imsi)),
                    "{} is on {} but not in its group: {groups:?}",
                    l.imsi,
                    l.msisdn
                );
            }
            if let (Some(eid), Some(iccid), LineState::Active) =
                (l.eid.as_deref(), l.iccid.as_deref(), l.state)
            {
                assert!(
                    cards.get(eid).is_some_and(|p| p.contains_key(iccid)),
                    "line {} is active but profile {iccid} is not on eUICC {eid}",
                    l.imsi
                );
            }
        }
        for o in &orders {
            assert!(
                o.smdp_state.is_some(),
                "order {} unknown to the SM-DP+",
                o.order.iccid
            );
            let line = views.iter().find(|l| l.imsi == o.order.imsi).unwrap();
            assert_eq!(line.eid.as_deref(), Some(o.order.eid.as_str()), "{o:?}");
        }
    }

    /// The network (admin API) and the cards against the model.
    fn against_model(&mut self, m: &Model, cards: &BTreeMap<String, BTreeMap<String, String>>) {
        let client = &self.known.net.client;
        for (i, (imsi, model)) in self.known.imsis.iter().zip(&m.lines).enumerate() {
            let view = client.line(imsi).unwrap();
            let state = match model.state {
                St::Pending => LineState::Pending,
                St::Active => LineState::Active,
                St::Disabled => LineState::Disabled,
            };
            assert_eq!(
                (view.state, view.msisdn.clone()),
                (state, self.known.number(model.msisdn)),
                "line {i} ({imsi}): {view:?}"
            );
        }
        let subscribers = client.subscribers().unwrap();
        let all_lines: usize = subscribers.iter().map(|s| s.imsis.len()).sum();
        assert_eq!(all_lines, m.lines.len(), "lines: {subscribers:?}");
        let orders = client.orders().unwrap();
        assert_eq!(orders.len(), m.orders.len(), "orders: {orders:?}");
        let transfers = client.transfers().unwrap();
        assert_eq!(
            transfers
                .iter()
                .map(|t| t.state.as_str())
                .collect::<Vec<_>>(),
            m.transfers.iter().map(|t| t.state).collect::<Vec<_>>(),
            "transfers"
        );
        for e in 0..EUICCS {
            let eid = &self.known.eids[self.known.map[e]];
            let want: BTreeMap<String, String> = m.cards[e]
                .iter()
                .map(|&(k, on)| {
                    let state = if on { "enabled" } else { "disabled" };
                    (self.known.iccids[k].clone(), state.to_owned())
                })
                .collect();
            assert_eq!(cards[eid], want, "the profiles of eUICC {eid}");
        }
        let usim = self.dev(Card::P).uicc_usim_select_status().unwrap();
        assert_eq!(
            usim,
            if m.p_deactivated { 0x6283 } else { 0x9000 },
            "SELECT ADF.USIM on the old UICC"
        );
    }
}

impl Drop for Sut {
    fn drop(&mut self) {
        self.known.net.stop();
    }
}

struct FlowsTest;

impl StateMachineTest for FlowsTest {
    type SystemUnderTest = Sut;
    type Reference = FlowsModel;

    fn init_test(initial: &Model) -> Sut {
        let rec = Recorder::off();
        let scenario = Scenario::by_name("companion-download/fa")
            .unwrap()
            .remove(0);
        let net = Net::open(&Env::built_in(), &scenario, &rec).unwrap();
        let mut primary = device("primary", "uicc", &rec);
        let mut second = device("second", "uicc-2", &rec);
        let p = primary.subscription().unwrap();
        let q = second.subscription().unwrap();
        let n0 = p.msisdn.clone().unwrap();
        let def = |d: &mut Device| d.access_slot().unwrap().definition.clone().unwrap();
        // The primary's number asks for the service contract first (Fig. 6).
        let contract = Policy {
            contract: true,
            binding_contract: false,
            second_device_code: false,
        };
        net.provision_uicc(&def(&mut primary), contract, None, None)
            .unwrap();
        // Fig. 11: the second UICC is the same user's (one account).
        net.provision_uicc(&def(&mut second), Policy::default(), None, Some(&n0))
            .unwrap();
        let mut devices = vec![Some(primary), Some(second)];
        let mut eids = Vec::new();
        for (i, card) in EUICC_CARDS.iter().enumerate() {
            let mut d = device(&format!("euicc{i}"), card, &rec);
            eids.push(d.eid().unwrap());
            devices.push(Some(d));
        }
        Sut {
            known: Known {
                net,
                eids,
                numbers: vec![n0, q.msisdn.unwrap()],
                uicc_iccids: [p.iccid, q.iccid],
                imsis: vec![p.imsi, q.imsi],
                iccids: Vec::new(),
                acs: Vec::new(),
                map: [0, 1, 2],
            },
            devices,
            before: initial.clone(),
        }
    }

    fn apply(mut sut: Sut, after: &Model, op: Op) -> Sut {
        let got = sut.run(&op);
        let got: Vec<Result<&str, &str>> = got
            .iter()
            .map(|r| r.as_ref().map(|o| *o).map_err(String::as_str))
            .collect();
        assert_eq!(got, after.expected, "{op:?}");
        let cards = sut.cards();
        sut.invariants(&cards);
        sut.against_model(after, &cards);
        sut.before = after.clone();
        sut
    }
}

fn cases() -> u32 {
    std::env::var("SIMLAB_FLOWS_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16)
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 64,
        .. ProptestConfig::default()
    })]

    #[test]
    fn the_network_follows_the_model_under_interleaved_flows(sequential 1..40 => FlowsTest);
}
