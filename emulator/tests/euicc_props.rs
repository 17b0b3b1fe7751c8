//! The eUICC under arbitrary terminal input: whatever STORE DATA segments, ES10 tags and
//! contents arrive, in whatever order, the card answers with a status word, never panics, and
//! its persistent state stays loadable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use simlab_emulator::uicc::CardState;
use simlab_emulator::{CardDefinition, Uicc};

fn euicc() -> Uicc {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/cards/euicc.toml");
    let (atr, state) = CardDefinition::load(std::path::Path::new(path))
        .unwrap()
        .build()
        .unwrap();
    let mut c = Uicc::new(atr, state);
    c.power_on();
    c
}

const ISD_R_SELECT: &str = "00A4040010A0000005591010FFFFFFFF8900000100";

/// ES10 tags the ISD-R knows, plus some it does not.
fn es10_tag() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(vec![
            0x20u8, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x28, 0x29, 0x2B, 0x2D, 0x2E, 0x30, 0x31,
            0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x3C, 0x3E, 0x3F, 0x41, 0x43, 0x56,
        ])
        .prop_map(|t| vec![0xBF, t]),
        prop::sample::select(vec![0xA0u8, 0xA1, 0xA2, 0xA3, 0x86, 0x87, 0x88])
            .prop_map(|t| vec![t]),
    ]
}

/// An ES10 request: a tag with random content, correctly or wrongly framed.
fn request() -> impl Strategy<Value = Vec<u8>> {
    (
        es10_tag(),
        proptest::collection::vec(any::<u8>(), 0..300),
        any::<bool>(),
    )
        .prop_map(|(tag, body, framed)| {
            let mut out = tag;
            if framed {
                out.extend(
                    simlab_emulator::tlv::encode(0x30, &body)
                        .get(1..)
                        .unwrap_or_default(),
                );
            } else {
                out.extend(body);
            }
            out
        })
}

#[derive(Debug, Clone)]
enum Step {
    /// An ES10 request in STORE DATA blocks of `block` bytes on channel 1.
    StoreData {
        request: Vec<u8>,
        block: usize,
        wrong_p1: bool,
    },
    GetResponse(u8),
    Raw(Vec<u8>),
    Reset,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (request(), 1usize..=255, proptest::bool::weighted(0.1))
            .prop_map(|(request, block, wrong_p1)| Step::StoreData { request, block, wrong_p1 }),
        1 => any::<u8>().prop_map(Step::GetResponse),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Step::Raw),
        1 => Just(Step::Reset),
    ]
}

fn send(c: &mut Uicc, apdu: &[u8]) -> Vec<u8> {
    let r = c.transmit(apdu);
    assert!(
        r.len() >= 2,
        "answer to {} has no status word",
        hex::encode_upper(apdu)
    );
    r
}

fn open_isd_r(c: &mut Uicc) {
    let r = send(c, &hex::decode("0070000001").unwrap());
    if r == [0x01, 0x90, 0x00] {
        let mut select = hex::decode(ISD_R_SELECT).unwrap();
        select[0] = 0x01;
        send(c, &select);
    }
}

fn run(c: &mut Uicc, s: &Step) {
    match s {
        Step::StoreData {
            request,
            block,
            wrong_p1,
        } => {
            let chunks: Vec<&[u8]> = request.chunks(*block).collect();
            for (n, chunk) in chunks.iter().enumerate() {
                let last = n + 1 == chunks.len();
                let p1 = if last != *wrong_p1 { 0x91 } else { 0x11 };
                let mut apdu = vec![0x81, 0xE2, p1, n as u8, chunk.len() as u8];
                apdu.extend_from_slice(chunk);
                send(c, &apdu);
            }
        }
        Step::GetResponse(le) => {
            send(c, &[0x01, 0xC0, 0x00, 0x00, *le]);
        }
        Step::Raw(bytes) => {
            c.transmit(bytes);
        }
        Step::Reset => {
            c.reset();
            open_isd_r(c);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_es10_traffic_never_breaks_the_card(steps in proptest::collection::vec(step(), 1..25)) {
        let mut c = euicc();
        open_isd_r(&mut c);
        for s in &steps {
            run(&mut c, s);
        }
        let state = c.state();
        let json = serde_json::to_string(state).unwrap();
        let back: CardState = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, state);
        // The card still works: the EID can be read on a fresh session.
        c.reset();
        open_isd_r(&mut c);
        let r = send(&mut c, &hex::decode("81E2910006BF3E035C015A").unwrap());
        prop_assert!(r.ends_with(&[0x90, 0x00]) || r.first() == Some(&0x61), "GetEID after the traffic: {}", hex::encode_upper(&r));
    }
}
