//! Real processes, real SIGKILLs: `simlab lpa --card euicc --state DIR download` against
//! `simlab network serve --db FILE` is killed (SIGKILL) at times spread over a whole download,
//! then the same command is run again. Every time the retry either installs the profile or
//! finds it installed, `notifications process` then delivers what the killed run left
//! pending, and in the end the eUICC holds the profile once and the SM-DP+'s database has the
//! order Installed. The in-process sweep (`download_kill_sweep.rs`) kills at every single
//! APDU and ES9+ call; this one checks the same of the real binary and its files.
//!
//! `SIMLAB_SIGKILLS=N` sets how many kills (default 6; docs/reliability.md has a larger run).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use simlab_harness::smdp::{OrderState, Store};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TEMPLATE: &str = "TS48V2-SAIP2-3-BERTLV-UNIQUE";
const DEFAULT_KILLS: u32 = 6;

fn simlab(args: &[&str]) -> (bool, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_simlab"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.success(),
        json,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// `simlab network serve` on free ports with its orders in `db`; returns it with its ES9+
/// and ES2+ addresses.
fn serve(db: &Path) -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_simlab"))
        .args([
            "network",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--es2-listen",
            "127.0.0.1:0",
            // Free ports only: the operator services' default port may be taken on a shared
            // host (another test, another user).
            "--operator-listen",
            "127.0.0.1:0",
            "--db",
        ])
        .arg(db)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(db.with_extension("log")).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut es9 = None;
    let mut es2 = None;
    while es9.is_none() || es2.is_none() {
        let line = lines.next().unwrap().unwrap();
        let after = |marker: &str| {
            line.split_once(marker)
                .map(|(_, rest)| rest.split(['/', ' ']).next().unwrap_or_default().to_owned())
        };
        if line.starts_with("SM-DP+ listening on") {
            es9 = after("https://");
        } else if line.contains("ES2+: https://") {
            es2 = after("https://");
        }
    }
    // Keep reading stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, es9.unwrap(), es2.unwrap())
}

struct Order {
    iccid: String,
    activation_code: String,
}

fn order(es2: &str) -> Order {
    let (ok, v, err) = simlab(&[
        "--json",
        "network",
        "order",
        "--server",
        es2,
        "--template",
        TEMPLATE,
    ]);
    assert!(ok, "{v}\n{err}");
    Order {
        iccid: v["result"]["iccid"].as_str().unwrap().to_owned(),
        activation_code: v["result"]["activationCode"].as_str().unwrap().to_owned(),
    }
}

fn lpa(state: &Path, args: &[&str]) -> Vec<String> {
    let mut all = vec!["--json", "lpa", "--card", "euicc", "--state"];
    all.push(state.to_str().unwrap());
    all.extend_from_slice(args);
    all.iter().map(|s| (*s).to_owned()).collect()
}

fn profiles(state: &Path) -> Vec<String> {
    let args = lpa(state, &["list"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, v, err) = simlab(&args);
    assert!(ok, "list: {v}\n{err}");
    v["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["iccid"].as_str().unwrap().to_owned())
        .collect()
}

/// Downloads `o` into the eUICC of `state`, killing the process after `kill_after` (if any).
/// Returns whether that run finished by itself.
fn download(state: &Path, o: &Order, kill_after: Option<Duration>) -> bool {
    let args = lpa(
        state,
        &["download", "--activation-code", &o.activation_code],
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_simlab"))
        .args(&args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let Some(after) = kill_after else {
        return child.wait().unwrap().success();
    };
    let deadline = Instant::now() + after;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        if Instant::now() >= deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_download_killed_by_sigkill_has_succeeded_or_succeeds_when_run_again() {
    let kills: u32 = std::env::var("SIMLAB_SIGKILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_KILLS);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("smdp.sqlite");
    let (mut server, _es9, es2) = serve(&db);

    // A clean run gives the time a whole download takes here.
    let calibration = order(&es2);
    let state = dir.path().join("calibration");
    let started = Instant::now();
    assert!(download(&state, &calibration, None));
    let whole = started.elapsed();

    let (mut finished_anyway, mut retried_ok, mut already) = (0, 0, 0);
    for i in 0..kills {
        let o = order(&es2);
        let state = dir.path().join(format!("euicc-{i}"));
        // Spread over the whole download, from process start to its last step.
        let at = whole.mul_f64((f64::from(i) + 0.5) / f64::from(kills));
        if download(&state, &o, Some(at)) {
            finished_anyway += 1;
        } else if download(&state, &o, None) {
            retried_ok += 1;
        } else {
            let args = lpa(
                &state,
                &["download", "--activation-code", &o.activation_code],
            );
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (_, v, err) = simlab(&args);
            let server_log = std::fs::read_to_string(db.with_extension("log")).unwrap_or_default();
            let server_state = server.try_wait().unwrap();
            assert!(
                profiles(&state).contains(&o.iccid),
                "kill {i} at {at:?}: the retry failed and the profile is not on the card: \
                 {v}\n{err}\nSM-DP+ process: {server_state:?}, its log:\n{server_log}"
            );
            already += 1;
        }
        let args = lpa(&state, &["notifications", "process"]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, v, err) = simlab(&args);
        assert!(ok, "kill {i}: notifications process: {v}\n{err}");
        assert_eq!(
            profiles(&state),
            vec![o.iccid.clone()],
            "kill {i} at {at:?}"
        );
        let stored = Store::open(Some(&db))
            .unwrap()
            .order_by_iccid(&o.iccid)
            .unwrap()
            .unwrap();
        assert_eq!(stored.state, OrderState::Installed, "kill {i} at {at:?}");
    }
    eprintln!(
        "{kills} SIGKILLs over a {whole:?} download: retry installed {retried_ok}, \
         already installed {already}, finished before the kill {finished_anyway}"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}
