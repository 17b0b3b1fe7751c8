//! The server side of EAP-AKA (RFC 4187 §6, §9): an EAP-Request/AKA-Challenge made from an
//! authentication vector of the HE/AuC (TS 33.102 §6.3.2), and the verdict on the peer's
//! answer. Pure: the entitlement server keeps the session (identifier, XRES, K_aut) in its
//! database between the two.

use super::keys::{self, Keys};
use super::packet::{
    AkaPacket, Attribute, Packet, PacketError, Subtype, CODE_REQUEST, CODE_RESPONSE,
};
use simlab_emulator::aka::AuthVector;

/// A challenge sent, with what the answer is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerChallenge {
    pub identifier: u8,
    pub rand: [u8; 16],
    pub xres: Vec<u8>,
    pub keys: Keys,
    /// The EAP-Request/AKA-Challenge (AT_RAND, AT_AUTN, AT_MAC).
    pub packet: Vec<u8>,
}

/// What the peer's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerVerdict {
    /// AT_MAC and AT_RES are right: send EAP-Success (here: the entitlement document).
    Authenticated,
    /// AKA-Synchronization-Failure: resynchronise with AUTS (TS 33.102 §6.3.5), challenge again.
    SyncFailure { auts: [u8; 14] },
    /// Anything else: send EAP-Failure.
    Rejected(Rejection),
}

/// Why an answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the EAP-Response does not decode: {0}")]
    Malformed(PacketError),
    #[error("expected an EAP-Response of Type AKA")]
    NotAResponse,
    #[error("EAP Identifier {got}, expected {expected} (RFC 3748 §4.1)")]
    WrongIdentifier { expected: u8, got: u8 },
    #[error("AKA-Challenge response without {0} (RFC 4187 §9.4)")]
    MissingAttribute(&'static str),
    #[error("AT_MAC is not HMAC-SHA1-128 of the packet under K_aut (RFC 4187 §10.15)")]
    BadMac,
    #[error("AT_RES differs from XRES: the card holds another key")]
    WrongRes,
    #[error("the peer rejected the network's AUTN (AKA-Authentication-Reject): card and network hold different keys")]
    PeerRejected,
    #[error("the peer reported client error {0} (RFC 4187 §10.20)")]
    ClientError(u16),
    #[error("unexpected EAP-AKA subtype {0:?} in answer to a challenge")]
    UnexpectedSubtype(Subtype),
}

/// The EAP-Request/AKA-Challenge for `vector`, MK from `identity` (as the peer sent it).
pub fn challenge(identity: &[u8], identifier: u8, vector: &AuthVector) -> ServerChallenge {
    let keys = keys::derive(identity, &vector.ik, &vector.ck);
    let mut packet = AkaPacket::new(
        CODE_REQUEST,
        identifier,
        Subtype::Challenge,
        vec![
            Attribute::Rand(vector.rand),
            Attribute::Autn(vector.autn),
            Attribute::Mac([0; 16]),
        ],
    );
    let mac = keys::mac(&keys.k_aut, &packet.encode(), &[]);
    packet.attributes[2] = Attribute::Mac(mac);
    ServerChallenge {
        identifier,
        rand: vector.rand,
        xres: vector.xres.clone(),
        keys,
        packet: packet.encode(),
    }
}

/// Judges the peer's answer to `sent` (RFC 4187 §6.3, §9.4–§9.6, §9.9).
pub fn verify(sent: &ServerChallenge, response: &[u8]) -> ServerVerdict {
    verify_parts(sent.identifier, &sent.keys.k_aut, &sent.xres, response)
}

/// [`verify`] from the stored parts of a session.
pub fn verify_parts(
    identifier: u8,
    k_aut: &[u8; 16],
    xres: &[u8],
    response: &[u8],
) -> ServerVerdict {
    let reject = ServerVerdict::Rejected;
    let packet = match Packet::decode(response) {
        Ok(Packet::Aka(p)) if p.code == CODE_RESPONSE => p,
        Ok(_) => return reject(Rejection::NotAResponse),
        Err(e) => return reject(Rejection::Malformed(e)),
    };
    if packet.identifier != identifier {
        return reject(Rejection::WrongIdentifier {
            expected: identifier,
            got: packet.identifier,
        });
    }
    match packet.subtype {
        Subtype::Challenge => {
            let Some(mac) = packet.mac() else {
                return reject(Rejection::MissingAttribute("AT_MAC"));
            };
            let expected = keys::mac(k_aut, &packet.with_zero_mac(), &[]);
            if !keys::mac_eq(&expected, mac) {
                return reject(Rejection::BadMac);
            }
            match packet.res() {
                None => reject(Rejection::MissingAttribute("AT_RES")),
                Some(res) if constant_time_eq(res, xres) => ServerVerdict::Authenticated,
                Some(_) => reject(Rejection::WrongRes),
            }
        }
        Subtype::SynchronizationFailure => match packet.auts() {
            Some(auts) => ServerVerdict::SyncFailure { auts: *auts },
            None => reject(Rejection::MissingAttribute("AT_AUTS")),
        },
        Subtype::AuthenticationReject => reject(Rejection::PeerRejected),
        Subtype::ClientError => reject(Rejection::ClientError(
            packet.client_error_code().unwrap_or_default(),
        )),
        other => reject(Rejection::UnexpectedSubtype(other)),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// EAP-Failure (RFC 3748 §4.2).
pub fn failure(identifier: u8) -> Vec<u8> {
    Packet::Failure { identifier }.encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eap_aka::peer;
    use rstest::rstest;
    use simlab_emulator::aka::{self, AkaAlgorithm};

    fn sent() -> ServerChallenge {
        let alg = AkaAlgorithm::XorTest { k: [3; 16] };
        challenge(
            b"0001",
            9,
            &aka::generate_vector(&alg, 32, [0, 0], &[5; 16]),
        )
    }

    #[test]
    fn the_challenge_carries_rand_autn_and_a_mac_the_peer_accepts() {
        let s = sent();
        let c = peer::Challenge::parse(&s.packet).unwrap();
        assert_eq!(c.identifier, 9);
        assert_eq!(c.rand, [5; 16]);
        assert!(c.mac_valid(&s.keys.k_aut));
        assert!(!c.mac_valid(&[0; 16]));
    }

    fn answer_with(res: &[u8], k_aut: &[u8; 16], identifier: u8) -> Vec<u8> {
        peer::challenge_response(identifier, res, k_aut)
    }

    #[rstest]
    #[case::right(true, true, 9, ServerVerdict::Authenticated)]
    #[case::wrong_res(false, true, 9, ServerVerdict::Rejected(Rejection::WrongRes))]
    #[case::wrong_mac(true, false, 9, ServerVerdict::Rejected(Rejection::BadMac))]
    #[case::wrong_identifier(true, true, 8, ServerVerdict::Rejected(Rejection::WrongIdentifier { expected: 9, got: 8 }))]
    fn judges_challenge_answers(
        #[case] right_res: bool,
        #[case] right_key: bool,
        #[case] identifier: u8,
        #[case] verdict: ServerVerdict,
    ) {
        let s = sent();
        let mut res = s.xres.clone();
        if !right_res {
            res[0] ^= 1;
        }
        let k_aut = if right_key { s.keys.k_aut } else { [1; 16] };
        assert_eq!(verify(&s, &answer_with(&res, &k_aut, identifier)), verdict);
    }

    #[rstest]
    #[case::reject("0209000817020000", ServerVerdict::Rejected(Rejection::PeerRejected))]
    #[case::client_error(
        "0209000C170E000016010000",
        ServerVerdict::Rejected(Rejection::ClientError(0))
    )]
    #[case::sync("0209001817040000" .to_owned() + "0404" + &"AB".repeat(14), ServerVerdict::SyncFailure { auts: [0xAB; 14] })]
    #[case::sync_without_auts(
        "0209000817040000",
        ServerVerdict::Rejected(Rejection::MissingAttribute("AT_AUTS"))
    )]
    #[case::a_request("0109000817010000", ServerVerdict::Rejected(Rejection::NotAResponse))]
    #[case::success_packet("03090004", ServerVerdict::Rejected(Rejection::NotAResponse))]
    #[case::garbage(
        "02",
        ServerVerdict::Rejected(Rejection::Malformed(PacketError::TooShort(1)))
    )]
    fn judges_other_answers(#[case] hex_packet: String, #[case] verdict: ServerVerdict) {
        let s = sent();
        let bytes = hex::decode(hex_packet).unwrap_or_else(|_| vec![0x02]);
        assert_eq!(verify(&s, &bytes), verdict);
    }

    #[test]
    fn failure_is_a_bare_eap_failure() {
        assert_eq!(failure(7), vec![4, 7, 0, 4]);
    }
}
