//! A download killed at every point, then retried (SGP.22 v2.5 §3.1.3.2: the order stays
//! retryable until the SM-DP+ has the installation result): simlab's LPA downloads a
//! personalised order from simlab's SM-DP+ into the emulated eUICC (state in a directory,
//! SM-DP+ orders in an SQLite file). The whole device "dies" at event k — an APDU or an ES9+
//! call, either before it reaches the other side or after it was processed but before the
//! answer came back — and every event after k fails. Then the card is loaded again from its
//! state directory, the SM-DP+ reopened from its database (a restart of both), and a new LPA
//! retries the same activation code and delivers the eUICC's pending notifications.
//!
//! Each time, the retry either succeeds or finds the profile already installed, and in the
//! end the card holds the profile exactly once and the SM-DP+ has the order Installed.
//!
//! `SIMLAB_KILL_SWEEP_STRIDE=1` kills at every single event (the full sweep of
//! docs/reliability.md); the default stride keeps the debug-build test short, while every
//! ES9+ call and the APDUs next to it are always included.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use simlab_harness::cards::load_card;
use simlab_harness::es9p::{
    AuthenticateClientRequest, AuthenticateClientResponse, CancelSessionRequest, Es9Plus,
    Es9pError, GetBoundProfilePackageRequest, GetBoundProfilePackageResponse,
    HandleNotificationRequest, HeaderOnly, InitiateAuthenticationRequest,
    InitiateAuthenticationResponse,
};
use simlab_harness::lpa::{download_via, ActivationCode, DeviceInfo, Es10Client};
use simlab_harness::smdp::{OrderState, Smdp, SmdpOptions};
use simlab_harness::transport::{InProcess, Transport, TransportError};
use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};

/// What the SM-DP+ advertises and the activation code names (no network is used).
const ADDRESS: &str = "127.0.0.1:8443";
/// Personalised per order (fresh ICCID, IMSI, K), installable on the emulated eUICC.
const TEMPLATE: &str = "TS48V2-SAIP2-3-BERTLV-UNIQUE";
/// Default: every `STRIDE`-th APDU, plus every ES9+ call and the APDUs around it.
const STRIDE: u64 = 23;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The message never reaches the other side.
    Before,
    /// The other side processed it; its answer is lost.
    After,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Apdu,
    Es9(&'static str),
}

/// The device's fate: counts events, and at the chosen one it dies for good.
#[derive(Debug, Default)]
struct Fate {
    kill: Option<(u64, Phase)>,
    events: RefCell<Vec<Event>>,
    dead: Cell<bool>,
}

impl Fate {
    fn killing_at(k: u64, phase: Phase) -> Self {
        Self {
            kill: Some((k, phase)),
            ..Self::default()
        }
    }

    fn step<T, E>(
        &self,
        event: Event,
        deliver: impl FnOnce() -> Result<T, E>,
        killed: impl FnOnce() -> E,
    ) -> Result<T, E> {
        if self.dead.get() {
            return Err(killed());
        }
        let index = self.events.borrow().len() as u64;
        self.events.borrow_mut().push(event);
        match self.kill {
            Some((k, Phase::Before)) if k == index => {
                self.dead.set(true);
                Err(killed())
            }
            Some((k, Phase::After)) if k == index => {
                let _ = deliver();
                self.dead.set(true);
                Err(killed())
            }
            _ => deliver(),
        }
    }
}

struct DyingCard<'a> {
    card: InProcess,
    fate: &'a Fate,
}

impl Transport for DyingCard<'_> {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let card = &mut self.card;
        self.fate.step(
            Event::Apdu,
            || card.transmit_raw(apdu),
            || TransportError::Pcsc("the device died".into()),
        )
    }
    fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
        self.card.reset()
    }
    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        self.card.atr()
    }
}

struct DyingSmdp<'a> {
    smdp: &'a Smdp,
    fate: &'a Fate,
}

fn killed(function: &'static str) -> impl FnOnce() -> Es9pError {
    move || Es9pError::Transport {
        function,
        url: ADDRESS.into(),
        reason: "the device died".into(),
    }
}

impl Es9Plus for DyingSmdp<'_> {
    fn initiate_authentication(
        &self,
        req: &InitiateAuthenticationRequest,
    ) -> Result<InitiateAuthenticationResponse, Es9pError> {
        let f = "initiateAuthentication";
        self.fate.step(
            Event::Es9(f),
            || Es9Plus::initiate_authentication(self.smdp, req),
            killed(f),
        )
    }
    fn authenticate_client(
        &self,
        req: &AuthenticateClientRequest,
    ) -> Result<AuthenticateClientResponse, Es9pError> {
        let f = "authenticateClient";
        self.fate.step(
            Event::Es9(f),
            || Es9Plus::authenticate_client(self.smdp, req),
            killed(f),
        )
    }
    fn get_bound_profile_package(
        &self,
        req: &GetBoundProfilePackageRequest,
    ) -> Result<GetBoundProfilePackageResponse, Es9pError> {
        let f = "getBoundProfilePackage";
        self.fate.step(
            Event::Es9(f),
            || Es9Plus::get_bound_profile_package(self.smdp, req),
            killed(f),
        )
    }
    fn handle_notification(&self, req: &HandleNotificationRequest) -> Result<(), Es9pError> {
        let f = "handleNotification";
        self.fate.step(
            Event::Es9(f),
            || Es9Plus::handle_notification(self.smdp, req),
            killed(f),
        )
    }
    fn cancel_session(&self, req: &CancelSessionRequest) -> Result<HeaderOnly, Es9pError> {
        let f = "cancelSession";
        self.fate.step(
            Event::Es9(f),
            || Es9Plus::cancel_session(self.smdp, req),
            killed(f),
        )
    }
}

/// One device + SM-DP+ world in a temporary directory.
struct World {
    _dir: tempfile::TempDir,
    state: PathBuf,
    opts: SmdpOptions,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // One template only: the SM-DP+ reads every template when it (re)starts.
        let templates = dir.path().join("templates");
        std::fs::create_dir(&templates).unwrap();
        let name = format!("{TEMPLATE}.der");
        std::fs::copy(
            repo().join("vectors/profiles").join(&name),
            templates.join(&name),
        )
        .unwrap();
        let mut opts = SmdpOptions::new(repo().join("vectors/pki"), templates);
        opts.db = Some(dir.path().join("smdp.sqlite"));
        Self {
            state: dir.path().join("euicc"),
            _dir: dir,
            opts,
        }
    }

    /// Starts (or restarts) the SM-DP+ from its database.
    fn smdp(&self) -> Smdp {
        Smdp::open(&self.opts, ADDRESS).unwrap()
    }

    /// Powers the card up (again) from its state directory.
    fn card(&self) -> InProcess {
        InProcess::new(
            load_card(&repo().join("vectors/cards/euicc.toml"), Some(&self.state)).unwrap(),
        )
    }
}

/// How a retry ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// The retry downloaded and installed the profile.
    Succeeded,
    /// The profile was already installed before the kill; the retry was refused for that.
    AlreadyDone,
}

/// Delivers every pending notification of the eUICC to the SM-DP+ and removes it (SGP.22
/// §3.5, as `simlab lpa notifications process` does over HTTPS).
fn deliver_notifications<T: Transport>(es10: &mut Es10Client<T>, smdp: &Smdp) {
    for n in es10.list_notifications().unwrap() {
        let pending = es10.retrieve_notification(n.seq_number).unwrap();
        Es9Plus::handle_notification(
            smdp,
            &HandleNotificationRequest {
                header: None,
                pending_notification: pending,
            },
        )
        .unwrap();
        es10.remove_notification(n.seq_number).unwrap();
    }
}

/// Kills the first download at `kill` (None: never), restarts, retries; returns the events
/// of the first attempt and how the retry ended.
fn kill_and_retry(kill: Option<(u64, Phase)>) -> (Vec<Event>, Retry) {
    let world = World::new();
    let smdp = world.smdp();
    let (order, ac) = smdp.order_activation_code(TEMPLATE, None, None).unwrap();
    let ac: ActivationCode = ac.parse().unwrap();
    let fate = match kill {
        Some((k, phase)) => Fate::killing_at(k, phase),
        None => Fate::default(),
    };
    let first = Es10Client::open(DyingCard {
        card: world.card(),
        fate: &fate,
    })
    .and_then(|mut es10| {
        let es9 = DyingSmdp {
            smdp: &smdp,
            fate: &fate,
        };
        download_via(
            &mut es10,
            &es9,
            &ac,
            None,
            &DeviceInfo::default(),
            &mut |_| {},
        )
    });
    let events = fate.events.borrow().clone();
    if kill.is_none() {
        first.unwrap();
    } else {
        assert!(
            fate.dead.get(),
            "the kill at {kill:?} never came: {events:?}"
        );
        assert!(first.is_err());
    }
    drop(smdp);

    // Restart both sides; a new LPA retries the same activation code.
    let smdp = world.smdp();
    let mut es10 = Es10Client::open(world.card()).unwrap();
    let retry = download_via(
        &mut es10,
        &smdp,
        &ac,
        None,
        &DeviceInfo::default(),
        &mut |_| {},
    );
    let already = |profiles: &[String]| profiles.iter().any(|i| i == &order.iccid);
    let outcome = match retry {
        Ok(done) => {
            assert_eq!(done.iccid.as_deref(), Some(order.iccid.as_str()));
            Retry::Succeeded
        }
        Err(e) => {
            let profiles: Vec<String> = es10
                .profiles()
                .unwrap()
                .into_iter()
                .map(|p| p.iccid)
                .collect();
            assert!(
                already(&profiles),
                "kill at {kill:?}: the retry failed ({e}) and the profile is not on the card"
            );
            Retry::AlreadyDone
        }
    };
    deliver_notifications(&mut es10, &smdp);
    let iccids: Vec<String> = es10
        .profiles()
        .unwrap()
        .into_iter()
        .map(|p| p.iccid)
        .collect();
    assert_eq!(iccids, vec![order.iccid.clone()], "kill at {kill:?}");
    let stored = smdp.order_by_iccid(&order.iccid).unwrap().unwrap();
    assert_eq!(stored.state, OrderState::Installed, "kill at {kill:?}");
    (events, outcome)
}

/// The kill points: every ES9+ call and the APDUs just before and after it, every
/// `stride`-th APDU, and the last event.
fn kill_points(events: &[Event], stride: u64) -> Vec<u64> {
    let last = events.len() as u64 - 1;
    let mut points: Vec<u64> = (0..=last).step_by(stride.max(1) as usize).collect();
    for (i, e) in events.iter().enumerate() {
        if matches!(e, Event::Es9(_)) {
            let i = i as u64;
            points.extend([i.saturating_sub(1), i, (i + 1).min(last)]);
        }
    }
    points.push(last);
    points.sort_unstable();
    points.dedup();
    points
}

#[test]
fn a_download_killed_at_any_point_has_succeeded_or_succeeds_on_retry() {
    let (events, clean) = kill_and_retry(None);
    assert_eq!(
        clean,
        Retry::AlreadyDone,
        "nothing killed: the retry finds it"
    );
    let es9_calls: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Es9(f) => Some(*f),
            Event::Apdu => None,
        })
        .collect();
    assert_eq!(
        es9_calls,
        [
            "initiateAuthentication",
            "authenticateClient",
            "getBoundProfilePackage",
            "handleNotification"
        ]
    );
    let stride = std::env::var("SIMLAB_KILL_SWEEP_STRIDE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(STRIDE);
    let mut tally = [0usize; 2];
    let mut kills = 0;
    for k in kill_points(&events, stride) {
        for phase in [Phase::Before, Phase::After] {
            let (_, outcome) = kill_and_retry(Some((k, phase)));
            tally[usize::from(outcome == Retry::AlreadyDone)] += 1;
            kills += 1;
        }
    }
    eprintln!(
        "{} events in a download; {kills} kills: retry succeeded {}, already installed {}",
        events.len(),
        tally[0],
        tally[1]
    );
    // Both kinds happen: kills before the package was stored, and after.
    assert!(tally[0] > 0 && tally[1] > 0, "{tally:?}");
}
