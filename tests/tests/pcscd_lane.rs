//! The pcscd lane: the emulated UICC of `vectors/cards/uicc.toml` served to the REAL pcscd
//! through vsmartcard's vpcd driver, then used through PC/SC by the `pcsc` crate and by
//! independent clients (`opensc-tool`, `scriptor`) as subprocesses. Facts about vpcd and
//! pcscd: docs/vpcd.md.
//!
//! Every test here is `#[ignore]`d: it needs pcscd with vpcd, so a plain `cargo test` reports
//! the lane as ignored rather than passed. `scripts/test.sh` starts pcscd and runs the lane
//! with `--ignored` (not with `SIMLAB_SKIP_PCSCD=1`); run by hand, a missing pcscd, reader or
//! client program is a failure.
//!
//! The vpcd slot comes from the environment (see `common::lane_slot`): `SIMLAB_VPCD`
//! (host:port, default 127.0.0.1:35963) and `SIMLAB_VPCD_READER` (default derived from the
//! port: 35963 → "Virtual PCD 00 00", 35964 → "Virtual PCD 00 01").
//!
//! vpcd has one card per slot and the tests of a binary run in parallel threads, so every
//! test holds [`VPCD_SLOT`] from before its card connects until pcscd saw it removed. Other
//! processes (a second `cargo test`, say) are kept out by holding a listening socket on
//! [`SLOT_LOCK_ADDR`] for as long: a port can have one listener only, and the OS frees it
//! when a process dies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use pcsc::{Card, Context, Disposition, Protocol, Protocols, ReaderState, Scope, ShareMode, State};
use simlab_harness::adapter::VpcdCard;
use simlab_vpcd::card::{spawn, CardThread, ServeOptions};
use std::ffi::CString;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// pcscd polls vpcd every 400 ms; a card is usable 20–585 ms after connecting (docs/vpcd.md).
/// Generous, for a loaded CI machine.
const CARD_WAIT: Duration = Duration::from_secs(10);
/// One wait of SCardGetStatusChange; short so the deadline is checked often.
const STATUS_POLL: Duration = Duration::from_millis(250);

/// One card at a time in the lane's vpcd slot.
static VPCD_SLOT: Mutex<()> = Mutex::new(());
/// How long a test waits for another process to free the slot.
const SLOT_LOCK_WAIT: Duration = Duration::from_secs(120);

/// The slot, for this thread and against other processes.
struct SlotLock {
    _listener: TcpListener,
    _thread: MutexGuard<'static, ()>,
}

fn lock_slot() -> SlotLock {
    // A test that failed while holding the slot still stopped its card (Lane's Drop).
    let thread = VPCD_SLOT.lock().unwrap_or_else(|e| e.into_inner());
    let deadline = Instant::now() + SLOT_LOCK_WAIT;
    let mut said = false;
    loop {
        match TcpListener::bind(SLOT_LOCK_ADDR.as_str()) {
            Ok(listener) => {
                return SlotLock {
                    _listener: listener,
                    _thread: thread,
                }
            }
            Err(e) if e.kind() == ErrorKind::AddrInUse && Instant::now() < deadline => {
                if !said {
                    eprintln!(
                        "another process holds the vpcd slot {VPCD_ADDR} ({SLOT_LOCK_ADDR} in use); waiting"
                    );
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!(
                "cannot lock the vpcd slot {VPCD_ADDR} by listening on {SLOT_LOCK_ADDR}: {e}"
            ),
        }
    }
}

/// pcscd with the lane's reader; its absence fails the test (the lane runs only when asked
/// for, with `--ignored`).
fn pcscd_context() -> Context {
    let ctx = Context::establish(Scope::User).unwrap_or_else(|e| {
        panic!(
            "no PC/SC service ({e}): start pcscd (scripts/pcscd.sh start) or run scripts/test.sh"
        )
    });
    let readers = ctx
        .list_readers_owned()
        .unwrap_or_else(|e| panic!("pcscd lists no readers ({e}); is vsmartcard-vpcd installed?"));
    assert!(
        readers
            .iter()
            .any(|r| r.to_string_lossy() == READER.as_str()),
        "pcscd has no reader {READER:?} (readers: {readers:?}); is vsmartcard-vpcd installed, and \
         do SIMLAB_VPCD / SIMLAB_VPCD_READER name one of its slots?"
    );
    ctx
}

/// The reader's state now, or after the next change within `wait`.
fn reader_state(ctx: &Context, known: Option<&ReaderState>, wait: Duration) -> ReaderState {
    let mut rs = [ReaderState::new(
        CString::new(READER.as_str()).expect("no NUL in the name"),
        known.map_or(State::UNAWARE, ReaderState::event_state),
    )];
    match ctx.get_status_change(wait, &mut rs) {
        Ok(()) | Err(pcsc::Error::Timeout) => {}
        Err(e) => panic!("SCardGetStatusChange on {READER:?}: {e}"),
    }
    let [rs] = rs;
    rs
}

/// Waits until `done` holds for the reader's state; the last state seen either way.
fn wait_for(ctx: &Context, done: impl Fn(&ReaderState) -> bool) -> (bool, ReaderState) {
    let deadline = Instant::now() + CARD_WAIT;
    let mut rs = reader_state(ctx, None, Duration::ZERO);
    while !done(&rs) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (false, rs);
        }
        rs = reader_state(ctx, Some(&rs), left.min(STATUS_POLL));
    }
    (true, rs)
}

fn is_empty(rs: &ReaderState) -> bool {
    rs.event_state().contains(State::EMPTY)
}

fn describe(rs: &ReaderState) -> String {
    format!(
        "state {:?}, ATR {}",
        rs.event_state(),
        hex::encode_upper(rs.atr())
    )
}

/// Our card in vpcd's slot 0, seen present by pcscd. Dropping it stops the card and waits
/// until pcscd shows the slot empty, then frees the slot for the next test.
struct Lane {
    ctx: Context,
    atr: Vec<u8>,
    card: Option<CardThread<VpcdCard>>,
    _slot: SlotLock,
}

impl Lane {
    /// Serves a fresh card from the repository's definition.
    fn start(test: &str) -> Self {
        Self::start_with(test, fresh_card)
    }

    /// Serves the card `make` builds.
    fn start_with(test: &str, make: impl FnOnce() -> (Vec<u8>, simlab_emulator::Uicc)) -> Self {
        eprintln!("{test}: vpcd slot {VPCD_ADDR}, reader {READER:?}");
        let ctx = pcscd_context();
        let slot = lock_slot();
        // Another card in the slot (say, a `simlab card serve` left running) would keep
        // ours queued in the kernel until it leaves.
        let (empty, rs) = wait_for(&ctx, is_empty);
        assert!(
            empty,
            "{READER:?} still holds a card that is not ours after {CARD_WAIT:?} ({}): \
             stop whatever serves a card at {VPCD_ADDR}",
            describe(&rs)
        );
        let (atr, uicc) = make();
        let card = spawn(
            VpcdCard::new(uicc),
            VPCD_ADDR.as_str(),
            ServeOptions::default(),
        )
        .expect("card thread starts");
        let lane = Self {
            ctx,
            atr,
            card: Some(card),
            _slot: slot,
        };
        let (present, rs) = wait_for(&lane.ctx, |rs| {
            rs.event_state().contains(State::PRESENT) && rs.atr() == lane.atr.as_slice()
        });
        assert!(
            present,
            "pcscd did not show our card (ATR {}) in {READER:?} within {CARD_WAIT:?}; last seen: {}",
            hex::encode_upper(&lane.atr),
            describe(&rs)
        );
        lane
    }

    /// Connects through PC/SC, retrying while pcscd still settles the new card.
    fn connect(&self, protocols: Protocols) -> Card {
        let reader = CString::new(READER.as_str()).expect("no NUL in the name");
        let deadline = Instant::now() + CARD_WAIT;
        loop {
            match self.ctx.connect(&reader, ShareMode::Shared, protocols) {
                Ok(card) => return card,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("connect to {READER:?} failed ({e}); retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("SCardConnect {READER:?} {protocols:?}: {e}"),
            }
        }
    }

    /// Stops the card and waits until pcscd shows the slot empty; false if it did not.
    fn remove_card(&mut self) -> bool {
        if let Some(card) = self.card.take() {
            if let Err(e) = card.stop() {
                eprintln!("stopping the card thread: {e}");
            }
        }
        wait_for(&self.ctx, is_empty).0
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        if self.card.is_some() && !self.remove_card() {
            eprintln!("{READER:?} did not show empty within {CARD_WAIT:?} after our card stopped");
        }
    }
}

/// Raw PC/SC exchange: pcscd and vpcd do no T=0 processing, so '61 xx' arrives as is.
fn pcsc_transmit(card: &Card) -> impl FnMut(&[u8]) -> Vec<u8> + '_ {
    |apdu| {
        let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
        card.transmit(apdu, &mut buf)
            .unwrap_or_else(|e| panic!("SCardTransmit {}: {e}", hex::encode_upper(apdu)))
            .to_vec()
    }
}

fn run_pcsc(card: &Card, script: &str) {
    run_script("pcscd", &mut pcsc_transmit(card), script);
}

fn status(card: &Card) -> (Vec<u8>, Option<Protocol>) {
    let status = card.status2_owned().expect("SCardStatus");
    (status.atr().to_vec(), status.protocol2())
}

#[test]
#[ignore = "pcscd lane: needs pcscd with vpcd; scripts/test.sh runs it with --ignored"]
fn pcsc_client_reads_iccid_and_imsi_and_authenticates_through_pcscd() {
    let lane = Lane::start("pcsc_client_reads_iccid_and_imsi_and_authenticates_through_pcscd");
    let card = lane.connect(Protocols::ANY);
    let (atr, _) = status(&card);
    assert_eq!(hex::encode_upper(atr), hex::encode_upper(&lane.atr));
    run_pcsc(&card, &read_back_script());
    card.disconnect(Disposition::LeaveCard)
        .map_err(|(_, e)| e)
        .expect("SCardDisconnect");
}

#[test]
#[ignore = "pcscd lane: needs pcscd with vpcd; scripts/test.sh runs it with --ignored"]
fn a_reset_and_a_second_connection_start_new_sessions_on_the_same_card() {
    let lane = Lane::start("a_reset_and_a_second_connection_start_new_sessions_on_the_same_card");
    let mut card = lane.connect(Protocols::ANY);
    run_pcsc(&card, &format!("{VERIFY_PIN1}\n> 00 20 00 01\n< 9000"));
    // Warm reset through pcscd (vpcd: get-ATR, reset, get-ATR): PIN1 no longer verified.
    card.reconnect(ShareMode::Shared, Protocols::ANY, Disposition::ResetCard)
        .expect("SCardReconnect with reset");
    assert_eq!(status(&card).0, lane.atr);
    run_pcsc(
        &card,
        &format!("{PIN1_NOT_VERIFIED}\n{}", read_back_script()),
    );
    card.disconnect(Disposition::ResetCard)
        .map_err(|(_, e)| e)
        .expect("SCardDisconnect with reset");

    // A second connection: a new session, but the same card (its SQN moved on, so the
    // same challenge is now a replay).
    let card = lane.connect(Protocols::ANY);
    assert_eq!(status(&card).0, lane.atr);
    run_pcsc(
        &card,
        &format!(
            "{PIN1_NOT_VERIFIED}\n{READ_ICCID}\n{VERIFY_PIN1}\n{SELECT_USIM_T0}\n\
             {AUTHENTICATE_SET1}\n{AUTHENTICATE_SET1_REPLAYED}"
        ),
    );
}

#[test]
#[ignore = "pcscd lane: needs pcscd with vpcd; scripts/test.sh runs it with --ignored"]
fn a_t0_only_client_connects_and_fetches_61xx_answers_itself() {
    let lane = Lane::start("a_t0_only_client_connects_and_fetches_61xx_answers_itself");
    // As an LPA does (docs/vpcd.md, "Clients"): T=0 only. The ATR offers T=0 (TD1 = '80').
    let card = lane.connect(Protocols::T0);
    let (atr, protocol) = status(&card);
    assert_eq!(atr, lane.atr);
    assert_eq!(protocol, Some(Protocol::T0));
    let mut transmit = pcsc_transmit(&card);
    let raw = transmit(&bytes("00 A4 04 04 0C A0000000871002FF49FF0589"));
    assert_eq!(raw.len(), 2, "raw answer {}", hex::encode_upper(&raw));
    assert_eq!(raw[0], 0x61, "raw answer {}", hex::encode_upper(&raw));
    let fcp = transmit(&[0x00, 0xC0, 0x00, 0x00, raw[1]]);
    assert_eq!(fcp.len(), usize::from(raw[1]) + 2);
    assert_eq!(fcp[0], 0x62, "FCP template (TS 102 221 §11.1.1.3)");
    assert_eq!(&fcp[fcp.len() - 2..], &[0x90, 0x00]);
    run_script(
        "pcscd T=0",
        &mut transmit,
        &format!("{VERIFY_PIN1}\n{READ_IMSI}\n{AUTHENTICATE_SET1}\n{AUTHENTICATE_SET1_OK}"),
    );
}

/// notes in `uicc::DEFAULT_ATR`: with an ATR offering T=1 too, pcscd settles on T=1 for the
/// first "any protocol" client and a T=0-only client then gets SCARD_E_PROTO_MISMATCH.
#[rstest::rstest]
#[case::any_first_then_t0_only(Protocols::ANY, Protocols::T0)]
#[case::t0_only_first_then_any(Protocols::T0, Protocols::ANY)]
// After the cases, so that rstest puts it on every case (before them it marks only the first).
#[ignore = "pcscd lane: needs pcscd with vpcd; scripts/test.sh runs it with --ignored"]
fn any_protocol_and_t0_only_clients_share_the_card_in_either_order(
    #[case] first: Protocols,
    #[case] second: Protocols,
) {
    let lane = Lane::start("any_protocol_and_t0_only_clients_share_the_card_in_either_order");
    let one = lane.connect(first);
    assert_eq!(
        status(&one).1,
        Some(Protocol::T0),
        "first connection ({first:?})"
    );
    run_pcsc(&one, READ_ICCID);
    // The first client stays connected, as opensc-tool's or pcsc_scan's session would.
    let two = lane.connect(second);
    assert_eq!(
        status(&two).1,
        Some(Protocol::T0),
        "second connection ({second:?})"
    );
    run_pcsc(&two, &format!("{READ_ICCID}\n{SELECT_USIM_T0}"));
    // Both share channel 0 and so its selection (the USIM now): back to the MF first.
    run_pcsc(
        &one,
        &format!("> 00 A4 00 0C 02 3F00\n< 9000\n{READ_ICCID}"),
    );
    drop(one);
    drop(two);
    // A third T=0-only client after both left (lpac after pcsc_scan).
    let three = lane.connect(Protocols::T0);
    run_pcsc(&three, READ_ICCID);
}

/// pySim-shell connects with "any" and then transmits with the T=0 protocol control
/// information: that works only when "any" settled on T=0, which the default ATR guarantees.
#[test]
#[ignore = "pcscd lane: needs pcscd with vpcd; scripts/test.sh runs it with --ignored"]
fn a_client_connecting_with_any_protocol_transmits_with_t0() {
    let lane = Lane::start("a_client_connecting_with_any_protocol_transmits_with_t0");
    let card = lane.connect(Protocols::ANY);
    let (atr, protocol) = status(&card);
    assert_eq!(atr, lane.atr);
    assert_eq!(
        protocol,
        Some(Protocol::T0),
        "pcscd chose {protocol:?} for ATR {}: a T=0 transmit would fail with PROTO_MISMATCH",
        hex::encode_upper(&atr)
    );
    // The pcsc crate transmits with the PCI of the active protocol, T=0 here: the raw 61xx
    // of a case-4 SELECT shows the T=0 transport in use.
    run_pcsc(
        &card,
        &format!("{SELECT_USIM_T0}\n{VERIFY_PIN1}\n{READ_IMSI}"),
    );
}

#[test]
#[ignore = "pcscd lane: needs pcscd with vpcd; scripts/test.sh runs it with --ignored"]
fn pcscd_shows_the_reader_empty_once_the_card_stops() {
    let mut lane = Lane::start("pcscd_shows_the_reader_empty_once_the_card_stops");
    let started = Instant::now();
    assert!(
        lane.remove_card(),
        "{READER:?} still shows a card {CARD_WAIT:?} after the card thread stopped"
    );
    eprintln!("pcscd saw the card leave after {:?}", started.elapsed());
}

/// Runs an independent PC/SC client (scripts/test.sh installs them); gives (exit status
/// success, stdout, stderr).
fn client(program: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write as _;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} not runnable ({e}); scripts/test.sh installs it"));
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.as_bytes())
            .unwrap_or_else(|e| panic!("writing to {program}: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for {program}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Only the hex digits of `text`, upper case.
fn hex_digits(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<String>()
        .to_uppercase()
}

#[test]
#[ignore = "pcscd lane: needs pcscd with vpcd; scripts/test.sh runs it with --ignored"]
fn opensc_tool_prints_the_atr_of_the_card() {
    let lane = Lane::start("opensc_tool_prints_the_atr_of_the_card");
    let (ok, out, err) = client("opensc-tool", &["-r", READER.as_str(), "-a"], "");
    assert!(ok, "opensc-tool failed:\n{out}{err}");
    // It prints the ATR as 3b:9f:...; compare the hex digits of each line.
    let want = hex::encode_upper(&lane.atr);
    assert!(
        out.lines().any(|l| hex_digits(l) == want),
        "opensc-tool -a did not print ATR {want}:\n{out}"
    );
}

#[test]
#[ignore = "pcscd lane: needs pcscd with vpcd; scripts/test.sh runs it with --ignored"]
fn scriptor_shows_9000_and_the_raw_61xx_of_a_select_asking_for_the_fcp() {
    let _lane = Lane::start("scriptor_shows_9000_and_the_raw_61xx_of_a_select_asking_for_the_fcp");
    let commands = "00A4000C023F00\n00A40004023F00\n00C0000000\n00A4000C022FE2\n00B000000A\n";
    let (ok, out, err) = client("scriptor", &["-r", READER.as_str()], commands);
    assert!(ok, "scriptor failed:\n{out}{err}");
    // scriptor echoes "> 00 A4 ..." and answers "< .. .. : <meaning>"; answers longer
    // than 16 bytes wrap, so compare the text after each '<' up to its ':'.
    let answers: Vec<String> = out
        .split('<')
        .skip(1)
        .map(|a| hex_digits(a.split(':').next().unwrap_or("")))
        .collect();
    assert_eq!(answers.len(), 5, "five answers expected:\n{out}");
    assert_eq!(answers[0], "9000", "SELECT MF, no FCP:\n{out}");
    assert!(
        matches("61*", &answers[1]) && answers[1].len() == 4,
        "SELECT MF asking for the FCP without Le: raw '61 xx' expected (pcscd does no T=0 work):\n{out}"
    );
    assert!(
        matches("62*83023F00*9000", &answers[2]),
        "GET RESPONSE gives the FCP of the MF:\n{out}"
    );
    assert_eq!(answers[3], "9000", "SELECT EF.ICCID:\n{out}");
    assert_eq!(
        answers[4],
        "98 94 00 01 01 00 00 00 10 F6 90 00".replace(' ', ""),
        "ICCID:\n{out}"
    );
}

/// `opensc-tool -s` output: per "Sending:" block, the SW ("SW1=0x90, SW2=0x00") and the data
/// of its hex dump (16 bytes a line, 3 columns each, then an ASCII column).
fn opensc_answers(out: &str) -> Vec<(String, String)> {
    out.split("Sending:")
        .skip(1)
        .map(|block| {
            let mut lines = block.lines().skip(1);
            let received = lines.next().unwrap_or("");
            let sw = received
                .split("0x")
                .skip(1)
                .map(|part| part.chars().take(2).collect::<String>())
                .collect::<String>()
                .to_uppercase();
            let data = lines
                .map(|l| hex_digits(&l.chars().take(48).collect::<String>()))
                .collect::<String>();
            (sw, data)
        })
        .collect()
}

#[test]
#[ignore = "pcscd lane: needs pcscd with vpcd; scripts/test.sh runs it with --ignored"]
fn opensc_tool_sends_apdus_after_its_own_card_probing() {
    let _lane = Lane::start("opensc_tool_sends_apdus_after_its_own_card_probing");
    // OpenSC first probes the card with APDUs of its own card drivers; the card must
    // answer them sanely and still be usable (docs/vpcd.md).
    let (ok, out, err) = client(
        "opensc-tool",
        &[
            "-r",
            READER.as_str(),
            "-s",
            "00A4000C023F00",
            "-s",
            "00A4000C022FE2",
            "-s",
            "00B000000A",
            "-s",
            "00A40004023F0000",
        ],
        "",
    );
    assert!(ok, "opensc-tool failed:\n{out}{err}");
    let answers = opensc_answers(&out);
    let sws: Vec<&str> = answers.iter().map(|(sw, _)| sw.as_str()).collect();
    assert_eq!(sws, ["9000"; 4], "status words:\n{out}");
    assert_eq!(answers[2].1, "989400010100000010F6", "ICCID:\n{out}");
    assert!(
        matches("62*83023F00*", &answers[3].1),
        "FCP of the MF:\n{out}"
    );
}

/// SGP.22 through the real pcscd: simlab's LPA, speaking PC/SC to the emulated eUICC in
/// "Virtual PCD 00 00", downloads a TS.48 profile from simlab's SM-DP+ over HTTPS, enables
/// it, and the card then authenticates as that profile's USIM.
#[test]
#[ignore = "pcscd lane: needs pcscd with vpcd; scripts/test.sh runs it with --ignored"]
fn lpa_downloads_and_enables_a_profile_through_pcscd() {
    use simlab_harness::lpa::{self, ActivationCode, DeviceInfo, Es10Client};
    use simlab_harness::transport::{split_sw, PcscReader, Transport};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let _lane = Lane::start_with("lpa_downloads_and_enables_a_profile_through_pcscd", || {
        let uicc =
            simlab_harness::cards::load_card(&root.join("vectors/cards/euicc.toml"), None).unwrap();
        (uicc.atr().to_vec(), uicc)
    });
    let server = simlab_harness::smdp::start(simlab_harness::smdp::SmdpOptions::new(
        root.join("vectors/pki"),
        root.join("vectors/profiles"),
    ))
    .unwrap();
    let roots = vec![server.ca_cert_der.clone()];
    let ac: ActivationCode = format!("LPA:1${}$TS48V4-SAIP2-3-BERTLV-UNIQUE", server.address)
        .parse()
        .unwrap();
    let mut es10 = Es10Client::open(PcscReader::connect(READER.as_str()).unwrap()).unwrap();
    let done = lpa::download(
        &mut es10,
        &ac,
        None,
        &roots,
        &DeviceInfo::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(done.iccid.as_deref(), Some("8949449999999990122"));
    es10.enable("8949449999999990122").unwrap();
    assert_eq!(
        lpa::process_notifications(&mut es10, &roots, &mut |_| {}).unwrap(),
        1
    );
    let mut t = es10.close();
    t.reset().unwrap();
    // The enabled profile is now the card's USIM: TS.48 XOR algorithm, K 000102…0f.
    let select = t
        .transmit(&bytes("00A4040C0CA0000000871002FF49FF0589"))
        .unwrap();
    assert_eq!(split_sw(&select).1, 0x9000);
    let alg = simlab_emulator::aka::AkaAlgorithm::XorTest {
        k: core::array::from_fn(|i| i as u8),
    };
    let v = simlab_emulator::aka::generate_vector(&alg, 0x60, [0x80, 0x00], &[0x33; 16]);
    let auth = [
        vec![0x00, 0x88, 0x00, 0x81, 0x22, 0x10],
        v.rand.to_vec(),
        vec![0x10],
        v.autn.to_vec(),
        vec![0x00],
    ]
    .concat();
    let answer = t.transmit(&auth).unwrap();
    let (data, sw) = split_sw(&answer);
    assert_eq!(sw, 0x9000);
    assert_eq!(data.get(1).copied(), Some(v.xres.len() as u8));
    assert_eq!(
        &data[2..2 + v.xres.len()],
        v.xres.as_slice(),
        "RES = XRES through pcscd"
    );
    server.stop();
}

/// Issue 8's evidence through the real pcscd: `simlab ota send` (its own argument parsing and
/// code, in-process, over PC/SC to the vpcd reader) deactivates ADF.USIM with a USIM RFM
/// DEACTIVATE FILE in an SCP80 packet (3DES keyset 3 of vectors/cards/uicc.toml); afterwards
/// the independent clients see '62 83' on SELECT of the USIM, and AUTHENTICATE is refused.
#[test]
#[ignore = "pcscd lane: needs pcscd with vpcd; scripts/test.sh runs it with --ignored"]
fn simlab_ota_send_deactivates_the_usim_and_scriptor_and_opensc_tool_see_62_83() {
    use clap::Parser;
    #[derive(Parser)]
    struct Simlab {
        #[command(subcommand)]
        ota: simlab_harness::ota::cli::OtaCommand,
    }
    let _lane =
        Lane::start("simlab_ota_send_deactivates_the_usim_and_scriptor_and_opensc_tool_see_62_83");
    let keys = card_definition();
    let args = Simlab::try_parse_from([
        "simlab-ota",
        "send",
        "--reader",
        READER.as_str(),
        "--keys",
        keys.to_str().unwrap(),
        "--keyset",
        "3",
        "--tar",
        "B00011",
        "00040000",
    ])
    .unwrap();
    simlab_harness::ota::cli::run(args.ota, simlab_harness::output::Output::new(true)).unwrap();
    let usim = "00A4040C0CA0000000871002FF49FF0589";
    let (ok, out, err) = client(
        "scriptor",
        &["-r", READER.as_str()],
        &format!(
            "{usim}\n002000010830303030FFFFFFFF\n008800812210{}10{}\n",
            "00".repeat(16),
            "00".repeat(16)
        ),
    );
    assert!(ok, "scriptor failed:\n{out}{err}");
    let answers: Vec<String> = out
        .split('<')
        .skip(1)
        .map(|a| hex_digits(a.split(':').next().unwrap_or("")))
        .collect();
    assert_eq!(
        answers,
        ["6283", "9000", "6985"],
        "SELECT USIM, VERIFY PIN1, AUTHENTICATE:\n{out}"
    );
    let (ok, out, err) = client("opensc-tool", &["-r", READER.as_str(), "-s", usim], "");
    assert!(ok, "opensc-tool failed:\n{out}{err}");
    let sws: Vec<String> = opensc_answers(&out).into_iter().map(|(sw, _)| sw).collect();
    assert_eq!(sws, ["6283"], "SELECT USIM through opensc-tool:\n{out}");
}

/// The conformance suite through the real pcscd: every case of vectors/conformance against
/// simlab's UICC and its eUICC with the TS.48 test profile in "Virtual PCD 00 00", each
/// with its deviations file; nothing unexpected fails and at least the UICC, USIM (and
/// eUICC) areas ran, and the OTA area with the card's keysets (the UICC's definition's, the
/// TS.48 test profile's for the eUICC).
#[rstest::rstest]
#[case::uicc("uicc", 150, 20)]
#[case::euicc_test_profile("euicc-test-profile", 200, 20)]
#[ignore = "pcscd lane: needs pcscd with vpcd; scripts/test.sh runs it with --ignored"]
fn the_conformance_suite_passes_through_pcscd(
    #[case] card: &str,
    #[case] at_least: usize,
    #[case] ota_at_least: usize,
) {
    use simlab_harness::suite::{execute, target::TargetSpec, RunOptions};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let definition = root.join(format!("vectors/cards/{card}.toml"));
    let _lane = Lane::start_with("the_conformance_suite_passes_through_pcscd", || {
        let uicc = simlab_harness::cards::load_card(&definition, None).unwrap();
        (uicc.atr().to_vec(), uicc)
    });
    let report = execute(&RunOptions {
        cases: root.join("vectors/conformance"),
        target: TargetSpec::Reader(READER.to_string()),
        filters: Vec::new(),
        deviations: Some(root.join(format!("vectors/conformance/deviations/simlab-{card}.toml"))),
        timeout: Duration::from_secs(20),
        // The UICC's keysets are its definition's; the eUICC's are its enabled profile's.
        ota_keys: Some(if card == "uicc" {
            definition.clone()
        } else {
            root.join("vectors/conformance/keys/ts48-test-profile.toml")
        }),
    })
    .unwrap();
    let failed: Vec<String> = report
        .cases
        .iter()
        .filter(|c| {
            matches!(
                c.verdict(),
                simlab_harness::suite::runner::Verdict::Failed
                    | simlab_harness::suite::runner::Verdict::Error
            )
        })
        .map(|c| format!("{}\n{}", c.id, c.transcript))
        .collect();
    assert!(report.ok(), "{}\n{}", report.text(), failed.join("\n"));
    assert!(
        report.totals.passed >= at_least,
        "{} passed through pcscd",
        report.totals.passed
    );
    // The OTA cases: SMS-PP download ENVELOPEs and their PoRs through pcscd (T=0: GET RESPONSE).
    let ota = report.areas.get("ota").map_or(0, |a| a.passed);
    assert!(ota >= ota_at_least, "{ota} OTA cases passed through pcscd");
}
