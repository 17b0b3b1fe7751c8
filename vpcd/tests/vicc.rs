//! Our reader side driving vsmartcard's own Python card emulator `vicc` (Debian package
//! `vsmartcard-vpcd`'s sibling `virtualsmartcard`), in both connection modes, over loopback.
//! Ignored by default: it needs `vicc` on PATH. Run with `--ignored`.
//!
//! Debian 12's `vsmartcard-vpicc` 3.3+dfsg-2 does not start as packaged: its modules sit in
//! `/usr/lib/python3/site-packages/virtualsmartcard` (not on Python's path) and it imports
//! PyCrypto's `Crypto` namespace, which bookworm only ships as `Cryptodome`
//! (`python3-pycryptodome`). [`start_vicc`] works around both through `PYTHONPATH`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use simlab_vpcd::reader::{ReaderConnection, ReaderListener};

/// SELECT MF by FID 3F00 (ISO/IEC 7816-4 §11.1.1), no response data asked.
const SELECT_MF: [u8; 7] = [0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00];

/// Kills the vicc we started (by its own handle) when the test ends, pass or fail.
struct Vicc(Child);

impl Drop for Vicc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's misplaced vicc modules and pycryptodome's namespace (see the module doc).
const DEBIAN_VICC_MODULES: &str = "/usr/lib/python3/site-packages/virtualsmartcard";
const DEBIAN_CRYPTODOME: &str = "/usr/lib/python3/dist-packages/Cryptodome";

/// A directory holding `Crypto -> Cryptodome`, put first on `PYTHONPATH`.
fn python_path() -> String {
    let shim = std::env::temp_dir().join(format!("simlab-vpcd-vicc-{}", std::process::id()));
    std::fs::create_dir_all(&shim).unwrap();
    let link = shim.join("Crypto");
    if !link.exists() {
        std::os::unix::fs::symlink(DEBIAN_CRYPTODOME, &link).unwrap();
    }
    format!("{}:{DEBIAN_VICC_MODULES}", shim.display())
}

fn start_vicc(args: &[&str]) -> Vicc {
    Vicc(
        Command::new("vicc")
            .env("PYTHONPATH", python_path())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("vicc not found on PATH"),
    )
}

fn drive(r: &mut ReaderConnection) {
    let atr = r.atr().unwrap();
    assert_eq!(atr[0], 0x3B, "ATR {atr:02X?}");
    r.power_on().unwrap();
    assert_eq!(r.atr().unwrap(), atr);
    let answer = r.transmit(&SELECT_MF).unwrap();
    assert_eq!(
        answer[answer.len() - 2..],
        [0x90, 0x00],
        "answer {answer:02X?}"
    );
    for _ in 0..200 {
        r.transmit(&SELECT_MF).unwrap();
    }
    r.reset().unwrap();
    assert_eq!(r.atr().unwrap(), atr);
}

#[test]
#[ignore = "needs vsmartcard's vicc on PATH"]
fn drives_vicc_that_connects_to_our_listener() {
    let l = ReaderListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let _vicc = start_vicc(&["-H", "127.0.0.1", "-P", &port]);
    let mut r = l.accept_timeout(Duration::from_secs(20)).unwrap();
    drive(&mut r);
}

#[test]
#[ignore = "needs vsmartcard's vicc on PATH"]
fn drives_vicc_listening_in_reversed_mode() {
    // Pick a free port, then let vicc bind it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _vicc = start_vicc(&["-R", "-P", &port.to_string()]);
    let mut r = None;
    for _ in 0..200 {
        match ReaderConnection::connect(("127.0.0.1", port)) {
            Ok(c) => {
                r = Some(c);
                break;
            }
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
    drive(&mut r.expect("vicc never listened"));
}
