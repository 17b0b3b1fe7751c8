//! `simlab network serve --smdp URL` (docs/network.md §11): one `simlab network serve` process
//! runs the SM-DP+, another runs the operator network against it. The second orders over the
//! first's ES2+ and learns each order's progress from the first's HandleDownloadProgressInfo —
//! process to process, mutual TLS both ways (SGP.22 §2.6.6) — and a companion eUICC's profile
//! from the first SM-DP+ becomes an active line of the second network.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod network_support;

use network_support::*;
use simlab_harness::lpa::Es10Client;
use simlab_harness::network::client::{EntitlementRequest, NetworkClient, NextStep};
use simlab_harness::network::db::LineState;
use simlab_harness::transport::InProcess;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A `simlab network serve` child, killed on drop.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `simlab network serve ARGS` and returns it with what it printed up to "Ctrl-C stops"
/// (stderr goes to `log`).
fn serve(args: &[&str], log: &std::path::Path) -> (Serve, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_simlab"))
        .args(["network", "serve"])
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Serve(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut printed = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let done = line.contains("Ctrl-C stops");
                printed.push(line);
                if done {
                    return (child, printed);
                }
            }
            Err(_) => panic!(
                "network serve {args:?} did not start: {printed:#?}\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            ),
        }
    }
}

/// The text after `prefix` on the first printed line that has it, up to a space or `/g`.
fn after(printed: &[String], prefix: &str) -> String {
    let line = printed
        .iter()
        .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest.to_owned()))
        .unwrap_or_else(|| panic!("no {prefix:?} in {printed:#?}"));
    line.split([' ', '/']).next().unwrap().to_owned()
}

/// A port the OS gives now: the one a process started later is told to listen on (the two
/// processes each need the other's address before either starts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn network_serve_runs_against_the_smdp_of_another_process() {
    let dir = tempfile::tempdir().unwrap();
    // The operator's ES2+ endpoint must be known to the SM-DP+ process before the operator
    // process starts (it names the SM-DP+'s ports in turn).
    let endpoint = format!("127.0.0.1:{}", free_port());
    let callback = format!("https://{endpoint}/gsma/rsp2/es2plus/handleDownloadProgressInfo");
    let (_smdp_process, printed) = serve(
        &[
            "--listen",
            "127.0.0.1:0",
            "--es2-listen",
            "127.0.0.1:0",
            "--operator-listen",
            "127.0.0.1:0",
            "--es2-callback",
            &callback,
        ],
        &dir.path().join("smdp.log"),
    );
    let es9 = after(&printed, "SM-DP+ listening on https://");
    let es2 = after(&printed, "ES2+: https://");
    let smdp_operator = after(&printed, "Operator network listening on http://");

    let db = dir.path().join("network.sqlite");
    let (_network_process, printed) = serve(
        &[
            "--smdp",
            &format!("https://{es2}"),
            "--smdp-address",
            &es9,
            "--operator-listen",
            "127.0.0.1:0",
            "--operator-es2-listen",
            &endpoint,
            "--subscriber",
            "uicc",
            "--db",
            db.to_str().unwrap(),
        ],
        &dir.path().join("network.log"),
    );
    assert!(
        printed.iter().any(|l| l.contains(&callback)),
        "prints where the SM-DP+ must send its progress: {printed:#?}"
    );
    let client = NetworkClient::new(&format!(
        "http://{}",
        after(&printed, "Operator network listening on http://")
    ));
    let urls = client.urls().unwrap()["urls"].clone();
    assert_eq!(urls["es2Callback"], callback.as_str(), "{urls}");
    assert_eq!(
        urls["es2plus"],
        format!("https://{es2}/gsma/rsp2/es2plus/"),
        "{urls}"
    );

    // The provisioned UICC authenticates (EAP-AKA) and orders a companion profile on its
    // number: the activation code names the other process's SM-DP+.
    let mut usim = SoftUsim::uicc();
    let token = eap(
        &client,
        &mut usim,
        IMSI,
        &EntitlementRequest::acquire_configuration(),
    )
    .unwrap()
    .token()
    .unwrap()
    .to_owned();
    let card = simlab_harness::cards::load_card(&vectors().join("cards/euicc.toml"), None).unwrap();
    let mut euicc = Euicc {
        es10: Some(Es10Client::open(InProcess::new(card)).unwrap()),
        roots: vec![simlab_harness::defaults::ci_certificate().unwrap()],
    };
    let eid = euicc.eid();
    let doc = client
        .entitlement_document(
            &EntitlementRequest::companion_subscribe(&eid, true),
            &simlab_harness::network::client::Auth::Token(token),
        )
        .unwrap();
    let NextStep::Download(info) = doc.next_step() else {
        panic!("{:?}", doc.raw)
    };
    assert!(
        info.activation_code.contains(&format!("${es9}$")),
        "{}",
        info.activation_code
    );
    euicc.install(&info.activation_code);

    // Each step's progress came from the other process before its answer to the eUICC:
    // installed and enabled, the line active on the shared number, EF.MSISDN that number.
    let order = client
        .orders()
        .unwrap()
        .into_iter()
        .find(|o| o.order.iccid == info.iccid)
        .unwrap();
    assert_eq!(order.order.state, "enabled");
    let line = client.line(&order.order.imsi).unwrap();
    assert_eq!(
        (line.state, line.msisdn.as_str()),
        (LineState::Active, MSISDN)
    );
    assert_eq!(euicc.read_msisdn().as_deref(), Some(MSISDN));
    let points: Vec<u32> = client
        .order_events()
        .unwrap()
        .iter()
        .map(|e| e.point)
        .collect();
    assert_eq!(
        points,
        [1, 3, 4, 101],
        "eligibility, BPP, installed, enabled"
    );

    // The SM-DP+ process's own BOSS placed nothing and heard nothing of it.
    let other = NetworkClient::new(&format!("http://{smdp_operator}"));
    assert!(other.orders().unwrap().is_empty());
    assert!(other.order_events().unwrap().is_empty());
}
