//! Model-based test of the operator network (issue 10 §2(3), docs/network.md): random
//! interleavings of companion subscriptions (own number or SharedNumber), multi-IMSI bindings
//! and unbindings, upgrades, the SM-DP+'s progress events (SGP.22 §5.3.5, in any order,
//! repeated, late) and the expiry of lapsed transfers, driven through the operator's HTTP API
//! with the typed client (the events as an SM-DP+ posts them), each checked against a small
//! reference model of lines, orders and transfers. After every step, read back through the
//! admin API:
//! - every line's state and number, every order's state and every transfer's state are the
//!   model's;
//! - an MSISDN never maps to a disabled IMSI: calls ring only active lines, groups list no
//!   disabled member;
//! - no group without its primary (a line that owns the number, not one bound in or born on
//!   it);
//! - never two active IMSIs from a transfer (old and new card), at most one active primary
//!   per number;
//! - every order the BOSS placed is known to the SM-DP+, for the EID the BOSS gave.
//!
//! Cases: 16 per run (`SIMLAB_NETWORK_MODEL_CASES` for more); each runs a fresh network.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod network_support;

use network_support::*;
use proptest::prelude::*;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};
use serde_json::{json, Value};
use simlab_harness::network::client::{Auth, EntitlementRequest, NetworkClient, NextStep};
use simlab_harness::network::db::{LineState, LineView};
use simlab_harness::network::server::RunningNetwork;
use simlab_harness::network::ts43::LineId;
use std::collections::BTreeSet;

/// eUICCs the subscriptions go to (distinct EIDs; the events are the SM-DP+'s, posted by the
/// test, so no card is needed).
const DEVICES: usize = 3;

/// A valid EID for device `d` (SGP.29: the 32 digits are 1 modulo 97).
fn eid(d: usize) -> String {
    let body = format!("890490321234512345123456789{d:03}");
    let rem = format!("{body}00")
        .bytes()
        .fold(0u32, |r, b| (r * 10 + u32::from(b - b'0')) % 97);
    format!("{body}{:02}", 98 - rem)
}

/// The number `n` of the model: 0 the primary's, `k` the BOSS's k-th own number.
fn number(n: usize) -> String {
    if n == 0 {
        MSISDN.to_owned()
    } else {
        format!("+1555{:07}", 2_000_000 + n)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Pending,
    Active,
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct MLine {
    msisdn: usize,
    home: usize,
    state: St,
    /// Born on the shared number (a SharedNumber companion).
    shared_born: bool,
}

impl MLine {
    fn secondary(&self) -> bool {
        self.home != self.msisdn || self.shared_born
    }
    fn primary(&self) -> bool {
        self.state != St::Disabled && !self.secondary()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Subscribe,
    Bind,
    Transfer(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct MOrder {
    line: usize,
    purpose: Purpose,
    state: &'static str,
    at: i64,
    device: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct MTransfer {
    old: usize,
    order: usize,
    state: &'static str,
    /// Its reservation was moved into the past by an `Expire` step.
    aged: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    Downloaded,
    Installed,
    InstallFailed,
    AttemptsUsedUp,
    Enabled,
    Disabled,
    Deleted,
}

impl Ev {
    /// Point, success, and the status code of a failure (SGP.22 §5.3.5; 101–103 simlab's).
    fn wire(self) -> (u32, bool, Option<(&'static str, &'static str)>) {
        match self {
            Ev::Downloaded => (3, true, None),
            Ev::Installed => (4, true, None),
            Ev::InstallFailed => (4, false, Some(("1.2", "4.2"))),
            Ev::AttemptsUsedUp => (4, false, Some(("8.8.5", "6.4"))),
            Ev::Enabled => (101, true, None),
            Ev::Disabled => (102, true, None),
            Ev::Deleted => (103, true, None),
        }
    }

    fn state(self) -> &'static str {
        match self {
            Ev::Downloaded => "downloaded",
            Ev::Installed => "installed",
            Ev::InstallFailed => "released",
            Ev::AttemptsUsedUp => "error",
            Ev::Enabled => "enabled",
            Ev::Disabled => "disabled",
            Ev::Deleted => "deleted",
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Subscribe {
        device: usize,
        shared: bool,
    },
    /// An event for order `order % orders`; `late`: stamped before the last one.
    Event {
        order: usize,
        ev: Ev,
        late: bool,
    },
    /// An event sent before, again.
    Replay {
        sent: usize,
    },
    Activate {
        line: usize,
    },
    Deactivate {
        line: usize,
    },
    Transfer {
        device: usize,
    },
    Expire,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Model {
    lines: Vec<MLine>,
    orders: Vec<MOrder>,
    transfers: Vec<MTransfer>,
    /// Own numbers handed out.
    numbers: usize,
    clock: i64,
    /// Events sent: (order, event, timestamp).
    sent: Vec<(usize, Ev, i64)>,
    /// The last step's outcome: `Ok`, or the error code the network must answer.
    expected: Result<(), &'static str>,
}

impl Default for Model {
    fn default() -> Self {
        Self {
            lines: vec![MLine {
                msisdn: 0,
                home: 0,
                state: St::Active,
                shared_born: false,
            }],
            orders: Vec::new(),
            transfers: Vec::new(),
            numbers: 0,
            clock: 0,
            sent: Vec::new(),
            expected: Ok(()),
        }
    }
}

fn rank(state: &str) -> u8 {
    match state {
        "downloaded" => 1,
        "installed" => 2,
        "enabled" | "disabled" => 3,
        "deleted" | "error" | "unavailable" => 4,
        _ => 0,
    }
}

impl Model {
    fn active_on(&self, n: usize) -> bool {
        self.lines
            .iter()
            .any(|l| l.msisdn == n && l.state == St::Active)
    }

    /// A group never outlives its primary (docs/network.md §4).
    fn end_group_without_primary(&mut self, n: usize) {
        let members: Vec<usize> = (0..self.lines.len())
            .filter(|&i| self.lines[i].msisdn == n && self.lines[i].state != St::Disabled)
            .collect();
        if members.iter().any(|&i| self.lines[i].primary()) {
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

    fn event(&mut self, k: usize, ev: Ev, at: i64) {
        self.sent.push((k, ev, at));
        let o = self.orders[k].clone();
        let new = ev.state();
        let applies = if new == o.state || matches!(o.state, "deleted" | "error" | "unavailable") {
            false
        } else if new == "released" {
            o.state == "downloaded"
        } else {
            rank(new) > rank(o.state) || (rank(new) == rank(o.state) && at >= o.at)
        };
        if !applies {
            return;
        }
        self.orders[k].state = new;
        self.orders[k].at = at;
        let line = o.line;
        let state = self.lines[line].state;
        match (o.purpose, new) {
            (Purpose::Subscribe | Purpose::Bind, "installed" | "enabled")
                if state == St::Pending =>
            {
                self.lines[line].state = St::Active;
            }
            (Purpose::Transfer(t), "enabled") if state == St::Pending => {
                self.lines[line].state = St::Active;
                let old = self.transfers[t].old;
                self.lines[old].state = St::Disabled;
                self.transfers[t].state = "done";
            }
            (purpose, "deleted" | "error")
                if (new == "deleted" && state != St::Disabled) || state == St::Pending =>
            {
                self.lines[line].state = St::Disabled;
                if let Purpose::Transfer(t) = purpose {
                    if self.transfers[t].state == "pending" {
                        self.transfers[t].state = "failed";
                    }
                }
                let n = self.lines[line].msisdn;
                self.end_group_without_primary(n);
            }
            _ => {}
        }
    }

    /// Expires aged pending transfers: one whose download has not begun has its order
    /// cancelled (unavailable); one downloaded but never enabled keeps the SM-DP+'s state.
    fn expire(&mut self) {
        for t in 0..self.transfers.len() {
            let tr = self.transfers[t].clone();
            if tr.state != "pending" || !tr.aged {
                continue;
            }
            self.transfers[t].state = "expired";
            if self.orders[tr.order].state == "released" {
                self.orders[tr.order].state = "unavailable";
            }
            let line = self.orders[tr.order].line;
            if self.lines[line].state == St::Pending {
                self.lines[line].state = St::Disabled;
                let n = self.lines[line].msisdn;
                self.end_group_without_primary(n);
            }
        }
    }

    fn add_order(&mut self, line: MLine, purpose: Purpose, device: usize) -> usize {
        self.lines.push(line);
        self.orders.push(MOrder {
            line: self.lines.len() - 1,
            purpose,
            state: "released",
            at: 0,
            device,
        });
        self.orders.len() - 1
    }
}

struct NetworkModel;

impl ReferenceStateMachine for NetworkModel {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(_: &Model) -> BoxedStrategy<Op> {
        let ev = prop_oneof![
            3 => Just(Ev::Installed),
            2 => Just(Ev::Downloaded),
            1 => Just(Ev::InstallFailed),
            1 => Just(Ev::AttemptsUsedUp),
            4 => Just(Ev::Enabled),
            1 => Just(Ev::Disabled),
            1 => Just(Ev::Deleted),
        ];
        prop_oneof![
            3 => (0..DEVICES, any::<bool>())
                .prop_map(|(device, shared)| Op::Subscribe { device, shared }),
            6 => (0..8usize, ev, prop::bool::weighted(0.2))
                .prop_map(|(order, ev, late)| Op::Event { order, ev, late }),
            1 => (0..16usize).prop_map(|sent| Op::Replay { sent }),
            2 => (0..8usize).prop_map(|line| Op::Activate { line }),
            2 => (0..8usize).prop_map(|line| Op::Deactivate { line }),
            2 => (0..DEVICES).prop_map(|device| Op::Transfer { device }),
            1 => Just(Op::Expire),
        ]
        .boxed()
    }

    fn preconditions(m: &Model, op: &Op) -> bool {
        match op {
            Op::Event { .. } => !m.orders.is_empty(),
            Op::Replay { .. } => !m.sent.is_empty(),
            _ => true,
        }
    }

    fn apply(mut m: Model, op: &Op) -> Model {
        m.expected = Ok(());
        match *op {
            Op::Subscribe { device, shared } => {
                if shared && !m.lines.iter().any(|l| l.msisdn == 0 && l.primary()) {
                    m.expected = Err("no-primary");
                    return m;
                }
                let n = if shared {
                    0
                } else {
                    m.numbers += 1;
                    m.numbers
                };
                let line = MLine {
                    msisdn: n,
                    home: n,
                    state: St::Pending,
                    shared_born: shared,
                };
                let purpose = if shared {
                    Purpose::Bind
                } else {
                    Purpose::Subscribe
                };
                m.add_order(line, purpose, device);
            }
            Op::Event { order, ev, late } => {
                let at = if late {
                    m.clock - 3
                } else {
                    m.clock += 1;
                    m.clock
                };
                m.event(order % m.orders.len(), ev, at);
            }
            Op::Replay { sent } => {
                let (k, ev, at) = m.sent[sent % m.sent.len()];
                m.event(k, ev, at);
            }
            Op::Activate { line } => {
                let i = line % m.lines.len();
                let target = m.lines[i].clone();
                let others = m
                    .lines
                    .iter()
                    .filter(|l| l.msisdn == target.msisdn && l.state != St::Disabled)
                    .count();
                m.expected = if !m.active_on(0) {
                    Err("unknown-subscriber")
                } else if target.msisdn == 0 {
                    Err("already-in-group")
                } else if target.state == St::Disabled {
                    Err("imsi-disabled")
                } else if target.primary() && others > 1 {
                    Err("already-in-group")
                } else {
                    m.lines[i].msisdn = 0;
                    Ok(())
                };
            }
            Op::Deactivate { line } => {
                let i = line % m.lines.len();
                let target = m.lines[i].clone();
                m.expected = if !m.active_on(0) {
                    Err("unknown-subscriber")
                } else if target.msisdn != 0 || target.state == St::Disabled {
                    Err("not-in-group")
                } else if !target.secondary() {
                    Err("invalid-parameter")
                } else {
                    if target.home != 0 {
                        m.lines[i].msisdn = target.home;
                    } else {
                        m.lines[i].state = St::Disabled;
                    }
                    Ok(())
                };
            }
            Op::Transfer { device } => {
                let old = (0..m.lines.len()).find(|&i| {
                    m.lines[i].msisdn == 0 && m.lines[i].state == St::Active && m.lines[i].primary()
                });
                let Some(old) = old else {
                    m.expected = Err("imsi-disabled");
                    return m;
                };
                if m.transfers.iter().any(|t| t.state == "pending") {
                    m.expire();
                }
                if m.transfers.iter().any(|t| t.state == "pending") {
                    m.expected = Err("transfer-in-progress");
                    return m;
                }
                let t = m.transfers.len();
                let line = MLine {
                    msisdn: 0,
                    home: 0,
                    state: St::Pending,
                    shared_born: false,
                };
                let order = m.add_order(line, Purpose::Transfer(t), device);
                m.transfers.push(MTransfer {
                    old,
                    order,
                    state: "pending",
                    aged: false,
                });
            }
            Op::Expire => {
                for t in m.transfers.iter_mut().filter(|t| t.state == "pending") {
                    t.aged = true;
                }
                m.expire();
            }
        }
        m
    }
}

struct Sut {
    net: RunningNetwork,
    client: NetworkClient,
    token: String,
    /// The IMSI of each model line, the ICCID of each model order.
    imsis: Vec<String>,
    iccids: Vec<String>,
    before: Model,
}

/// A HandleDownloadProgressInfo body as the SM-DP+ sends it (SGP.22 §6.5.2.5).
fn progress_body(iccid: &str, device: usize, ev: Ev, at: i64) -> Value {
    let (point, success, failure) = ev.wire();
    let mut status = json!({"status": if success { "Executed-Success" } else { "Failed" }});
    if let Some((subject, reason)) = failure {
        status["statusCodeData"] = json!({"subjectCode": subject, "reasonCode": reason});
    }
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs((1_900_000_000 + at) as u64);
    json!({
        "header": {"functionRequesterIdentifier": "model", "functionCallIdentifier": "1"},
        "eid": eid(device),
        "iccid": iccid,
        "profileType": "TS48v4_SAIP2.3_BERTLV",
        "timestamp": simlab_harness::smdp::es2::timestamp(when),
        "notificationPointId": point,
        "notificationPointStatus": status,
    })
}

impl Sut {
    fn code(&self, e: simlab_harness::network::client::ClientError) -> String {
        e.code().unwrap_or("not-a-network-error").to_owned()
    }

    /// A new order's line: its ICCID from the document, its IMSI from the BOSS's orders.
    fn record_order(&mut self, doc: &simlab_harness::network::client::EntitlementDocument) {
        let NextStep::Download(info) = doc.next_step() else {
            panic!("no download: {:?}", doc.raw)
        };
        let order = self
            .client
            .orders()
            .unwrap()
            .into_iter()
            .find(|o| o.order.iccid == info.iccid)
            .unwrap();
        self.imsis.push(order.order.imsi);
        self.iccids.push(info.iccid);
    }

    fn post_event(&self, k: usize, ev: Ev, at: i64) -> Result<(), String> {
        let body = progress_body(&self.iccids[k], self.before.orders[k].device, ev, at);
        let r = smdp_agent()
            .post(&self.net.es2_callback_url())
            .set("X-Admin-Protocol", "gsma/rsp/v2.5.0")
            .set("Content-Type", "application/json")
            .send_string(&body.to_string())
            .map_err(|e| e.to_string())?;
        if r.status() == 204 {
            Ok(())
        } else {
            Err(format!(
                "{} {}",
                r.status(),
                r.into_string().unwrap_or_default()
            ))
        }
    }

    fn run(&mut self, op: &Op) -> Result<(), String> {
        let token = Auth::Token(self.token.clone());
        let before = self.before.clone();
        match *op {
            Op::Subscribe { device, shared } => {
                let doc = self
                    .client
                    .entitlement_document(
                        &EntitlementRequest::companion_subscribe(&eid(device), shared),
                        &token,
                    )
                    .map_err(|e| self.code(e))?;
                self.record_order(&doc);
                Ok(())
            }
            Op::Event { order, ev, late } => {
                let at = if late {
                    before.clock - 3
                } else {
                    before.clock + 1
                };
                self.post_event(order % before.orders.len(), ev, at)
            }
            Op::Replay { sent } => {
                let (k, ev, at) = before.sent[sent % before.sent.len()];
                self.post_event(k, ev, at)
            }
            Op::Activate { line } => {
                let imsi = self.imsis[line % before.lines.len()].clone();
                self.client
                    .entitlement_document(
                        &EntitlementRequest::activate_multi_imsi(None, &LineId::Imsi(imsi), None),
                        &token,
                    )
                    .map(|_| ())
                    .map_err(|e| self.code(e))
            }
            Op::Deactivate { line } => {
                let imsi = self.imsis[line % before.lines.len()].clone();
                self.client
                    .entitlement_document(
                        &EntitlementRequest::deactivate_multi_imsi(None, &LineId::Imsi(imsi)),
                        &token,
                    )
                    .map(|_| ())
                    .map_err(|e| self.code(e))
            }
            Op::Transfer { device } => {
                let doc = self
                    .client
                    .entitlement_document(
                        &EntitlementRequest::transfer(MSISDN, &eid(device), None),
                        &Auth::Otp {
                            msisdn: MSISDN.into(),
                        },
                    )
                    .map_err(|e| self.code(e))?;
                // The code goes to the number's active lines; the old card reads it.
                let old = (0..before.lines.len())
                    .find(|&i| {
                        before.lines[i].msisdn == 0
                            && before.lines[i].primary()
                            && before.lines[i].state == St::Active
                    })
                    .unwrap();
                let code = self.client.latest_code(&self.imsis[old]).unwrap().unwrap();
                let doc = self
                    .client
                    .continue_operation(doc.operation_id().unwrap(), Some(&code), None)
                    .map_err(|e| self.code(e))?;
                self.record_order(&doc);
                Ok(())
            }
            Op::Expire => {
                self.net
                    .network()
                    .with_connection(|c| {
                        c.execute(
                            "UPDATE net_transfers SET expires_at = 0 WHERE state = 'pending'",
                            [],
                        )?;
                        Ok(())
                    })
                    .unwrap();
                self.net.network().expire_transfers().unwrap();
                Ok(())
            }
        }
    }

    /// The admin API against the model, and the invariants on their own.
    fn check(&self, m: &Model) {
        let lines: Vec<LineView> = self
            .imsis
            .iter()
            .map(|imsi| self.client.line(imsi).unwrap())
            .collect();
        for (i, (view, model)) in lines.iter().zip(&m.lines).enumerate() {
            let state = match model.state {
                St::Pending => LineState::Pending,
                St::Active => LineState::Active,
                St::Disabled => LineState::Disabled,
            };
            assert_eq!(
                (view.state, view.msisdn.as_str()),
                (state, number(model.msisdn).as_str()),
                "line {i} ({}): {view:?}",
                view.imsi
            );
        }
        let orders = self.client.orders().unwrap();
        for (k, iccid) in self.iccids.iter().enumerate() {
            let o = orders.iter().find(|o| &o.order.iccid == iccid).unwrap();
            assert_eq!(o.order.state, m.orders[k].state, "order {k} ({iccid})");
        }
        let transfers = self.client.transfers().unwrap();
        assert_eq!(
            transfers
                .iter()
                .map(|t| t.state.as_str())
                .collect::<Vec<_>>(),
            m.transfers.iter().map(|t| t.state).collect::<Vec<_>>()
        );

        // Invariants, from the network's answers alone.
        let born_shared: BTreeSet<&str> = orders
            .iter()
            .filter(|o| o.order.purpose == "bind")
            .map(|o| o.order.iccid.as_str())
            .collect();
        let state_of = |imsi: &str| lines.iter().find(|l| l.imsi == imsi).unwrap().state;
        let numbers: BTreeSet<&str> = lines.iter().map(|l| l.msisdn.as_str()).collect();
        for n in &numbers {
            let call = self.client.call(n, None).unwrap();
            for step in &call.rings {
                for imsi in &step.imsis {
                    assert_eq!(state_of(imsi), LineState::Active, "{n} rings {imsi}");
                }
            }
            let primaries = lines
                .iter()
                .filter(|l| {
                    l.msisdn == *n
                        && l.home_msisdn == *n
                        && l.state == LineState::Active
                        && !l.iccid.as_deref().is_some_and(|i| born_shared.contains(i))
                })
                .count();
            assert!(primaries <= 1, "{n} has {primaries} active primaries");
        }
        for g in self.client.groups().unwrap() {
            assert!(
                g.members.iter().all(|l| l.state != LineState::Disabled),
                "{g:?}"
            );
            assert!(
                g.members.iter().any(|l| l.home_msisdn == g.msisdn
                    && !l.iccid.as_deref().is_some_and(|i| born_shared.contains(i))),
                "group {} without its primary: {g:?}",
                g.msisdn
            );
        }
        for t in &transfers {
            let new = t
                .order_iccid
                .as_deref()
                .and_then(|i| orders.iter().find(|o| o.order.iccid == i))
                .map(|o| state_of(&o.order.imsi));
            assert!(
                !(state_of(&t.old_imsi) == LineState::Active && new == Some(LineState::Active)),
                "transfer {} left two active IMSIs",
                t.id
            );
        }
        let smdp = self.net.smdp().unwrap().smdp();
        for o in &orders {
            let known = smdp
                .order_by_iccid(&o.order.iccid)
                .unwrap()
                .unwrap_or_else(|| panic!("order {} unknown to the SM-DP+", o.order.iccid));
            // ES2+.CancelOrder unlinks the EID of a cancelled order.
            if known.state != simlab_harness::smdp::OrderState::Unavailable {
                assert_eq!(
                    known.eid.as_deref(),
                    Some(o.order.eid.as_str()),
                    "{known:?}"
                );
            } else {
                assert_eq!(
                    o.order.state, "unavailable",
                    "cancelled behind the BOSS's back"
                );
            }
        }
    }
}

struct NetworkTest;

impl StateMachineTest for NetworkTest {
    type SystemUnderTest = Sut;
    type Reference = NetworkModel;

    fn init_test(initial: &Model) -> Sut {
        let net = start();
        let client = net.client();
        client.provision(&uicc_provision()).unwrap();
        // A token for the number by its one-time code: not bound to an IMSI, so it outlives
        // the primary's card.
        let doc = client
            .entitlement_document(
                &EntitlementRequest::acquire_configuration(),
                &Auth::Otp {
                    msisdn: MSISDN.into(),
                },
            )
            .unwrap();
        let code = client.latest_code(IMSI).unwrap().unwrap();
        let doc = client
            .continue_operation(doc.operation_id().unwrap(), Some(&code), None)
            .unwrap();
        let token = doc.token().unwrap().to_owned();
        Sut {
            net,
            client,
            token,
            imsis: vec![IMSI.to_owned()],
            iccids: Vec::new(),
            before: initial.clone(),
        }
    }

    fn apply(mut sut: Sut, after: &Model, op: Op) -> Sut {
        let got = sut.run(&op);
        assert_eq!(
            got.as_ref().map(|_| ()).map_err(String::as_str),
            after.expected,
            "{op:?} answered {got:?}"
        );
        sut.check(after);
        sut.before = after.clone();
        sut
    }
}

fn cases() -> u32 {
    std::env::var("SIMLAB_NETWORK_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16)
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 128,
        .. ProptestConfig::default()
    })]

    #[test]
    fn the_network_follows_the_model_under_random_interleavings(sequential 1..24 => NetworkTest);
}
