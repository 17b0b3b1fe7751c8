//! The public SCP80 vectors of `vectors/ota/cases.toml` (real-card PoRs) through our codecs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::ts_102_225::*;
use super::ts_102_226::{self, ScriptResponse};
use super::ts_23_040::{Address, InformationElement, SmsDeliver, SmsError, IEI_COMMAND_PACKET};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    keyset: Vec<KeysetVector>,
    case: Vec<Case>,
    upstream_tpdu: UpstreamTpdu,
}

#[derive(Deserialize)]
struct KeysetVector {
    name: String,
    #[serde(flatten)]
    keys: Keyset,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    keyset: String,
    spi: String,
    tar: String,
    counter: u64,
    apdu: String,
    command_packet: String,
    por: String,
    executed: u8,
    last_sw: String,
}

#[derive(Deserialize)]
struct UpstreamTpdu {
    tpdu: String,
    originating_address: String,
    scts: String,
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn vectors() -> Vectors {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/ota/cases.toml");
    toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn keyset<'a>(v: &'a Vectors, name: &str) -> &'a Keyset {
    &v.keyset.iter().find(|k| k.name == name).unwrap().keys
}

fn spi(case: &Case) -> Spi {
    Spi::decode(h(&case.spi).try_into().unwrap()).unwrap()
}

#[test]
fn the_keysets_name_their_keys_as_upstream_kic_and_kid_bytes() {
    let v = vectors();
    assert_eq!(keyset(&v, "SJA5-3DES").kic_byte(), 0x35);
    assert_eq!(keyset(&v, "SJA5-3DES").kid_byte(), 0x35);
    assert_eq!(keyset(&v, "SJA5-AES128").kic_byte(), 0x22);
    assert_eq!(keyset(&v, "SJA5-AES128").kid_byte(), 0x22);
}

#[test]
fn our_encoder_produces_the_upstream_command_packets_byte_for_byte() {
    let v = vectors();
    for case in &v.case {
        let keys = keyset(&v, &case.keyset);
        let packet = CommandPacket::for_keyset(
            keys,
            spi(case),
            h(&case.tar).try_into().unwrap(),
            case.counter,
            h(&case.apdu),
        );
        let sealed = packet.seal(&PacketKeys::of(keys)).unwrap();
        assert_eq!(hex::encode(sealed), case.command_packet, "{}", case.name);
    }
}

#[test]
fn our_decoder_opens_the_upstream_command_packets() {
    let v = vectors();
    for case in &v.case {
        let keys = keyset(&v, &case.keyset);
        let bytes = h(&case.command_packet);
        let header = CommandHeader::parse(&bytes).unwrap();
        assert_eq!(header.spi, spi(case), "{}", case.name);
        let opened = CommandPacket::open(&header, &bytes, &PacketKeys::of(keys)).unwrap();
        assert_eq!(opened.data, h(&case.apdu), "{}", case.name);
        assert_eq!(opened.counter, case.counter);
        assert_eq!(opened.tar.to_vec(), h(&case.tar));
    }
}

#[test]
fn our_decoder_accepts_the_real_card_pors() {
    let v = vectors();
    for case in &v.case {
        let keys = keyset(&v, &case.keyset);
        let opened = ResponsePacket::open(
            &h(&case.por),
            &spi(case),
            keys.kid_byte(),
            &PacketKeys::of(keys),
        )
        .unwrap();
        assert!(opened.secured, "{}", case.name);
        assert_eq!(opened.packet.status, PorStatus::Ok, "{}", case.name);
        assert_eq!(opened.packet.counter, case.counter);
        let script = ScriptResponse::decode_compact(&opened.packet.data).unwrap();
        assert_eq!(script.executed, case.executed, "{}", case.name);
        assert_eq!(
            script.last().unwrap().sw.to_be_bytes().to_vec(),
            h(&case.last_sw)
        );
        assert!(script.last().unwrap().data.is_empty());
    }
}

#[test]
fn our_por_encoder_reproduces_the_real_card_pors_byte_for_byte() {
    let v = vectors();
    for case in &v.case {
        let keys = keyset(&v, &case.keyset);
        let mut data = vec![case.executed];
        data.extend(h(&case.last_sw));
        let por = ResponsePacket {
            tar: h(&case.tar).try_into().unwrap(),
            counter: case.counter,
            status: PorStatus::Ok,
            data,
        };
        let sealed = por
            .seal(&spi(case), keys.kid_byte(), &PacketKeys::of(keys))
            .unwrap();
        assert_eq!(hex::encode(sealed), case.por, "{}", case.name);
    }
}

#[test]
fn a_por_with_one_flipped_bit_fails_its_checksum() {
    let v = vectors();
    for case in v.case.iter().filter(|c| c.spi != "0601") {
        let keys = keyset(&v, &case.keyset);
        let mut por = h(&case.por);
        let last = por.len() - 1;
        por[last] ^= 0x01;
        let err = ResponsePacket::open(&por, &spi(case), keys.kid_byte(), &PacketKeys::of(keys))
            .unwrap_err();
        assert!(
            matches!(
                err,
                PorError::Packet(PacketError::ChecksumMismatch)
                    | PorError::Packet(PacketError::Padding)
            ),
            "{}: {err:?}",
            case.name
        );
    }
}

#[test]
fn our_sms_deliver_matches_upstream_but_for_its_user_data_length() {
    let v = vectors();
    let case = &v.case[0];
    let up = &v.upstream_tpdu;
    let sms = SmsDeliver::data_download(
        Address {
            ton_npi: 0x81,
            digits: up.originating_address.clone(),
        },
        h(&up.scts).try_into().unwrap(),
        vec![InformationElement {
            iei: IEI_COMMAND_PACKET,
            data: Vec::new(),
        }],
        h(&case.command_packet),
    );
    let ours = sms.encode().unwrap();
    let mut upstream = h(&up.tpdu);
    // TP-UDL follows the 7-byte SCTS; upstream counted only the 3-byte user data header.
    let udl_at = 1 + 1 + 1 + 4 + 1 + 1 + 7;
    assert_eq!(upstream[udl_at], 0x03);
    assert_eq!(ours[udl_at], 0x25);
    upstream[udl_at] = 0x25;
    assert_eq!(hex::encode(&ours), hex::encode(&upstream));
    assert_eq!(SmsDeliver::decode(&ours).unwrap(), sms);
}

#[test]
fn the_upstream_tpdu_as_it_is_has_a_user_data_length_that_disagrees() {
    let v = vectors();
    assert_eq!(
        SmsDeliver::decode(&h(&v.upstream_tpdu.tpdu)),
        Err(SmsError::UserDataLength {
            udl: 3,
            present: 37
        })
    );
}

#[test]
fn compact_and_expanded_scripts_round_trip() {
    let apdus = vec![h("00A40004023F00"), h("00B0000010"), h("00040000")];
    let compact = ts_102_226::encode_compact(&apdus).unwrap();
    assert_eq!(hex::encode(&compact), "00a40004023f0000b00000100004000000");
    assert_eq!(ts_102_226::decode_compact(&compact).unwrap(), apdus);
    let expanded = ts_102_226::encode_expanded(&apdus);
    assert_eq!(ts_102_226::decode_expanded(&expanded).unwrap(), apdus);
    // A case 4 command loses its Le in the compact format.
    assert_eq!(
        ts_102_226::encode_compact(&[h("00A40004023F0000")]).unwrap(),
        h("00A40004023F00")
    );
}
