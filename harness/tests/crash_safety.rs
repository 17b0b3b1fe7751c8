//! Crash safety of the card's state directory: `simlab card serve --state DIR` is killed with
//! SIGKILL at random moments while simlab's LPA (over the vpcd wire protocol) downloads a
//! TS.48 profile from simlab's SM-DP+, enables, disables and deletes it. After every kill
//! the state directory must load, with at most one enabled profile, unique ICCIDs and no
//! half-installed profile (every profile's content complete: its EF.ICCID holds its ICCID,
//! its USIM has keys); then the card is served again and the cycle goes on from whatever
//! state survived. The state is written atomically (emulator::store: temp file, fsync,
//! rename, fsync of the directory), so a kill leaves the old state or the new, never a mix.
//!
//! `SIMLAB_CRASH_KILLS` sets the number of kills (default 200).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::Rng;
use simlab_emulator::fs::FileBody;
use simlab_harness::lpa::{self, ActivationCode, DeviceInfo, Es10Client};
use simlab_harness::transport::VpcdReader;
use simlab_vpcd::reader::ReaderListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TEMPLATE: &str = "TS48V1-A-UNIQUE";
const ICCID: &str = "8949449999999990023";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn serve(state: &Path, vpcd: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_simlab"))
        .args(["card", "serve", "--card"])
        .arg(root().join("vectors/cards/euicc.toml"))
        .arg("--state")
        .arg(state)
        .args(["--vpcd", vpcd])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// What the state directory says after a kill; panics on a broken invariant.
fn check_state(state: &Path) -> (bool, bool) {
    let card =
        simlab_harness::cards::load_card(&root().join("vectors/cards/euicc.toml"), Some(state))
            .unwrap_or_else(|e| panic!("the state directory no longer loads: {e:#}"));
    let e = card.state().euicc.as_ref().unwrap();
    assert!(
        e.profiles.iter().filter(|p| p.enabled).count() <= 1,
        "two enabled profiles"
    );
    let mut iccids: Vec<_> = e.profiles.iter().map(|p| p.iccid).collect();
    iccids.sort();
    iccids.dedup();
    assert_eq!(iccids.len(), e.profiles.len(), "an ICCID twice");
    for p in &e.profiles {
        // A profile is there with all its content or not at all.
        let fs = &p.content.fs;
        let ef_iccid = fs
            .find_path("3F00/2FE2")
            .ok()
            .and_then(|id| fs.node(id))
            .map(|n| n.body.clone());
        let is_active = e.active == Some(p.iccid);
        if !is_active {
            assert_eq!(
                ef_iccid,
                Some(FileBody::Transparent(p.iccid.0.to_vec())),
                "profile {} has no complete content",
                p.iccid.digits()
            );
            assert!(p.content.usim.is_some(), "profile without its USIM keys");
        }
    }
    let installed = !e.profiles.is_empty();
    let enabled = e.profiles.iter().any(|p| p.enabled);
    (installed, enabled)
}

/// One LPA step from the state the card is in: download, enable, disable or delete.
fn step(
    es10: &mut Es10Client<VpcdReader>,
    ac: &ActivationCode,
    roots: &[Vec<u8>],
) -> Result<(), lpa::LpaError> {
    let profiles = es10.profiles()?;
    match profiles.iter().find(|p| p.iccid == ICCID) {
        None => {
            lpa::download(es10, ac, None, roots, &DeviceInfo::default(), &mut |_| {}).map(|_| ())
        }
        Some(p) if p.state == "enabled" => es10.disable(ICCID),
        Some(_) if rand::thread_rng().gen_bool(0.5) => es10.enable(ICCID),
        Some(_) => es10.delete(ICCID),
    }
}

#[test]
fn the_card_state_survives_sigkill_during_download_enable_disable_delete() {
    let kills: usize = std::env::var("SIMLAB_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("card");
    let server = simlab_harness::smdp::start(simlab_harness::smdp::SmdpOptions::new(
        root().join("vectors/pki"),
        root().join("vectors/profiles"),
    ))
    .unwrap();
    let roots = vec![server.ca_cert_der.clone()];
    let ac: ActivationCode = format!("LPA:1${}${TEMPLATE}", server.address)
        .parse()
        .unwrap();
    let mut listener = ReaderListener::bind("127.0.0.1:0").unwrap();
    listener.set_timeout(Duration::from_secs(30));
    let vpcd = listener.local_addr().unwrap().to_string();
    let mut rng = rand::thread_rng();
    let mut completed_steps = 0usize;
    let mut seen = [0usize; 4]; // no profile, disabled, enabled, kills mid-step
    let started = Instant::now();
    for kill in 0..kills {
        let mut child = serve(&state, &vpcd);
        let conn = listener.accept().expect("the card connects");
        let reader = VpcdReader::start(conn).unwrap();
        // Kill after a random delay: within the next step or two (a debug-build download
        // takes tens of milliseconds; enable/disable/delete a few).
        let delay = Duration::from_micros(rng.gen_range(0..60_000));
        let deadline = Instant::now() + delay;
        let mut es10 = Es10Client::open(reader);
        if let Ok(es10) = es10.as_mut() {
            while Instant::now() < deadline {
                match step(es10, &ac, &roots) {
                    Ok(()) => completed_steps += 1,
                    Err(_) => break,
                }
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        drop(es10);
        let (installed, enabled) = check_state(&state);
        seen[usize::from(installed) + usize::from(enabled)] += 1;
        if kill % 50 == 49 {
            eprintln!(
                "{} kills, {completed_steps} completed steps, {:?}",
                kill + 1,
                started.elapsed()
            );
        }
    }
    server.stop();
    // The kills hit every state of the cycle.
    assert!(completed_steps > kills / 4, "{completed_steps} steps");
    assert!(
        seen[0] > 0 && seen[1] > 0 && seen[2] > 0,
        "states seen: {seen:?}"
    );
}
