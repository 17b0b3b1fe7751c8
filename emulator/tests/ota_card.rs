//! Remote file management over the air, driven only through APDUs: secured packets (TS 102 225)
//! in SMS-PP download ENVELOPEs (TS 31.111) to the default card, checked by our own decoder.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use rstest::rstest;
use simlab_emulator::fs::FileBody;
use simlab_emulator::ota::keys::SecurityLevel;
use simlab_emulator::ota::rfm::{TAR_UICC_RFM, TAR_USIM_RFM};
use simlab_emulator::ota::ts_102_225::*;
use simlab_emulator::ota::ts_102_226::{self, ScriptFormat, ScriptResponse};
use simlab_emulator::ota::ts_23_040::Address;
use simlab_emulator::ota::ts_31_111::SmsPpDownload;
use simlab_emulator::ota::ts_31_115;
use simlab_emulator::store::StateStore;
use simlab_emulator::uicc::CardState;
use simlab_emulator::{CardDefinition, Uicc};

const USIM_AID: &str = "A0000000871002FF49FF0589";

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn definition() -> (Vec<u8>, CardState) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/cards/uicc.toml");
    CardDefinition::load(std::path::Path::new(path))
        .unwrap()
        .build()
        .unwrap()
}

fn card() -> Uicc {
    let (atr, state) = definition();
    let mut c = Uicc::new(atr, state);
    c.power_on();
    c
}

/// The default card with every keyset accepting any security level.
fn lenient_card() -> Uicc {
    let (atr, mut state) = definition();
    for k in &mut state.ota.keysets {
        k.min_security_level = SecurityLevel::parse("none").unwrap();
    }
    let mut c = Uicc::new(atr, state);
    c.power_on();
    c
}

fn des_keyset() -> Keyset {
    Keyset {
        kic_index: 3,
        kic_algorithm: CipherAlgorithm::TripleDesCbc2,
        kic: h("300102030405060708090a0b0c0d0e0f"),
        kid_index: 3,
        kid_algorithm: MacAlgorithm::TripleDesCbcMac2,
        kid: h("301102030405060708090a0b0c0d0e0f"),
    }
}

fn aes_keyset() -> Keyset {
    Keyset {
        kic_index: 2,
        kic_algorithm: CipherAlgorithm::AesCbc,
        kic: h("200102030405060708090a0b0c0d0e0f"),
        kid_index: 2,
        kid_algorithm: MacAlgorithm::AesCmac,
        kid: h("201102030405060708090a0b0c0d0e0f"),
    }
}

/// SPI: ciphering + CC, PoR required, ciphered, with CC (upstream's `CC_POR_CIPHERED_CC`).
fn spi_secure() -> Spi {
    Spi::decode([0x06, 0x19]).unwrap()
}

/// Sends one APDU, fetching a '61 XX' answer with GET RESPONSE as a T=0 terminal does.
fn transmit(card: &mut Uicc, apdu: &[u8]) -> (Vec<u8>, u16) {
    let mut r = card.transmit(apdu);
    let mut data = Vec::new();
    loop {
        let sw = u16::from_be_bytes([r[r.len() - 2], r[r.len() - 1]]);
        data.extend_from_slice(&r[..r.len() - 2]);
        if sw >> 8 != 0x61 {
            return (data, sw);
        }
        r = card.transmit(&[0x00, 0xC0, 0x00, 0x00, (sw & 0xFF) as u8]);
    }
}

/// Every ENVELOPE carrying `packet` (one per short message); the answer to the last.
fn deliver(card: &mut Uicc, packet: &[u8]) -> (Vec<u8>, u16) {
    let parts = ts_31_115::split(packet, &Address::isdn("12345678"), [0; 7], 7).unwrap();
    let mut last = (Vec::new(), 0);
    for sms in parts {
        let env = SmsPpDownload {
            address: Some(Address::isdn("+4912345")),
            tpdu: sms.encode().unwrap(),
        };
        last = transmit(card, &env.envelope_apdu());
    }
    last
}

fn seal(keys: &Keyset, spi: Spi, tar: Tar, counter: u64, data: Vec<u8>) -> Vec<u8> {
    CommandPacket::for_keyset(keys, spi, tar, counter, data)
        .seal(&PacketKeys::of(keys))
        .unwrap()
}

fn open_por(por: &[u8], spi: &Spi, keys: &Keyset) -> OpenedPor {
    ResponsePacket::open(por, spi, keys.kid_byte(), &PacketKeys::of(keys)).unwrap()
}

/// Runs `apdus` (compact format) through `tar`: the opened PoR and the script's outcome.
fn rfm(card: &mut Uicc, tar: Tar, counter: u64, apdus: &[&str]) -> (OpenedPor, ScriptResponse) {
    let keys = des_keyset();
    let apdus: Vec<Vec<u8>> = apdus.iter().map(|a| h(a)).collect();
    let data = ts_102_226::encode_compact(&apdus).unwrap();
    let (por, sw) = deliver(card, &seal(&keys, spi_secure(), tar, counter, data));
    assert_eq!(sw, 0x9000);
    let opened = open_por(&por, &spi_secure(), &keys);
    let script = ScriptResponse::decode_compact(&opened.packet.data).unwrap();
    (opened, script)
}

fn select_usim(card: &mut Uicc) -> (Vec<u8>, u16) {
    transmit(card, &h(&format!("00A4040C0C{USIM_AID}")))
}

// ---------------------------------------------------------------------------------------
// The public cases

#[rstest]
#[case::des_ciphered_cc(
    "00201506193535b00011ae733256918d050b87c94fbfe12e4dc402f262c41cf67f2f",
    des_keyset()
)]
#[case::des_unciphered_cc(
    "00201506093535b00011c49ac91ab8159ba5b83a54fb6385e0a5e31694f8b215fafc",
    des_keyset()
)]
#[case::des_unciphered_nocc(
    "00201506013535b000113190be334900f52b025f3f7eddfe868e96ebf310023b7769",
    des_keyset()
)]
#[case::aes128_ciphered_cc(
    "00281506192222b00011e87cceebb2d93083011ce294f93fc4d8de80da1abae8c37ca3e72ec4432e5058",
    aes_keyset()
)]
fn the_card_runs_the_public_packets_and_answers_a_por_our_decoder_accepts(
    #[case] packet: &str,
    #[case] keys: Keyset,
) {
    let mut c = card();
    let packet = h(packet);
    let spi = CommandHeader::parse(&packet).unwrap().spi;
    let (por, sw) = deliver(&mut c, &packet);
    assert_eq!(sw, 0x9000);
    let opened = open_por(&por, &spi, &keys);
    assert!(opened.secured);
    assert_eq!(opened.packet.status, PorStatus::Ok);
    assert_eq!(opened.packet.tar, TAR_USIM_RFM);
    let script = ScriptResponse::decode_compact(&opened.packet.data).unwrap();
    assert_eq!(script.executed, 1);
    // SELECT MF asking for the FCP, without Le: the FCP waits behind '61 XX'.
    let fcp_len = c.transmit(&h("00A40004023F00"));
    assert_eq!(
        script.last().unwrap().sw,
        u16::from_be_bytes([fcp_len[0], fcp_len[1]])
    );
    assert_eq!(script.last().unwrap().sw >> 8, 0x61);
}

#[test]
fn a_t0_terminal_gets_61xx_and_a_t1_terminal_gets_the_por_with_9000() {
    let mut c = card();
    let packet = seal(
        &des_keyset(),
        spi_secure(),
        TAR_USIM_RFM,
        0,
        h("00A40004023F00"),
    );
    let sms = &ts_31_115::split(&packet, &Address::isdn("1234"), [0; 7], 0).unwrap()[0];
    let env = SmsPpDownload {
        address: None,
        tpdu: sms.encode().unwrap(),
    };
    let apdu = env.envelope_apdu();
    let t0 = c.transmit(&apdu);
    assert_eq!(t0.len(), 2);
    assert_eq!(t0[0], 0x61);
    let mut with_le = apdu.clone();
    with_le.push(0x00);
    let t1 = c.transmit(&with_le);
    assert_eq!(&t1[t1.len() - 2..], [0x90, 0x00]);
    assert_eq!(usize::from(t0[1]), t1.len() - 2);
    assert_eq!(&t1[..3], [0x02, 0x71, 0x00]);
}

// ---------------------------------------------------------------------------------------
// Every SPI combination

fn checksum_of(i: u8) -> Checksum {
    [Checksum::None, Checksum::Rc, Checksum::Cc][usize::from(i)]
}

#[rstest]
fn every_spi_combination_runs_and_answers_as_its_por_bits_ask(
    #[values(
        CounterMode::None,
        CounterMode::Available,
        CounterMode::Higher,
        CounterMode::OneHigher
    )]
    counter: CounterMode,
    #[values(false, true)] ciphering: bool,
    #[values(0, 1, 2)] checksum: u8,
    #[values(PorRequest::None, PorRequest::Always, PorRequest::OnError)] por: PorRequest,
    #[values(0, 1, 2)] por_checksum: u8,
    #[values(false, true)] por_ciphered: bool,
    #[values(false, true)] aes: bool,
) {
    let keys = if aes { aes_keyset() } else { des_keyset() };
    let spi = Spi {
        counter,
        ciphering,
        checksum: checksum_of(checksum),
        por,
        por_checksum: checksum_of(por_checksum),
        por_ciphered,
        por_via_submit: false,
    };
    let mut c = lenient_card();
    // Update EF.SPN (ADM) then read it back: visible only if the packet ran.
    let data = ts_102_226::encode_compact(&[h("00A4000C026F46"), h("00D6000001AA")]).unwrap();
    let (answer, sw) = deliver(&mut c, &seal(&keys, spi, TAR_USIM_RFM, 1, data));
    assert_eq!(sw, 0x9000);
    select_usim(&mut c);
    c.transmit(&h("0020000108 30303030FFFFFFFF"));
    let (spn, _) = transmit(&mut c, &h("00A4000C026F46"));
    assert!(spn.is_empty());
    let (content, _) = transmit(&mut c, &h("00B0000001"));
    assert_eq!(content, [0xAA], "the packet ran");
    if por != PorRequest::Always {
        assert!(answer.is_empty(), "no PoR for {spi:?}");
        return;
    }
    let opened = open_por(&answer, &spi, &keys);
    assert!(opened.secured);
    assert_eq!(opened.packet.status, PorStatus::Ok);
    assert_eq!(opened.packet.counter, 1);
    let script = ScriptResponse::decode_compact(&opened.packet.data).unwrap();
    assert_eq!((script.executed, script.last().unwrap().sw), (2, 0x9000));
}

#[test]
fn a_digital_signature_is_not_supported() {
    let mut spi = spi_secure();
    spi.checksum = Checksum::Ds;
    let keys = des_keyset();
    // Sealing refuses DS; build the packet with a CC and relabel its SPI.
    let mut packet = seal(&keys, spi_secure(), TAR_USIM_RFM, 0, h("00A40004023F00"));
    packet[3..5].copy_from_slice(&spi.encode());
    let (por, _) = deliver(&mut card(), &packet);
    let opened = open_por(&por, &spi, &keys);
    assert!(!opened.secured);
    assert_eq!(opened.packet.status, PorStatus::UnidentifiedSecurityError);
}

// ---------------------------------------------------------------------------------------
// Every PoR status the card answers

/// What each case does to the packet or the card before sending.
#[derive(Debug, Clone, Copy)]
enum Fault {
    WrongKid,
    Replay,
    SkipsACounter,
    BlockedCounter,
    CipheredPartNotBlockAligned,
    UnknownKeyIndex,
    UnknownTar,
    BelowTheSecurityLevel,
    Truncated,
    SplitAcrossTwoSms,
}

#[rstest]
#[case::wrong_kid(Fault::WrongKid, PorStatus::RcCcDsFailed)]
#[case::replayed_counter(Fault::Replay, PorStatus::CounterLow)]
#[case::counter_skipping_one(Fault::SkipsACounter, PorStatus::CounterHigh)]
#[case::blocked_counter(Fault::BlockedCounter, PorStatus::CounterBlocked)]
#[case::ciphering_error(Fault::CipheredPartNotBlockAligned, PorStatus::CipheringError)]
#[case::unknown_key_index(Fault::UnknownKeyIndex, PorStatus::UnidentifiedSecurityError)]
#[case::unknown_tar(Fault::UnknownTar, PorStatus::TarUnknown)]
#[case::insufficient_security_level(
    Fault::BelowTheSecurityLevel,
    PorStatus::InsufficientSecurityLevel
)]
#[case::truncated_packet(Fault::Truncated, PorStatus::UnidentifiedSecurityError)]
#[case::split_across_two_sms(Fault::SplitAcrossTwoSms, PorStatus::Ok)]
fn each_fault_gets_its_por_status_and_changes_nothing_unless_ok(
    #[case] fault: Fault,
    #[case] status: PorStatus,
) {
    let keys = des_keyset();
    let (atr, mut state) = definition();
    if matches!(fault, Fault::BlockedCounter) {
        state.ota.keysets[0].counter = COUNTER_MAX;
    }
    let mut c = Uicc::new(atr, state);
    c.power_on();
    let mut spi = spi_secure();
    spi.counter = CounterMode::OneHigher;
    // Updates EF.SPN's first byte: visible afterwards only if the packet ran.
    let mut apdus = vec![h("00A4000C026F46"), h("00D6000001AA")];
    let mut tar = TAR_USIM_RFM;
    let mut counter = 1;
    let mut send_keys = keys.clone();
    match fault {
        Fault::WrongKid => send_keys.kid[0] ^= 0xFF,
        Fault::Replay => {
            let first = seal(&keys, spi, tar, 1, h("00A40004023F00"));
            deliver(&mut c, &first);
        }
        Fault::SkipsACounter => counter = 2,
        Fault::UnknownTar => tar = [0xB0, 0x00, 0x99],
        Fault::UnknownKeyIndex => {
            send_keys.kic_index = 9;
            send_keys.kid_index = 9;
        }
        Fault::BelowTheSecurityLevel => spi.ciphering = false,
        Fault::SplitAcrossTwoSms => {
            // 30 READ BINARY commands of EF.SPN make the packet longer than one message.
            apdus.extend(std::iter::repeat_n(h("00B0000001"), 30));
            apdus.push(h("00A4000C026F46"));
        }
        _ => {}
    }
    let data = ts_102_226::encode_compact(&apdus).unwrap();
    let mut packet = seal(&send_keys, spi, tar, counter, data);
    match fault {
        Fault::CipheredPartNotBlockAligned => {
            packet.pop();
            let cpl = (packet.len() - 2) as u16;
            packet[..2].copy_from_slice(&cpl.to_be_bytes());
        }
        Fault::Truncated => {
            packet.truncate(packet.len() - 5);
        }
        Fault::SplitAcrossTwoSms => {
            assert!(packet.len() > 137, "needs two messages");
            assert_eq!(
                ts_31_115::split(&packet, &Address::isdn("1"), [0; 7], 1)
                    .unwrap()
                    .len(),
                2
            );
        }
        _ => {}
    }
    let (por, sw) = deliver(&mut c, &packet);
    assert_eq!(sw, 0x9000);
    let opened = open_por(&por, &spi, &keys);
    assert_eq!(opened.packet.status, status, "{fault:?}");
    assert_eq!(opened.secured, status.security_established(), "{fault:?}");
    select_usim(&mut c);
    c.transmit(&h("0020000108 30303030FFFFFFFF"));
    transmit(&mut c, &h("00A4000C026F46"));
    let (content, _) = transmit(&mut c, &h("00B0000001"));
    assert_eq!(content == [0xAA], status == PorStatus::Ok, "{fault:?}");
}

#[test]
fn a_por_on_error_comes_only_for_an_error() {
    let keys = des_keyset();
    let mut spi = spi_secure();
    spi.por = PorRequest::OnError;
    let mut c = card();
    let ok = seal(&keys, spi, TAR_USIM_RFM, 0, h("00A40004023F00"));
    assert_eq!(deliver(&mut c, &ok), (Vec::new(), 0x9000));
    let unknown = seal(&keys, spi, [1, 2, 3], 0, h("00A40004023F00"));
    let (por, _) = deliver(&mut c, &unknown);
    assert_eq!(
        open_por(&por, &spi, &keys).packet.status,
        PorStatus::TarUnknown
    );
}

// ---------------------------------------------------------------------------------------
// RFM commands

#[test]
fn deactivating_adf_usim_by_rfm_survives_power_cycles_and_activate_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let (atr, state) = definition();
    let mut c = Uicc::with_store(
        atr.clone(),
        state.clone(),
        StateStore::open(dir.path()).unwrap(),
    )
    .unwrap();
    c.power_on();
    // USIM RFM starts at ADF.USIM: DEACTIVATE FILE without data deactivates it.
    let (opened, script) = rfm(&mut c, TAR_USIM_RFM, 0, &["00040000"]);
    assert_eq!(opened.packet.status, PorStatus::Ok);
    assert_eq!((script.executed, script.last().unwrap().sw), (1, 0x9000));
    drop(c);
    let mut c = Uicc::with_store(
        atr.clone(),
        state.clone(),
        StateStore::open(dir.path()).unwrap(),
    )
    .unwrap();
    c.power_on();
    assert_eq!(select_usim(&mut c).1, 0x6283);
    c.transmit(&h("0020000108 30303030FFFFFFFF"));
    let auth =
        h("008800812210 00000000000000000000000000000000 10 00000000000000000000000000000000");
    assert_eq!(transmit(&mut c, &auth).1, 0x6985);
    // UICC RFM: select the ADF by AID (62 83), then ACTIVATE FILE.
    let (_, script) = rfm(
        &mut c,
        TAR_UICC_RFM,
        0,
        &[&format!("00A4040C0C{USIM_AID}"), "00440000"],
    );
    assert_eq!(script.executed, 2);
    assert_eq!(script.last().unwrap().sw, 0x9000);
    assert_eq!(select_usim(&mut c).1, 0x9000);
}

#[test]
fn an_expanded_script_reads_ef_iccid_and_reports_every_answer() {
    let mut c = card();
    let keys = des_keyset();
    let data = ts_102_226::encode_expanded(&[
        h("00A4000C022FE2"),
        h("00B000000A"),
        h("00A4000C02FFFF"),
        h("00B000000A"),
    ]);
    assert_eq!(ScriptFormat::of(&data), ScriptFormat::Expanded);
    let (por, _) = deliver(&mut c, &seal(&keys, spi_secure(), TAR_UICC_RFM, 0, data));
    let opened = open_por(&por, &spi_secure(), &keys);
    let script = ScriptResponse::decode_expanded(&opened.packet.data).unwrap();
    // The string stops at the failing SELECT.
    assert_eq!(script.executed, 3);
    let sws: Vec<u16> = script.responses.iter().map(|r| r.sw).collect();
    assert_eq!(sws, [0x9000, 0x9000, 0x6A82]);
    assert_eq!(script.responses[1].data, h("989400010100000010F6"));
}

#[test]
fn an_expanded_script_with_an_unknown_tag_answers_bad_format() {
    let mut c = card();
    let keys = des_keyset();
    let data = h("AA 05 99 03 00 00 00");
    let (por, _) = deliver(&mut c, &seal(&keys, spi_secure(), TAR_UICC_RFM, 0, data));
    let opened = open_por(&por, &spi_secure(), &keys);
    let script = ScriptResponse::decode_expanded(&opened.packet.data).unwrap();
    assert_eq!(script.bad_format, Some(ts_102_226::BAD_FORMAT_UNKNOWN_TAG));
    assert_eq!(script.executed, 0);
}

#[test]
fn rfm_reads_updates_and_searches_records_with_adm_rights() {
    let mut c = card();
    // EF.MSISDN's rule asks PIN1 for an update: the ADM access domain alone is not enough…
    let record = "FF".repeat(28);
    let update = format!("00DC01041C{record}");
    let (_, script) = rfm(&mut c, TAR_USIM_RFM, 0, &["00A4000C026F40", &update]);
    assert_eq!((script.executed, script.last().unwrap().sw), (2, 0x6982));
    // …a VERIFY in the same command string is.
    let (_, script) = rfm(
        &mut c,
        TAR_USIM_RFM,
        0,
        &[
            "0020000108 30303030FFFFFFFF",
            "00A4000C026F40",
            &update,
            "00B201041C",
        ],
    );
    assert_eq!(script.executed, 4);
    assert_eq!(script.last().unwrap().data, h(&record));
    let (_, script) = rfm(
        &mut c,
        TAR_USIM_RFM,
        0,
        &["00A4000C022F00", "00A2010403A0FFFF"],
    );
    // EF.DIR is at the MF, not in ADF.USIM: not found from the USIM RFM's start.
    assert_eq!(script.last().unwrap().sw, 0x6A82);
    // SEARCH RECORD is case 4: in the compact format its answer waits behind '61 01'.
    let (_, script) = rfm(
        &mut c,
        TAR_UICC_RFM,
        0,
        &["00A4000C022F00", "00A20104024F0C"],
    );
    assert_eq!(script.last().unwrap().sw, 0x6101);
    let (_, script) = rfm(
        &mut c,
        TAR_UICC_RFM,
        0,
        &["00A4000C022F00", "00A20104024F0C", "00C0000001"],
    );
    assert_eq!(script.last().unwrap().sw, 0x9000);
    assert_eq!(script.last().unwrap().data, [1]);
}

#[test]
fn rfm_verify_counts_against_the_pin_and_an_unsupported_instruction_stops_the_string() {
    let mut c = card();
    let (_, script) = rfm(
        &mut c,
        TAR_UICC_RFM,
        0,
        &["0020000108 31313131FFFFFFFF", "00A4000C022FE2"],
    );
    assert_eq!((script.executed, script.last().unwrap().sw), (1, 0x63C2));
    let (_, script) = rfm(
        &mut c,
        TAR_UICC_RFM,
        0,
        &[
            "0020000108 30303030FFFFFFFF",
            "80E2910000",
            "00A4000C022FE2",
        ],
    );
    assert_eq!((script.executed, script.last().unwrap().sw), (2, 0x6D00));
}

#[test]
fn rfm_increase_adds_to_a_cyclic_file() {
    use simlab_emulator::arr::rule;
    use simlab_emulator::fs::{self, ArrRef, FileSystem};
    let (atr, mut state) = definition();
    // An EF.ACM-like cyclic file at the MF whose rule 4 (added to EF.ARR) allows INCREASE
    // with ADM1.
    let arr = state.fs.child_by_fid(FileSystem::MF, 0x2F06).unwrap();
    if let Some(FileBody::LinearFixed {
        record_len,
        records,
    }) = state.fs.node_mut(arr).map(|n| &mut n.body)
    {
        let mut r = [rule::always(0x01), rule::increase_key(0x0A)].concat();
        r.resize(*record_len, 0xFF);
        records.push(r);
    }
    let cyclic = FileBody::Cyclic {
        record_len: 3,
        records: vec![h("000005"), h("000001")],
    };
    state
        .fs
        .add(
            FileSystem::MF,
            fs::ef(
                0x2F39,
                None,
                ArrRef {
                    arr_fid: 0x2F06,
                    record: 4,
                },
                cyclic,
            ),
        )
        .unwrap();
    let mut c = Uicc::new(atr, state);
    c.power_on();
    let (_, script) = rfm(
        &mut c,
        TAR_UICC_RFM,
        0,
        &["00A4000C022F39", "8032000002 0102", "00C0000005"],
    );
    assert_eq!(script.executed, 3);
    assert_eq!(script.last().unwrap().data, h("000107 0102"));
    // From a terminal without ADM: refused.
    transmit(&mut c, &h("00A4000C022F39"));
    assert_eq!(transmit(&mut c, &h("8032000001 01")).1, 0x6982);
    let (_, script) = rfm(
        &mut c,
        TAR_UICC_RFM,
        0,
        &["00A4000C022F39", "8032000003 FFFFFF"],
    );
    assert_eq!(script.last().unwrap().sw, 0x9850);
}

#[test]
fn counters_persist_per_keyset_across_power_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let (atr, state) = definition();
    let open = || {
        let mut c = Uicc::with_store(
            atr.clone(),
            state.clone(),
            StateStore::open(dir.path()).unwrap(),
        )
        .unwrap();
        c.power_on();
        c
    };
    let mut spi = spi_secure();
    spi.counter = CounterMode::Higher;
    let send = |c: &mut Uicc, keys: &Keyset, counter| {
        let (por, _) = deliver(
            c,
            &seal(keys, spi, TAR_USIM_RFM, counter, h("00A40004023F00")),
        );
        open_por(&por, &spi, keys).packet.status
    };
    let mut c = open();
    assert_eq!(send(&mut c, &des_keyset(), 5), PorStatus::Ok);
    drop(c);
    let mut c = open();
    assert_eq!(send(&mut c, &des_keyset(), 5), PorStatus::CounterLow);
    // The AES keyset has its own counter.
    assert_eq!(send(&mut c, &aes_keyset(), 1), PorStatus::Ok);
    assert_eq!(send(&mut c, &des_keyset(), 6), PorStatus::Ok);
}

#[test]
fn a_malformed_envelope_gets_a_status_word_not_a_por() {
    let mut c = card();
    assert_eq!(c.transmit(&h("80C2000003 D10100")), [0x6A, 0x80]);
    assert_eq!(c.transmit(&h("80C2000103 D10100")), [0x6A, 0x86]);
    // ENVELOPE with an interindustry class is not an ENVELOPE.
    assert_eq!(c.transmit(&h("00C2000003 D10100")), [0x6E, 0x00]);
}

// ---------------------------------------------------------------------------------------
// Properties

fn envelope_of(tpdu: Vec<u8>) -> Vec<u8> {
    SmsPpDownload {
        address: None,
        tpdu,
    }
    .envelope_apdu()
}

fn tpdu_of(packet: &[u8]) -> Vec<u8> {
    ts_31_115::split(packet, &Address::isdn("1"), [0; 7], 0).unwrap()[0]
        .encode()
        .unwrap()
}

fn arbitrary_envelope() -> impl Strategy<Value = Vec<u8>> {
    let good = seal(
        &des_keyset(),
        spi_secure(),
        TAR_USIM_RFM,
        0,
        ts_102_226::encode_compact(&[h("00A4000C026F46"), h("00D6000001AA"), h("00040000")])
            .unwrap(),
    );
    let good2 = good.clone();
    prop_oneof![
        // Noise.
        proptest::collection::vec(any::<u8>(), 0..300),
        // ENVELOPE with noise inside.
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(|d| {
            let mut a = vec![0x80, 0xC2, 0x00, 0x00, d.len() as u8];
            a.extend(d);
            a
        }),
        // A well-formed SMS-PP download around a noise packet.
        proptest::collection::vec(any::<u8>(), 0..130).prop_map(|p| envelope_of(tpdu_of(&p))),
        // A valid packet with bytes changed.
        (proptest::collection::vec((0usize..64, any::<u8>()), 1..4)).prop_map(move |edits| {
            let mut p = good.clone();
            for (i, b) in edits {
                let i = i % p.len();
                p[i] = if p[i] == b { b ^ 0x01 } else { b };
            }
            envelope_of(tpdu_of(&p))
        }),
        // A valid packet cut short, with its lengths patched to match.
        (11usize..40).prop_map(move |n| {
            let mut p = good2[..n].to_vec();
            let cpl = (p.len() - 2) as u16;
            p[..2].copy_from_slice(&cpl.to_be_bytes());
            envelope_of(tpdu_of(&p))
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_envelopes_never_panic_and_never_change_a_file_or_counter(
        envelopes in proptest::collection::vec(arbitrary_envelope(), 1..4)
    ) {
        let mut c = card();
        let before = c.state().clone();
        for e in &envelopes {
            let r = c.transmit(e);
            prop_assert!(r.len() >= 2);
            if r[0] == 0x61 {
                let r = c.transmit(&[0x00, 0xC0, 0x00, 0x00, r[1]]);
                prop_assert!(r.len() >= 2);
            }
        }
        prop_assert_eq!(&c.state().fs, &before.fs);
        prop_assert_eq!(&c.state().ota, &before.ota);
        prop_assert_eq!(&c.state().pins, &before.pins);
    }
}

// ---------------------------------------------------------------------------------------
// Keysets in card definitions

#[rstest]
#[case::algorithm("kic_algorithm = \"des\"", "ota.keyset.kic_algorithm", "got \"des\"")]
#[case::key_length("kic = \"3001\"", "ota.keyset", "kic is 2 bytes")]
#[case::level(
    "min_security_level = \"cc+strong\"",
    "ota.keyset.min_security_level",
    "cc+strong"
)]
#[case::index("kic_index = 16", "ota.keyset", "outside 1..=15")]
fn a_bad_keyset_field_is_named_with_what_was_expected(
    #[case] line: &str,
    #[case] field: &str,
    #[case] says: &str,
) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/cards/uicc.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let key = line.split(" = ").next().unwrap();
    // Replace the first keyset's line with that key (or add it).
    let start = text.find("[[ota.keyset]]").unwrap();
    let (head, tail) = text.split_at(start);
    let mut lines: Vec<String> = tail.lines().map(String::from).collect();
    match lines
        .iter()
        .position(|l| l.starts_with(&format!("{key} = ")))
    {
        Some(i) => lines[i] = line.into(),
        None => lines.insert(1, line.into()),
    }
    let bad = format!("{head}{}", lines.join("\n"));
    let err = CardDefinition::from_toml(&bad)
        .unwrap()
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains(field) && err.contains(says), "{err}");
}

#[test]
fn two_keysets_with_one_kid_index_are_refused() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/cards/uicc.toml");
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("kid_index = 2", "kid_index = 3");
    let err = CardDefinition::from_toml(&text)
        .unwrap()
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("3 is used by two keysets"), "{err}");
}

// ---------------------------------------------------------------------------------------
// A profile's own SCP80 keys (what an eUICC's enabled profile brings)

#[test]
fn a_ts48_profiles_keys_and_rfm_tars_are_the_ones_its_content_answers_to() {
    use simlab_emulator::euicc::install;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../vectors/profiles/TS48V1-A-UNIQUE.der"
    );
    let installed = install::build(&std::fs::read(path).unwrap()).unwrap();
    // The profile's content as the card's live content, as an eUICC makes it at REFRESH.
    let (atr, mut state) = definition();
    state.put_content(installed.content);
    let mut c = Uicc::new(atr, state);
    c.power_on();
    // TS.48 keyset 1: triple DES, 2 keys.
    let profile_keys = Keyset {
        kic_index: 1,
        kic_algorithm: CipherAlgorithm::TripleDesCbc2,
        kic: h("66778899aabbccdd1122334455eeff10"),
        kid_index: 1,
        kid_algorithm: MacAlgorithm::TripleDesCbcMac2,
        kid: h("112233445566778899aabbccddeeff10"),
    };
    // The card definition's keysets are not the profile's.
    let (por, _) = deliver(
        &mut c,
        &seal(&des_keyset(), spi_secure(), TAR_USIM_RFM, 0, h("00040000")),
    );
    let opened = open_por(&por, &spi_secure(), &des_keyset());
    assert_eq!(opened.packet.status, PorStatus::UnidentifiedSecurityError);
    // The profile's USIM RFM instance, TAR B00140.
    let packet = seal(
        &profile_keys,
        spi_secure(),
        [0xB0, 0x01, 0x40],
        0,
        h("00040000"),
    );
    let (por, _) = deliver(&mut c, &packet);
    let opened = open_por(&por, &spi_secure(), &profile_keys);
    assert_eq!(opened.packet.status, PorStatus::Ok);
    assert_eq!(opened.packet.tar, [0xB0, 0x01, 0x40]);
    assert_eq!(select_usim(&mut c).1, 0x6283);
}
