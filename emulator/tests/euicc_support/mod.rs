//! Test support for the eUICC tests: the card of `vectors/cards/euicc.toml`, an LPA that
//! speaks ES10 over APDUs the way real LPAs do (channel 1, STORE DATA segments of 120 bytes,
//! 61xx + GET RESPONSE), and an SM-DP+ played by test code with the generated test PKI
//! (`vectors/pki`): it signs serverSigned1 (DPauth) and smdpSigned2 (DPpb) and binds, encrypts
//! and MACs the package with the crate's `rsp` builders.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use simlab_emulator::rsp::download::{build_initialise_secure_channel, hash_cc, signature_field};
use simlab_emulator::rsp::es10::*;
use simlab_emulator::rsp::kdf::SessionKeys;
use simlab_emulator::rsp::scp03t::{
    TAG_CONFIGURE_ISDP_OR_REPLACE_KEYS, TAG_LOAD_PROFILE_ELEMENTS, TAG_STORE_METADATA,
};
use simlab_emulator::rsp::{
    derive_session_keys, BspWriter, OneTimeKeyPair, ReplaceSessionKeys, SigningKey, VerifyingKey,
};
use simlab_emulator::{CardDefinition, Uicc};
use std::path::{Path, PathBuf};

pub const EID: &str = "89049032123451234512345678901235";
pub const SMDP_ADDRESS: &str = "testsmdpplus1.example.com";
pub const ISD_R: &str = "A0000005591010FFFFFFFF8900000100";
pub const K: &str = "000102030405060708090a0b0c0d0e0f";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn pki(rel: &str) -> Vec<u8> {
    std::fs::read(root().join("vectors/pki").join(rel)).unwrap()
}

pub fn pki_text(rel: &str) -> String {
    String::from_utf8(pki(rel)).unwrap()
}

/// The TS.48 packages shipped in vectors/profiles.
pub fn ts48_packages() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(root().join("vectors/profiles"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "der"))
        .map(|p| {
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

pub fn ts48(name: &str) -> Vec<u8> {
    std::fs::read(root().join("vectors/profiles").join(format!("{name}.der"))).unwrap()
}

/// The eUICC of vectors/cards/euicc.toml, powered on, with a seeded random source.
pub fn card() -> Uicc {
    let def = CardDefinition::load(&root().join("vectors/cards/euicc.toml")).unwrap();
    let (atr, state) = def.build().unwrap();
    let mut c = Uicc::new(atr, state);
    c.seed_rng(7);
    c.power_on();
    c
}

/// A card whose state lives in `dir`.
pub fn stored_card(dir: &Path) -> Uicc {
    let def = CardDefinition::load(&root().join("vectors/cards/euicc.toml")).unwrap();
    let (atr, state) = def.build().unwrap();
    let store = simlab_emulator::store::StateStore::open(dir).unwrap();
    let mut c = Uicc::with_store(atr, state, store).unwrap();
    c.seed_rng(7);
    c.power_on();
    c
}

pub fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

/// CLA for a logical channel (TS 102 221 §10.1.1), interindustry or proprietary class.
pub fn cla(ch: u8, proprietary: bool) -> u8 {
    let base = if ch < 4 { ch } else { 0x40 | (ch - 4) };
    base | if proprietary { 0x80 } else { 0 }
}

/// An LPA talking to the card over APDUs, keeping a transcript of every exchange.
pub struct Lpa<'a> {
    pub card: &'a mut Uicc,
    pub channel: Option<u8>,
    pub transcript: Vec<(Vec<u8>, Vec<u8>)>,
    pub segment_len: usize,
}

impl<'a> Lpa<'a> {
    pub fn new(card: &'a mut Uicc) -> Self {
        Self {
            card,
            channel: None,
            transcript: Vec::new(),
            segment_len: 120,
        }
    }

    pub fn apdu(&mut self, cmd: &[u8]) -> Vec<u8> {
        let r = self.card.transmit(cmd);
        self.transcript.push((cmd.to_vec(), r.clone()));
        r
    }

    /// Opens channel 1 and selects the ISD-R on it (what the common LPA does first).
    pub fn open(&mut self) -> u8 {
        if let Some(c) = self.channel {
            return c;
        }
        let r = self.apdu(&h("0070000001"));
        assert_eq!(
            r.len(),
            3,
            "MANAGE CHANNEL answers <ch> 9000: {}",
            hex::encode(&r)
        );
        let ch = r[0];
        let mut select = vec![cla(ch, false), 0xA4, 0x04, 0x00, 0x10];
        select.extend(h(ISD_R));
        let r = self.apdu(&select);
        let sw = &r[r.len() - 2..];
        assert!(
            sw == [0x90, 0x00] || sw[0] == 0x61,
            "SELECT ISD-R: {}",
            hex::encode(&r)
        );
        if sw[0] == 0x61 {
            self.apdu(&[cla(ch, true), 0xC0, 0, 0, sw[1]]);
        }
        self.channel = Some(ch);
        ch
    }

    /// One ES10 function: STORE DATA segments, then the answer via GET RESPONSE. Returns the
    /// answer data and the final status word.
    pub fn es10_sw(&mut self, data: &[u8]) -> (Vec<u8>, u16) {
        let ch = self.open();
        let chunks: Vec<&[u8]> = if data.is_empty() {
            vec![&[]]
        } else {
            data.chunks(self.segment_len).collect()
        };
        let mut last = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let p1 = if i + 1 == chunks.len() { 0x91 } else { 0x11 };
            let mut apdu = vec![cla(ch, true), 0xE2, p1, i as u8, chunk.len() as u8];
            apdu.extend_from_slice(chunk);
            last = self.apdu(&apdu);
            if i + 1 < chunks.len() {
                assert_eq!(last, [0x90, 0x00], "intermediate STORE DATA block");
            }
        }
        let mut data = Vec::new();
        loop {
            let sw = u16::from_be_bytes([last[last.len() - 2], last[last.len() - 1]]);
            data.extend_from_slice(&last[..last.len() - 2]);
            if sw >> 8 != 0x61 {
                return (data, sw);
            }
            last = self.apdu(&[cla(ch, true), 0xC0, 0, 0, (sw & 0xFF) as u8]);
        }
    }

    /// One ES10 function that must end in 9000.
    pub fn es10(&mut self, data: &[u8]) -> Vec<u8> {
        let (answer, sw) = self.es10_sw(data);
        assert_eq!(
            sw,
            0x9000,
            "ES10 {} answered {sw:04X}",
            hex::encode_upper(&data[..data.len().min(4)])
        );
        answer
    }

    pub fn call<Req: Der, Resp: Der>(&mut self, req: &Req) -> Resp {
        let answer = self.es10(&req.to_der());
        Resp::from_der(&answer).unwrap_or_else(|e| panic!("{e}: {}", hex::encode_upper(&answer)))
    }

    pub fn challenge(&mut self) -> [u8; 16] {
        let r: GetEuiccChallengeResponse = self.call(&GetEuiccChallengeRequest);
        r.challenge
    }

    pub fn info1(&mut self) -> EuiccInfo1 {
        self.call(&GetEuiccInfo1Request)
    }

    pub fn profiles(&mut self) -> Vec<ProfileInfo> {
        match self.call(&ProfileInfoListRequest::default()) {
            ProfileInfoListResponse::Ok(l) => l,
            other => panic!("{other:?}"),
        }
    }

    pub fn enable(&mut self, iccid: Iccid) -> EnableProfileResult {
        let r: EnableProfileResponse = self.call(&EnableProfileRequest {
            id: ProfileIdentifier::Iccid(iccid),
            refresh: true,
        });
        r.result
    }

    pub fn disable(&mut self, iccid: Iccid) -> DisableProfileResult {
        let r: DisableProfileResponse = self.call(&DisableProfileRequest {
            id: ProfileIdentifier::Iccid(iccid),
            refresh: true,
        });
        r.result
    }

    pub fn delete(&mut self, iccid: Iccid) -> DeleteProfileResult {
        let r: DeleteProfileResponse = self.call(&DeleteProfileRequest {
            id: ProfileIdentifier::Iccid(iccid),
        });
        r.result
    }

    pub fn notifications(&mut self) -> Vec<NotificationMetadata> {
        match self.call(&ListNotificationRequest::default()) {
            ListNotificationResponse::Ok(l) => l,
            other => panic!("{other:?}"),
        }
    }

    /// Sends each LoadBoundProfilePackage command; returns the final BF37 (and checks the
    /// intermediate answers are empty 9000).
    pub fn load_bpp(&mut self, bpp: &BoundProfilePackage) -> ProfileInstallationResult {
        let cmds = bpp.lpa_commands();
        self.load_commands(&cmds)
    }

    pub fn load_commands(&mut self, cmds: &[Vec<u8>]) -> ProfileInstallationResult {
        for (i, c) in cmds.iter().enumerate() {
            let answer = self.es10(c);
            if !answer.is_empty() {
                return ProfileInstallationResult::from_der(&answer).unwrap();
            }
            assert!(i + 1 < cmds.len(), "last command got an empty answer");
        }
        unreachable!()
    }
}

/// What the SM-DP+ (test code) puts in a download.
#[derive(Clone)]
pub struct Order {
    pub upp: Vec<u8>,
    pub iccid: Iccid,
    pub metadata: StoreMetadataRequest,
    pub confirmation_code: Option<Vec<u8>>,
    pub replace_session_keys: bool,
}

impl Order {
    pub fn of(upp: Vec<u8>) -> Self {
        let pkg = simlab_emulator::saip::decode(&upp).unwrap();
        let iccid = Iccid(pkg.header.ef_iccid);
        Self {
            upp,
            iccid,
            metadata: StoreMetadataRequest {
                iccid,
                service_provider_name: "simlab".into(),
                profile_name: "TS.48 test".into(),
                icon_type: None,
                icon: None,
                profile_class: Some(ProfileClass::Operational),
                notification_configuration: Some(vec![NotificationConfiguration {
                    events: NotificationEvents {
                        install: true,
                        enable: true,
                        disable: true,
                        delete: true,
                    },
                    address: SMDP_ADDRESS.into(),
                }]),
                profile_owner: None,
                ppr: None,
            },
            confirmation_code: None,
            replace_session_keys: true,
        }
    }
}

/// The SM-DP+ played by test code.
pub struct SmDp {
    pub dp_auth: SigningKey,
    pub dp_auth_cert: Vec<u8>,
    pub dp_pb: SigningKey,
    pub dp_pb_cert: Vec<u8>,
    pub ci_pkid: Vec<u8>,
    pub rng: StdRng,
    pub transaction_id: Vec<u8>,
    pub euicc_signature1: Vec<u8>,
    pub euicc_key: Option<VerifyingKey>,
    pub host_id: Vec<u8>,
}

impl SmDp {
    pub fn new() -> Self {
        let ci = pki("CertificateIssuer/CERT_CI_ECDSA_NIST.der");
        let ci_pkid = simlab_emulator::euicc::cert::subject_key_id(&ci)
            .unwrap()
            .unwrap();
        Self {
            dp_auth: SigningKey::from_pem(&pki_text("DPauth/SK_S_SM_DPauth_ECDSA_NIST.pem"))
                .unwrap(),
            dp_auth_cert: pki("DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der"),
            dp_pb: SigningKey::from_pem(&pki_text("DPpb/SK_S_SM_DPpb_ECDSA_NIST.pem")).unwrap(),
            dp_pb_cert: pki("DPpb/CERT_S_SM_DPpb_ECDSA_NIST.der"),
            ci_pkid,
            rng: StdRng::seed_from_u64(99),
            transaction_id: Vec::new(),
            euicc_signature1: Vec::new(),
            euicc_key: None,
            host_id: b"simlab-test".to_vec(),
        }
    }

    /// initiateAuthentication: serverSigned1 signed with DPauth → AuthenticateServerRequest.
    pub fn initiate(
        &mut self,
        euicc_challenge: [u8; 16],
        matching_id: &str,
    ) -> AuthenticateServerRequest {
        let mut tx = [0u8; 16];
        self.rng.fill_bytes(&mut tx);
        self.transaction_id = tx.to_vec();
        let mut server_challenge = [0u8; 16];
        self.rng.fill_bytes(&mut server_challenge);
        let signed = Encoded::new(ServerSigned1 {
            transaction_id: tx.to_vec(),
            euicc_challenge,
            server_address: SMDP_ADDRESS.into(),
            server_challenge,
        });
        let signature = self.dp_auth.sign(signed.raw());
        AuthenticateServerRequest {
            server_signed1: signed,
            server_signature1: signature.to_vec(),
            euicc_ci_pkid_to_be_used: self.ci_pkid.clone(),
            server_certificate: self.dp_auth_cert.clone(),
            ctx_params1: Encoded::new(CtxParams1 {
                matching_id: Some(matching_id.into()),
                device_info: DeviceInfo {
                    tac: h("35290611"),
                    device_capabilities: Vec::new(),
                    imei: None,
                },
            }),
        }
    }

    /// authenticateClient: checks euiccSignature1 with the eUICC certificate, then builds
    /// PrepareDownloadRequest (smdpSigned2 signed with DPpb over smdpSigned2 ‖ 5F37 sig1).
    pub fn authenticate_client(
        &mut self,
        resp: &AuthenticateServerResponse,
        cc_required: bool,
    ) -> PrepareDownloadRequest {
        let AuthenticateServerResponse::Ok {
            euicc_signed1,
            euicc_signature1,
            euicc_certificate,
            ..
        } = resp
        else {
            panic!("AuthenticateServer failed: {resp:?}");
        };
        let key = VerifyingKey::from_certificate_der(euicc_certificate).unwrap();
        key.verify(euicc_signed1.raw(), euicc_signature1).unwrap();
        assert_eq!(euicc_signed1.value.transaction_id, self.transaction_id);
        self.euicc_key = Some(key);
        self.euicc_signature1 = euicc_signature1.clone();
        let signed = Encoded::new(SmdpSigned2 {
            transaction_id: self.transaction_id.clone(),
            cc_required,
            bpp_euicc_otpk: None,
        });
        let input = [signed.raw(), &signature_field(euicc_signature1)].concat();
        PrepareDownloadRequest {
            smdp_signature2: self.dp_pb.sign(&input).to_vec(),
            smdp_signed2: signed,
            hash_cc: None,
            smdp_certificate: self.dp_pb_cert.clone(),
        }
    }

    /// getBoundProfilePackage: checks euiccSignature2 (and hashCc if a code is expected),
    /// binds the package to the eUICC's one-time key and protects every segment.
    pub fn bound_package(
        &mut self,
        prep: &PrepareDownloadRequest,
        resp: &PrepareDownloadResponse,
        order: &Order,
    ) -> Result<BoundProfilePackage, &'static str> {
        let PrepareDownloadResponse::Ok {
            euicc_signed2,
            euicc_signature2,
        } = resp
        else {
            panic!("PrepareDownload failed: {resp:?}");
        };
        let input = [euicc_signed2.raw(), &signature_field(&prep.smdp_signature2)].concat();
        self.euicc_key
            .as_ref()
            .unwrap()
            .verify(&input, euicc_signature2)
            .map_err(|_| "euiccSignatureInvalid")?;
        if let Some(code) = &order.confirmation_code {
            let want = hash_cc(code, &self.transaction_id);
            match euicc_signed2.value.hash_cc {
                None => return Err("confirmationCodeMissing"),
                Some(got) if got != want => return Err("confirmationCodeRefused"),
                Some(_) => {}
            }
        }
        let euicc_otpk = euicc_signed2.value.euicc_otpk.clone();
        let smdp_ot = OneTimeKeyPair::generate(self.dp_pb.curve(), &mut self.rng).unwrap();
        let bf23 = build_initialise_secure_channel(
            &self.transaction_id,
            &self.host_id,
            &smdp_ot.public_key(),
            &euicc_otpk,
            &self.dp_pb,
        );
        let shs = smdp_ot.shared_secret(&euicc_otpk).unwrap();
        let eid: [u8; 16] = h(EID).try_into().unwrap();
        let keys = derive_session_keys(shs.as_bytes(), 0x88, 0x10, &self.host_id, &eid).unwrap();
        Ok(self.protect(bf23, &keys, order))
    }

    pub fn protect(
        &mut self,
        bf23: Vec<u8>,
        keys: &SessionKeys,
        order: &Order,
    ) -> BoundProfilePackage {
        let mut w = BspWriter::new(keys);
        let configure = ConfigureIsdpRequest::default().to_der();
        let configure_isdp = vec![w
            .protect(TAG_CONFIGURE_ISDP_OR_REPLACE_KEYS, &configure)
            .unwrap()];
        let store_metadata = w
            .protect_chunked(TAG_STORE_METADATA, &order.metadata.to_der())
            .unwrap();
        let replace_session_keys = order.replace_session_keys.then(|| {
            let mut k = [0u8; 48];
            self.rng.fill_bytes(&mut k);
            let ppk = SessionKeys {
                initial_mcv: k[..16].try_into().unwrap(),
                s_enc: k[16..32].try_into().unwrap(),
                s_mac: k[32..].try_into().unwrap(),
            };
            let seg = w
                .protect(
                    TAG_CONFIGURE_ISDP_OR_REPLACE_KEYS,
                    &ReplaceSessionKeys { keys: ppk.clone() }.to_der(),
                )
                .unwrap();
            w.replace_session_keys(&ppk);
            vec![seg]
        });
        let load_profile_elements = w
            .protect_chunked(TAG_LOAD_PROFILE_ELEMENTS, &order.upp)
            .unwrap();
        BoundProfilePackage {
            initialise_secure_channel: bf23,
            configure_isdp,
            store_metadata,
            replace_session_keys,
            load_profile_elements,
        }
    }
}

/// The steps before the package, checked to succeed: challenge, AuthenticateServer,
/// PrepareDownload. Returns the request and the answer of PrepareDownload.
pub fn authenticate_and_prepare(
    lpa: &mut Lpa<'_>,
    smdp: &mut SmDp,
    order: &Order,
) -> (PrepareDownloadRequest, PrepareDownloadResponse) {
    let challenge = lpa.challenge();
    let auth_req = smdp.initiate(challenge, "TS48");
    let auth: AuthenticateServerResponse = lpa.call(&auth_req);
    let mut prep = smdp.authenticate_client(&auth, order.confirmation_code.is_some());
    if let Some(code) = &order.confirmation_code {
        prep.hash_cc = Some(hash_cc(code, &smdp.transaction_id));
    }
    let resp: PrepareDownloadResponse = lpa.call(&prep);
    (prep, resp)
}

/// A whole download; returns the BF37.
pub fn download(lpa: &mut Lpa<'_>, smdp: &mut SmDp, order: &Order) -> ProfileInstallationResult {
    let (prep, resp) = authenticate_and_prepare(lpa, smdp, order);
    let bpp = smdp.bound_package(&prep, &resp, order).unwrap();
    lpa.load_bpp(&bpp)
}

/// The final result of a BF37, its signature checked with the eUICC certificate.
pub fn checked_result(pir: &ProfileInstallationResult) -> FinalResult {
    let key = VerifyingKey::from_certificate_der(&pki("eUICC/CERT_EUICC_ECDSA_NIST.der")).unwrap();
    key.verify(pir.data.raw(), &pir.euicc_sign_pir).unwrap();
    pir.data.value.final_result.clone()
}

pub fn error_of(pir: &ProfileInstallationResult) -> (BppCommandId, ErrorReason) {
    match checked_result(pir) {
        FinalResult::Error {
            bpp_command_id,
            error_reason,
            ..
        } => (bpp_command_id, error_reason),
        other => panic!("expected an error result, got {other:?}"),
    }
}
