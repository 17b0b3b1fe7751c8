//! More eUICCs for flows that need several (a watch and a band, an old and a new phone, the
//! load benchmark's thousand watches): an eUICC identity is an EID and an eUICC certificate
//! with its key, issued by the test PKI's EUM (SGP.22 v2.5 §4.5.2.1.0, eUICC certificate
//! profile; the EID under the EUM's permitted prefix). Written next to a card definition that
//! is `vectors/cards/euicc.toml` with that identity.

use crate::defaults::Files;
use crate::pki::{self, profiles, KeyPair, Pki, Role};
use anyhow::Context as _;
use rand_core::{OsRng, RngCore};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use x509_cert::time::Validity;

/// An eUICC's identity.
#[derive(Debug, Clone)]
pub struct EuiccIdentity {
    pub eid: String,
    pub certificate_der: Vec<u8>,
    pub key_pem: String,
}

/// The EID with serial `n` under the PKI's EUM prefix (SGP.29: 30 digits + 2 check digits).
pub fn eid_for(prefix: &str, n: u64) -> anyhow::Result<String> {
    let body = format!("{prefix}{:0>width$}", n, width = 30 - prefix.len());
    Ok(pki::complete_eid(&body)?)
}

/// Issues an eUICC certificate for `eid` with a fresh key, signed by the EUM of `pki` (which
/// must have the EUM's private key, as simlab's generated PKI does).
pub fn mint(pki: &Pki, eid: &str) -> anyhow::Result<EuiccIdentity> {
    use der::Decode as _;
    let eum = pki
        .eum
        .as_ref()
        .context("the PKI has no EUM certificate to issue eUICC certificates with")?;
    let eum_key = eum.key.as_ref().context("the PKI has no EUM private key")?;
    let eum_cert = x509_cert::Certificate::from_der(&eum.cert_der)?;
    let eum_ski = eum
        .subject_key_id()?
        .context("the EUM certificate has no SubjectKeyIdentifier")?;
    let prefix = profiles::attr_value(
        &eum_cert.tbs_certificate.subject,
        profiles::oid::AT_SERIAL_NUMBER,
    )
    .unwrap_or_else(|| pki::DEFAULT_EUM_EID_PREFIX.to_owned());
    let params = profiles::ProfileParams {
        eid,
        eum_eid_prefix: &prefix,
        smdp_host: pki::DEFAULT_SMDP_HOST,
    };
    let key = KeyPair::generate(pki.curve)?;
    let spki = key.spki()?;
    let ski = profiles::key_identifier(&spki);
    let mut serial = vec![0u8; 8];
    OsRng.fill_bytes(&mut serial);
    // RFC 5280 §4.1.2.2: positive, no leading zero byte.
    serial[0] = (serial[0] & 0x7F) | 0x01;
    let req = profiles::CertRequest {
        serial,
        issuer: eum_cert.tbs_certificate.subject.clone(),
        subject: profiles::subject(Role::Euicc, &params)?,
        validity: Validity {
            not_before: profiles::rfc5280_time(SystemTime::now())?,
            not_after: profiles::NO_EXPIRY,
        },
        spki,
        extensions: profiles::extensions(Role::Euicc, &params, &ski, &eum_ski)?,
    };
    Ok(EuiccIdentity {
        eid: eid.to_owned(),
        certificate_der: profiles::issue(req, eum_key)?,
        key_pem: key.to_sec1_pem()?,
    })
}

/// Writes `identity` into `dir` (`CERT_EUICC.der`, `SK_EUICC.pem`, the EUM and CI
/// certificates of `pki` — built in or on disk — and `euicc.toml`) as a card definition like
/// `vectors/cards/euicc.toml`; returns the definition's path.
pub fn write_card(
    identity: &EuiccIdentity,
    pki: &Files,
    dir: &Path,
    name: &str,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("CERT_EUICC.der"), &identity.certificate_der)?;
    std::fs::write(dir.join("SK_EUICC.pem"), &identity.key_pem)?;
    for (role, file) in [(Role::Eum, "CERT_EUM.der"), (Role::Ci, "CERT_CI.der")] {
        let rel = pki::cert_path(role, pki::Curve::Nist);
        let der = pki
            .read(&rel)
            .with_context(|| format!("reading {}", pki.location(&rel).display()))?;
        std::fs::write(dir.join(file), der)?;
    }
    let toml = format!(
        "# {name}: an eUICC minted by simlab (harness/src/device/identity.rs) under the test EUM.\n\
         [card]\nname = {name:?}\n\n[euicc]\neid = {eid:?}\ncertificate = \"CERT_EUICC.der\"\n\
         private_key = \"SK_EUICC.pem\"\neum_certificate = \"CERT_EUM.der\"\n\
         ci_certificates = [\"CERT_CI.der\"]\n\
         default_smdp_address = \"testsmdpplus1.example.com\"\nmax_profiles = 8\n",
        eid = identity.eid,
    );
    let path = dir.join("euicc.toml");
    std::fs::write(&path, toml)?;
    Ok(path)
}

/// A UICC of its own for a flow's device: a card definition like `vectors/cards/uicc.toml`
/// with ICCID `{iccid_prefix}{n:07}` and its Luhn digit (ITU-T E.118), the given IMSI and
/// MSISDN, and fresh random Milenage K and OPc (the network provisions it as a new subscriber).
/// Written to `dir/uicc-{n}.toml`; returns the path.
pub fn write_fresh_uicc(
    dir: &Path,
    name: &str,
    iccid_prefix: &str,
    n: u64,
    imsi: &str,
    msisdn: &str,
) -> anyhow::Result<PathBuf> {
    let mut k = [0u8; 16];
    let mut opc = [0u8; 16];
    OsRng.fill_bytes(&mut k);
    OsRng.fill_bytes(&mut opc);
    let body = format!("{iccid_prefix}{n:07}");
    let check = simlab_emulator::saip::luhn_check_digit(&body)
        .map_err(|e| anyhow::anyhow!("ICCID {body}: {e}"))?;
    let path = dir.join(format!("uicc-{n}.toml"));
    let text = format!(
        "[card]\nname = \"{name}\"\niccid = \"{body}{check}\"\n\n[usim]\n\
         aid = \"A0000000871002FF49FF0589\"\nimsi = \"{imsi}\"\nmsisdn = \"{msisdn}\"\n\
         mnc_length = 2\n\n[usim.aka]\nalgorithm = \"milenage\"\nk = \"{}\"\nopc = \"{}\"\n\n\
         [pins]\npin1 = \"0000\"\npin1_enabled = false\npuk1 = \"11111111\"\npin2 = \"9999\"\n\
         puk2 = \"22222222\"\nadm1 = \"55555555\"\n",
        hex::encode(k),
        hex::encode(opc)
    );
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{InProcess, Transport as _};

    #[test]
    fn a_minted_euicc_reports_its_eid_and_its_chain_verifies() {
        let pki = Pki::load_from(&Files::pki(), pki::Curve::Nist).unwrap();
        let eid = eid_for("89049032", 42).unwrap();
        assert_eq!(eid.len(), 32);
        pki::validate_eid(&eid).unwrap();
        let id = mint(&pki, &eid).unwrap();
        let ci =
            simlab_emulator::euicc::cert::TrustedCi::from_certificate(&pki.ci.cert_der).unwrap();
        let verified = crate::smdp::certs::verify_euicc_chain(
            &id.certificate_der,
            &pki.eum.as_ref().unwrap().cert_der,
            &ci,
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(verified.eid, eid);
        let dir = tempfile::tempdir().unwrap();
        let card = write_card(&id, &Files::pki(), dir.path(), "watch").unwrap();
        let mut t = InProcess::new(crate::cards::load_card(&card, None).unwrap());
        t.reset().unwrap();
        let mut es10 = crate::lpa::Es10Client::open(t).unwrap();
        assert_eq!(es10.eid().unwrap(), eid);
    }
}
