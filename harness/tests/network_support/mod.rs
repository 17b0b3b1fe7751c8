//! Shared by the network's integration tests: the operator's record of the shipped UICC, a
//! USIM's AKA in software, EAP-AKA through the typed client, and an in-process eUICC behind
//! simlab's LPA.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use simlab_emulator::aka::{self, AkaAlgorithm, AkaFailure, SqnStore};
use simlab_harness::eap_aka::{permanent_identity, CardAnswer};
use simlab_harness::lpa::{self, ActivationCode, DeviceInfo, Es10Client};
use simlab_harness::network::client::{ClientError, EntitlementRequest, NetworkClient};
use simlab_harness::network::db::Policy;
use simlab_harness::network::server::{self, NetworkOptions, RunningNetwork};
use simlab_harness::network::service::Provision;
use simlab_harness::transport::InProcess;
use std::path::{Path, PathBuf};

pub fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors")
}

pub fn start() -> RunningNetwork {
    server::start(NetworkOptions::embedded(&vectors())).unwrap()
}

/// An HTTPS client as the SM-DP+ calls the BOSS's ES2+ endpoint (SGP.22 §2.6.6): CERT.DP.TLS
/// of the shipped PKI as client certificate, the operator CA as the only root.
pub fn smdp_agent() -> ureq::Agent {
    static AGENT: std::sync::OnceLock<ureq::Agent> = std::sync::OnceLock::new();
    AGENT
        .get_or_init(|| {
            let pki = simlab_harness::defaults::Files::Disk(vectors().join("pki"));
            let operator_ca = simlab_harness::pki::operator::load_ca(pki.clone()).unwrap();
            let config = simlab_harness::smdp::es2_client_tls_config(&pki, &operator_ca).unwrap();
            ureq::AgentBuilder::new().tls_config(config).build()
        })
        .clone()
}

/// An HTTPS client trusting the operator CA, presenting `identity` (certificate DER, PKCS#8
/// key) or no certificate.
pub fn tls_agent(identity: Option<(Vec<u8>, Vec<u8>)>) -> ureq::Agent {
    let pki = simlab_harness::defaults::Files::Disk(vectors().join("pki"));
    tls_agent_trusting(
        simlab_harness::pki::operator::load_ca(pki).unwrap(),
        identity,
    )
}

/// An HTTPS client whose only root is `root_der`, presenting `identity` (certificate DER,
/// PKCS#8 key) or no certificate.
pub fn tls_agent_trusting(root_der: Vec<u8>, identity: Option<(Vec<u8>, Vec<u8>)>) -> ureq::Agent {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(root_der)).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(cert)],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    ureq::AgentBuilder::new()
        .tls_config(std::sync::Arc::new(config))
        .build()
}

/// The operator's record of `vectors/cards/uicc.toml` (Milenage, TS 35.208 set 1 keys).
pub fn uicc_provision() -> Provision {
    let def = simlab_emulator::definition::CardDefinition::load(&vectors().join("cards/uicc.toml"))
        .unwrap();
    Provision::from_card_definition(&def, None).unwrap()
}

pub const MSISDN: &str = "+15555550100";
pub const IMSI: &str = "001010123456063";

/// A USIM's AKA in software: what the card answers to RAND/AUTN (TS 33.102 §6.3.3).
pub struct SoftUsim {
    pub alg: AkaAlgorithm,
    pub sqn: SqnStore,
}

impl SoftUsim {
    pub fn uicc() -> Self {
        Self::of(&uicc_provision())
    }

    pub fn of(p: &Provision) -> Self {
        Self {
            alg: p.aka.as_ref().unwrap().algorithm().unwrap(),
            sqn: SqnStore::default(),
        }
    }

    pub fn answer(&mut self, rand: &[u8; 16], autn: &[u8; 16]) -> CardAnswer {
        match aka::authenticate_3g(&self.alg, &mut self.sqn, rand, autn) {
            Ok(s) => CardAnswer::Success {
                res: s.res,
                ck: s.ck,
                ik: s.ik,
            },
            Err(AkaFailure::SyncFailure { auts }) => CardAnswer::SyncFailure { auts },
            Err(AkaFailure::MacFailure) => CardAnswer::MacFailure,
        }
    }
}

pub fn eap(
    client: &NetworkClient,
    usim: &mut SoftUsim,
    imsi: &str,
    req: &EntitlementRequest,
) -> Result<simlab_harness::network::client::EntitlementDocument, ClientError> {
    client.authenticate_with_card(req, &permanent_identity(imsi, 2), &mut |r, a| {
        Ok(usim.answer(r, a))
    })
}

pub fn code_of(err: Result<impl std::fmt::Debug, ClientError>) -> String {
    match err {
        Err(e) => e.code().unwrap_or("not-a-network-error").to_owned(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

/// Primary UICC provisioned; returns its token after EAP-AKA.
pub fn primary(net: &RunningNetwork, policy: Policy) -> (NetworkClient, SoftUsim, String) {
    let client = net.client();
    let mut p = uicc_provision();
    p.policy = policy;
    client.provision(&p).unwrap();
    let mut usim = SoftUsim::uicc();
    let doc = eap(
        &client,
        &mut usim,
        IMSI,
        &EntitlementRequest::acquire_configuration(),
    )
    .unwrap();
    let token = doc.token().unwrap().to_owned();
    (client, usim, token)
}

/// An in-process eUICC (vectors/cards/euicc.toml) behind simlab's LPA.
pub struct Euicc {
    pub es10: Option<Es10Client<InProcess>>,
    pub roots: Vec<Vec<u8>>,
}

impl Euicc {
    pub fn new(net: &RunningNetwork) -> Self {
        let card =
            simlab_harness::cards::load_card(&vectors().join("cards/euicc.toml"), None).unwrap();
        Self {
            es10: Some(Es10Client::open(InProcess::new(card)).unwrap()),
            roots: vec![net.smdp_ca_cert_der().to_vec()],
        }
    }

    pub fn eid(&mut self) -> String {
        self.es10.as_mut().unwrap().eid().unwrap()
    }

    /// Only a download (the LPA's error when the SM-DP+ or the card refuses).
    pub fn try_download(&mut self, activation_code: &str) -> Result<(), String> {
        let es10 = self.es10.as_mut().unwrap();
        let ac: ActivationCode = activation_code.parse().unwrap();
        lpa::download(
            es10,
            &ac,
            None,
            &self.roots,
            &DeviceInfo::default(),
            &mut |_| {},
        )
        .map(|_| ())
        .map_err(|e| format!("{e:#}"))
    }

    /// Downloads, enables and sends the notifications (the SM-DP+ then knows "enabled").
    pub fn install(&mut self, activation_code: &str) -> String {
        let iccid = self.download(activation_code);
        self.enable(&iccid);
        self.notify();
        iccid
    }
}

impl Euicc {
    /// Download and installation only (the profile stays disabled); its ICCID.
    pub fn download(&mut self, activation_code: &str) -> String {
        let es10 = self.es10.as_mut().unwrap();
        let ac: ActivationCode = activation_code.parse().unwrap();
        let done = lpa::download(
            es10,
            &ac,
            None,
            &self.roots,
            &DeviceInfo::default(),
            &mut |_| {},
        )
        .unwrap();
        done.iccid.unwrap()
    }

    /// Sends the eUICC's pending notifications to the SM-DP+ (ES9+.HandleNotification).
    pub fn notify(&mut self) {
        let es10 = self.es10.as_mut().unwrap();
        lpa::process_notifications(es10, &self.roots, &mut |_| {}).unwrap();
    }

    pub fn enable(&mut self, iccid: &str) {
        self.es10.as_mut().unwrap().enable(iccid).unwrap();
    }

    pub fn disable(&mut self, iccid: &str) {
        self.es10.as_mut().unwrap().disable(iccid).unwrap();
    }

    pub fn delete(&mut self, iccid: &str) {
        self.es10.as_mut().unwrap().delete(iccid).unwrap();
    }

    /// Sends one APDU on the basic channel; answers data and SW, following 6Cxx.
    fn apdu(card: &mut InProcess, apdu: &[u8]) -> (Vec<u8>, u16) {
        use simlab_harness::transport::Transport as _;
        let mut answer = card.transmit(apdu).unwrap();
        let sw = |a: &[u8]| u16::from_be_bytes([a[a.len() - 2], a[a.len() - 1]]);
        if sw(&answer) >> 8 == 0x6C {
            let mut again = apdu.to_vec();
            *again.last_mut().unwrap() = answer[answer.len() - 1];
            answer = card.transmit(&again).unwrap();
        }
        let status = sw(&answer);
        answer.truncate(answer.len() - 2);
        (answer, status)
    }

    /// The number in EF.MSISDN (ADF.USIM 6F40, TS 31.102 §4.2.26) of the enabled profile, as
    /// a device reads it: EF.DIR gives the USIM's AID, then SELECT and READ RECORD 1.
    pub fn read_msisdn(&mut self) -> Option<String> {
        let mut card = self.es10.take().unwrap().close();
        // A device resets the card after enabling a profile (SGP.22 §3.2.1: REFRESH); the
        // basic channel then shows the enabled profile's file system.
        {
            use simlab_harness::transport::Transport as _;
            card.reset().unwrap();
        }
        let (_, sw) = Self::apdu(&mut card, &hex::decode("00A4000C023F00").unwrap());
        assert_eq!(sw, 0x9000, "SELECT MF");
        let (_, sw) = Self::apdu(&mut card, &hex::decode("00A4000C022F00").unwrap());
        assert_eq!(sw, 0x9000, "SELECT EF.DIR");
        // TS 102 221 §13.1: records `61 L 4F L AID …`; the first 3GPP USIM (A0000000871002).
        let mut aid = None;
        for record in 1..=u8::MAX {
            let (dir, sw) = Self::apdu(&mut card, &[0x00, 0xB2, record, 0x04, 0x00]);
            if sw != 0x9000 {
                break;
            }
            if dir.len() > 4 && (dir[0], dir[2]) == (0x61, 0x4F) {
                let found = dir[4..4 + usize::from(dir[3])].to_vec();
                if found.starts_with(&[0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02]) {
                    aid = Some(found);
                    break;
                }
            }
        }
        let aid = aid.unwrap_or_else(|| {
            let (d1, s1) = Self::apdu(&mut card, &[0x00, 0xB2, 1, 0x04, 0x00]);
            panic!("EF.DIR names no USIM: {} {s1:04X}", hex::encode(d1))
        });
        let mut select = vec![0x00, 0xA4, 0x04, 0x0C, aid.len() as u8];
        select.extend_from_slice(&aid);
        let (_, sw) = Self::apdu(&mut card, &select);
        assert_eq!(sw, 0x9000, "SELECT ADF.USIM");
        let (_, sw) = Self::apdu(&mut card, &hex::decode("00A4000C026F40").unwrap());
        assert_eq!(sw, 0x9000, "SELECT EF.MSISDN");
        let (record, sw) = Self::apdu(&mut card, &hex::decode("00B2010400").unwrap());
        assert_eq!(sw, 0x9000, "READ RECORD EF.MSISDN");
        self.es10 = Some(Es10Client::open(card).unwrap());
        simlab_emulator::saip::decode_msisdn_record(&record).unwrap()
    }
}
