//! Test-side eUICC for the SM-DP+ tests: signs and checks exactly what an SGP.22 v2.5 eUICC
//! does in AuthenticateServer (§5.7.13), PrepareDownload (§5.7.5), the bound profile package
//! (§5.5) and notifications (§5.7.10), with the shipped test PKI's eUICC key. Built only from
//! `simlab_emulator::rsp` and BER-TLV, independent of the SM-DP+ code under test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use simlab_emulator::rsp::download::{hash_cc, signature_field, InitialiseSecureChannel};
use simlab_emulator::rsp::ecdsa::{CertificateParts, SigningKey, VerifyingKey};
use simlab_emulator::rsp::ecka::OneTimeKeyPair;
use simlab_emulator::rsp::kdf::derive_session_keys;
use simlab_emulator::rsp::{BspReader, ReplaceSessionKeys};
use simlab_emulator::tlv::{self, Tlv};
use simlab_harness::es9p::{
    AuthenticateClientRequest, AuthenticateClientResponse, Es9Plus, Es9pError,
    GetBoundProfilePackageRequest, HandleNotificationRequest, InitiateAuthenticationRequest,
    InitiateAuthenticationResponse,
};
use simlab_harness::pki::{self, Curve, Pki};
use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn pki_dir() -> PathBuf {
    repo().join("vectors/pki")
}

pub fn templates_dir() -> PathBuf {
    repo().join("vectors/profiles")
}

/// A template that has EF.MSISDN (personalised fully) — TS.48 v4 SAIP 2.3 with BER-TLV files.
pub const TEMPLATE: &str = "TS48v4_SAIP2.3_BERTLV";

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn children(t: &Tlv<'_>) -> Vec<(u32, Vec<u8>, Vec<u8>)> {
    t.children()
        .map(|c| {
            let c = c.unwrap();
            (c.tag, c.value.to_vec(), c.raw.to_vec())
        })
        .collect()
}

fn child(t: &Tlv<'_>, tag: u32) -> Vec<u8> {
    children(t)
        .into_iter()
        .find(|c| c.0 == tag)
        .unwrap_or_else(|| panic!("no {tag:x}"))
        .1
}

/// What one download produced on the eUICC side.
#[derive(Debug, Clone)]
pub struct Downloaded {
    pub transaction_id: Vec<u8>,
    pub metadata: Vec<u8>,
    pub upp: Vec<u8>,
    pub replaced_keys: bool,
    pub segments_86: usize,
}

/// How to misbehave, for the negative tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    pub tamper_signature1: bool,
    pub tamper_signature2: bool,
}

#[derive(Debug)]
pub struct FakeEuicc {
    pub key: SigningKey,
    pub cert: Vec<u8>,
    pub eum: Vec<u8>,
    pub ci_ski: Vec<u8>,
    pub ci_key: VerifyingKey,
    pub eid: [u8; 16],
    pub faults: Faults,
    pub seq: i64,
}

impl FakeEuicc {
    pub fn from_pki(dir: &Path, curve: Curve) -> Self {
        let p = Pki::load(dir, curve).unwrap();
        let pem =
            std::fs::read_to_string(dir.join(pki::key_path(pki::Role::Euicc, curve))).unwrap();
        let eid = p.eid().unwrap().unwrap();
        Self {
            key: SigningKey::from_pem(&pem).unwrap(),
            cert: p.euicc.as_ref().unwrap().cert_der.clone(),
            eum: p.eum.as_ref().unwrap().cert_der.clone(),
            ci_ski: p.ci_ski().unwrap(),
            ci_key: VerifyingKey::from_certificate_der(&p.ci.cert_der).unwrap(),
            eid: hex::decode(eid).unwrap().try_into().unwrap(),
            faults: Faults::default(),
            seq: 0,
        }
    }

    pub fn nist() -> Self {
        Self::from_pki(&pki_dir(), Curve::Nist)
    }

    /// An eUICC of the shipped NIST PKI with its own EID and key (a certificate newly issued
    /// by the PKI's EUM).
    pub fn nist_with_eid(eid: &str) -> Self {
        let p = Pki::load(&pki_dir(), Curve::Nist).unwrap();
        let issued = p.issue_euicc(eid).unwrap();
        let pem = issued.key.as_ref().unwrap().to_sec1_pem().unwrap();
        Self {
            key: SigningKey::from_pem(&pem).unwrap(),
            cert: issued.cert_der,
            eid: hex::decode(eid).unwrap().try_into().unwrap(),
            ..Self::nist()
        }
    }

    /// `n` eUICCs with distinct EIDs (`89049032 0…0 i` with check digits).
    pub fn many(n: usize) -> Vec<Self> {
        (0..n)
            .map(|i| {
                let eid = pki::complete_eid(&format!("8904903200000000000000{i:08}")).unwrap();
                Self::nist_with_eid(&eid)
            })
            .collect()
    }

    pub fn eid_string(&self) -> String {
        hex::encode(self.eid)
    }

    /// `EUICCInfo1`: svn 2.5.0 and this eUICC's CI for verification and signing.
    pub fn euicc_info1(&self) -> Vec<u8> {
        let pkid = tlv::encode(0x04, &self.ci_ski);
        tlv::encode_constructed(
            0xBF20,
            &[
                &h("82 03 020500"),
                &tlv::encode(0xA9, &pkid),
                &tlv::encode(0xAA, &pkid),
            ],
        )
    }

    pub fn initiate_request(
        &self,
        challenge: &[u8],
        address: &str,
    ) -> InitiateAuthenticationRequest {
        InitiateAuthenticationRequest {
            header: None,
            euicc_challenge: challenge.to_vec(),
            euicc_info1: self.euicc_info1(),
            smdp_address: address.to_owned(),
        }
    }

    /// ES10b.AuthenticateServer: checks DPauth → CI and serverSignature1 over serverSigned1,
    /// the euiccChallenge; answers `BF38 A0 { euiccSigned1, euiccSignature1, certs }`.
    pub fn authenticate_server(
        &self,
        resp: &InitiateAuthenticationResponse,
        challenge: &[u8],
        matching_id: Option<&str>,
    ) -> Vec<u8> {
        let parts = CertificateParts::parse(&resp.server_certificate).unwrap();
        self.ci_key.verify_der(parts.tbs, parts.signature).unwrap();
        let dp_auth = VerifyingKey::from_certificate_der(&resp.server_certificate).unwrap();
        let sig = tlv::parse_one(&resp.server_signature1).unwrap();
        assert_eq!(sig.tag, 0x5F37);
        dp_auth.verify(&resp.server_signed1, sig.value).unwrap();
        assert_eq!(
            resp.euicc_ci_pkid_to_be_used,
            tlv::encode(0x04, &self.ci_ski)
        );
        let signed1 = tlv::parse_one(&resp.server_signed1).unwrap();
        assert_eq!(child(&signed1, 0x80), resp.transaction_id);
        assert_eq!(child(&signed1, 0x81), challenge);
        let address = child(&signed1, 0x83);
        let server_challenge = child(&signed1, 0x84);
        // ctxParamsForCommonAuthentication: matchingId [0], deviceInfo [1] { tac [0],
        // deviceCapabilities [1] (empty, as real LPAs send it), no IMEI }.
        let mut ctx = Vec::new();
        if let Some(m) = matching_id {
            ctx.extend(tlv::encode(0x80, m.as_bytes()));
        }
        ctx.extend(tlv::encode(0xA1, &h("80 04 35290611 A1 00")));
        let euicc_signed1 = tlv::encode_constructed(
            0x30,
            &[
                &tlv::encode(0x80, &resp.transaction_id),
                &tlv::encode(0x83, &address),
                &tlv::encode(0x84, &server_challenge),
                &h("BF22 0D 81 03 020300 82 03 020500 83 01 00"),
                &tlv::encode(0xA0, &ctx),
            ],
        );
        let mut signature1 = self.key.sign(&euicc_signed1).to_vec();
        if self.faults.tamper_signature1 {
            signature1[10] ^= 1;
        }
        let ok = [
            euicc_signed1,
            signature_field(&signature1),
            self.cert.clone(),
            self.eum.clone(),
        ]
        .concat();
        tlv::encode(0xBF38, &tlv::encode(0xA0, &ok))
    }

    /// ES10b.PrepareDownload: checks DPpb → CI and smdpSignature2; answers
    /// `BF21 A0 { euiccSigned2, euiccSignature2 }` and keeps the one-time key.
    pub fn prepare_download(
        &self,
        resp: &AuthenticateClientResponse,
        euicc_signature1: &[u8],
        confirmation_code: Option<&str>,
    ) -> (Vec<u8>, OneTimeKeyPair) {
        let parts = CertificateParts::parse(&resp.smdp_certificate).unwrap();
        self.ci_key.verify_der(parts.tbs, parts.signature).unwrap();
        let dp_pb = VerifyingKey::from_certificate_der(&resp.smdp_certificate).unwrap();
        let sig2 = tlv::parse_one(&resp.smdp_signature2).unwrap();
        let covered = [resp.smdp_signed2.clone(), signature_field(euicc_signature1)].concat();
        dp_pb.verify(&covered, sig2.value).unwrap();
        let signed2 = tlv::parse_one(&resp.smdp_signed2).unwrap();
        let tx = child(&signed2, 0x80);
        assert_eq!(tx, resp.transaction_id);
        let cc_required = child(&signed2, 0x01) != [0];
        let ot = OneTimeKeyPair::generate(dp_pb.curve(), &mut rand::thread_rng()).unwrap();
        let mut fields = vec![
            tlv::encode(0x80, &tx),
            tlv::encode(0x5F49, &ot.public_key()),
        ];
        if let (true, Some(code)) = (cc_required, confirmation_code) {
            fields.push(tlv::encode(0x04, &hash_cc(code.as_bytes(), &tx)));
        }
        let euicc_signed2 = tlv::encode(0x30, &fields.concat());
        let mut signature2 = self
            .key
            .sign(&[euicc_signed2.as_slice(), &resp.smdp_signature2].concat())
            .to_vec();
        if self.faults.tamper_signature2 {
            signature2[3] ^= 0x40;
        }
        let ok = [euicc_signed2, signature_field(&signature2)].concat();
        (tlv::encode(0xBF21, &tlv::encode(0xA0, &ok)), ot)
    }

    /// Opens a bound profile package as the eUICC does: BF23 signature with the DPpb key, ECKA,
    /// KDF with this EID, every segment MAC-checked and decrypted in order.
    pub fn open_bpp(
        &self,
        bpp: &[u8],
        ot: &OneTimeKeyPair,
        dp_pb_cert: &[u8],
    ) -> (Vec<u8>, Vec<u8>, bool, usize) {
        let outer = tlv::parse_one(bpp).unwrap();
        assert_eq!(outer.tag, 0xBF36);
        let parts: Vec<Tlv<'_>> = outer.children().map(Result::unwrap).collect();
        let isc = InitialiseSecureChannel::parse(parts[0].raw).unwrap();
        VerifyingKey::from_certificate_der(dp_pb_cert)
            .unwrap()
            .verify(&isc.signature_input(&ot.public_key()), isc.smdp_sign)
            .unwrap();
        let shs = ot.shared_secret(isc.smdp_otpk).unwrap();
        let keys = derive_session_keys(
            shs.as_bytes(),
            isc.key_type,
            isc.key_len,
            isc.host_id,
            &self.eid,
        )
        .unwrap();
        let mut reader = BspReader::new(&keys);
        let mut metadata = Vec::new();
        let mut upp = Vec::new();
        let mut replaced = false;
        let mut n86 = 0;
        for part in &parts[1..] {
            for seg in part.children().map(Result::unwrap) {
                match (part.tag, seg.tag) {
                    (0xA0, 0x87) => {
                        assert_eq!(reader.open_expecting(0x87, seg.raw).unwrap(), h("BF24 00"));
                    }
                    (0xA1, 0x88) => metadata.extend(reader.open_expecting(0x88, seg.raw).unwrap()),
                    (0xA2, 0x87) => {
                        let rsk = ReplaceSessionKeys::from_der(
                            &reader.open_expecting(0x87, seg.raw).unwrap(),
                        )
                        .unwrap();
                        reader.replace_session_keys(&rsk.keys);
                        replaced = true;
                    }
                    (0xA3, 0x86) => {
                        upp.extend(reader.open_expecting(0x86, seg.raw).unwrap());
                        n86 += 1;
                    }
                    other => panic!("unexpected segment {other:x?}"),
                }
            }
        }
        (metadata, upp, replaced, n86)
    }

    fn notification_metadata(
        &mut self,
        event_bits: &str,
        address: &str,
        iccid_ef: &[u8],
    ) -> Vec<u8> {
        self.seq += 1;
        tlv::encode_constructed(
            0xBF2F,
            &[
                &tlv::encode(0x80, &[self.seq as u8]),
                &tlv::encode(0x81, &h(event_bits)),
                &tlv::encode(0x0C, address.as_bytes()),
                &tlv::encode(0x5A, iccid_ef),
            ],
        )
    }

    /// `ProfileInstallationResult` (BF37) signed over its BF27.
    pub fn installation_result(
        &mut self,
        tx: &[u8],
        address: &str,
        iccid_ef: &[u8],
        success: bool,
    ) -> Vec<u8> {
        let metadata = self.notification_metadata("0780", address, iccid_ef);
        let result = if success {
            tlv::encode(0xA0, &h("4F 10 A0000005591010FFFFFFFF8900001100 04 00"))
        } else {
            // errorResult: bppCommandId loadProfileElements(5), errorReason
            // installFailedDueToPEProcessingError(12).
            tlv::encode(0xA1, &h("80 01 05 81 01 0C"))
        };
        let data = tlv::encode_constructed(
            0xBF27,
            &[
                &tlv::encode(0x80, tx),
                &metadata,
                &h("06 03 88370A"),
                &tlv::encode(0xA2, &result),
            ],
        );
        let sig = self.key.sign(&data);
        tlv::encode_constructed(0xBF37, &[&data, &signature_field(&sig)])
    }

    /// `OtherSignedNotification` for enable ("0640"), disable ("0520") or delete ("0410").
    pub fn other_notification(
        &mut self,
        event_bits: &str,
        address: &str,
        iccid_ef: &[u8],
    ) -> Vec<u8> {
        let tbs = self.notification_metadata(event_bits, address, iccid_ef);
        let sig = self.key.sign(&tbs);
        tlv::encode_constructed(0x30, &[&tbs, &signature_field(&sig), &self.cert, &self.eum])
    }

    /// `CancelSessionResponse` (BF41 A0) signed over euiccCancelSessionSigned.
    pub fn cancel_session_response(&self, tx: &[u8], smdp_oid: &[u8], reason: u8) -> Vec<u8> {
        let signed = tlv::encode_constructed(
            0x30,
            &[
                &tlv::encode(0x80, tx),
                &tlv::encode(0x81, smdp_oid),
                &tlv::encode(0x82, &[reason]),
            ],
        );
        let sig = self.key.sign(&signed);
        tlv::encode(
            0xBF41,
            &tlv::encode(0xA0, &[signed, signature_field(&sig)].concat()),
        )
    }
}

/// The state of a download stopped after authenticateClient.
#[derive(Debug)]
pub struct Authenticated {
    pub transaction_id: Vec<u8>,
    pub euicc_signature1: Vec<u8>,
    pub response: AuthenticateClientResponse,
}

/// initiateAuthentication + AuthenticateServer + authenticateClient.
pub fn authenticate(
    client: &impl Es9Plus,
    euicc: &FakeEuicc,
    address: &str,
    matching_id: Option<&str>,
) -> Result<Authenticated, Es9pError> {
    let challenge: [u8; 16] = rand::random();
    let init = client.initiate_authentication(&euicc.initiate_request(&challenge, address))?;
    let asr = euicc.authenticate_server(&init, &challenge, matching_id);
    let parsed = tlv::parse_one(&asr).unwrap();
    let ok = tlv::parse_one(parsed.value).unwrap();
    let sig1 = ok
        .children()
        .map(Result::unwrap)
        .find(|c| c.tag == 0x5F37)
        .unwrap()
        .value
        .to_vec();
    let response = client.authenticate_client(&AuthenticateClientRequest {
        header: None,
        transaction_id: init.transaction_id.clone(),
        authenticate_server_response: asr,
    })?;
    Ok(Authenticated {
        transaction_id: init.transaction_id,
        euicc_signature1: sig1,
        response,
    })
}

/// A whole download through the ES9+ client, the package opened by the fake eUICC.
pub fn download(
    client: &impl Es9Plus,
    euicc: &FakeEuicc,
    address: &str,
    matching_id: Option<&str>,
    confirmation_code: Option<&str>,
) -> Result<Downloaded, Es9pError> {
    let auth = authenticate(client, euicc, address, matching_id)?;
    let (pdr, ot) =
        euicc.prepare_download(&auth.response, &auth.euicc_signature1, confirmation_code);
    let bpp = client.get_bound_profile_package(&GetBoundProfilePackageRequest {
        header: None,
        transaction_id: auth.transaction_id.clone(),
        prepare_download_response: pdr,
    })?;
    assert_eq!(bpp.transaction_id, auth.transaction_id);
    let (metadata, upp, replaced_keys, segments_86) = euicc.open_bpp(
        &bpp.bound_profile_package,
        &ot,
        &auth.response.smdp_certificate,
    );
    assert_eq!(
        metadata, auth.response.profile_metadata,
        "A1 carries the profile metadata"
    );
    Ok(Downloaded {
        transaction_id: auth.transaction_id,
        metadata,
        upp,
        replaced_keys,
        segments_86,
    })
}

/// Sends a notification through the client.
pub fn notify(client: &impl Es9Plus, pending: Vec<u8>) -> Result<(), Es9pError> {
    client.handle_notification(&HandleNotificationRequest {
        header: None,
        pending_notification: pending,
    })
}

/// The (subject, reason) of an ES9+ failure.
pub fn codes_of<T: std::fmt::Debug>(r: Result<T, Es9pError>) -> (String, String) {
    match r {
        Err(e) => {
            let (s, r) = e
                .status_code()
                .unwrap_or_else(|| panic!("not a function failure: {e}"));
            (s.to_owned(), r.to_owned())
        }
        Ok(v) => panic!("expected a failure, got {v:?}"),
    }
}

pub fn pair(s: &str, r: &str) -> (String, String) {
    (s.to_owned(), r.to_owned())
}
