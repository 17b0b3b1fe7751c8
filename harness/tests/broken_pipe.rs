//! A reader that goes away (`simlab … | true`, `| head`) ends simlab quietly — exit 0 after
//! a finished result, or 141 (128 + SIGPIPE, as a shell reports a tool ended by a closed
//! pipe) — and never with a panic (exit 101, "failed printing to stdout/stderr"), whichever
//! stream closed and whatever the command printed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rstest::rstest;
use std::io::Read as _;
use std::process::{Command, Stdio};

/// 128 + SIGPIPE.
const CLOSED_OUTPUT: i32 = 141;

#[derive(Debug, Clone, Copy)]
enum Closed {
    Stdout,
    Stderr,
    Both,
}

/// Runs simlab with the chosen streams' read ends closed before it writes anything.
fn run_closed(args: &[&str], closed: Closed) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_simlab"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut kept = String::new();
    match closed {
        Closed::Stdout => {
            drop(child.stdout.take());
            let status = {
                let mut err = child.stderr.take().unwrap();
                err.read_to_string(&mut kept).unwrap();
                child.wait().unwrap()
            };
            return (status, kept);
        }
        Closed::Stderr => {
            drop(child.stderr.take());
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut kept)
                .unwrap();
        }
        Closed::Both => {
            drop(child.stdout.take());
            drop(child.stderr.take());
        }
    }
    (child.wait().unwrap(), kept)
}

fn quiet_end(status: std::process::ExitStatus) -> bool {
    matches!(status.code(), Some(0 | CLOSED_OUTPUT))
}

#[rstest]
#[case::apdu(&["apdu", "--card", "uicc", "00A4000C023F00", "00A4000C022FE2", "00B000000A"])]
#[case::apdu_json(&["apdu", "--json", "--card", "uicc", "00A4000C023F00"])]
#[case::lpa_chip_info(&["lpa", "--card", "euicc", "--json", "chip-info"])]
#[case::help(&["--help"])]
fn a_closed_stdout_ends_a_command_quietly(#[case] args: &[&str]) {
    let (status, stderr) = run_closed(args, Closed::Stdout);
    assert!(quiet_end(status), "{args:?}: {status:?}, stderr {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
}

#[rstest]
#[case::error_message(&["apdu", "--card", "uicc", "not-hex"], Closed::Both)]
#[case::error_message_stdout_open(&["apdu", "--card", "uicc", "not-hex"], Closed::Stderr)]
#[case::usage_error(&["apdu", "--no-such-option"], Closed::Both)]
fn a_closed_stderr_ends_a_failing_command_quietly(#[case] args: &[&str], #[case] closed: Closed) {
    let (status, _) = run_closed(args, closed);
    assert_ne!(status.code(), Some(101), "{args:?}: panicked");
    assert!(
        status.code().is_some(),
        "{args:?}: killed by a signal: {status:?}"
    );
    // It failed, and says so by its exit: never a success by accident.
    assert!(!status.success(), "{args:?}: {status:?}");
}
