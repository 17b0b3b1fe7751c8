//! Tests of the PKI generator. The certificates are checked by OpenSSL (an independent
//! implementation, run as a process) and by p256 signature verification.

use std::process::{Command, Output};

use der::Encode;
use p256::ecdsa::signature::Verifier;
use rstest::rstest;
use tempfile::TempDir;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;

use super::*;

/// Runs openssl; `None` (after saying so) when it is not installed.
fn openssl(args: &[&str]) -> Option<Output> {
    match Command::new("openssl").args(args).output() {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("SKIPPED: openssl is not installed; the OpenSSL cross-checks did not run");
            None
        }
        Err(e) => panic!("cannot run openssl: {e}"),
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn generated() -> (TempDir, PkiSummary) {
    let dir = TempDir::new().unwrap();
    let summary = generate(dir.path(), &PkiOptions::default()).unwrap();
    (dir, summary)
}

/// Writes the DER certificate of `role` as PEM into `scratch` (openssl verify wants PEM).
fn pem_of(dir: &Path, role: Role, scratch: &Path) -> String {
    pem_of_curve(dir, role, Curve::Nist, scratch)
}

fn pem_of_curve(dir: &Path, role: Role, curve: Curve, scratch: &Path) -> String {
    let der_bytes = fs::read(dir.join(cert_path(role, curve))).unwrap();
    let pem = der::pem::encode_string("CERTIFICATE", LineEnding::LF, &der_bytes).unwrap();
    let path = scratch.join(format!("{role:?}_{curve:?}.pem"));
    fs::write(&path, pem).unwrap();
    path.to_str().unwrap().to_owned()
}

fn openssl_text(dir: &Path, role: Role) -> Option<String> {
    openssl_text_curve(dir, role, Curve::Nist)
}

fn openssl_text_curve(dir: &Path, role: Role, curve: Curve) -> Option<String> {
    let path = dir.join(cert_path(role, curve));
    let out = openssl(&[
        "x509",
        "-inform",
        "der",
        "-noout",
        "-text",
        "-in",
        path.to_str()?,
    ])?;
    assert!(out.status.success(), "openssl x509 failed: {}", text(&out));
    Some(text(&out))
}

fn cert(dir: &Path, role: Role) -> Certificate {
    cert_curve(dir, role, Curve::Nist)
}

fn cert_curve(dir: &Path, role: Role, curve: Curve) -> Certificate {
    Certificate::from_der(&fs::read(dir.join(cert_path(role, curve))).unwrap()).unwrap()
}

#[test]
fn writes_the_sgp26_layout_and_file_names() {
    let (dir, summary) = generated();
    let mut files: Vec<String> = summary.sets[0]
        .files
        .iter()
        .map(|p| p.to_str().unwrap().to_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "CertificateIssuer/CERT_CI_ECDSA_NIST.der",
            "CertificateIssuer/CERT_CI_ECDSA_NIST.pem",
            "CertificateIssuer/SK_CI_ECDSA_NIST.pem",
            "DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der",
            "DPauth/PK_S_SM_DPauth_ECDSA_NIST.pem",
            "DPauth/SK_S_SM_DPauth_ECDSA_NIST.pem",
            "DPpb/CERT_S_SM_DPpb_ECDSA_NIST.der",
            "DPpb/PK_S_SM_DPpb_ECDSA_NIST.pem",
            "DPpb/SK_S_SM_DPpb_ECDSA_NIST.pem",
            "DPtls/CERT_S_SM_DP_TLS_NIST.der",
            "DPtls/CERT_S_SM_DP_TLS_NIST.pem",
            "DPtls/PK_S_SM_DP_TLS_NIST.pem",
            "DPtls/SK_S_SM_DP_TLS_NIST.pem",
            "EUM/CERT_EUM_ECDSA_NIST.der",
            "EUM/SK_EUM_ECDSA_NIST.pem",
            "eUICC/CERT_EUICC_ECDSA_NIST.der",
            "eUICC/SK_EUICC_ECDSA_NIST.pem",
        ]
    );
    for f in &files {
        assert!(dir.path().join(f).is_file(), "{f} not written");
    }
    let ski = cert(dir.path(), Role::Ci)
        .tbs_certificate
        .get::<SubjectKeyIdentifier>()
        .unwrap()
        .unwrap()
        .1;
    assert_eq!(summary.sets[0].ci_ski, ski.0.as_bytes());
}

#[rstest]
#[case::dp_auth(Role::DpAuth)]
#[case::dp_pb(Role::DpPb)]
#[case::dp_tls(Role::DpTls)]
#[case::eum(Role::Eum)]
fn openssl_verifies_ci_issued_certificates(#[case] role: Role) {
    let (dir, _) = generated();
    let scratch = TempDir::new().unwrap();
    let ci = pem_of(dir.path(), Role::Ci, scratch.path());
    let leaf = pem_of(dir.path(), role, scratch.path());
    let Some(out) = openssl(&["verify", "-x509_strict", "-CAfile", &ci, &leaf]) else {
        return;
    };
    assert!(
        out.status.success(),
        "openssl verify {role:?}: {}",
        text(&out)
    );
    assert!(text(&out).contains(": OK"), "{}", text(&out));
}

#[test]
fn openssl_accepts_the_tls_certificate_for_the_host_and_loopback() {
    let (dir, _) = generated();
    let scratch = TempDir::new().unwrap();
    let ci = pem_of(dir.path(), Role::Ci, scratch.path());
    let tls = pem_of(dir.path(), Role::DpTls, scratch.path());
    for (flag, name) in [
        ("-verify_hostname", DEFAULT_SMDP_HOST),
        ("-verify_hostname", "localhost"),
        ("-verify_ip", "127.0.0.1"),
    ] {
        let Some(out) = openssl(&[
            "verify",
            "-x509_strict",
            "-purpose",
            "sslserver",
            flag,
            name,
            "-CAfile",
            &ci,
            &tls,
        ]) else {
            return;
        };
        assert!(out.status.success(), "{flag} {name}: {}", text(&out));
    }
    let Some(out) = openssl(&[
        "verify",
        "-purpose",
        "sslserver",
        "-verify_hostname",
        "other.example.com",
        "-CAfile",
        &ci,
        &tls,
    ]) else {
        return;
    };
    assert!(!out.status.success(), "a foreign host name must not verify");
}

/// SGP.22 v2.5 §4.5.2.1.0 (EUM) name constraints mean "the EID STARTS WITH serialNumber"; an
/// RFC 5280 verifier such as OpenSSL compares whole RDNs and so rejects every SGP.22 eUICC
/// (the GSMA SGP.26 ones too) with exactly "permitted subtree violation", error 47. We
/// assert that this is the ONLY complaint and check the eUICC signature with openssl directly.
#[test]
fn openssl_finds_only_the_sgp22_name_constraint_difference_in_the_euicc_chain() {
    let (dir, _) = generated();
    let scratch = TempDir::new().unwrap();
    let ci = pem_of(dir.path(), Role::Ci, scratch.path());
    let eum = pem_of(dir.path(), Role::Eum, scratch.path());
    let euicc = pem_of(dir.path(), Role::Euicc, scratch.path());
    let Some(out) = openssl(&["verify", "-CAfile", &ci, "-untrusted", &eum, &euicc]) else {
        return;
    };
    let report = text(&out);
    let errors: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("error ") && l.contains(" at "))
        .collect();
    assert_eq!(
        errors,
        ["error 47 at 0 depth lookup: permitted subtree violation"],
        "{report}"
    );

    // Independent signature check of the eUICC certificate by the EUM public key.
    let euicc_cert = cert(dir.path(), Role::Euicc);
    let tbs = scratch.path().join("tbs.der");
    let sig = scratch.path().join("sig.der");
    let eum_pub = scratch.path().join("eum_pub.pem");
    fs::write(&tbs, euicc_cert.tbs_certificate.to_der().unwrap()).unwrap();
    fs::write(&sig, euicc_cert.signature.raw_bytes()).unwrap();
    let out = openssl(&[
        "x509",
        "-in",
        &eum,
        "-noout",
        "-pubkey",
        "-out",
        eum_pub.to_str().unwrap(),
    ])
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        eum_pub.to_str().unwrap(),
        "-signature",
        sig.to_str().unwrap(),
        tbs.to_str().unwrap(),
    ])
    .unwrap();
    assert!(out.status.success(), "eUICC signature: {}", text(&out));
    assert!(text(&out).contains("Verified OK"), "{}", text(&out));
    // And the SGP.22 reading of the constraint accepts it.
    assert!(profiles::eum_permits(
        &cert(dir.path(), Role::Eum),
        &euicc_cert.tbs_certificate.subject
    )
    .unwrap());
}

#[rstest]
#[case::ci(Role::Ci, &["X509v3 Basic Constraints: critical", "CA:TRUE", "X509v3 Certificate Policies: critical", "Policy: 2.23.146.1.2.1.0", "X509v3 Key Usage: critical", "Certificate Sign, CRL Sign", "Registered ID:2.999.1\n", "X509v3 Subject Key Identifier"][..])]
#[case::eum(Role::Eum, &["CA:TRUE, pathlen:0", "Policy: 2.23.146.1.2.1.2", "X509v3 Name Constraints: critical", "DirName:O = RSP Test EUM, serialNumber = 89049032\n", "Certificate Sign\n", "X509v3 Authority Key Identifier"][..])]
#[case::euicc(Role::Euicc, &["Policy: 2.23.146.1.2.1.1", "X509v3 Certificate Policies: critical", "Digital Signature", "serialNumber = 89049032123451234512345678901235", "Not After : Dec 31 23:59:59 9999 GMT"][..])]
#[case::dp_auth(Role::DpAuth, &["X509v3 Certificate Policies: critical", "Policy: 2.23.146.1.2.1.4", "Registered ID:2.999.10", "Digital Signature"][..])]
#[case::dp_pb(Role::DpPb, &["X509v3 Certificate Policies: critical", "Policy: 2.23.146.1.2.1.5", "Registered ID:2.999.10"][..])]
#[case::dp_tls(Role::DpTls, &["X509v3 Extended Key Usage: critical", "TLS Web Server Authentication, TLS Web Client Authentication", "X509v3 Certificate Policies: \n", "Policy: 2.23.146.1.2.1.3", "DNS:testsmdpplus1.example.com, DNS:localhost, IP Address:127.0.0.1, Registered ID:2.999.10"][..])]
fn openssl_shows_the_sgp22_profile_of(#[case] role: Role, #[case] expected: &[&str]) {
    let (dir, _) = generated();
    let Some(shown) = openssl_text(dir.path(), role) else {
        return;
    };
    for e in expected {
        assert!(shown.contains(e), "{role:?}: {e:?} missing in\n{shown}");
    }
    assert!(shown.contains("Signature Algorithm: ecdsa-with-SHA256"));
    assert!(shown.contains("ASN1 OID: prime256v1"));
    if role != Role::Ci {
        assert!(!shown.contains("CRL Sign") || role == Role::Ci);
    }
    let is_ca = matches!(role, Role::Ci | Role::Eum);
    assert_eq!(shown.contains("CA:TRUE"), is_ca, "{role:?}");
}

/// Verifies `cert`'s signature with the issuer's P-256 key (p256 crate).
fn p256_verifies(cert: &Certificate, issuer: &Certificate) -> bool {
    let point = issuer
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
    let sig = p256::ecdsa::Signature::from_der(cert.signature.raw_bytes()).unwrap();
    key.verify(&cert.tbs_certificate.to_der().unwrap(), &sig)
        .is_ok()
}

#[test]
fn every_signature_verifies_with_p256_and_aki_names_the_issuer_ski() {
    let (dir, _) = generated();
    let ski = |c: &Certificate| {
        c.tbs_certificate
            .get::<SubjectKeyIdentifier>()
            .unwrap()
            .unwrap()
            .1
             .0
    };
    for role in Role::ALL {
        let c = cert(dir.path(), role);
        let issuer = cert(dir.path(), profiles::issuer_role(role));
        assert!(p256_verifies(&c, &issuer), "{role:?} signature");
        assert_eq!(
            c.tbs_certificate.issuer, issuer.tbs_certificate.subject,
            "{role:?} issuer"
        );
        let aki = c.tbs_certificate.get::<AuthorityKeyIdentifier>().unwrap();
        if role == Role::Ci {
            // SGP.22 v2.5 §4.5.2.1.0: the CI certificate carries only the SKI.
            assert!(aki.is_none());
        } else {
            assert_eq!(
                aki.unwrap().1.key_identifier.unwrap(),
                ski(&issuer),
                "{role:?} AKI"
            );
        }
    }
    // A signature by the wrong key does not verify (the check can fail).
    assert!(!p256_verifies(
        &cert(dir.path(), Role::Euicc),
        &cert(dir.path(), Role::Ci)
    ));
}

#[test]
fn eum_constraint_permits_only_eids_under_its_prefix() {
    let (dir, _) = generated();
    let eum = cert(dir.path(), Role::Eum);
    let params = |eid| profiles::ProfileParams {
        eid,
        eum_eid_prefix: DEFAULT_EUM_EID_PREFIX,
        smdp_host: DEFAULT_SMDP_HOST,
    };
    let inside =
        profiles::subject(Role::Euicc, &params("89049032000000000000000000000016")).unwrap();
    let outside =
        profiles::subject(Role::Euicc, &params("89049033000000000000000000000016")).unwrap();
    assert!(profiles::eum_permits(&eum, &inside).unwrap());
    assert!(!profiles::eum_permits(&eum, &outside).unwrap());
}

#[test]
fn loads_a_generated_set_with_all_keys() {
    let (dir, summary) = generated();
    let pki = Pki::load(dir.path(), Curve::Nist).unwrap();
    assert_eq!(pki.ci_ski().unwrap(), summary.sets[0].ci_ski);
    assert_eq!(pki.eid().unwrap().as_deref(), Some(DEFAULT_EID));
    for (what, ck) in [
        ("ci", Some(&pki.ci)),
        ("eum", pki.eum.as_ref()),
        ("euicc", pki.euicc.as_ref()),
        ("dp_auth", Some(&pki.dp_auth)),
        ("dp_pb", Some(&pki.dp_pb)),
        ("dp_tls", Some(&pki.dp_tls)),
    ] {
        let ck = ck.unwrap_or_else(|| panic!("{what} missing"));
        assert_eq!(
            ck.secret_scalar().map(|s| s.len()),
            Some(keys::SCALAR_LEN),
            "{what}"
        );
    }
    // The loaded eUICC key signs what the certificate's key verifies.
    let euicc = pki.euicc.unwrap();
    let sig = euicc.key.unwrap().sign_der(b"euiccSigned1").unwrap();
    let cert = Certificate::from_der(&euicc.cert_der).unwrap();
    let point = cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
    assert!(vk
        .verify(
            b"euiccSigned1",
            &p256::ecdsa::Signature::from_der(&sig).unwrap()
        )
        .is_ok());
}

#[test]
fn openssl_reads_the_private_key_files() {
    let (dir, _) = generated();
    for role in Role::ALL {
        let key = dir.path().join(key_path(role, Curve::Nist));
        let Some(out) = openssl(&["ec", "-check", "-noout", "-in", key.to_str().unwrap()]) else {
            return;
        };
        assert!(out.status.success(), "{role:?}: {}", text(&out));
        assert!(text(&out).contains("EC Key valid."), "{}", text(&out));
    }
}

#[test]
fn refuses_a_key_file_that_belongs_to_another_certificate() {
    let (dir, _) = generated();
    fs::copy(
        dir.path().join(key_path(Role::DpPb, Curve::Nist)),
        dir.path().join(key_path(Role::DpAuth, Curve::Nist)),
    )
    .unwrap();
    let err = Pki::load(dir.path(), Curve::Nist).unwrap_err();
    assert!(matches!(err, PkiError::BadCertificate { .. }), "{err}");
}

/// The GSMA SGP.26 test set, copied into the repository with its provenance
/// (vectors/sgp26/README.md).
fn sgp26_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/sgp26")
}

#[test]
fn loads_the_gsma_sgp26_files_without_ci_eum_euicc_keys() {
    let dir = sgp26_dir();
    let pki = Pki::load(&dir, Curve::Nist).unwrap();
    assert_eq!(
        hex::encode_upper(pki.ci_ski().unwrap()),
        "F54172BDF98A95D65CBEB88A38A1C11D800A85C3"
    );
    assert!(pki.ci.key.is_none());
    assert!(pki.eum.is_none());
    assert!(pki.euicc.is_none());
    assert_eq!(pki.eid().unwrap(), None);
    for ck in [&pki.dp_auth, &pki.dp_pb, &pki.dp_tls] {
        assert!(ck.key.is_some());
        let c = Certificate::from_der(&ck.cert_der).unwrap();
        let ci = Certificate::from_der(&pki.ci.cert_der).unwrap();
        assert!(p256_verifies(&c, &ci));
    }
    // The SGP.26 DPauth key matches the published PK_ file.
    let pk = fs::read_to_string(dir.join("DPauth/PK_S_SM_DPauth_ECDSA_NIST.pem")).unwrap();
    assert_eq!(
        pki.dp_auth.key.unwrap().public_key_pem().unwrap().trim(),
        pk.trim()
    );
}

#[test]
fn loading_a_directory_without_the_ci_names_the_missing_file() {
    let dir = TempDir::new().unwrap();
    let err = Pki::load(dir.path(), Curve::Nist).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("CertificateIssuer/CERT_CI_ECDSA_NIST.der"),
        "{msg}"
    );
}

#[rstest]
#[case::bad_check_digits(PkiOptions { eid: "89049032123451234512345678901234".into(), ..PkiOptions::default() }, "check digits")]
#[case::prefix_not_of_eid(PkiOptions { eum_eid_prefix: "89049033".into(), ..PkiOptions::default() }, "does not start with it")]
#[case::prefix_not_decimal(PkiOptions { eum_eid_prefix: "8904x".into(), ..PkiOptions::default() }, "decimal")]
#[case::no_curve(PkiOptions { curves: vec![], ..PkiOptions::default() }, "no curve")]
#[case::bad_host(PkiOptions { smdp_host: "smdp host".into(), ..PkiOptions::default() }, "DNS name")]
fn rejects_unusable_options(#[case] opts: PkiOptions, #[case] says: &str) {
    let dir = TempDir::new().unwrap();
    let err = generate(dir.path(), &opts).unwrap_err();
    assert!(err.to_string().contains(says), "{err}");
    assert!(
        fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing written"
    );
}

#[test]
fn uses_the_given_eid_and_host() {
    let dir = TempDir::new().unwrap();
    let opts = PkiOptions {
        eid: complete_eid("890010120123412340123456789012").unwrap(),
        eum_eid_prefix: "89001012".into(),
        smdp_host: "smdp.test".into(),
        ..PkiOptions::default()
    };
    generate(dir.path(), &opts).unwrap();
    let pki = Pki::load(dir.path(), Curve::Nist).unwrap();
    assert_eq!(
        pki.eid().unwrap().as_deref(),
        Some("89001012012341234012345678901224")
    );
    let Some(tls) = openssl_text(dir.path(), Role::DpTls) else {
        return;
    };
    assert!(tls.contains("DNS:smdp.test, DNS:localhost"), "{tls}");
    let eum = openssl_text(dir.path(), Role::Eum).unwrap();
    assert!(eum.contains("serialNumber = 89001012\n"), "{eum}");
}

/// The openssl rendering of the eUICC certificate with dates, keys, serials, key identifiers
/// and signature masked.
#[test]
fn euicc_certificate_as_openssl_shows_it() {
    let (dir, _) = generated();
    let Some(shown) = openssl_text(dir.path(), Role::Euicc) else {
        return;
    };
    let mut masked: Vec<String> = Vec::new();
    for line in shown.lines() {
        let t = line.trim();
        let hexish = !t.is_empty() && t.chars().all(|c| c.is_ascii_hexdigit() || c == ':');
        let indent = &line[..line.len() - line.trim_start().len()];
        let m = if hexish {
            format!("{indent}<hex>")
        } else if let Some((k, _)) = line.split_once("Serial Number:") {
            format!("{k}Serial Number: <serial>")
        } else if let Some((k, _)) = line.split_once("Not Before:") {
            format!("{k}Not Before: <now>")
        } else {
            line.to_owned()
        };
        if masked.last() != Some(&m) || !m.ends_with("<hex>") {
            masked.push(m);
        }
    }
    insta::assert_snapshot!(masked.join("\n"));
}

/// Verifies `cert`'s signature with the issuer's brainpoolP256r1 key (bp256 crate).
fn bp256_verifies(cert: &Certificate, issuer: &Certificate) -> bool {
    use ecdsa_bp256::signature::Verifier as _;
    let point = issuer
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    let key = ecdsa_bp256::VerifyingKey::<bp256::BrainpoolP256r1>::from_sec1_bytes(point).unwrap();
    let sig =
        ecdsa_bp256::Signature::<bp256::BrainpoolP256r1>::from_der(cert.signature.raw_bytes())
            .unwrap();
    key.verify(&cert.tbs_certificate.to_der().unwrap(), &sig)
        .is_ok()
}

fn generated_both() -> (TempDir, PkiSummary) {
    let dir = TempDir::new().unwrap();
    let opts = PkiOptions {
        curves: vec![Curve::Nist, Curve::Brainpool],
        ..PkiOptions::default()
    };
    let summary = generate(dir.path(), &opts).unwrap();
    (dir, summary)
}

#[test]
fn generates_independent_nist_and_brainpool_sets() {
    let (dir, summary) = generated_both();
    assert_eq!(summary.sets.len(), 2);
    assert_ne!(summary.sets[0].ci_ski, summary.sets[1].ci_ski);
    assert!(summary.sets[1]
        .files
        .contains(&PathBuf::from("DPtls/CERT_S_SM_DP_TLS_BRP.der")));
    let nist = Pki::load(dir.path(), Curve::Nist).unwrap();
    let brp = Pki::load(dir.path(), Curve::Brainpool).unwrap();
    assert_eq!(brp.ci_ski().unwrap(), summary.sets[1].ci_ski);
    assert_eq!(nist.ci_ski().unwrap(), summary.sets[0].ci_ski);
    assert!(brp
        .euicc
        .unwrap()
        .key
        .is_some_and(|k| k.curve() == Curve::Brainpool));
}

#[test]
fn every_brainpool_signature_verifies_with_bp256() {
    let (dir, _) = generated_both();
    for role in Role::ALL {
        let c = cert_curve(dir.path(), role, Curve::Brainpool);
        let issuer = cert_curve(dir.path(), profiles::issuer_role(role), Curve::Brainpool);
        assert!(bp256_verifies(&c, &issuer), "{role:?}");
    }
    let euicc = cert_curve(dir.path(), Role::Euicc, Curve::Brainpool);
    let ci = cert_curve(dir.path(), Role::Ci, Curve::Brainpool);
    assert!(!bp256_verifies(&euicc, &ci), "wrong issuer key must fail");
}

#[rstest]
#[case::dp_auth(Role::DpAuth)]
#[case::dp_pb(Role::DpPb)]
#[case::dp_tls(Role::DpTls)]
#[case::eum(Role::Eum)]
fn openssl_verifies_brainpool_ci_issued_certificates(#[case] role: Role) {
    let (dir, _) = generated_both();
    let scratch = TempDir::new().unwrap();
    let ci = pem_of_curve(dir.path(), Role::Ci, Curve::Brainpool, scratch.path());
    let leaf = pem_of_curve(dir.path(), role, Curve::Brainpool, scratch.path());
    let Some(out) = openssl(&["verify", "-x509_strict", "-CAfile", &ci, &leaf]) else {
        return;
    };
    assert!(
        out.status.success(),
        "openssl verify {role:?}: {}",
        text(&out)
    );
    let shown = openssl_text_curve(dir.path(), role, Curve::Brainpool).unwrap();
    assert!(shown.contains("ASN1 OID: brainpoolP256r1"), "{shown}");
    assert!(
        shown.contains(&format!("Policy: {}", role.policy_oid())),
        "{shown}"
    );
}

#[test]
fn openssl_reads_the_brainpool_private_key_files() {
    let (dir, _) = generated_both();
    for role in Role::ALL {
        let key = dir.path().join(key_path(role, Curve::Brainpool));
        let Some(out) = openssl(&["ec", "-check", "-noout", "-in", key.to_str().unwrap()]) else {
            return;
        };
        assert!(out.status.success(), "{role:?}: {}", text(&out));
    }
}

#[test]
fn loads_the_gsma_sgp26_brainpool_files() {
    let dir = sgp26_dir();
    let pki = Pki::load(&dir, Curve::Brainpool).unwrap();
    let ci = Certificate::from_der(&pki.ci.cert_der).unwrap();
    for ck in [&pki.dp_auth, &pki.dp_pb, &pki.dp_tls] {
        assert!(ck
            .key
            .as_ref()
            .is_some_and(|k| k.curve() == Curve::Brainpool));
        assert!(bp256_verifies(
            &Certificate::from_der(&ck.cert_der).unwrap(),
            &ci
        ));
    }
    // A brainpool key file is refused where a NIST key is expected.
    let text = fs::read_to_string(dir.join("DPauth/SK_S_SM_DPauth_ECDSA_BRP.pem")).unwrap();
    assert!(matches!(
        KeyPair::from_sec1_pem(&text, Curve::Nist),
        Err(PkiError::BadKey { .. })
    ));
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/pki")
}

/// Regenerates the shipped set: `cargo test -p simlab-harness --lib
/// pki::tests::regenerate_vectors -- --ignored` (same as `simlab pki generate --out
/// vectors/pki --curve both`).
#[test]
#[ignore = "rewrites vectors/pki; run by hand"]
fn regenerate_vectors() {
    let opts = PkiOptions {
        curves: vec![Curve::Nist, Curve::Brainpool],
        ..PkiOptions::default()
    };
    let summary = generate(&vectors_dir(), &opts).unwrap();
    for set in &summary.sets {
        println!("{:?} CI SKI {}", set.curve, hex::encode_upper(&set.ci_ski));
    }
}

#[rstest]
#[case::nist(Curve::Nist)]
#[case::brainpool(Curve::Brainpool)]
fn the_shipped_vector_set_loads_and_chains(#[case] curve: Curve) {
    let pki = Pki::load(&vectors_dir(), curve).unwrap();
    assert_eq!(pki.eid().unwrap().as_deref(), Some(DEFAULT_EID));
    let parse = |ck: &CertAndKey| Certificate::from_der(&ck.cert_der).unwrap();
    let ci = parse(&pki.ci);
    let eum = parse(pki.eum.as_ref().unwrap());
    let verifies = |c: &Certificate, i: &Certificate| match curve {
        Curve::Nist => p256_verifies(c, i),
        Curve::Brainpool => bp256_verifies(c, i),
    };
    assert!(verifies(&ci, &ci));
    assert!(verifies(&eum, &ci));
    assert!(verifies(&parse(pki.euicc.as_ref().unwrap()), &eum));
    for ck in [&pki.dp_auth, &pki.dp_pb, &pki.dp_tls] {
        assert!(verifies(&parse(ck), &ci));
        assert!(ck.key.is_some());
    }
    assert!(pki.ci.key.is_some() && pki.eum.as_ref().unwrap().key.is_some());
}

#[rstest]
#[case("nist", &[Curve::Nist][..])]
#[case("BRP", &[Curve::Brainpool][..])]
#[case("brainpool", &[Curve::Brainpool][..])]
#[case("both", &[Curve::Nist, Curve::Brainpool][..])]
fn parses_the_cli_curve_argument(#[case] arg: &str, #[case] curves: &[Curve]) {
    assert_eq!(curves_from_arg(arg).unwrap(), curves);
}

#[test]
fn rejects_an_unknown_curve_argument() {
    let err = curves_from_arg("secp384r1").unwrap_err();
    assert!(
        err.to_string().contains("expected nist, brainpool or both"),
        "{err}"
    );
}

#[test]
fn summary_names_each_curve_and_its_ci_ski() {
    let (_dir, summary) = generated();
    let shown = summary.to_string();
    assert!(
        shown.contains(&format!(
            "NIST: CI SKI {}",
            hex::encode_upper(&summary.sets[0].ci_ski)
        )),
        "{shown}"
    );
    assert!(
        shown.contains("EID 89049032123451234512345678901235"),
        "{shown}"
    );
}

proptest::proptest! {
    #[test]
    fn key_file_parsing_never_panics(text in "\\PC{0,300}") {
        let _ = KeyPair::from_sec1_pem(&text, Curve::Nist);
        let framed = format!("-----BEGIN EC PRIVATE KEY-----\n{text}\n-----END EC PRIVATE KEY-----\n");
        let _ = KeyPair::from_sec1_pem(&framed, Curve::Brainpool);
    }

    #[test]
    fn loading_garbage_certificates_fails_cleanly(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join(cert_path(Role::Ci, Curve::Nist));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &bytes).unwrap();
        proptest::prop_assert!(Pki::load(dir.path(), Curve::Nist).is_err());
    }
}

#[test]
fn asking_for_a_curve_twice_generates_it_once() {
    let dir = TempDir::new().unwrap();
    let opts = PkiOptions {
        curves: vec![Curve::Nist, Curve::Nist],
        ..PkiOptions::default()
    };
    assert_eq!(generate(dir.path(), &opts).unwrap().sets.len(), 1);
}

/// Adds the operator CA and BOSS client files to the shipped set WITHOUT touching its SGP.26
/// certificates (other tests and snapshots depend on them): `cargo test -p simlab-harness
/// --lib pki::tests::regenerate_operator_vectors -- --ignored`.
#[test]
#[ignore = "rewrites vectors/pki/Operator; run by hand"]
fn regenerate_operator_vectors() {
    let files = operator::generate(&vectors_dir(), &PkiValidity::default()).unwrap();
    println!("{files:?}");
}

/// Adds the BOSS TLS server certificate (the endpoint of HandleDownloadProgressInfo) to the
/// shipped operator files, issued by the shipped operator CA, leaving everything else as it
/// is: `cargo test -p simlab-harness --lib pki::tests::regenerate_operator_server_vector --
/// --ignored`.
#[test]
#[ignore = "rewrites vectors/pki/Operator/*BOSS_SERVER*; run by hand"]
fn regenerate_operator_server_vector() {
    let files = operator::generate_server(&vectors_dir(), &PkiValidity::default()).unwrap();
    println!("{files:?}");
}

#[test]
fn the_shipped_operator_server_certificate_chains_to_the_operator_ca_and_names_loopback() {
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};
    let dir = vectors_dir();
    let ca = Certificate::from_der(&operator::load_ca(&dir).unwrap()).unwrap();
    let identity = OperatorIdentity::load_server(&dir).unwrap();
    let server = Certificate::from_der(&identity.cert_der).unwrap();
    assert!(p256_verifies(&server, &ca));
    let (_, eku) = server
        .tbs_certificate
        .get::<ExtendedKeyUsage>()
        .unwrap()
        .unwrap();
    assert_eq!(eku.0, vec![profiles::oid::ID_KP_SERVER_AUTH]);
    let (_, san) = server
        .tbs_certificate
        .get::<SubjectAltName>()
        .unwrap()
        .unwrap();
    let names: Vec<String> = san
        .0
        .iter()
        .map(|n| match n {
            GeneralName::DnsName(d) => d.to_string(),
            GeneralName::IpAddress(ip) => hex::encode(ip.as_bytes()),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        ["localhost", "7f000001", "00000000000000000000000000000001"]
    );
}

#[test]
fn the_shipped_operator_client_certificate_chains_to_the_operator_ca() {
    let dir = vectors_dir();
    let ca = Certificate::from_der(&operator::load_ca(&dir).unwrap()).unwrap();
    let identity = OperatorIdentity::load(&dir).unwrap();
    let client = Certificate::from_der(&identity.cert_der).unwrap();
    assert!(p256_verifies(&ca, &ca));
    assert!(p256_verifies(&client, &ca));
    assert_eq!(client.tbs_certificate.issuer, ca.tbs_certificate.subject);
    // Not issued by the RSP CI: an eUICC-side or SM-DP+ certificate is no operator.
    let ci = Certificate::from_der(&Pki::load(&dir, Curve::Nist).unwrap().ci.cert_der).unwrap();
    assert!(!p256_verifies(&client, &ci));
}

#[test]
fn generate_writes_the_operator_files_and_they_load() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(dir.path(), &PkiOptions::default()).unwrap();
    assert_eq!(summary.operator.len(), 9);
    assert!(summary.to_string().contains("ES2+ mutual TLS"));
    let identity = OperatorIdentity::load(dir.path()).unwrap();
    let server = OperatorIdentity::load_server(dir.path()).unwrap();
    let ca = Certificate::from_der(&operator::load_ca(dir.path()).unwrap()).unwrap();
    for cert in [&identity.cert_der, &server.cert_der] {
        assert!(p256_verifies(&Certificate::from_der(cert).unwrap(), &ca));
    }
}

#[test]
fn a_missing_operator_identity_is_named_with_how_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let e = OperatorIdentity::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("CERT_BOSS_CLIENT_NIST.der"), "{e}");
    assert!(e.contains("simlab pki generate"), "{e}");
}
