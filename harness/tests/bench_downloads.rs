//! `simlab bench --downloads` end to end with tiny counts: the in-process path and the HTTPS
//! path against a separate SM-DP+ process (this crate's `simlab` binary). Proves the code
//! paths and the accounting; asserts nothing about speed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use simlab_harness::bench::downloads::{self, DownloadBenchOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn options(count: usize) -> DownloadBenchOptions {
    DownloadBenchOptions {
        card: root().join("vectors/cards/euicc.toml"),
        pki: root().join("vectors/pki").into(),
        templates: root().join("vectors/profiles").into(),
        template: "TS48V1-A-UNIQUE".into(),
        count,
        server_program: Some(PathBuf::from(env!("CARGO_BIN_EXE_simlab"))),
        db_file: false,
        external: None,
    }
}

#[test]
fn in_process_download_benchmark_runs_once() {
    let r = downloads::in_process(&options(1), 1).unwrap();
    assert_eq!(r.downloads, 1);
    // InitiateAuthentication, AuthenticateClient, GetBoundProfilePackage, HandleNotification.
    assert_eq!(r.smdp.calls, 4);
    assert!(r.cpu.card > Duration::ZERO);
    // Both clocks ran (CPU time and the wall time of its signing are not comparable: a
    // preempted thread's wall time grows, its CPU time does not).
    assert!(r.cpu.smdp > Duration::ZERO && r.smdp.sign > Duration::ZERO);
    downloads::print_in_process("TS48V1-A-UNIQUE", &[r]);
}

#[test]
fn https_download_benchmark_counts_server_and_client_separately() {
    let r = downloads::over_https(&options(2), 2).unwrap();
    assert_eq!((r.downloads, r.lpas), (2, 2));
    let server = r
        .server
        .expect("the benchmark's own server reports its timings");
    // Two downloads, four ES9+ functions each, counted by the server process.
    assert_eq!(server.calls, 8);
    assert!(server.sign > Duration::ZERO && server.verify > Duration::ZERO);
    assert!(
        r.server_cpu > Duration::ZERO,
        "the server process's CPU time is read"
    );
    assert!(r.client.card > Duration::ZERO);
    // Over HTTPS the ES9+ calls cost the client only TLS, HTTP and JSON, never the
    // server's signatures: the client-side ES9+ CPU is below the wall time of those calls.
    assert!(r.client.smdp <= r.client.es9_wall);
    downloads::print_https(&[r], None, None);
}

#[test]
fn tls_handshakes_complete_in_memory_with_the_smdp_certificate() {
    let t = downloads::tls_handshakes(&root().join("vectors/pki").into(), "127.0.0.1", 2).unwrap();
    assert_eq!(t.handshakes, 2);
    assert!(t.server > Duration::ZERO && t.client > Duration::ZERO);
}

#[test]
fn a_baseline_binary_is_measured_through_its_json_result() {
    // This crate's own binary as the "baseline": the figures come back through its
    // `--json bench --downloads --no-https` result.
    let b = downloads::baseline_in_process(Path::new(env!("CARGO_BIN_EXE_simlab")), &options(1))
        .unwrap();
    assert!(
        b.per_second > 0.0 && b.cpu_ms > 0.0 && b.smdp_ms > 0.0,
        "{b:?}"
    );
    assert!(b.smdp_ms < b.cpu_ms, "{b:?}");
    let e =
        downloads::baseline_in_process(Path::new("/nonexistent/simlab"), &options(1)).unwrap_err();
    assert!(format!("{e:#}").contains("running the baseline"), "{e:#}");
}
