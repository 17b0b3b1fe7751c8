//! Both sides of EAP-AKA against the public vectors of `vectors/eap-aka/` (provenance in its
//! README): key derivation, the PRF, the server's AT_MAC, the peer's answer, and the malformed
//! requests a peer must refuse.

use super::keys::{self, derive, fips186_2_prf};
use super::packet::{Packet, PacketError};
use super::peer::{challenge_response, CardAnswer, Challenge, PeerAnswer, PeerError};
use super::server::{self, ServerVerdict};
use serde_json::Value;

fn vectors() -> Value {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/eap-aka/vectors.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn array<const N: usize>(v: &Value) -> [u8; N] {
    bytes(v).try_into().unwrap()
}

#[test]
fn k_aut_from_the_upstream_identity_ik_and_ck() {
    let v = &vectors()["keyDerivation"];
    let keys = derive(
        v["identity"].as_str().unwrap().as_bytes(),
        &array(&v["ik"]),
        &array(&v["ck"]),
    );
    assert_eq!(keys.k_aut, array::<16>(&v["kAut"]));
}

#[test]
fn the_prf_gives_rfc_4186_appendix_a5() {
    let v = &vectors()["prf"];
    let out = fips186_2_prf(&array(&v["mk"]), 160);
    assert_eq!(out[..16], bytes(&v["kEncr"])[..]);
    assert_eq!(out[16..32], bytes(&v["kAut"])[..]);
    assert_eq!(out[32..96], bytes(&v["msk"])[..]);
    assert_eq!(out[96..], bytes(&v["emsk"])[..]);
}

#[test]
fn the_upstream_server_challenge_mac_is_hmac_sha1_128_under_k_aut() {
    let v = &vectors()["challengeRequest"];
    let raw = bytes(&v["packet"]);
    let Packet::Aka(p) = Packet::decode(&raw).unwrap() else {
        panic!("not AKA")
    };
    assert_eq!(p.rand(), Some(&array::<16>(&v["rand"])));
    assert_eq!(p.autn(), Some(&array::<16>(&v["autn"])));
    // The server side's MAC function reproduces the upstream MAC…
    let mac = keys::mac(&array(&v["kAut"]), &p.with_zero_mac(), &[]);
    assert_eq!(mac, array::<16>(&v["mac"]));
    // …and the peer accepts it (and only under that key).
    let c = Challenge::parse(&raw).unwrap();
    assert!(c.mac_valid(&array(&v["kAut"])));
    assert!(!c.mac_valid(&[0; 16]));
}

#[test]
fn the_peer_answers_the_upstream_challenge_byte_for_byte() {
    let v = &vectors()["challengeResponse"];
    let response = challenge_response(2, &bytes(&v["res"]), &array(&v["kAut"]));
    assert_eq!(response, bytes(&v["packet"]));
    // And the server judging it with the same XRES and K_aut authenticates it.
    assert_eq!(
        server::verify_parts(2, &array(&v["kAut"]), &bytes(&v["res"]), &response),
        ServerVerdict::Authenticated
    );
}

#[test]
fn the_whole_upstream_exchange_through_the_peer() {
    // The identity/IK/CK of keyDerivation give the K_aut that signed challengeRequest; a card
    // answering RES C79F… with them makes the peer send exactly challengeResponse.
    let all = vectors();
    let k = &all["keyDerivation"];
    let challenge = Challenge::parse(&bytes(&all["challengeRequest"]["packet"])).unwrap();
    let answer = challenge.answer(
        k["identity"].as_str().unwrap().as_bytes(),
        CardAnswer::Success {
            res: bytes(&all["challengeResponse"]["res"]),
            ck: array(&k["ck"]),
            ik: array(&k["ik"]),
        },
    );
    let PeerAnswer::Success { response, .. } = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(response, bytes(&all["challengeResponse"]["packet"]));
}

#[test]
fn the_peer_refuses_every_malformed_upstream_request() {
    let all = vectors();
    let m = all["malformedRequests"].as_object().unwrap();
    let expected: &[(&str, PeerError)] = &[
        ("withoutRand", PeerError::MissingAttribute("AT_RAND")),
        ("withoutAutn", PeerError::MissingAttribute("AT_AUTN")),
        ("withoutRandAndAutn", PeerError::MissingAttribute("AT_RAND")),
        (
            "withCodeResponse",
            PeerError::NotARequest("an EAP-Response"),
        ),
        (
            "withWrongLength",
            PeerError::Malformed(PacketError::LengthMismatch {
                said: 0x99,
                got: 84,
            }),
        ),
        (
            "withEapType99",
            PeerError::Malformed(PacketError::NotAka(0x99)),
        ),
        (
            "withSubtype99",
            PeerError::Malformed(PacketError::UnknownSubtype(0x99)),
        ),
        (
            "withLengthOverData",
            PeerError::Malformed(PacketError::AttributeOverrun { kind: 1, offset: 8 }),
        ),
        (
            "withRandLength16",
            PeerError::Malformed(PacketError::AttributeLength {
                kind: 1,
                expected: 20,
                got: 16,
            }),
        ),
        (
            "withAutnLength16",
            PeerError::Malformed(PacketError::AttributeLength {
                kind: 2,
                expected: 20,
                got: 16,
            }),
        ),
    ];
    assert_eq!(
        m.len() - 1,
        expected.len(),
        "every upstream case is checked"
    );
    for (name, error) in expected {
        assert_eq!(
            Challenge::parse(&bytes(&m[*name])).as_ref().err(),
            Some(error),
            "{name}"
        );
    }
}
