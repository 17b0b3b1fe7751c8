//! The SM-DP+'s HTTP input contract (SGP.22 v2.5 §6.5.1), on both ports: wrong or missing
//! `X-Admin-Protocol` / `Content-Type`, unknown paths, other methods and over-size bodies are
//! answered with an SGP.22 header carrying subject/reason codes — never a bare HTTP status or
//! a connection reset — and run no function.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod smdp_support;

use rstest::rstest;
use simlab_harness::pki::OperatorIdentity;
use simlab_harness::smdp::{self, RunningSmdp, SmdpOptions, DRAIN_LIMIT, MAX_BODY};
use smdp_support::*;
use std::sync::{Arc, OnceLock};

/// One server for the whole file (each case only reads).
fn server() -> &'static RunningSmdp {
    static SERVER: OnceLock<RunningSmdp> = OnceLock::new();
    SERVER.get_or_init(|| smdp::start(SmdpOptions::new(pki_dir(), templates_dir())).unwrap())
}

#[derive(Debug, Clone, Copy)]
enum Port {
    Es9,
    /// With the operator's client certificate.
    Es2,
}

fn agent(port: Port) -> ureq::Agent {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(server().ca_cert_der.clone()))
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match port {
        Port::Es9 => builder.with_no_client_auth(),
        Port::Es2 => {
            let me = OperatorIdentity::load(pki_dir()).unwrap();
            builder
                .with_client_auth_cert(
                    vec![CertificateDer::from(me.cert_der)],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(me.key_pkcs8_der)),
                )
                .unwrap()
        }
    };
    ureq::AgentBuilder::new()
        .tls_config(Arc::new(config))
        .build()
}

/// What came back: HTTP status, the X-Admin-Protocol header, and the header's status codes.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    admin_protocol: Option<String>,
    codes: Option<(String, String)>,
    message: String,
}

fn call(port: Port, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let s = server();
    let base = match port {
        Port::Es9 => s.url(),
        Port::Es2 => s.es2_url(),
    };
    let mut request = agent(port).request(method, &format!("{base}{path}"));
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let response = match request.send_bytes(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: no HTTP answer: {e}"),
    };
    let status = response.status();
    let admin_protocol = response.header("X-Admin-Protocol").map(str::to_owned);
    let text = response.into_string().unwrap();
    let v: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{method} {path}: answer is not JSON ({e}): {text:?}"));
    let status_data = &v["header"]["functionExecutionStatus"];
    assert_eq!(status_data["status"], "Failed", "{text}");
    let data = &status_data["statusCodeData"];
    Answer {
        status,
        admin_protocol,
        codes: Some((
            data["subjectCode"].as_str().unwrap().to_owned(),
            data["reasonCode"].as_str().unwrap().to_owned(),
        )),
        message: data["message"].as_str().unwrap_or_default().to_owned(),
    }
}

const GOOD: [(&str, &str); 2] = [
    ("X-Admin-Protocol", "gsma/rsp/v2.2.0"),
    ("Content-Type", "application/json"),
];
const ES9_FUNCTION: &str = "/gsma/rsp2/es9plus/initiateAuthentication";
const ES2_FUNCTION: &str = "/gsma/rsp2/es2plus/downloadOrder";

#[rstest]
#[case::no_admin_protocol(&[("Content-Type", "application/json")], 200, ("1.6", "2.2"))]
#[case::admin_protocol_v1(
    &[("X-Admin-Protocol", "gsma/rsp/v1.0.0"), ("Content-Type", "application/json")],
    200, ("8.8.3", "3.1")
)]
#[case::admin_protocol_of_another_protocol(
    &[("X-Admin-Protocol", "globalplatform-remote-admin/1.0"), ("Content-Type", "application/json")],
    200, ("8.8.3", "3.1")
)]
#[case::no_content_type(&[("X-Admin-Protocol", "gsma/rsp/v2.2.0")], 200, ("1.6", "2.2"))]
#[case::text_content(
    &[("X-Admin-Protocol", "gsma/rsp/v2.2.0"), ("Content-Type", "text/plain")],
    200, ("1.6", "2.1")
)]
#[case::form_content(
    &[("X-Admin-Protocol", "gsma/rsp/v2.2.0"), ("Content-Type", "application/x-www-form-urlencoded")],
    200, ("1.6", "2.1")
)]
fn refuses_requests_with_wrong_headers_on_both_ports(
    #[case] headers: &[(&str, &str)],
    #[case] status: u16,
    #[case] codes: (&str, &str),
    #[values(Port::Es9, Port::Es2)] port: Port,
) {
    let path = match port {
        Port::Es9 => ES9_FUNCTION,
        Port::Es2 => ES2_FUNCTION,
    };
    let before = server().smdp().orders().unwrap().len();
    let a = call(port, "POST", path, headers, b"{}");
    assert_eq!(a.status, status, "{a:?}");
    assert_eq!(
        a.codes,
        Some((codes.0.to_owned(), codes.1.to_owned())),
        "{a:?}"
    );
    assert_eq!(a.admin_protocol.as_deref(), Some("gsma/rsp/v2.2.0"));
    assert_eq!(
        server().smdp().orders().unwrap().len(),
        before,
        "no function ran"
    );
}

#[rstest]
#[case::unknown_function(Port::Es9, "POST", "/gsma/rsp2/es9plus/noSuchFunction", 404, ("1.6", "3.9"))]
#[case::unknown_prefix(Port::Es9, "POST", "/gsma/rsp2/es8plus/x", 404, ("1.6", "3.9"))]
#[case::root(Port::Es9, "GET", "/", 404, ("1.6", "3.9"))]
#[case::es2_on_the_es9_port(Port::Es9, "POST", ES2_FUNCTION, 404, ("1.6", "3.9"))]
#[case::es9_on_the_es2_port(Port::Es2, "POST", ES9_FUNCTION, 404, ("1.6", "3.9"))]
#[case::unknown_es2_function(Port::Es2, "POST", "/gsma/rsp2/es2plus/deleteEverything", 404, ("1.6", "3.9"))]
#[case::get(Port::Es9, "GET", ES9_FUNCTION, 405, ("1.6", "2.1"))]
#[case::put(Port::Es9, "PUT", ES9_FUNCTION, 405, ("1.6", "2.1"))]
#[case::delete_on_es2(Port::Es2, "DELETE", ES2_FUNCTION, 405, ("1.6", "2.1"))]
fn answers_unknown_paths_and_other_methods_with_an_sgp22_header(
    #[case] port: Port,
    #[case] method: &str,
    #[case] path: &str,
    #[case] status: u16,
    #[case] codes: (&str, &str),
) {
    let a = call(port, method, path, &GOOD, b"{}");
    assert_eq!(a.status, status, "{a:?}");
    assert_eq!(
        a.codes,
        Some((codes.0.to_owned(), codes.1.to_owned())),
        "{a:?}"
    );
    assert!(!a.message.is_empty());
}

#[test]
fn the_es9_port_tells_where_es2_is() {
    let a = call(Port::Es9, "POST", ES2_FUNCTION, &GOOD, b"{}");
    assert!(a.message.contains("operator's port"), "{a:?}");
}

#[rstest]
#[case::just_over_the_limit(MAX_BODY + 1)]
#[case::three_megabytes(3 * 1024 * 1024 + 17)]
#[case::at_the_drain_limit(DRAIN_LIMIT)]
fn answers_an_over_size_body_instead_of_resetting(
    #[case] len: usize,
    #[values(Port::Es9, Port::Es2)] port: Port,
) {
    let path = match port {
        Port::Es9 => ES9_FUNCTION,
        Port::Es2 => ES2_FUNCTION,
    };
    let a = call(port, "POST", path, &GOOD, &vec![b' '; len]);
    assert_eq!(a.status, 413, "{a:?}");
    assert_eq!(a.codes, Some(("1.6".into(), "2.1".into())));
    assert!(a.message.contains(&len.to_string()), "{a:?}");
}

#[test]
fn a_body_at_the_limit_reaches_the_function() {
    // Whitespace around a JSON object is still the object: the function runs and refuses the
    // content (a missing field), not the size.
    let mut body = vec![b' '; MAX_BODY - 2];
    body.extend_from_slice(b"{}");
    let a = call(Port::Es9, "POST", ES9_FUNCTION, &GOOD, &body);
    assert_eq!(
        (a.status, &a.codes),
        (200, &Some(("1.6".into(), "2.2".into())))
    );
    assert!(a.message.contains("missing field"), "{a:?}");
}

#[test]
fn accepts_the_header_values_real_clients_send() {
    // Any v2 (and v3) admin protocol; media type in any case, with a charset.
    for (protocol, content_type) in [
        ("gsma/rsp/v2.1.0", "application/json"),
        ("gsma/rsp/v2.2.2", "application/json;charset=UTF-8"),
        ("gsma/rsp/v3.0.0", "Application/JSON"),
    ] {
        let headers = [
            ("X-Admin-Protocol", protocol),
            ("Content-Type", content_type),
        ];
        let a = call(Port::Es9, "POST", ES9_FUNCTION, &headers, b"{}");
        assert_eq!(a.codes, Some(("1.6".into(), "2.2".into())), "{a:?}");
        assert!(a.message.contains("missing field"), "{a:?}");
    }
}

/// Field names of the ES9+ and ES2+ requests, so that generated bodies get past plain JSON
/// parsing into the functions' own checks.
const FIELDS: [&str; 12] = [
    "euiccChallenge",
    "euiccInfo1",
    "smdpAddress",
    "transactionId",
    "authenticateServerResponse",
    "prepareDownloadResponse",
    "pendingNotification",
    "cancelSessionResponse",
    "profileType",
    "iccid",
    "eid",
    "releaseFlag",
];

fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[A-Za-z0-9+/=]{0,40}".prop_map(serde_json::Value::from),
        proptest::collection::vec(any::<u8>(), 0..48).prop_map(|b| {
            use base64::Engine as _;
            serde_json::Value::from(base64::engine::general_purpose::STANDARD.encode(b))
        }),
    ]
}

fn request_body() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        proptest::collection::btree_map(
            proptest::sample::select(FIELDS.to_vec()),
            json_value(),
            0..6
        )
        .prop_map(|m| serde_json::to_vec(&m).unwrap()),
    ]
}

const ES9_FUNCTIONS: [&str; 5] = [
    "initiateAuthentication",
    "authenticateClient",
    "getBoundProfilePackage",
    "handleNotification",
    "cancelSession",
];
const ES2_FUNCTIONS: [&str; 4] = [
    "downloadOrder",
    "confirmOrder",
    "cancelOrder",
    "releaseProfile",
];

/// Generated cases per run: 64, or `SIMLAB_MALFORMED_CASES`.
fn malformed_cases() -> u32 {
    std::env::var("SIMLAB_MALFORMED_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(malformed_cases()))]

    /// Malformed bodies for every function (each case on both ports): the server always
    /// answers, with a failed header and status codes.
    #[test]
    fn malformed_bodies_get_a_failed_header_from_every_function(
        es9 in proptest::sample::select(ES9_FUNCTIONS.to_vec()),
        es2 in proptest::sample::select(ES2_FUNCTIONS.to_vec()),
        body in request_body(),
    ) {
        for (port, path) in [
            (Port::Es9, format!("/gsma/rsp2/es9plus/{es9}")),
            (Port::Es2, format!("/gsma/rsp2/es2plus/{es2}")),
        ] {
            let a = call(port, "POST", &path, &GOOD, &body);
            proptest::prop_assert_eq!(a.status, 200);
            proptest::prop_assert!(a.codes.is_some());
        }
    }
}
