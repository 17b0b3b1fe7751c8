//! The vpcd lane without pcscd: the emulated UICC of `vectors/cards/uicc.toml` served by its
//! card-side thread (`simlab_vpcd::card::spawn`, as `simlab card serve` does) and driven by
//! the harness's vpcd reader side (`VpcdReader`) over vsmartcard's wire protocol on
//! loopback (facts: docs/vpcd.md). Each test has its own port, so they run in parallel.
//!
//! Also: the card's state directory (persistent state of TS 102 221 §9 PINs and the TS 33.102
//! §6.3 SQN) survives a restart; without one, nothing does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use rstest::rstest;
use simlab_emulator::Uicc;
use simlab_harness::adapter::VpcdCard;
use simlab_harness::cards::load_card;
use simlab_harness::transport::{split_sw, Transport, VpcdReader};
use simlab_vpcd::card::{spawn, CardThread, ServeOptions};
use simlab_vpcd::reader::ReaderListener;
use std::path::Path;
use std::time::Duration;

/// How long a card thread gets to connect to our listener.
const CONNECT_WAIT: Duration = Duration::from_secs(5);

/// A card served on a thread, and the reader side connected to it.
struct Served {
    listener: ReaderListener,
    reader: Option<VpcdReader>,
    card: Option<CardThread<VpcdCard>>,
}

impl Served {
    /// Serves `card` to a fresh listener on a free loopback port and powers it on.
    fn new(card: Uicc) -> Self {
        let listener = ReaderListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("listener address");
        let card =
            spawn(VpcdCard::new(card), addr, ServeOptions::default()).expect("card thread starts");
        let conn = listener
            .accept_timeout(CONNECT_WAIT)
            .expect("the card connects to the reader side");
        let reader = VpcdReader::start(conn).expect("power on and get-ATR answered");
        Self {
            listener,
            reader: Some(reader),
            card: Some(card),
        }
    }

    fn reader(&mut self) -> &mut VpcdReader {
        self.reader.as_mut().expect("connected")
    }

    /// Closes the reader side and waits for the card to connect again.
    fn reconnect(&mut self) {
        self.reader = None;
        let conn = self
            .listener
            .accept_timeout(CONNECT_WAIT)
            .expect("the card connects again");
        self.reader = Some(VpcdReader::start(conn).expect("power on and get-ATR answered"));
    }

    /// Raw exchange: no GET RESPONSE added.
    fn raw(&mut self) -> impl FnMut(&[u8]) -> Vec<u8> + '_ {
        move |apdu| {
            self.reader()
                .transmit_raw(apdu)
                .unwrap_or_else(|e| panic!("vpcd transmit {}: {e}", hex::encode_upper(apdu)))
        }
    }

    fn run(&mut self, script: &str) {
        run_script("vpcd", &mut self.raw(), script);
    }

    /// Stops the card thread and gives the card back.
    fn stop(mut self) -> Uicc {
        let card = self.card.take().expect("card thread still running");
        card.stop().expect("card thread ends cleanly").into_inner()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(card) = self.card.take() {
            let _ = card.stop();
        }
    }
}

#[test]
fn vpcd_reader_sees_the_atr_of_the_card_definition() {
    let (atr, card) = fresh_card();
    let mut served = Served::new(card);
    assert_eq!(
        hex::encode_upper(served.reader().atr().expect("ATR")),
        hex::encode_upper(&atr)
    );
    // The card answers get-ATR again at any time (vpcd polls with it), unchanged.
    assert_eq!(served.reader().reset().expect("reset"), atr);
}

#[test]
fn vpcd_reader_reads_iccid_and_imsi_and_authenticates() {
    let (_, card) = fresh_card();
    let mut served = Served::new(card);
    served.run(&read_back_script());
}

#[rstest]
#[case::select_mf_with_fcp("> 00 A4 00 04 02 3F00 00\n< 62 * 83 02 3F00 * 9000")]
#[case::iccid(READ_ICCID)]
#[case::pin1_status_before_verify(PIN1_NOT_VERIFIED)]
#[case::imsi_is_protected_until_pin1(
    "> 00 A4 04 0C 0C A0000000871002FF49FF0589\n< 9000\n> 00 A4 00 0C 02 6F07\n< 9000\n\
     > 00 B0 00 00 09\n< 6982"
)]
#[case::wrong_pin1_counts_down(
    "> 00 20 00 01 08 31313131FFFFFFFF\n< 63C2\n> 00 20 00 01\n< 63C2\n\
     > 00 20 00 01 08 30303030FFFFFFFF\n< 9000\n> 00 20 00 01\n< 9000"
)]
#[case::wrong_le_gets_6cxx_raw("> 00 A4 00 0C 02 2F00\n< 9000\n> 00 B2 01 04 10\n< 6C20")]
#[case::authenticate_needs_pin1(&format!(
    "> 00 A4 04 0C 0C A0000000871002FF49FF0589\n< 9000\n{AUTHENTICATE_SET1}\n< 6982"
))]
fn vpcd_reader_gets_the_answers_the_card_gives_in_process(#[case] script: &str) {
    let (_, card) = fresh_card();
    let mut served = Served::new(card);
    served.run(script);
    // The same script on a card in this process gives the same answers: vpcd adds nothing.
    let (_, mut local) = fresh_card();
    local.power_on();
    run_script("in-process", &mut |apdu| local.transmit(apdu), script);
}

#[test]
fn transport_transmit_does_the_t0_work_that_vpcd_does_not() {
    let (_, card) = fresh_card();
    let mut served = Served::new(card);
    // Case 3 SELECT: raw '61 xx', then Transport::transmit fetches the FCP itself.
    let select_usim = bytes("00 A4 04 04 0C A0000000871002FF49FF0589");
    let raw = served
        .reader()
        .transmit_raw(&select_usim)
        .expect("raw SELECT");
    assert_eq!(raw.len(), 2);
    assert_eq!(raw[0], 0x61, "raw answer {}", hex::encode_upper(&raw));
    let full = served.reader().transmit(&select_usim).expect("SELECT");
    let (fcp, sw) = split_sw(&full);
    assert_eq!(sw, 0x9000);
    assert_eq!(
        fcp.len(),
        usize::from(raw[1]),
        "FCP of the length '61 xx' announced"
    );
    assert_eq!(fcp[0], 0x62, "FCP template (TS 102 221 §11.1.1.3)");
    // '6C 20' on a wrong Le: re-sent with Le = '20', giving the 32-byte EF.DIR record.
    served.run("> 00 A4 00 0C 02 3F00\n< 9000\n> 00 A4 00 0C 02 2F00\n< 9000");
    let record = served
        .reader()
        .transmit(&bytes("00 B2 01 04 10"))
        .expect("READ RECORD");
    let (data, sw) = split_sw(&record);
    assert_eq!(sw, 0x9000);
    assert_eq!(data.len(), 0x20);
    assert_eq!(
        hex::encode_upper(&data[..16]),
        "61144F0CA0000000871002FF49FF0589"
    );
}

#[test]
fn a_reset_forgets_pin1_but_the_card_keeps_its_sqn() {
    let (atr, card) = fresh_card();
    let mut served = Served::new(card);
    served.run(&read_back_script());
    assert_eq!(served.reader().reset().expect("reset"), atr);
    served.run(&format!(
        "{PIN1_NOT_VERIFIED}\n{VERIFY_PIN1}\n{SELECT_USIM_T0}\n{AUTHENTICATE_SET1}\n{AUTHENTICATE_SET1_REPLAYED}"
    ));
}

#[test]
fn the_card_reconnects_after_the_reader_side_goes_away_and_keeps_its_state() {
    let (_, card) = fresh_card();
    let mut served = Served::new(card);
    served.run(&read_back_script());
    // Before the first connection closes, the card does not connect a second time.
    assert!(served
        .listener
        .accept_timeout(Duration::from_millis(200))
        .is_err());
    // As when pcscd restarts: the reader side closes; the card thread reconnects (backoff
    // from 50 ms) to the same listener, and the new power on starts a new session.
    served.reconnect();
    served.run(&format!(
        "{PIN1_NOT_VERIFIED}\n{VERIFY_PIN1}\n{SELECT_USIM_T0}\n{AUTHENTICATE_SET1}\n{AUTHENTICATE_SET1_REPLAYED}"
    ));
}

/// The card of the repository's definition with its state in `dir`.
fn card_with_state(dir: &Path) -> Uicc {
    load_card(&card_definition(), Some(dir)).expect("card with a state directory loads")
}

#[test]
fn a_state_dir_keeps_the_pin1_counter_across_restarts() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut served = Served::new(card_with_state(dir.path()));
    served.run("> 00 20 00 01 08 31313131FFFFFFFF\n< 63C2");
    drop(served.stop());

    // A new process would do the same: load the definition and the state directory again.
    let mut served = Served::new(card_with_state(dir.path()));
    served.run("> 00 20 00 01\n< 63C2");
    // The right PIN resets the counter, and that is saved too.
    served.run(VERIFY_PIN1);
    drop(served.stop());

    let mut served = Served::new(card_with_state(dir.path()));
    served.run(PIN1_NOT_VERIFIED);
}

#[test]
fn a_state_dir_keeps_the_sqn_so_a_replayed_challenge_is_refused_after_a_restart() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut served = Served::new(card_with_state(dir.path()));
    served.run(&read_back_script());
    drop(served.stop());

    let mut served = Served::new(card_with_state(dir.path()));
    served.run(&format!(
        "{VERIFY_PIN1}\n{SELECT_USIM_T0}\n{AUTHENTICATE_SET1}\n{AUTHENTICATE_SET1_REPLAYED}"
    ));
}

#[test]
fn without_a_state_dir_a_restarted_card_starts_from_its_definition() {
    let (_, card) = fresh_card();
    let mut served = Served::new(card);
    served.run("> 00 20 00 01 08 31313131FFFFFFFF\n< 63C2");
    drop(served.stop());

    let (_, card) = fresh_card();
    let mut served = Served::new(card);
    served.run(&format!("{PIN1_NOT_VERIFIED}\n{}", read_back_script()));
}

#[test]
fn the_card_thread_gives_back_the_card_with_its_state() {
    let (_, card) = fresh_card();
    let mut served = Served::new(card);
    served.run("> 00 20 00 01 08 31313131FFFFFFFF\n< 63C2");
    // The same card object, served again in process: the counter went with it.
    let mut card = served.stop();
    card.power_on();
    run_script(
        "in-process",
        &mut |apdu| card.transmit(apdu),
        "> 00 20 00 01\n< 63C2",
    );
}
