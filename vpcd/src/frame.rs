//! vpcd framing, as implemented by vsmartcard's `vpcd` driver (virtualsmartcard 0.8/0.9,
//! `src/vpcd/vpcd.c`; no written spec exists, the facts are in `docs/vpcd.md`).
//!
//! Both directions carry frames: a `u16` big-endian payload length, then the payload.
//! From vpcd to the card a 1-byte payload is a control message ([`Control`]); any longer
//! payload is a C-APDU. From the card to vpcd a frame is the ATR (answer to get-ATR) or an
//! R-APDU; a zero-length frame tells vpcd the card was removed.
//!
//! Framing is written by hand: it is four lines of logic and no crate does exactly this.

use std::io::{self, ErrorKind, Read, Write};

/// Size of the frame header: the big-endian `u16` payload length.
pub const HEADER_LEN: usize = 2;

/// Largest payload a frame can carry (the header is a `u16`).
pub const MAX_PAYLOAD: usize = u16::MAX as usize;

/// Control byte: power the card off (vpcd.c `VPCD_CTRL_OFF`).
pub const CTRL_POWER_OFF: u8 = 0x00;
/// Control byte: power the card on (vpcd.c `VPCD_CTRL_ON`).
pub const CTRL_POWER_ON: u8 = 0x01;
/// Control byte: warm reset (vpcd.c `VPCD_CTRL_RESET`).
pub const CTRL_RESET: u8 = 0x02;
/// Control byte: ask for the ATR, answered by one frame (vpcd.c `VPCD_CTRL_ATR`).
pub const CTRL_GET_ATR: u8 = 0x04;

/// Payload length of a control message.
pub const CONTROL_LEN: usize = 1;

/// Everything that can go wrong reading, writing or decoding a frame.
///
/// After any of these but [`FrameError::ApduTooShort`] and [`FrameError::Oversize`] (which
/// are detected before anything is sent) the byte stream can no longer be trusted: the
/// connection must be closed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection cleanly, between two frames.
    #[error("connection closed by the peer between frames")]
    Closed,
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed mid-frame: expected {expected} bytes (header included), got {got}")]
    Truncated {
        /// Bytes the frame should have had, header included (2 if the header itself was cut).
        expected: usize,
        /// Bytes that arrived before end of stream.
        got: usize,
    },
    /// No data arrived within the read timeout.
    #[error("timed out waiting for a frame ({got} bytes of it had arrived)")]
    Timeout {
        /// Bytes of the current frame that had arrived, header included (0: nothing came).
        got: usize,
    },
    /// A frame announced a zero-length payload. From a card this means "card removed"; vpcd
    /// never sends one.
    #[error("zero-length frame: the peer signals card removal or sends garbage")]
    ZeroLength,
    /// A 1-byte frame from vpcd held a byte that is no known control message.
    #[error(
        "unknown control byte {0:#04x}: expected 0x00 power off, 0x01 power on, 0x02 reset or 0x04 get ATR"
    )]
    UnknownControl(u8),
    /// A payload longer than a frame can carry.
    #[error("payload of {len} bytes does not fit a frame (at most 65535)")]
    Oversize {
        /// Length of the refused payload.
        len: usize,
    },
    /// A C-APDU of 0 or 1 bytes cannot be sent: vpcd would read 1 byte as a control message.
    #[error("a C-APDU needs at least 2 bytes on the vpcd wire, got {len}")]
    ApduTooShort {
        /// Length of the refused APDU.
        len: usize,
    },
    /// The socket failed.
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
}

impl FrameError {
    /// True when nothing was sent or consumed, so the connection is still in step.
    pub fn is_before_send(&self) -> bool {
        matches!(self, Self::ApduTooShort { .. } | Self::Oversize { .. })
    }
}

/// A control message from vpcd to the card (a 1-byte frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Control {
    /// `0x00`: power off. Not answered.
    PowerOff,
    /// `0x01`: power on. Not answered.
    PowerOn,
    /// `0x02`: reset. Not answered.
    Reset,
    /// `0x04`: get ATR. Answered by one frame holding the ATR.
    GetAtr,
}

impl Control {
    /// The wire byte of this control message.
    pub fn byte(self) -> u8 {
        match self {
            Self::PowerOff => CTRL_POWER_OFF,
            Self::PowerOn => CTRL_POWER_ON,
            Self::Reset => CTRL_RESET,
            Self::GetAtr => CTRL_GET_ATR,
        }
    }

    /// Decodes a control byte.
    pub fn from_byte(byte: u8) -> Result<Self, FrameError> {
        match byte {
            CTRL_POWER_OFF => Ok(Self::PowerOff),
            CTRL_POWER_ON => Ok(Self::PowerOn),
            CTRL_RESET => Ok(Self::Reset),
            CTRL_GET_ATR => Ok(Self::GetAtr),
            other => Err(FrameError::UnknownControl(other)),
        }
    }

    /// True for the only control message the card answers (get ATR).
    pub fn expects_answer(self) -> bool {
        self == Self::GetAtr
    }
}

/// A message from vpcd to the card: the payload of one frame, typed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// A 1-byte control message.
    Control(Control),
    /// A C-APDU (any payload of 2 bytes or more; vpcd does not look inside).
    Apdu(Vec<u8>),
}

impl Message {
    /// Decodes the payload of a frame sent by vpcd.
    pub fn decode(payload: &[u8]) -> Result<Self, FrameError> {
        match payload {
            [] => Err(FrameError::ZeroLength),
            [byte] => Control::from_byte(*byte).map(Self::Control),
            apdu => Ok(Self::Apdu(apdu.to_vec())),
        }
    }

    /// Encodes this message as a whole frame (header and payload).
    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        match self {
            Self::Control(control) => encode_frame(&[control.byte()]),
            Self::Apdu(apdu) if apdu.len() <= CONTROL_LEN => {
                Err(FrameError::ApduTooShort { len: apdu.len() })
            }
            Self::Apdu(apdu) => encode_frame(apdu),
        }
    }
}

/// Builds one frame (header and payload) in one buffer, so it goes out in one `write`.
///
/// An empty payload is allowed: from a card it is the "card removed" signal.
pub fn encode_frame(payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    let len =
        u16::try_from(payload.len()).map_err(|_| FrameError::Oversize { len: payload.len() })?;
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    Ok(frame)
}

/// Writes one frame with a single `write_all` of one buffer.
///
/// One buffer matters: a header sent alone is held back by Nagle's algorithm until the peer
/// ACKs it, and a peer with delayed ACK answers 40 ms later (the vpcd 0.8 stall).
pub fn write_frame<W: Write>(w: &mut W, payload: &[u8]) -> Result<(), FrameError> {
    let frame = encode_frame(payload)?;
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

/// Encodes and writes a message from vpcd to the card (used by the reader side).
pub fn write_message<W: Write>(w: &mut W, message: &Message) -> Result<(), FrameError> {
    let frame = message.encode()?;
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame and returns its payload (never empty: see [`FrameError::ZeroLength`]).
///
/// A read timeout on the underlying reader gives [`FrameError::Timeout`].
pub fn read_frame<R: Read>(r: &mut R) -> Result<Vec<u8>, FrameError> {
    read_frame_with(r, &mut |_, _| {}, &mut |_| false)
}

/// Reads one frame from vpcd and decodes it.
pub fn read_message<R: Read>(r: &mut R) -> Result<Message, FrameError> {
    Message::decode(&read_frame(r)?)
}

/// Reads one frame, with two hooks for the sides that own a socket:
/// `after_header(r, len)` runs once the 2-byte header is in, with the payload length (the
/// card side sets TCP_QUICKACK there when the payload has not arrived yet);
/// `keep_waiting(got)` is asked on each read timeout, `got` being the bytes of this frame
/// read so far; returning `false` ends with [`FrameError::Timeout`].
pub(crate) fn read_frame_with<R: Read>(
    r: &mut R,
    after_header: &mut dyn FnMut(&mut R, usize),
    keep_waiting: &mut dyn FnMut(usize) -> bool,
) -> Result<Vec<u8>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    let got = fill(r, &mut header, 0, keep_waiting)?;
    if got == 0 {
        return Err(FrameError::Closed);
    }
    if got < HEADER_LEN {
        return Err(FrameError::Truncated {
            expected: HEADER_LEN,
            got,
        });
    }
    let len = usize::from(u16::from_be_bytes(header));
    after_header(r, len);
    if len == 0 {
        return Err(FrameError::ZeroLength);
    }
    let mut payload = vec![0u8; len];
    let got = fill(r, &mut payload, HEADER_LEN, keep_waiting)?;
    if got < len {
        return Err(FrameError::Truncated {
            expected: HEADER_LEN + len,
            got: HEADER_LEN + got,
        });
    }
    Ok(payload)
}

/// Fills `buf` as far as the stream allows; returns the bytes read (less than `buf.len()`
/// only at end of stream). `before` is how many bytes of the frame came earlier, for errors.
fn fill<R: Read>(
    r: &mut R,
    buf: &mut [u8],
    before: usize,
    keep_waiting: &mut dyn FnMut(usize) -> bool,
) -> Result<usize, FrameError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // std reports an expired SO_RCVTIMEO as WouldBlock on Unix, TimedOut on Windows.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if !keep_waiting(before + got) {
                    return Err(FrameError::Timeout { got: before + got });
                }
            }
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;
    use std::io::Cursor;

    /// Hex with spaces at field boundaries; each field is any number of byte pairs.
    fn hex(s: &str) -> Vec<u8> {
        let digits: String = s.split_whitespace().collect();
        (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
            .collect()
    }

    #[rstest]
    #[case::power_off(Message::Control(Control::PowerOff), "0001 00")]
    #[case::power_on(Message::Control(Control::PowerOn), "0001 01")]
    #[case::reset(Message::Control(Control::Reset), "0001 02")]
    #[case::get_atr(Message::Control(Control::GetAtr), "0001 04")]
    #[case::select_mf(Message::Apdu(hex("00 A4 00 04 02 3F 00")), "0007 00A40004 02 3F00")]
    #[case::two_byte_payload_is_an_apdu(Message::Apdu(hex("00 00")), "0002 00 00")]
    fn encodes_and_decodes_messages(#[case] message: Message, #[case] frame: &str) {
        let frame = hex(frame);
        assert_eq!(message.encode().unwrap(), frame);
        assert_eq!(read_message(&mut Cursor::new(&frame)).unwrap(), message);
    }

    #[rstest]
    #[case::empty_stream_is_a_clean_close("", "Closed")]
    #[case::half_header("00", "Truncated { expected: 2, got: 1 }")]
    #[case::missing_payload("00 01", "Truncated { expected: 3, got: 2 }")]
    #[case::short_payload("0005 00A400", "Truncated { expected: 7, got: 5 }")]
    #[case::zero_length("00 00", "ZeroLength")]
    #[case::unknown_control("00 01 03", "UnknownControl(3)")]
    #[case::unknown_control_ff("00 01 FF", "UnknownControl(255)")]
    fn rejects_malformed_frames(#[case] bytes: &str, #[case] error: &str) {
        let err = read_message(&mut Cursor::new(hex(bytes))).unwrap_err();
        assert_eq!(format!("{err:?}"), error);
    }

    #[rstest]
    #[case::empty_apdu(Message::Apdu(vec![]), "ApduTooShort { len: 0 }")]
    #[case::one_byte_apdu(Message::Apdu(vec![0x04]), "ApduTooShort { len: 1 }")]
    #[case::oversize_apdu(Message::Apdu(vec![0; 65536]), "Oversize { len: 65536 }")]
    fn refuses_to_encode_unsendable_messages(#[case] message: Message, #[case] error: &str) {
        let err = message.encode().unwrap_err();
        assert!(err.is_before_send());
        assert_eq!(format!("{err:?}"), error);
    }

    #[test]
    fn encodes_the_largest_payload_with_header_ff_ff() {
        let frame = encode_frame(&vec![0xAB; MAX_PAYLOAD]).unwrap();
        assert_eq!(frame.len(), HEADER_LEN + MAX_PAYLOAD);
        assert_eq!(frame[..3], [0xFF, 0xFF, 0xAB]);
        assert_eq!(
            read_frame(&mut Cursor::new(frame)).unwrap().len(),
            MAX_PAYLOAD
        );
    }

    #[test]
    fn encodes_an_empty_payload_as_the_removal_frame() {
        assert_eq!(encode_frame(&[]).unwrap(), [0x00, 0x00]);
    }

    #[test]
    fn write_frame_makes_exactly_one_write_call() {
        struct CountingWriter(Vec<Vec<u8>>);
        impl Write for CountingWriter {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.push(buf.to_vec());
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = CountingWriter(Vec::new());
        write_frame(&mut w, &hex("6F 00")).unwrap();
        assert_eq!(w.0, vec![hex("00 02 6F 00")]);
    }

    #[test]
    fn reads_consecutive_frames_from_one_stream() {
        let mut r = Cursor::new(hex("0001 04  0001 01  0004 00B00000"));
        assert_eq!(
            read_message(&mut r).unwrap(),
            Message::Control(Control::GetAtr)
        );
        assert_eq!(
            read_message(&mut r).unwrap(),
            Message::Control(Control::PowerOn)
        );
        assert_eq!(
            read_message(&mut r).unwrap(),
            Message::Apdu(hex("00B00000"))
        );
        assert!(matches!(read_message(&mut r), Err(FrameError::Closed)));
    }

    #[test]
    fn reports_a_timeout_with_the_bytes_already_read() {
        /// Gives its bytes, then times out like a socket with SO_RCVTIMEO.
        struct Stalling(Cursor<Vec<u8>>);
        impl Read for Stalling {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self.0.read(buf)? {
                    0 => Err(ErrorKind::WouldBlock.into()),
                    n => Ok(n),
                }
            }
        }
        let err = read_frame(&mut Stalling(Cursor::new(hex("00 05 00 A4")))).unwrap_err();
        assert!(matches!(err, FrameError::Timeout { got: 4 }), "{err:?}");
        let err = read_frame(&mut Stalling(Cursor::new(vec![]))).unwrap_err();
        assert!(matches!(err, FrameError::Timeout { got: 0 }), "{err:?}");
    }

    fn any_message() -> impl Strategy<Value = Message> {
        prop_oneof![
            prop::sample::select(vec![
                Control::PowerOff,
                Control::PowerOn,
                Control::Reset,
                Control::GetAtr
            ])
            .prop_map(Message::Control),
            prop::collection::vec(any::<u8>(), 2..600).prop_map(Message::Apdu),
        ]
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut r = Cursor::new(bytes);
            // Each call consumes at least one byte or ends the stream, so this terminates.
            for _ in 0..300 {
                if read_message(&mut r).is_err() && r.position() as usize >= r.get_ref().len() {
                    break;
                }
            }
        }

        #[test]
        fn decode_of_encode_is_identity(messages in prop::collection::vec(any_message(), 1..8)) {
            let mut stream = Vec::new();
            for m in &messages {
                write_message(&mut stream, m).unwrap();
            }
            let mut r = Cursor::new(stream);
            for m in &messages {
                prop_assert_eq!(&read_message(&mut r).unwrap(), m);
            }
            prop_assert!(matches!(read_message(&mut r), Err(FrameError::Closed)));
        }

        #[test]
        fn card_frames_round_trip(payload in prop::collection::vec(any::<u8>(), 1..2000)) {
            let mut stream = Vec::new();
            write_frame(&mut stream, &payload).unwrap();
            prop_assert_eq!(stream.len(), payload.len() + HEADER_LEN);
            prop_assert_eq!(read_frame(&mut Cursor::new(stream)).unwrap(), payload);
        }
    }
}
