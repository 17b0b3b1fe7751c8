//! ES2+ (SGP.22 v2.5 §5.3) over loopback HTTPS: the order lifecycle, its refusals, and
//! HandleDownloadProgressInfo callbacks to an operator URL.

// This whole file is test code; clippy.toml's allow-*-in-tests only covers `#[test]` fns,
// not the helpers beside them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod network_support;
mod smdp_support;

use simlab_harness::es9p::Es9pClient;
use simlab_harness::smdp::{
    self, CancelOrderRequest, ConfirmOrderRequest, DownloadOrderRequest, Es2pClient, OrderState,
    ReleaseProfileRequest, RunningSmdp, SmdpOptions,
};
use smdp_support::*;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::mpsc;

fn server(callback: Option<String>) -> RunningSmdp {
    let mut opts = SmdpOptions::new(pki_dir(), templates_dir());
    opts.es2_callback_url = callback;
    smdp::start(opts).unwrap()
}

fn es2(s: &RunningSmdp) -> Es2pClient {
    Es2pClient::from_pki(&s.es2_url(), pki_dir()).unwrap()
}

/// A TLS client trusting the PKI's CI, presenting `identity` (certificate DER, PKCS#8 key) or
/// nothing.
fn tls_agent(s: &RunningSmdp, identity: Option<(Vec<u8>, Vec<u8>)>) -> ureq::Agent {
    network_support::tls_agent_trusting(s.ca_cert_der.clone(), identity)
}

const DOWNLOAD_ORDER_BODY: &str = r#"{"profileType":"TS48v4_SAIP2.3_BERTLV"}"#;

fn post_download_order(
    agent: &ureq::Agent,
    base: &str,
) -> Result<ureq::Response, Box<ureq::Error>> {
    agent
        .post(&format!("{base}/gsma/rsp2/es2plus/downloadOrder"))
        .set("X-Admin-Protocol", "gsma/rsp/v2.2.0")
        .set("Content-Type", "application/json")
        .send_string(DOWNLOAD_ORDER_BODY)
        .map_err(Box::new)
}

/// The DPtls certificate and key as a client identity: EKU clientAuth, chains to the CI,
/// but not to the operator CA.
fn dp_tls_identity() -> (Vec<u8>, Vec<u8>) {
    use p256::pkcs8::EncodePrivateKey as _;
    let p = simlab_harness::pki::Pki::load(&pki_dir(), simlab_harness::pki::Curve::Nist).unwrap();
    let key = p256::SecretKey::from_slice(&p.dp_tls.key.unwrap().scalar()).unwrap();
    (
        p.dp_tls.cert_der,
        key.to_pkcs8_der().unwrap().as_bytes().to_vec(),
    )
}

#[test]
fn es2_refuses_a_client_without_a_certificate_in_the_tls_handshake() {
    let s = server(None);
    let err = post_download_order(&tls_agent(&s, None), &s.es2_url()).unwrap_err();
    assert!(
        matches!(*err, ureq::Error::Transport(_)),
        "refused in TLS, not by an HTTP answer: {err}"
    );
    assert!(s.smdp().orders().unwrap().is_empty());
}

#[test]
fn es2_refuses_client_certificates_of_another_ca() {
    let s = server(None);
    // Another operator's CA (a PKI generated elsewhere), and an RSP certificate with
    // clientAuth that chains to the CI: neither is this SM-DP+'s operator.
    let other = tempfile::tempdir().unwrap();
    simlab_harness::pki::generate(other.path(), &Default::default()).unwrap();
    let stranger = simlab_harness::pki::OperatorIdentity::load(other.path()).unwrap();
    for identity in [
        (stranger.cert_der, stranger.key_pkcs8_der),
        dp_tls_identity(),
    ] {
        let err = post_download_order(&tls_agent(&s, Some(identity)), &s.es2_url()).unwrap_err();
        assert!(matches!(*err, ureq::Error::Transport(_)), "{err}");
    }
    assert!(s.smdp().orders().unwrap().is_empty());
}

#[test]
fn es2_serves_the_operators_client_certificate() {
    let s = server(None);
    let me = simlab_harness::pki::OperatorIdentity::load(pki_dir()).unwrap();
    let response = post_download_order(
        &tls_agent(&s, Some((me.cert_der, me.key_pkcs8_der))),
        &s.es2_url(),
    )
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(s.smdp().orders().unwrap().len(), 1);
}

#[test]
fn the_es9_port_serves_no_es2_function_and_needs_no_client_certificate() {
    let s = server(None);
    let agent = tls_agent(&s, None);
    match post_download_order(&agent, &s.url()) {
        Ok(r) => panic!("ES2+ served on the ES9+ port: {}", r.status()),
        Err(e) if matches!(*e, ureq::Error::Status(_, _)) => {}
        Err(e) => panic!("the ES9+ port refused TLS without a client certificate: {e}"),
    }
    assert!(s.smdp().orders().unwrap().is_empty());
}

fn state(s: &RunningSmdp, iccid: &str) -> OrderState {
    s.smdp().order_by_iccid(iccid).unwrap().unwrap().state
}

#[test]
fn walks_an_order_through_allocated_confirmed_released_and_downloads_it() {
    let s = server(None);
    let op = es2(&s);
    let iccid = op
        .download_order(&DownloadOrderRequest {
            profile_type: Some(TEMPLATE.into()),
            ..Default::default()
        })
        .unwrap()
        .iccid;
    assert_eq!(iccid.len(), 19);
    assert!(iccid.starts_with("89001"));
    assert_eq!(state(&s, &iccid), OrderState::Allocated);
    let order = s.smdp().order_by_iccid(&iccid).unwrap().unwrap();
    assert!(order.imsi.as_deref().unwrap().starts_with("00101"));
    assert!(order.k.is_some() && order.opc.is_some());

    let euicc = FakeEuicc::nist();
    let confirmed = op
        .confirm_order(&ConfirmOrderRequest {
            iccid: iccid.clone(),
            eid: Some(euicc.eid_string()),
            matching_id: Some("OPERATOR-CHOSEN-1".into()),
            release_flag: false,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(confirmed.matching_id, "OPERATOR-CHOSEN-1");
    assert_eq!(confirmed.smdp_address.as_deref(), Some(s.address.as_str()));
    assert_eq!(state(&s, &iccid), OrderState::Confirmed);

    op.release_profile(&ReleaseProfileRequest {
        header: None,
        iccid: iccid.clone(),
    })
    .unwrap();
    assert_eq!(state(&s, &iccid), OrderState::Released);

    let c = Es9pClient::new(&s.address, &[&s.ca_cert_der]).unwrap();
    download(&c, &euicc, &s.address, Some("OPERATOR-CHOSEN-1"), None).unwrap();
    assert_eq!(state(&s, &iccid), OrderState::Downloaded);

    // Too late to cancel or to release again.
    let err = op
        .cancel_order(&CancelOrderRequest {
            header: None,
            iccid: iccid.clone(),
            eid: None,
            matching_id: None,
            final_profile_status_indicator: "Available".into(),
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("subject 8.2.1 reason 1.2"),
        "{err}"
    );
}

#[test]
fn cancel_order_makes_the_profile_available_and_reusable() {
    let s = server(None);
    let op = es2(&s);
    let iccid = op
        .download_order(&DownloadOrderRequest {
            profile_type: Some(TEMPLATE.into()),
            ..Default::default()
        })
        .unwrap()
        .iccid;
    let confirmed = op
        .confirm_order(&ConfirmOrderRequest {
            iccid: iccid.clone(),
            release_flag: true,
            ..Default::default()
        })
        .unwrap();
    op.cancel_order(&CancelOrderRequest {
        header: None,
        iccid: iccid.clone(),
        eid: None,
        matching_id: Some(confirmed.matching_id.clone()),
        final_profile_status_indicator: "Available".into(),
    })
    .unwrap();
    assert_eq!(state(&s, &iccid), OrderState::Available);
    // The cancelled matching ID no longer downloads.
    let c = Es9pClient::new(&s.address, &[&s.ca_cert_der]).unwrap();
    let r = download(
        &c,
        &FakeEuicc::nist(),
        &s.address,
        Some(&confirmed.matching_id),
        None,
    );
    assert_eq!(codes_of(r), pair("8.2.6", "3.8"));
    // An available profile can be ordered again by ICCID, linked to an EID.
    let again = op
        .download_order(&DownloadOrderRequest {
            iccid: Some(iccid.clone()),
            eid: Some(FakeEuicc::nist().eid_string()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(again.iccid, iccid);
    assert_eq!(state(&s, &iccid), OrderState::Linked);
}

#[test]
fn refuses_es2_requests_with_the_spec_codes() {
    let s = server(None);
    let smdp = s.smdp();
    let err = smdp
        .download_order(&DownloadOrderRequest {
            profile_type: Some("NO_SUCH_TEMPLATE".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!((err.code.subject, err.code.reason), ("8.2.5", "3.9"));
    let err = smdp
        .confirm_order(&ConfirmOrderRequest {
            iccid: "8900000000000000000".into(),
            release_flag: true,
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!((err.code.subject, err.code.reason), ("8.2.1", "3.9"));

    let (a, _) = smdp.order_activation_code(TEMPLATE, None, None).unwrap();
    let b = smdp
        .download_order(&DownloadOrderRequest {
            profile_type: Some(TEMPLATE.into()),
            eid: Some(FakeEuicc::nist().eid_string()),
            ..Default::default()
        })
        .unwrap()
        .iccid;
    assert_eq!(state(&s, &b), OrderState::Linked);
    // A matching ID already in use (another order's, or a template stem).
    for taken in [a.matching_id.clone().unwrap(), TEMPLATE.to_owned()] {
        let err = smdp
            .confirm_order(&ConfirmOrderRequest {
                iccid: b.clone(),
                matching_id: Some(taken),
                release_flag: true,
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!((err.code.subject, err.code.reason), ("8.2.6", "3.3"));
    }
    // Another EID than the linked one.
    let other = simlab_harness::pki::complete_eid("890490320000000000000000000001").unwrap();
    let err = smdp
        .confirm_order(&ConfirmOrderRequest {
            iccid: b.clone(),
            eid: Some(other),
            release_flag: true,
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!((err.code.subject, err.code.reason), ("8.1.1", "3.10"));
    // Confirming twice.
    let err = smdp
        .confirm_order(&ConfirmOrderRequest {
            iccid: a.iccid.clone(),
            release_flag: true,
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!((err.code.subject, err.code.reason), ("8.2.1", "1.2"));
    // Releasing what is not confirmed.
    let err = smdp
        .release_profile(&ReleaseProfileRequest {
            header: None,
            iccid: b,
        })
        .unwrap_err();
    assert_eq!((err.code.subject, err.code.reason), ("8.2.1", "1.2"));
}

/// A one-shot HTTPS operator endpoint configured as the BOSS's (the PKI's operator server
/// certificate; an SM-DP+ TLS client certificate of the CI required): records each request
/// body with the client certificate that came with it.
fn operator_endpoint(expected: usize) -> (String, mpsc::Receiver<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://{}/es2plus/handleDownloadProgressInfo",
        listener.local_addr().unwrap()
    );
    let ci = std::fs::read(pki_dir().join("CertificateIssuer/CERT_CI_ECDSA_NIST.der")).unwrap();
    let config = simlab_harness::network::es2_tls::server_config(
        &simlab_harness::defaults::Files::Disk(pki_dir()),
        &ci,
    )
    .unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(expected) {
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, stream.unwrap());
            let mut reader = BufReader::new(&mut tls);
            let mut len = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            drop(reader);
            let client = tls.conn.peer_certificates().unwrap()[0].to_vec();
            tls.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                .unwrap();
            tls.conn.send_close_notify();
            tls.flush().unwrap();
            tx.send((String::from_utf8(body).unwrap(), client)).unwrap();
        }
    });
    (url, rx)
}

#[test]
fn reports_download_progress_to_the_operator_over_mutual_tls() {
    let (url, bodies) = operator_endpoint(2);
    let s = server(Some(url));
    let euicc = FakeEuicc::nist();
    let (order, ac) = s
        .smdp()
        .order_activation_code(TEMPLATE, None, None)
        .unwrap();
    let c = Es9pClient::new(&s.address, &[&s.ca_cert_der]).unwrap();
    download(
        &c,
        &euicc,
        &s.address,
        Some(ac.rsplit('$').next().unwrap()),
        None,
    )
    .unwrap();
    let timeout = std::time::Duration::from_secs(10);
    let (first, first_cert) = bodies.recv_timeout(timeout).unwrap();
    let (second, second_cert) = bodies.recv_timeout(timeout).unwrap();
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    let second: serde_json::Value = serde_json::from_str(&second).unwrap();
    assert_eq!(first["notificationPointId"], 1);
    assert_eq!(second["notificationPointId"], 3);
    for v in [&first, &second] {
        assert_eq!(v["iccid"], order.iccid.as_str());
        assert_eq!(v["eid"], euicc.eid_string().as_str());
        assert_eq!(v["profileType"], TEMPLATE);
        assert_eq!(v["notificationPointStatus"]["status"], "Executed-Success");
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    // SGP.22 §2.6.6: the SM-DP+ authenticated with its TLS certificate.
    let dp_tls = dp_tls_identity().0;
    assert_eq!(first_cert, dp_tls);
    assert_eq!(second_cert, dp_tls);
    let events = s.smdp().progress_events().unwrap();
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| e.delivery.as_deref() == Some("delivered")),
        "{events:?}"
    );
}

#[test]
fn progress_goes_only_to_an_https_operator_of_the_operator_ca() {
    // Plain HTTP is refused when configured, at start and on a running server.
    let mut opts = SmdpOptions::new(pki_dir(), templates_dir());
    opts.es2_callback_url = Some("http://127.0.0.1:9/handleDownloadProgressInfo".into());
    let e = smdp::start(opts).unwrap_err();
    assert!(format!("{e:#}").contains("must be https://"), "{e:#}");
    let s = server(None);
    let e = s
        .smdp()
        .set_es2_callback_url(Some("http://127.0.0.1:9/x".into()))
        .unwrap_err();
    assert!(e.to_string().contains("must be https://"), "{e}");
    assert_eq!(s.smdp().es2_callback_url(), None, "nothing changed");
    // An HTTPS server whose certificate is not of the operator CA (here the SM-DP+'s own
    // ES9+, CERT.DP.TLS under the CI) is not the operator: the event is not delivered.
    s.smdp()
        .set_es2_callback_url(Some(format!(
            "https://{}/gsma/rsp2/es2plus/handleDownloadProgressInfo",
            s.address
        )))
        .unwrap();
    let (_, ac) = s
        .smdp()
        .order_activation_code(TEMPLATE, None, None)
        .unwrap();
    let c = Es9pClient::new(&s.address, &[&s.ca_cert_der]).unwrap();
    let euicc = FakeEuicc::nist();
    download(
        &c,
        &euicc,
        &s.address,
        Some(ac.rsplit('$').next().unwrap()),
        None,
    )
    .unwrap();
    let events = s.smdp().progress_events().unwrap();
    assert_eq!(events.len(), 2);
    for e in events {
        let delivery = e.delivery.unwrap();
        assert!(
            delivery.starts_with("failed") && delivery.contains("UnknownIssuer"),
            "{delivery}"
        );
    }
}

#[test]
fn the_order_command_places_a_released_order_on_a_running_server() {
    use simlab_harness::network::{run, NetworkCommand};
    let s = server(None);
    run(
        NetworkCommand::Order {
            template: TEMPLATE.into(),
            eid: None,
            confirmation_code: Some("7777".into()),
            server: Some(s.es2_address.clone()),
            db: None,
            address: String::new(),
            pki: Some(pki_dir()),
            templates: Some(templates_dir()),
        },
        simlab_harness::output::Output::new(true),
    )
    .unwrap();
    let orders = s.smdp().orders().unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].state, OrderState::Released);
    assert_eq!(orders[0].confirmation_code.as_deref(), Some("7777"));
}

#[test]
fn network_serve_warns_when_it_listens_beyond_loopback() {
    use std::io::{BufRead as _, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_simlab"))
        .args([
            "network",
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--es2-listen",
            "127.0.0.1:0",
            "--operator-listen",
            "127.0.0.1:0",
        ])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let warned = loop {
        match rx.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(line) if line.contains("other machines") => break line,
            Ok(line) => seen.push(line),
            Err(_) => break String::new(),
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        warned.contains("WARN") && warned.contains("ES9+"),
        "no warning; stderr: {seen:#?}"
    );
}
