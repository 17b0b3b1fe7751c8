//! `simlab card serve` as a user sees it on stderr: "connected" only once vpcd has spoken, and
//! a warning when the TCP connection is up but vpcd never asks for the ATR (issue: a second
//! card on an occupied vpcd slot waits unaccepted in pcscd's queue).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Generous bound so a broken test fails instead of hanging; never a timing assertion.
const PATIENCE: Duration = Duration::from_secs(30);

/// The served card's stderr lines, as they come.
fn serve(args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_simlab"))
        .args(["card", "serve"])
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Lines until one contains `wanted`; panics after PATIENCE.
fn until(rx: &mpsc::Receiver<String>, wanted: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(PATIENCE) {
            Ok(line) => {
                let done = line.contains(wanted);
                seen.push(line);
                if done {
                    return seen;
                }
            }
            Err(_) => panic!("no line with {wanted:?}; got {seen:#?}"),
        }
    }
}

#[test]
fn warns_when_vpcd_does_not_speak_and_says_connected_only_when_it_does() {
    // A "vpcd slot" whose listener never accepts: the card's TCP connection completes (the
    // kernel queues it) but nothing is ever said — as with a second card on a busy slot.
    let slot = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = slot.local_addr().unwrap().to_string();
    let (mut child, rx) = serve(&["--vpcd", &addr]);
    let before = until(&rx, "has not asked for the ATR");
    assert!(
        before.iter().all(|l| !l.contains("vpcd connected")),
        "claimed a connection before vpcd spoke: {before:#?}"
    );
    assert!(before.last().unwrap().contains("another card in this slot"));
    // Now vpcd accepts and asks for the ATR: the card is connected, and answers.
    let (mut vpcd, _) = slot.accept().unwrap();
    vpcd.set_read_timeout(Some(PATIENCE)).unwrap();
    vpcd.write_all(&[0x00, 0x01, 0x04]).unwrap();
    let mut len = [0u8; 2];
    vpcd.read_exact(&mut len).unwrap();
    let mut atr = vec![0u8; usize::from(u16::from_be_bytes(len))];
    vpcd.read_exact(&mut atr).unwrap();
    assert_eq!(atr.first(), Some(&0x3B), "an ATR");
    until(&rx, "vpcd connected");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn refuses_a_nonsense_idle_timeout() {
    let out = Command::new(env!("CARGO_BIN_EXE_simlab"))
        .args([
            "card",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--idle-timeout",
            "0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--idle-timeout"), "{stderr}");
}

#[test]
fn refuses_a_state_directory_of_the_other_kind_of_card_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("card");
    // A UICC's state, as `card serve --card uicc --state DIR` leaves it.
    simlab_harness::cards::load_card(std::path::Path::new("uicc"), Some(&state)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_simlab"))
        .args([
            "--json",
            "card",
            "serve",
            "--card",
            "euicc",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--state")
        .arg(&state)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "card-state", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("holds a UICC") && message.contains("describes an eUICC"),
        "{message}"
    );
    // The state was not touched: the UICC loads from it as before.
    simlab_harness::cards::load_card(std::path::Path::new("uicc"), Some(&state)).unwrap();
}
