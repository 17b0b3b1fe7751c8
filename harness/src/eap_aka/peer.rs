//! The peer (device) side of EAP-AKA (RFC 4187 §6.3, §9): check an EAP-Request/AKA-Challenge,
//! relay RAND and AUTN to the USIM (AUTHENTICATE, 3G context, TS 31.102 §7.1.2.1), and answer
//! with what the card said:
//!
//! | card | answer |
//! |---|---|
//! | `DB` RES CK IK: success | AKA-Challenge with AT_RES and AT_MAC — after checking the server's AT_MAC with the derived K_aut (a wrong one gets AKA-Client-Error, §6.3.1) |
//! | `DC` AUTS: SQN not fresh | AKA-Synchronization-Failure with AT_AUTS (§9.6) |
//! | `98 62`: AUTN's MAC wrong | AKA-Authentication-Reject (§9.5) |
//!
//! Requests the client must refuse (no AT_RAND, no AT_AUTN, no AT_MAC, a Code other than
//! Request, a wrong length, another Type or Subtype, short attributes) never reach the card.

use super::keys::{self, Keys};
use super::packet::{
    AkaPacket, Attribute, Packet, PacketError, Subtype, CODE_REQUEST, CODE_RESPONSE,
};
use simlab_emulator::aka::ts_31_102::{AuthenticateCommand, AuthenticateResponse};
use thiserror::Error;

/// AUTHENTICATE (TS 31.102 §7.1.2): CLA 00, INS 88, P1 00, P2 81 (3G context).
const AUTHENTICATE_HEADER: [u8; 4] = [0x00, 0x88, 0x00, 0x81];
/// P2 of the 3G security context.
const P2_3G: u8 = 0x81;
/// TS 31.102 §7.1.2.1: "authentication error, incorrect MAC".
const SW_MAC_FAILURE: u16 = 0x9862;
const SW_OK: u16 = 0x9000;
/// RFC 4187 §10.20: "unable to process packet".
const CLIENT_ERROR_UNABLE_TO_PROCESS: u16 = 0;

/// What the USIM answered to RAND/AUTN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardAnswer {
    Success {
        res: Vec<u8>,
        ck: [u8; 16],
        ik: [u8; 16],
    },
    SyncFailure {
        auts: [u8; 14],
    },
    MacFailure,
}

/// Why a request was refused before the card saw it, or the card's answer made no sense.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PeerError {
    #[error("EAP-AKA challenge does not decode: {0}")]
    Malformed(#[from] PacketError),
    #[error("expected an EAP-Request (Code 1) of Type AKA, got {0}")]
    NotARequest(&'static str),
    #[error("expected the AKA-Challenge subtype, got {0:?}")]
    UnexpectedSubtype(Subtype),
    #[error("AKA-Challenge without {0} (RFC 4187 §9.3)")]
    MissingAttribute(&'static str),
    #[error("the card's AUTHENTICATE answer is not usable: {0}")]
    Card(String),
}

/// A checked EAP-Request/AKA-Challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub identifier: u8,
    pub rand: [u8; 16],
    pub autn: [u8; 16],
    mac: [u8; 16],
    packet: AkaPacket,
}

/// What to send back, and the keys when authentication succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerAnswer {
    /// AKA-Challenge response (AT_RES, AT_MAC).
    Success { response: Vec<u8>, keys: Keys },
    /// AKA-Synchronization-Failure (AT_AUTS).
    SyncFailure { response: Vec<u8> },
    /// AKA-Authentication-Reject: the card found AUTN's MAC wrong.
    Reject { response: Vec<u8> },
    /// AKA-Client-Error: the server's AT_MAC was wrong, so the network is not trusted.
    ServerMacInvalid { response: Vec<u8> },
}

impl PeerAnswer {
    /// The EAP-Response to relay.
    pub fn response(&self) -> &[u8] {
        match self {
            PeerAnswer::Success { response, .. }
            | PeerAnswer::SyncFailure { response }
            | PeerAnswer::Reject { response }
            | PeerAnswer::ServerMacInvalid { response } => response,
        }
    }
}

impl Challenge {
    /// Decodes and checks a request (RFC 4187 §9.3: AT_RAND, AT_AUTN and AT_MAC are mandatory).
    pub fn parse(request: &[u8]) -> Result<Challenge, PeerError> {
        let packet = match Packet::decode(request)? {
            Packet::Aka(p) if p.code == CODE_REQUEST => p,
            Packet::Aka(_) => return Err(PeerError::NotARequest("an EAP-Response")),
            Packet::Success { .. } => return Err(PeerError::NotARequest("EAP-Success")),
            Packet::Failure { .. } => return Err(PeerError::NotARequest("EAP-Failure")),
        };
        if packet.subtype != Subtype::Challenge {
            return Err(PeerError::UnexpectedSubtype(packet.subtype));
        }
        Ok(Challenge {
            identifier: packet.identifier,
            rand: *packet
                .rand()
                .ok_or(PeerError::MissingAttribute("AT_RAND"))?,
            autn: *packet
                .autn()
                .ok_or(PeerError::MissingAttribute("AT_AUTN"))?,
            mac: *packet.mac().ok_or(PeerError::MissingAttribute("AT_MAC"))?,
            packet,
        })
    }

    /// The AUTHENTICATE APDU to send to the USIM (its ADF selected).
    pub fn authenticate_apdu(&self) -> Vec<u8> {
        authenticate_apdu(&self.rand, &self.autn)
    }

    /// Whether the server's AT_MAC is right under `k_aut`.
    pub fn mac_valid(&self, k_aut: &[u8; 16]) -> bool {
        let expected = keys::mac(k_aut, &self.packet.with_zero_mac(), &[]);
        keys::mac_eq(&expected, &self.mac)
    }

    /// The answer to send, given what the card said (`identity` as sent in EAP_ID: it is part
    /// of MK).
    pub fn answer(&self, identity: &[u8], card: CardAnswer) -> PeerAnswer {
        match card {
            CardAnswer::Success { res, ck, ik } => {
                let keys = keys::derive(identity, &ik, &ck);
                if !self.mac_valid(&keys.k_aut) {
                    return PeerAnswer::ServerMacInvalid {
                        response: client_error(self.identifier),
                    };
                }
                PeerAnswer::Success {
                    response: challenge_response(self.identifier, &res, &keys.k_aut),
                    keys,
                }
            }
            CardAnswer::SyncFailure { auts } => PeerAnswer::SyncFailure {
                response: AkaPacket::new(
                    CODE_RESPONSE,
                    self.identifier,
                    Subtype::SynchronizationFailure,
                    vec![Attribute::Auts(auts)],
                )
                .encode(),
            },
            CardAnswer::MacFailure => PeerAnswer::Reject {
                response: AkaPacket::new(
                    CODE_RESPONSE,
                    self.identifier,
                    Subtype::AuthenticationReject,
                    Vec::new(),
                )
                .encode(),
            },
        }
    }
}

/// EAP-Response/AKA-Challenge with AT_RES and AT_MAC (HMAC-SHA1-128 with K_aut over the
/// packet, MAC zeroed; RFC 4187 §9.4, §10.15).
pub fn challenge_response(identifier: u8, res: &[u8], k_aut: &[u8; 16]) -> Vec<u8> {
    let mut packet = AkaPacket::new(
        CODE_RESPONSE,
        identifier,
        Subtype::Challenge,
        vec![Attribute::Res(res.to_vec()), Attribute::Mac([0; 16])],
    );
    let mac = keys::mac(k_aut, &packet.encode(), &[]);
    packet.attributes[1] = Attribute::Mac(mac);
    packet.encode()
}

/// EAP-Response/AKA-Client-Error, code 0 (RFC 4187 §9.9).
pub fn client_error(identifier: u8) -> Vec<u8> {
    AkaPacket::new(
        CODE_RESPONSE,
        identifier,
        Subtype::ClientError,
        vec![Attribute::ClientErrorCode(CLIENT_ERROR_UNABLE_TO_PROCESS)],
    )
    .encode()
}

/// `00 88 00 81 Lc 10 RAND 10 AUTN` (TS 31.102 §7.1.2.1, 3G context), no Le: a T=0 card
/// answers `61 xx` and the transport fetches the data.
pub fn authenticate_apdu(rand: &[u8; 16], autn: &[u8; 16]) -> Vec<u8> {
    let data = AuthenticateCommand::ThreeG {
        rand: *rand,
        autn: *autn,
    }
    .encode_data();
    let mut apdu = AUTHENTICATE_HEADER.to_vec();
    apdu.push(data.len() as u8);
    apdu.extend_from_slice(&data);
    apdu
}

impl CardAnswer {
    /// Reads the card's answer to [`authenticate_apdu`]: response data and status word.
    pub fn from_usim(data: &[u8], sw: u16) -> Result<CardAnswer, PeerError> {
        match sw {
            SW_MAC_FAILURE => Ok(CardAnswer::MacFailure),
            SW_OK => match AuthenticateResponse::parse(P2_3G, data)
                .map_err(|e| PeerError::Card(e.to_string()))?
            {
                AuthenticateResponse::Success3g { res, ck, ik, .. } => {
                    Ok(CardAnswer::Success { res, ck, ik })
                }
                AuthenticateResponse::SyncFailure { auts } => Ok(CardAnswer::SyncFailure { auts }),
                AuthenticateResponse::Gsm { .. } => Err(PeerError::Card(
                    "a GSM-context answer to a 3G command".into(),
                )),
            },
            other => Err(PeerError::Card(format!(
                "status word {other:04X} (expected 9000 or 9862)"
            ))),
        }
    }

    /// Splits a full APDU answer (data + SW1 SW2) and reads it.
    pub fn from_apdu_answer(answer: &[u8]) -> Result<CardAnswer, PeerError> {
        let n = answer.len();
        if n < 2 {
            return Err(PeerError::Card(format!("{n}-byte answer")));
        }
        let sw = u16::from_be_bytes([answer[n - 2], answer[n - 1]]);
        CardAnswer::from_usim(&answer[..n - 2], sw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simlab_emulator::aka::{self, AkaAlgorithm, SqnStore};

    fn milenage() -> AkaAlgorithm {
        AkaAlgorithm::Milenage {
            k: hex::decode("465b5ce8b199b49faa5f0a2ee238a6bc")
                .unwrap()
                .try_into()
                .unwrap(),
            opc: hex::decode("cd63cb71954a9f4e48a5994e37a02baf")
                .unwrap()
                .try_into()
                .unwrap(),
        }
    }

    /// The card side in-process: what the emulated USIM answers.
    fn card(alg: &AkaAlgorithm, sqn: &mut SqnStore, c: &Challenge) -> CardAnswer {
        match aka::authenticate_3g(alg, sqn, &c.rand, &c.autn) {
            Ok(s) => CardAnswer::Success {
                res: s.res,
                ck: s.ck,
                ik: s.ik,
            },
            Err(aka::AkaFailure::SyncFailure { auts }) => CardAnswer::SyncFailure { auts },
            Err(aka::AkaFailure::MacFailure) => CardAnswer::MacFailure,
        }
    }

    #[test]
    fn answers_a_fresh_challenge_and_the_server_accepts_it() {
        let alg = milenage();
        let identity = b"0001010123456063@nai.epc.mnc001.mcc001.3gppnetwork.org";
        let v = aka::generate_vector(&alg, 32, [0, 0], &[9; 16]);
        let sc = super::super::server::challenge(identity, 5, &v);
        let c = Challenge::parse(&sc.packet).unwrap();
        let answer = c.answer(identity, card(&alg, &mut SqnStore::default(), &c));
        let PeerAnswer::Success { response, keys } = &answer else {
            panic!("{answer:?}")
        };
        assert_eq!(keys, &sc.keys);
        assert_eq!(
            super::super::server::verify(&sc, response),
            super::super::ServerVerdict::Authenticated
        );
    }

    #[test]
    fn a_replayed_challenge_gets_a_synchronisation_failure() {
        let alg = milenage();
        let mut sqn = SqnStore::default();
        let v = aka::generate_vector(&alg, 32, [0, 0], &[9; 16]);
        let sc = super::super::server::challenge(b"0001", 1, &v);
        let c = Challenge::parse(&sc.packet).unwrap();
        assert!(matches!(
            c.answer(b"0001", card(&alg, &mut sqn, &c)),
            PeerAnswer::Success { .. }
        ));
        let again = c.answer(b"0001", card(&alg, &mut sqn, &c));
        let PeerAnswer::SyncFailure { response } = again else {
            panic!("{again:?}")
        };
        assert_eq!(&response[4..6], &[23, 4]);
    }

    #[test]
    fn a_challenge_for_another_key_is_rejected_by_the_card() {
        let other = AkaAlgorithm::XorTest { k: [1; 16] };
        let v = aka::generate_vector(&other, 32, [0, 0], &[9; 16]);
        let sc = super::super::server::challenge(b"0001", 3, &v);
        let c = Challenge::parse(&sc.packet).unwrap();
        let answer = c.answer(b"0001", card(&milenage(), &mut SqnStore::default(), &c));
        assert_eq!(
            answer.response(),
            hex::decode("0203000817020000").unwrap().as_slice()
        );
    }

    #[test]
    fn a_wrong_server_mac_gets_a_client_error_and_no_res() {
        let alg = milenage();
        let v = aka::generate_vector(&alg, 32, [0, 0], &[9; 16]);
        let mut sc = super::super::server::challenge(b"0001", 3, &v);
        let n = sc.packet.len();
        sc.packet[n - 1] ^= 1; // AT_MAC is the last attribute
        let c = Challenge::parse(&sc.packet).unwrap();
        let answer = c.answer(b"0001", card(&alg, &mut SqnStore::default(), &c));
        assert_eq!(
            answer,
            PeerAnswer::ServerMacInvalid {
                response: hex::decode("0203000C170E000016010000").unwrap()
            }
        );
    }

    #[test]
    fn builds_the_authenticate_apdu_and_reads_the_usim_answers() {
        let apdu = authenticate_apdu(&[1; 16], &[2; 16]);
        assert_eq!(&apdu[..6], &[0x00, 0x88, 0x00, 0x81, 0x22, 0x10]);
        assert_eq!(apdu.len(), 5 + 34);
        assert_eq!(
            CardAnswer::from_apdu_answer(&[0x98, 0x62]),
            Ok(CardAnswer::MacFailure)
        );
        let mut sync = vec![0xDC, 0x0E];
        sync.extend([7; 14]);
        sync.extend([0x90, 0x00]);
        assert_eq!(
            CardAnswer::from_apdu_answer(&sync),
            Ok(CardAnswer::SyncFailure { auts: [7; 14] })
        );
        assert!(CardAnswer::from_apdu_answer(&[0x6A, 0x82]).is_err());
        assert!(CardAnswer::from_apdu_answer(&[0x90]).is_err());
    }
}
