//! Crash safety of the operator network process (issue 10 §4): `simlab network serve --db FILE`
//! is killed with SIGKILL at random moments while eUICCs download profiles from its SM-DP+
//! (SGP.22 ES9+ over HTTPS, orders placed over ES2+ with mutual TLS), and restarted on the same
//! database and ports. After every kill, before the restart:
//!
//! - SQLite's `PRAGMA integrity_check` answers `ok` and `PRAGMA foreign_key_check` nothing;
//! - every order is in a consistent state (docs/smdp.md "Orders, downloads and retries"): one
//!   that was bound (Downloaded and later) names an EID, the eUICC certificate its result is
//!   verified with, and at least one and at most the limit of download attempts; no order is
//!   bound to an EID that never asked for it.
//!
//! Three devices, each with its own eUICC (distinct EIDs), order and download one profile after
//! another. A download the kill interrupted is retried by the same device (the same EID) with
//! the same activation code once the network is back; it must succeed, or find the profile
//! already installed, and the pending notifications then reach the SM-DP+. Each profile is
//! then deleted from the eUICC (so the eUICC never fills up) and the delete notification sent.
//! In the end every order a device completed is `Deleted` in the database, each through its
//! own EID, and no eUICC holds a profile.
//!
//! A download is interrupted at most twice: a device retrying for the third time holds the
//! next kill back until it is done, so no order runs out of its download attempts (SGP.22
//! leaves that limit to the SM-DP+; simlab's is 5, docs/smdp.md) because of the test itself.
//!
//! `SIMLAB_NETWORK_KILLS=N` sets the number of kills (default 100; docs/reliability.md has
//! the figures).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::Rng as _;
use simlab_harness::cards::load_card;
use simlab_harness::lpa::{download, process_notifications, ActivationCode, DeviceInfo};
use simlab_harness::lpa::{Es10Client, LpaError};
use simlab_harness::smdp::{ConfirmOrderRequest, DownloadOrderRequest, Es2pClient, OrderState};
use simlab_harness::smdp::{Order, Store};
use simlab_harness::transport::{InProcess, Transport};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Personalised per order (fresh ICCID, IMSI, K), installable on the emulated eUICC.
const TEMPLATE: &str = "TS48V2-SAIP2-3-BERTLV-UNIQUE";
const DEFAULT_KILLS: u32 = 100;
/// simlab's SM-DP+ binds a package at most this often per order (docs/smdp.md).
const DOWNLOAD_ATTEMPT_LIMIT: u32 = 5;
/// Interruptions of one download after which its device holds the next kill back.
const MAX_INTERRUPTIONS: u32 = 2;
const CARDS: [&str; 3] = ["euicc.toml", "euicc-2.toml", "euicc-3.toml"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The network process and where it listens; the same ports on every restart, so the
/// activation codes (which name the ES9+ address) stay valid.
struct Network {
    db: PathBuf,
    es9: SocketAddr,
    es2: SocketAddr,
    operator: SocketAddr,
    operator_es2: SocketAddr,
    child: Option<Child>,
    starts: u32,
}

impl Network {
    fn new(db: PathBuf) -> Self {
        let addr = |p| SocketAddr::from(([127, 0, 0, 1], p));
        Self {
            db,
            es9: addr(free_port()),
            es2: addr(free_port()),
            operator: addr(free_port()),
            operator_es2: addr(free_port()),
            child: None,
            starts: 0,
        }
    }

    /// Starts `simlab network serve` and waits until it prints that it listens.
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.db.with_extension("log"))
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_simlab"))
            .args(["network", "serve", "--listen"])
            .arg(self.es9.to_string())
            .arg("--es2-listen")
            .arg(self.es2.to_string())
            .arg("--operator-listen")
            .arg(self.operator.to_string())
            .arg("--operator-es2-listen")
            .arg(self.operator_es2.to_string())
            .arg("--db")
            .arg(&self.db)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("Ctrl-C stops") => break,
                Some(Ok(_)) => {}
                _ => panic!(
                    "network serve (start {}) ended before listening; its log:\n{}",
                    self.starts,
                    std::fs::read_to_string(self.db.with_extension("log")).unwrap_or_default()
                ),
            }
        }
        // Keep reading stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
        self.starts += 1;
    }

    /// SIGKILL (std's `Child::kill` on Unix), and reap it.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.kill();
    }
}

fn up(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

fn wait_up(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !up(addr) {
        assert!(Instant::now() < deadline, "the network never came back");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What the test knows about the run, shared by the devices and the killer.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// Devices retrying a download interrupted `MAX_INTERRUPTIONS` times: no kill meanwhile.
    holding: AtomicUsize,
    /// Orders each device completed: ICCID → EID.
    completed: Mutex<BTreeMap<String, String>>,
    /// Every order a device placed (ICCID), completed or not.
    placed: Mutex<BTreeSet<String>>,
    interrupted: AtomicUsize,
    retried_ok: AtomicUsize,
    already_installed: AtomicUsize,
    notification_retries: AtomicUsize,
}

/// Retries `f` until it succeeds, waiting for the network between tries.
fn until_ok<T>(what: &str, addr: SocketAddr, mut f: impl FnMut() -> anyhow::Result<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        wait_up(addr);
        match f() {
            Ok(v) => return v,
            Err(e) => assert!(Instant::now() < deadline, "{what} never succeeded: {e:#}"),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

struct Device {
    name: String,
    eid: String,
    card: Option<InProcess>,
}

impl Device {
    fn es10(&mut self) -> Es10Client<InProcess> {
        let mut card = self.card.take().unwrap();
        // The LPA starts over: the card's volatile session state goes with a reset.
        card.reset().unwrap();
        Es10Client::open(card).unwrap()
    }

    fn put_back(&mut self, es10: Es10Client<InProcess>) {
        self.card = Some(es10.close());
    }

    fn profiles(&mut self) -> Vec<String> {
        let mut es10 = self.es10();
        let p = es10
            .profiles()
            .unwrap()
            .into_iter()
            .map(|p| p.iccid)
            .collect();
        self.put_back(es10);
        p
    }

    /// Sends the pending notifications until none is left.
    fn notify(&mut self, shared: &Shared, es9: SocketAddr, roots: &[Vec<u8>]) {
        let mut tries = 0;
        until_ok("delivering notifications", es9, || {
            tries += 1;
            let mut es10 = self.es10();
            let r = process_notifications(&mut es10, roots, &mut |_| {})
                .and_then(|_| es10.list_notifications());
            self.put_back(es10);
            match r {
                Ok(left) if left.is_empty() => Ok(()),
                Ok(left) => anyhow::bail!("{} notifications left", left.len()),
                Err(e) => Err(e.into()),
            }
        });
        shared
            .notification_retries
            .fetch_add(tries - 1, Ordering::Relaxed);
    }
}

fn order(es2: SocketAddr) -> anyhow::Result<(String, ActivationCode)> {
    let client = Es2pClient::from_pki(&es2.to_string(), repo().join("vectors/pki"))?;
    let ordered = client.download_order(&DownloadOrderRequest {
        profile_type: Some(TEMPLATE.into()),
        ..Default::default()
    })?;
    let confirmed = client.confirm_order(&ConfirmOrderRequest {
        iccid: ordered.iccid.clone(),
        release_flag: true,
        ..Default::default()
    })?;
    let address = confirmed
        .smdp_address
        .ok_or_else(|| anyhow::anyhow!("no smdpAddress"))?;
    let ac = format!("LPA:1${address}${}", confirmed.matching_id)
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((ordered.iccid, ac))
}

/// One device: order, download (retrying what a kill interrupted), notify, delete, notify.
fn device_loop(mut d: Device, net: (SocketAddr, SocketAddr), shared: &Shared, roots: &[Vec<u8>]) {
    let (es9, es2) = net;
    while !shared.stop.load(Ordering::Relaxed) {
        let (iccid, ac) = until_ok("ordering", es2, || order(es2));
        shared.placed.lock().unwrap().insert(iccid.clone());
        let mut interruptions = 0;
        let mut holding = false;
        loop {
            wait_up(es9);
            let mut es10 = d.es10();
            let result = download(
                &mut es10,
                &ac,
                None,
                roots,
                &DeviceInfo::default(),
                &mut |_| {},
            );
            d.put_back(es10);
            match result {
                Ok(done) => {
                    assert_eq!(done.iccid.as_deref(), Some(iccid.as_str()), "{}", d.name);
                    if interruptions > 0 {
                        shared.retried_ok.fetch_add(1, Ordering::Relaxed);
                    }
                    break;
                }
                Err(e) if d.profiles().contains(&iccid) => {
                    // Installed before the kill; its result had not reached the SM-DP+.
                    let _ = e;
                    shared.already_installed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(e) => {
                    interruptions += 1;
                    shared.interrupted.fetch_add(1, Ordering::Relaxed);
                    assert!(
                        interruptions <= MAX_INTERRUPTIONS + 1,
                        "{} ({}): order {iccid} failed {interruptions} times, lastly: {}",
                        d.name,
                        d.eid,
                        describe(&e)
                    );
                    if interruptions >= MAX_INTERRUPTIONS && !holding {
                        holding = true;
                        shared.holding.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }
        d.notify(shared, es9, roots);
        if holding {
            shared.holding.fetch_sub(1, Ordering::SeqCst);
        }
        shared
            .completed
            .lock()
            .unwrap()
            .insert(iccid.clone(), d.eid.clone());
        // Make room: delete it on the eUICC and tell the SM-DP+ (order → Deleted).
        let mut es10 = d.es10();
        es10.delete(&iccid).unwrap();
        d.put_back(es10);
        d.notify(shared, es9, roots);
    }
    assert_eq!(d.profiles(), Vec::<String>::new(), "{}", d.name);
}

fn describe(e: &LpaError) -> String {
    e.to_string()
}

/// The database as the killed process left it: readable, intact, every order consistent.
fn check_database(db: &Path, eids: &BTreeSet<String>, when: &str) -> Vec<Order> {
    let store = Store::open(Some(db)).unwrap_or_else(|e| panic!("{when}: opening: {e}"));
    let conn = store.connection();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok", "{when}: integrity_check");
    let broken: Vec<String> = conn
        .prepare("PRAGMA foreign_key_check")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(broken.is_empty(), "{when}: foreign_key_check: {broken:?}");
    let orders = store.orders().unwrap();
    for o in &orders {
        let bound = matches!(
            o.state,
            OrderState::Downloaded
                | OrderState::Installed
                | OrderState::Enabled
                | OrderState::Disabled
                | OrderState::Deleted
        );
        let what = format!("{when}: order {} ({:?})", o.iccid, o.state);
        if bound {
            assert!(o.eid.is_some(), "{what}: bound but no EID");
            assert!(
                o.euicc_certificate.is_some(),
                "{what}: bound but no eUICC certificate"
            );
            assert!(
                (1..=DOWNLOAD_ATTEMPT_LIMIT).contains(&o.download_attempts),
                "{what}: {} download attempts",
                o.download_attempts
            );
        }
        assert!(
            o.download_attempts <= DOWNLOAD_ATTEMPT_LIMIT,
            "{what}: {} download attempts",
            o.download_attempts
        );
        if let Some(eid) = &o.eid {
            assert!(eids.contains(eid), "{what}: bound to unknown EID {eid}");
        }
        // ES2+ ConfirmOrder gives the matching ID (SGP.22 §5.3.2): every order confirmed or
        // further along has one; an order only allocated (DownloadOrder) may not yet.
        let confirmed = !matches!(
            o.state,
            OrderState::Available | OrderState::Allocated | OrderState::Linked
        );
        assert!(
            o.matching_id.is_some() || !confirmed,
            "{what}: confirmed without a matching ID"
        );
    }
    orders
}

#[test]
fn the_network_killed_mid_download_restarts_consistent_and_every_order_completes() {
    let kills: u32 = std::env::var("SIMLAB_NETWORK_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_KILLS);
    let dir = tempfile::tempdir().unwrap();
    let mut net = Network::new(dir.path().join("network.sqlite"));
    net.start();
    let roots = vec![simlab_harness::defaults::ci_certificate().unwrap()];
    let shared = Arc::new(Shared::default());

    let mut devices = Vec::new();
    let mut eids = BTreeSet::new();
    for (i, file) in CARDS.iter().enumerate() {
        let card = load_card(&repo().join("vectors/cards").join(file), None).unwrap();
        let mut es10 = Es10Client::open(InProcess::new(card)).unwrap();
        let eid = es10.eid().unwrap();
        assert!(es10.profiles().unwrap().is_empty(), "{file} starts empty");
        eids.insert(eid.clone());
        devices.push(Device {
            name: format!("device {i} ({file})"),
            eid,
            card: Some(es10.close()),
        });
    }
    assert_eq!(eids.len(), CARDS.len(), "distinct EIDs");

    // A clean download (no kill) gives the time one takes here: kills land within it.
    let started = Instant::now();
    {
        let d = &mut devices[0];
        let (iccid, ac) = order(net.es2).unwrap();
        let mut es10 = d.es10();
        download(
            &mut es10,
            &ac,
            None,
            &roots,
            &DeviceInfo::default(),
            &mut |_| {},
        )
        .unwrap();
        es10.delete(&iccid).unwrap();
        d.put_back(es10);
        d.notify(&shared, net.es9, &roots);
        // The timing run's order counts as placed too (the summary compares the two counts).
        shared.placed.lock().unwrap().insert(iccid.clone());
        shared
            .completed
            .lock()
            .unwrap()
            .insert(iccid, d.eid.clone());
    }
    let whole = started.elapsed();

    let endpoints = (net.es9, net.es2);
    let workers: Vec<_> = devices
        .into_iter()
        .map(|d| {
            let shared = Arc::clone(&shared);
            let roots = roots.clone();
            std::thread::spawn(move || device_loop(d, endpoints, &shared, &roots))
        })
        .collect();

    let mut rng = rand::thread_rng();
    let mut held_back = 0u32;
    let run_started = Instant::now();
    for k in 0..kills {
        // Somewhere in one download's time (devices overlap, so every phase gets hit).
        std::thread::sleep(whole.mul_f64(rng.gen_range(0.05..1.2)));
        while shared.holding.load(Ordering::SeqCst) > 0 {
            held_back += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
        net.kill();
        check_database(&net.db, &eids, &format!("after kill {k}"));
        net.start();
    }
    shared.stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("a device failed (its message is above)");
    }
    let elapsed = run_started.elapsed();
    net.kill();

    let orders = check_database(&net.db, &eids, "at the end");
    let by_iccid: BTreeMap<&str, &Order> = orders.iter().map(|o| (o.iccid.as_str(), o)).collect();
    let completed = shared.completed.lock().unwrap().clone();
    for (iccid, eid) in &completed {
        let o = by_iccid
            .get(iccid.as_str())
            .unwrap_or_else(|| panic!("order {iccid} is gone"));
        assert_eq!(o.state, OrderState::Deleted, "order {iccid}");
        assert_eq!(o.eid.as_deref(), Some(eid.as_str()), "order {iccid}");
    }
    let placed = shared.placed.lock().unwrap().len();
    eprintln!(
        "{kills} SIGKILLs of network serve in {elapsed:?} (one download alone: {whole:?}): \
         {} orders completed of {placed} placed by the devices, {} downloads interrupted, {} \
         retried to success by the same EID, {} found installed already, {} notification \
         deliveries repeated; {} orders in the database; kills held back {held_back} × 5 ms",
        completed.len(),
        shared.interrupted.load(Ordering::Relaxed),
        shared.retried_ok.load(Ordering::Relaxed),
        shared.already_installed.load(Ordering::Relaxed),
        shared.notification_retries.load(Ordering::Relaxed),
        orders.len(),
    );
    assert!(
        shared.interrupted.load(Ordering::Relaxed) > 0,
        "no kill interrupted a download"
    );
}

// ---------------------------------------------------------------------------------------
// Killed during an operator flow

/// A UICC of its own for flow `n` (fresh ICCID, IMSI, MSISDN, Milenage keys): the network
/// provisions it as a new subscriber.
fn uicc_card(dir: &Path, n: u32) -> PathBuf {
    simlab_harness::device::identity::write_fresh_uicc(
        dir,
        &format!("crash UICC {n}"),
        "89490010400",
        u64::from(n),
        &format!("00101{:010}", 7_000_000 + n),
        &format!("+1777{n:07}"),
    )
    .unwrap()
}

/// Groups as the admin API shows them: each has its primary line, active, and every member
/// serves the group's number.
fn check_groups(operator: &str, when: &str) -> usize {
    let client = simlab_harness::network::client::NetworkClient::new(operator);
    let groups = client.groups().unwrap();
    for g in &groups {
        assert!(
            g.members.iter().any(|m| m.home_msisdn == g.msisdn
                && m.state == simlab_harness::network::db::LineState::Active),
            "{when}: group {} has no active primary: {:?}",
            g.msisdn,
            g.members
        );
        for m in &g.members {
            assert_eq!(
                m.msisdn, g.msisdn,
                "{when}: {} in group {}",
                m.imsi, g.msisdn
            );
        }
    }
    groups.len()
}

#[test]
fn the_network_killed_mid_flow_restarts_consistent_and_the_interrupted_order_completes() {
    use simlab_harness::device::slot::CardSpec;
    use simlab_harness::flows::engine::{self, Env, NetworkSpec};
    use simlab_harness::flows::scenario::Scenario;

    let kills: u32 = std::env::var("SIMLAB_NETWORK_FLOW_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let vectors = repo().join("vectors");
    let pki =
        simlab_harness::pki::Pki::load(&vectors.join("pki"), simlab_harness::pki::Curve::Nist)
            .unwrap();
    let mut net = Network::new(dir.path().join("network.sqlite"));
    net.start();
    let operator = format!("http://{}", net.operator);
    let roots = vec![simlab_harness::defaults::ci_certificate().unwrap()];
    let scenario = Scenario::by_name("companion-download/fa")
        .unwrap()
        .remove(0);
    let mut eids = BTreeSet::new();

    // Flow `n`'s cards: its own UICC and eUICC, the eUICC's state kept in a directory.
    let setup = |n: u32| {
        let eid =
            simlab_harness::device::identity::eid_for("89049032", 200_000 + u64::from(n)).unwrap();
        let id = simlab_harness::device::identity::mint(&pki, &eid).unwrap();
        let euicc = simlab_harness::device::identity::write_card(
            &id,
            &simlab_harness::defaults::Files::Disk(vectors.join("pki")),
            &dir.path().join(format!("euicc-{n}")),
            "crash eUICC",
        )
        .unwrap();
        let state = dir.path().join(format!("euicc-{n}-state"));
        let mut env = Env::with_vectors(&vectors);
        env.network = NetworkSpec::Url(operator.clone());
        env.record = false;
        env.cards.insert(
            "primary".into(),
            CardSpec::File {
                definition: uicc_card(dir.path(), n),
                state: None,
            },
        );
        env.cards.insert(
            "secondary".into(),
            CardSpec::File {
                definition: euicc.clone(),
                state: Some(state.clone()),
            },
        );
        (env, eid, euicc, state)
    };

    // A whole flow without a kill: it passes here, and gives the time one takes.
    let (env, eid, ..) = setup(0);
    eids.insert(eid);
    let started = Instant::now();
    let r = engine::run(&scenario, &env, &|_| {});
    assert!(r.passed, "{:?}", r.failure);
    let whole = started.elapsed();

    let mut rng = rand::thread_rng();
    let (mut interrupted, mut retried, mut already, mut untouched) = (0, 0, 0, 0);
    let mut at_step: BTreeMap<String, u32> = BTreeMap::new();
    let mut left_in: BTreeMap<String, u32> = BTreeMap::new();
    for k in 1..=kills {
        let (env, eid, euicc, state) = setup(k);
        eids.insert(eid.clone());
        let before: BTreeSet<String> = Store::open(Some(&net.db))
            .unwrap()
            .orders()
            .unwrap()
            .into_iter()
            .map(|o| o.iccid)
            .collect();
        let flow = {
            let scenario = scenario.clone();
            std::thread::spawn(move || engine::run(&scenario, &env, &|_| {}))
        };
        std::thread::sleep(whole.mul_f64(rng.gen_range(0.0..1.0)));
        net.kill();
        let result = flow.join().unwrap();
        let when = format!("flow kill {k}");
        let orders = check_database(&net.db, &eids, &when);
        net.start();
        check_groups(&operator, &when);
        if result.passed {
            untouched += 1;
            continue;
        }
        interrupted += 1;
        let step = result
            .failure
            .as_ref()
            .and_then(|f| f.step.clone())
            .unwrap_or_else(|| "-".into());
        *at_step.entry(step).or_default() += 1;
        // The flow's orders that did not reach the eUICC: the same EID retries each.
        for o in orders.iter().filter(|o| !before.contains(&o.iccid)) {
            *left_in.entry(format!("{:?}", o.state)).or_default() += 1;
            let retryable = matches!(o.state, OrderState::Released | OrderState::Downloaded)
                && o.eid.as_deref().is_none_or(|e| e == eid)
                && o.matching_id.is_some();
            if !retryable {
                continue;
            }
            let ac: ActivationCode = format!(
                "LPA:1${}${}",
                net.es9,
                o.matching_id.as_deref().unwrap_or_default()
            )
            .parse()
            .unwrap();
            let card = load_card(&euicc, Some(&state)).unwrap();
            let mut d = Device {
                name: format!("flow {k}'s secondary"),
                eid: eid.clone(),
                card: Some(InProcess::new(card)),
            };
            let mut es10 = d.es10();
            let outcome = download(
                &mut es10,
                &ac,
                None,
                &roots,
                &DeviceInfo::default(),
                &mut |_| {},
            );
            d.put_back(es10);
            match outcome {
                Ok(_) => retried += 1,
                Err(e) => {
                    assert!(
                        d.profiles().contains(&o.iccid),
                        "{when}: order {} ({:?}) retried by the same EID failed: {e}",
                        o.iccid,
                        o.state
                    );
                    already += 1;
                }
            }
            d.notify(&Shared::default(), net.es9, &roots);
            let now = Store::open(Some(&net.db))
                .unwrap()
                .order_by_iccid(&o.iccid)
                .unwrap()
                .unwrap();
            assert_eq!(
                now.state,
                OrderState::Installed,
                "{when}: order {}",
                o.iccid
            );
            assert_eq!(now.eid.as_deref(), Some(eid.as_str()), "{when}");
        }
    }
    let groups = check_groups(&operator, "after the flows");
    net.kill();
    check_database(&net.db, &eids, "after the flows");
    eprintln!(
        "{kills} SIGKILLs of network serve during companion-download flows (one flow alone: \
         {whole:?}): {interrupted} flows interrupted (at steps {at_step:?}; their orders left \
         {left_in:?}), {untouched} finished before the kill; interrupted orders retried to success by the same EID: \
         {retried}, found installed already: {already}; {groups} groups in the network"
    );
    assert!(interrupted > 0, "no kill interrupted a flow");
}
