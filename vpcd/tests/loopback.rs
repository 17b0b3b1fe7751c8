//! Card side and reader side talking over real loopback TCP (127.0.0.1, port 0).

// This whole file is test code; clippy.toml's allow-*-in-tests only covers `#[test]` fns,
// not the helpers beside them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use simlab_vpcd::card::{self, CardConnection, CardError, CardThread, ServeOptions, SessionEnd};
use simlab_vpcd::frame::{FrameError, MAX_PAYLOAD};
use simlab_vpcd::reader::{ReaderConnection, ReaderError, ReaderListener};
use simlab_vpcd::{NullCard, VirtualCard, NULL_CARD_ATR};

/// Generous bound so a broken test fails instead of hanging; never a timing assertion.
const PATIENCE: Duration = Duration::from_secs(10);

/// Answers every APDU with everything after CLA INS P1 P2, then 90 00, and records events.
#[derive(Debug, Default)]
struct EchoCard {
    events: Vec<String>,
    /// When set, the next APDU gets an empty answer (the card "removes itself").
    remove_on_next_apdu: bool,
}

impl VirtualCard for EchoCard {
    fn atr(&mut self) -> Vec<u8> {
        self.events.push("atr".into());
        vec![0x3B, 0x00]
    }
    fn power_on(&mut self) {
        self.events.push("on".into());
    }
    fn power_off(&mut self) {
        self.events.push("off".into());
    }
    fn reset(&mut self) {
        self.events.push("reset".into());
    }
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        if std::mem::take(&mut self.remove_on_next_apdu) {
            return Vec::new();
        }
        let mut answer = apdu.get(4..).unwrap_or_default().to_vec();
        answer.extend_from_slice(&[0x90, 0x00]);
        answer
    }
}

fn fast_options() -> ServeOptions {
    ServeOptions {
        backoff_min: Duration::from_millis(5),
        backoff_max: Duration::from_millis(50),
        poll_interval: Duration::from_millis(20),
        ..ServeOptions::default()
    }
}

fn listener() -> (ReaderListener, SocketAddr) {
    let l = ReaderListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// Stops the card thread, failing (not hanging) if it does not end.
fn stop<C: Send + 'static>(card: CardThread<C>) -> C {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(card.stop()));
    rx.recv_timeout(PATIENCE)
        .expect("card thread did not stop")
        .unwrap()
}

#[test]
fn card_answers_get_atr_and_sees_a_power_cycle_in_order() {
    let (l, addr) = listener();
    let card = card::spawn(EchoCard::default(), addr, fast_options()).unwrap();
    let mut r = l.accept_timeout(PATIENCE).unwrap();

    assert_eq!(r.atr().unwrap(), [0x3B, 0x00]);
    r.power_on().unwrap();
    r.power_off().unwrap();
    r.reset().unwrap();
    // Control messages are not answered; this round trip proves they were processed.
    assert_eq!(r.transmit(&[0x00, 0xB0, 0x00, 0x00]).unwrap(), [0x90, 0x00]);
    assert_eq!(r.atr().unwrap(), [0x3B, 0x00]);

    let card = stop(card);
    assert_eq!(card.events, ["atr", "on", "off", "reset", "atr"]);
}

#[test]
fn null_card_serves_its_t0_t1_atr_and_1000_apdus() {
    let (l, addr) = listener();
    let card = card::spawn(NullCard::default(), addr, fast_options()).unwrap();
    let mut r = l.accept_timeout(PATIENCE).unwrap();
    assert_eq!(r.atr().unwrap(), NULL_CARD_ATR);
    r.power_on().unwrap();
    for _ in 0..1000 {
        assert_eq!(
            r.transmit(&[0x00, 0xA4, 0x00, 0x04, 0x02, 0x3F, 0x00])
                .unwrap(),
            [0x90, 0x00]
        );
    }
    drop(r);
    let card = stop(card);
    assert_eq!(card.apdus, 1000);
    assert_eq!(card.power_events, 1);
}

#[test]
fn echo_card_returns_1000_distinct_apdus_unchanged() {
    let (l, addr) = listener();
    let card = card::spawn(EchoCard::default(), addr, fast_options()).unwrap();
    let mut r = l.accept_timeout(PATIENCE).unwrap();
    for i in 0..1000u16 {
        let [hi, lo] = i.to_be_bytes();
        let len = (i % 250) as u8 + 1;
        let mut apdu = vec![0x80, 0xE2, hi, lo, len];
        apdu.extend((0..len).map(|b| b ^ lo));
        let mut expected = apdu[4..].to_vec();
        expected.extend_from_slice(&[0x90, 0x00]);
        assert_eq!(r.transmit(&apdu).unwrap(), expected, "APDU {i}");
    }
    stop(card);
}

#[test]
fn carries_an_extended_apdu_with_65528_data_bytes() {
    let (l, addr) = listener();
    let card = card::spawn(EchoCard::default(), addr, fast_options()).unwrap();
    let mut r = l.accept_timeout(PATIENCE).unwrap();
    // ISO/IEC 7816-4 §5.1 extended Lc: 00 then 2 bytes; 4 + 3 + 65528 = 65535 = max payload.
    let data: Vec<u8> = (0..65528u32).map(|i| (i % 251) as u8).collect();
    let mut apdu = vec![0x80, 0xE2, 0x91, 0x00, 0x00, 0xFF, 0xF8];
    apdu.extend_from_slice(&data);
    assert_eq!(apdu.len(), MAX_PAYLOAD);
    let answer = r.transmit(&apdu).unwrap();
    assert_eq!(answer.len(), 3 + 65528 + 2);
    assert_eq!(answer[..3], [0x00, 0xFF, 0xF8]);
    assert_eq!(answer[3..65531], data[..]);
    assert_eq!(answer[65531..], [0x90, 0x00]);
    stop(card);
}

#[test]
fn refuses_unsendable_apdus_and_keeps_the_connection() {
    let (l, addr) = listener();
    let card = card::spawn(NullCard::default(), addr, fast_options()).unwrap();
    let mut r = l.accept_timeout(PATIENCE).unwrap();
    let err = r.transmit(&[0x04]).unwrap_err();
    assert!(
        matches!(err, ReaderError::Frame(FrameError::ApduTooShort { len: 1 })),
        "{err}"
    );
    let err = r.transmit(&vec![0; MAX_PAYLOAD + 1]).unwrap_err();
    assert!(
        matches!(err, ReaderError::Frame(FrameError::Oversize { len: 65536 })),
        "{err}"
    );
    assert!(!r.is_closed());
    assert_eq!(r.transmit(&[0x00, 0x70, 0x00, 0x00]).unwrap(), [0x90, 0x00]);
    let card = stop(card);
    assert_eq!(card.apdus, 1);
}

/// Binds `addr` again, retrying briefly in case the port is not yet free.
fn rebind(addr: SocketAddr) -> ReaderListener {
    for _ in 0..100 {
        if let Ok(l) = ReaderListener::bind(addr) {
            return l;
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("could not bind {addr} again");
}

#[test]
fn card_reconnects_after_the_reader_drops_and_listens_again() {
    let (l, addr) = listener();
    let card = card::spawn(EchoCard::default(), addr, fast_options()).unwrap();
    let mut r = l.accept_timeout(PATIENCE).unwrap();
    assert_eq!(r.atr().unwrap(), [0x3B, 0x00]);
    // pcscd restarting: connection and listener gone, the card sees refused connects.
    drop(r);
    drop(l);
    thread::sleep(Duration::from_millis(100));
    let l = rebind(addr);
    let mut r = l.accept_timeout(PATIENCE).unwrap();
    assert_eq!(r.atr().unwrap(), [0x3B, 0x00]);
    r.power_on().unwrap();
    assert_eq!(
        r.transmit(&[0x00, 0xC0, 0x00, 0x00, 0x01, 0xAA]).unwrap(),
        [0x01, 0xAA, 0x90, 0x00]
    );
    let card = stop(card);
    assert_eq!(card.events, ["atr", "atr", "on"]);
}

#[test]
fn stop_flag_ends_serve_while_connected_idle() {
    let (l, addr) = listener();
    let stop_flag = Arc::new(AtomicBool::new(false));
    let card = card::spawn(
        NullCard::default(),
        addr,
        ServeOptions::with_stop(stop_flag),
    )
    .unwrap();
    let mut r = l.accept_timeout(PATIENCE).unwrap();
    assert_eq!(r.atr().unwrap(), NULL_CARD_ATR);
    stop(card);
    // The card closed its end: the reader now sees end of stream.
    let err = r.atr().unwrap_err();
    assert!(
        matches!(
            err,
            ReaderError::Frame(FrameError::Closed | FrameError::Io(_))
        ),
        "{err}"
    );
}

#[test]
fn stop_flag_ends_serve_while_no_vpcd_listens() {
    // Bind then drop to get a port where nobody listens.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let card = card::spawn(NullCard::default(), addr, fast_options()).unwrap();
    thread::sleep(Duration::from_millis(100));
    assert!(!card.is_finished());
    assert_eq!(stop(card).apdus, 0);
}

#[test]
fn reversed_mode_serves_each_reader_that_connects() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let card = card::spawn_listener(EchoCard::default(), listener, fast_options()).unwrap();
    for round in 0..3u8 {
        let mut r = ReaderConnection::connect(addr).unwrap();
        assert_eq!(r.atr().unwrap(), [0x3B, 0x00]);
        assert_eq!(
            r.transmit(&[0x00, 0x01, 0x02, 0x03, round]).unwrap(),
            [round, 0x90, 0x00]
        );
    }
    let card = stop(card);
    assert_eq!(card.events, ["atr", "atr", "atr"]);
}

#[test]
fn card_sending_an_empty_answer_is_reported_removed_and_reconnects() {
    let (l, addr) = listener();
    let echo = EchoCard {
        remove_on_next_apdu: true,
        ..EchoCard::default()
    };
    let card = card::spawn(echo, addr, fast_options()).unwrap();
    let mut r = l.accept_timeout(PATIENCE).unwrap();
    let err = r.transmit(&[0x00, 0xA4, 0x00, 0x00]).unwrap_err();
    assert!(matches!(err, ReaderError::CardRemoved), "{err}");
    assert!(matches!(r.atr().unwrap_err(), ReaderError::Closed));
    // serve() comes back after its backoff, as a card reinserted.
    let mut r = l.accept_timeout(PATIENCE).unwrap();
    assert_eq!(r.transmit(&[0x00, 0xA4, 0x00, 0x00]).unwrap(), [0x90, 0x00]);
    stop(card);
}

// ---- Garbage towards the card side: an error and a closed connection, never a hang. ----

/// Runs `CardConnection::serve` on one end of a loopback pair; returns the raw other end.
fn card_on_raw_socket() -> (TcpStream, mpsc::Receiver<Result<SessionEnd, CardError>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let raw = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (card_end, _) = l.accept().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let conn = CardConnection::from_stream(card_end).unwrap();
        let _ = tx.send(conn.serve(&mut NullCard::default(), &fast_options()));
    });
    raw.set_read_timeout(Some(PATIENCE)).unwrap();
    (raw, rx)
}

fn expect_closed_by_card(mut raw: TcpStream) {
    let mut buf = [0u8; 16];
    assert_eq!(
        raw.read(&mut buf).unwrap(),
        0,
        "card should have closed the connection"
    );
}

#[test]
fn card_side_rejects_an_unknown_control_byte_and_closes() {
    let (mut raw, rx) = card_on_raw_socket();
    raw.write_all(&[0x00, 0x01, 0x07]).unwrap();
    let end = rx.recv_timeout(PATIENCE).unwrap();
    assert!(
        matches!(end, Err(CardError::Frame(FrameError::UnknownControl(0x07)))),
        "{end:?}"
    );
    expect_closed_by_card(raw);
}

#[test]
fn card_side_rejects_a_zero_length_frame_and_closes() {
    let (mut raw, rx) = card_on_raw_socket();
    raw.write_all(&[0x00, 0x00]).unwrap();
    let end = rx.recv_timeout(PATIENCE).unwrap();
    assert!(
        matches!(end, Err(CardError::Frame(FrameError::ZeroLength))),
        "{end:?}"
    );
    expect_closed_by_card(raw);
}

#[test]
fn card_side_reports_eof_mid_frame() {
    let (mut raw, rx) = card_on_raw_socket();
    raw.write_all(&[0x00, 0x05, 0x00, 0xA4]).unwrap();
    raw.shutdown(std::net::Shutdown::Write).unwrap();
    let end = rx.recv_timeout(PATIENCE).unwrap();
    assert!(
        matches!(
            end,
            Err(CardError::Frame(FrameError::Truncated {
                expected: 7,
                got: 4
            }))
        ),
        "{end:?}"
    );
}

#[test]
fn card_side_ends_cleanly_when_vpcd_closes_between_frames() {
    let (mut raw, rx) = card_on_raw_socket();
    raw.write_all(&[0x00, 0x01, 0x04]).unwrap();
    let mut atr = [0u8; 7];
    raw.read_exact(&mut atr).unwrap();
    assert_eq!(atr, [0x00, 0x05, 0x3B, 0x80, 0x80, 0x01, 0x01]);
    drop(raw);
    assert!(matches!(
        rx.recv_timeout(PATIENCE).unwrap(),
        Ok(SessionEnd::Closed)
    ));
}

#[test]
fn serve_drops_a_garbage_sending_vpcd_and_reconnects() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let card = card::spawn(NullCard::default(), l.local_addr().unwrap(), fast_options()).unwrap();
    let (mut raw, _) = l.accept().unwrap();
    raw.set_read_timeout(Some(PATIENCE)).unwrap();
    raw.write_all(&[0x00, 0x01, 0xFF]).unwrap();
    expect_closed_by_card(raw);
    let (mut raw, _) = l.accept().unwrap();
    raw.set_read_timeout(Some(PATIENCE)).unwrap();
    raw.write_all(&[0x00, 0x04, 0x00, 0x70, 0x00, 0x00])
        .unwrap();
    let mut answer = [0u8; 4];
    raw.read_exact(&mut answer).unwrap();
    assert_eq!(answer, [0x00, 0x02, 0x90, 0x00]);
    assert_eq!(stop(card).apdus, 1);
}

// ---- Garbage or silence towards the reader side: an error, never a hang. ----

/// A listener whose accepted connection is a raw socket we control as the "card".
fn reader_with_raw_card(timeout: Duration) -> (ReaderConnection, TcpStream) {
    let (mut l, addr) = listener();
    l.set_timeout(timeout);
    let raw = TcpStream::connect(addr).unwrap();
    (l.accept_timeout(PATIENCE).unwrap(), raw)
}

#[test]
fn reader_times_out_on_a_silent_card_and_closes() {
    let (mut r, mut raw) = reader_with_raw_card(Duration::from_millis(200));
    let err = r.transmit(&[0x00, 0xA4, 0x00, 0x00]).unwrap_err();
    assert!(
        matches!(err, ReaderError::Frame(FrameError::Timeout { got: 0 })),
        "{err}"
    );
    assert!(r.is_closed());
    assert!(matches!(r.atr().unwrap_err(), ReaderError::Closed));
    // The card got the APDU, then saw the reader close.
    let mut got = Vec::new();
    raw.set_read_timeout(Some(PATIENCE)).unwrap();
    raw.read_to_end(&mut got).unwrap();
    assert_eq!(got, [0x00, 0x04, 0x00, 0xA4, 0x00, 0x00]);
}

#[test]
fn reader_reports_a_card_that_closes_mid_frame() {
    let (mut r, mut raw) = reader_with_raw_card(Duration::from_secs(5));
    raw.write_all(&[0x00, 0x0A, 0x6F]).unwrap();
    drop(raw);
    let err = r.atr().unwrap_err();
    assert!(
        matches!(
            err,
            ReaderError::Frame(FrameError::Truncated {
                expected: 12,
                got: 3
            })
        ),
        "{err}"
    );
}

#[test]
fn reader_reports_a_zero_length_answer_as_card_removed() {
    let (mut r, mut raw) = reader_with_raw_card(Duration::from_secs(5));
    raw.write_all(&[0x00, 0x00]).unwrap();
    assert!(matches!(r.atr().unwrap_err(), ReaderError::CardRemoved));
}

#[test]
fn reader_accept_times_out_when_no_card_comes() {
    let (l, _) = listener();
    let err = l.accept_timeout(Duration::from_millis(50)).unwrap_err();
    assert!(matches!(err, ReaderError::AcceptTimeout(_)), "{err}");
}

#[test]
fn reader_connect_to_a_closed_port_is_an_error() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = ReaderConnection::connect(addr).unwrap_err();
    assert!(matches!(err, ReaderError::Connect { .. }), "{err}");
}

/// Reversed mode: a listening card and its address.
fn listening_card(opts: ServeOptions) -> (CardThread<EchoCard>, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (
        card::spawn_listener(EchoCard::default(), listener, opts).unwrap(),
        addr,
    )
}

#[test]
fn an_idle_peer_does_not_keep_a_listening_card_from_the_next_one() {
    // The default idle timeout (10 s) would also free the card; the new connection must not
    // have to wait for it: the silent peer is replaced once it has missed two vpcd polls.
    let (card, addr) = listening_card(fast_options());
    let idle = TcpStream::connect(addr).unwrap();
    let mut r = ReaderConnection::connect(addr).unwrap();
    r.set_timeout(PATIENCE).unwrap();
    r.power_on().unwrap();
    assert_eq!(r.atr().unwrap(), [0x3B, 0x00]);
    assert_eq!(
        r.transmit(&[0x00, 0xB0, 0x00, 0x00, 0x01]).unwrap(),
        [0x01, 0x90, 0x00]
    );
    // The silent one was closed.
    let mut idle = idle;
    idle.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(
        idle.read(&mut [0u8; 1]).unwrap(),
        0,
        "EOF for the replaced peer"
    );
    drop(r);
    stop(card);
}

#[test]
fn a_silent_peer_is_disconnected_after_the_idle_timeout() {
    let (card, addr) = listening_card(ServeOptions {
        idle_timeout: Duration::from_millis(100),
        ..fast_options()
    });
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(
        idle.read(&mut [0u8; 1]).unwrap(),
        0,
        "closed, not left hanging"
    );
    // And the card serves the next peer.
    let mut r = ReaderConnection::connect(addr).unwrap();
    r.set_timeout(PATIENCE).unwrap();
    assert_eq!(r.atr().unwrap(), [0x3B, 0x00]);
    drop(r);
    stop(card);
}

#[test]
fn a_working_peer_is_not_replaced_while_it_talks() {
    // A peer that keeps talking (as vpcd does, every 400 ms) keeps the card; a second
    // connection waits until the first one ends.
    let (card, addr) = listening_card(fast_options());
    let mut first = ReaderConnection::connect(addr).unwrap();
    first.set_timeout(PATIENCE).unwrap();
    first.power_on().unwrap();
    let mut second = TcpStream::connect(addr).unwrap();
    for i in 0..20u8 {
        assert_eq!(
            first.transmit(&[0x00, 0xB0, 0x00, 0x00, i]).unwrap(),
            [i, 0x90, 0x00]
        );
        thread::sleep(Duration::from_millis(50));
    }
    drop(first);
    // Now the second one is served.
    let mut frame = vec![0x00, 0x01, 0x04];
    second.write_all(&frame).unwrap();
    second.set_read_timeout(Some(PATIENCE)).unwrap();
    frame.resize(4, 0);
    second.read_exact(&mut frame).unwrap();
    assert_eq!(
        frame,
        [0x00, 0x02, 0x3B, 0x00],
        "the second peer got the ATR"
    );
    stop(card);
}
