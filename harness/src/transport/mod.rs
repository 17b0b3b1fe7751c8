//! How the harness reaches a card: the [`Transport`] trait and its three implementations —
//! the card in-process, a card behind vpcd's wire protocol (reader side, no pcscd), and any
//! PC/SC reader (real or virtual).
//!
//! Every error says what has already happened on the card: see each implementation.

mod in_process;
mod pcsc_reader;
mod vpcd_reader;

pub use in_process::InProcess;
pub use pcsc_reader::PcscReader;
pub use vpcd_reader::VpcdReader;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum TransportError {
    #[error("PC/SC: {0}")]
    Pcsc(String),
    #[error("no PC/SC reader named {wanted:?}; readers present: {present}")]
    NoSuchReader { wanted: String, present: String },
    #[error("reader name {wanted:?} is ambiguous: it starts {matches}; give more of the name")]
    AmbiguousReader { wanted: String, matches: String },
    #[error("vpcd: {0}")]
    Vpcd(#[from] simlab_vpcd::reader::ReaderError),
    #[error("card answered {got} bytes; an answer needs at least SW1 SW2")]
    ShortAnswer { got: usize },
    /// The command was sent and no answer came in time: what the card did with it is unknown.
    #[error("no answer within {0:?}: the card or its reader stopped responding")]
    Timeout(std::time::Duration),
    /// An earlier timeout or failure ended the connection; nothing was sent.
    #[error("the connection is gone after an earlier failure: {0}")]
    Gone(String),
}

/// A card connection: APDUs in, answers out.
pub trait Transport {
    /// Sends one command APDU, returns the answer with its status word (61xx not handled).
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;
    /// Resets the card and returns its ATR. Volatile card state (selections, channels,
    /// verified PINs) is lost.
    fn reset(&mut self) -> Result<Vec<u8>, TransportError>;
    /// The ATR of the current session.
    fn atr(&mut self) -> Result<Vec<u8>, TransportError>;

    /// Sends one APDU and fetches every '61 XX' continuation with GET RESPONSE, as a T=0
    /// terminal does (ISO 7816-3 §10.3.3); a '6C XX' answer is re-sent with Le = XX.
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut answer = self.transmit_raw(apdu)?;
        if let [.., 0x6C, xx] = answer[..] {
            if apdu.len() >= 5 {
                let mut again = apdu.to_vec();
                if let Some(le) = again.last_mut() {
                    *le = xx;
                }
                answer = self.transmit_raw(&again)?;
            }
        }
        // GET RESPONSE goes on the command's logical channel, in the interindustry class
        // (TS 102 221 §10.1.1): '0X' keeps b2-b1 for channels 0–3, '4X' b4-b1 for 4–19.
        let cla = match apdu.first().copied().unwrap_or(0) {
            c if c & 0x40 != 0 => 0x40 | (c & 0x0F),
            c => c & 0x03,
        };
        let mut data = Vec::new();
        loop {
            let n = answer.len();
            if n < 2 {
                return Err(TransportError::ShortAnswer { got: n });
            }
            let (body, sw) = answer.split_at(n - 2);
            data.extend_from_slice(body);
            match *sw {
                [0x61, xx] => answer = self.transmit_raw(&[cla, 0xC0, 0x00, 0x00, xx])?,
                _ => {
                    data.extend_from_slice(sw);
                    return Ok(data);
                }
            }
        }
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit_raw(apdu)
    }

    fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
        (**self).reset()
    }

    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        (**self).atr()
    }
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit_raw(apdu)
    }

    fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
        (**self).reset()
    }

    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        (**self).atr()
    }
}

/// Splits an answer into data and status word.
pub fn split_sw(answer: &[u8]) -> (&[u8], u16) {
    match answer.len() {
        n if n >= 2 => {
            let (data, sw) = answer.split_at(n - 2);
            (data, u16::from_be_bytes([sw[0], sw[1]]))
        }
        _ => (answer, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers 61 02 to anything but GET RESPONSE, and records the GET RESPONSE CLAs.
    struct TwoStep(Vec<u8>);

    impl Transport for TwoStep {
        fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
            if apdu.get(1) == Some(&0xC0) {
                self.0.push(apdu[0]);
                Ok(vec![0xAB, 0xCD, 0x90, 0x00])
            } else {
                Ok(vec![0x61, 0x02])
            }
        }
        fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
            Ok(Vec::new())
        }
        fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
            Ok(Vec::new())
        }
    }

    #[rstest::rstest]
    #[case::basic(0x00, 0x00)]
    #[case::channel_3_proprietary(0x83, 0x03)]
    #[case::channel_5_extended(0x41, 0x41)]
    #[case::channel_19_proprietary_extended(0xCF, 0x4F)]
    fn get_response_goes_to_the_commands_channel(#[case] cla: u8, #[case] want: u8) {
        let mut t = TwoStep(Vec::new());
        let answer = t
            .transmit(&[cla, 0xA4, 0x00, 0x04, 0x02, 0x3F, 0x00])
            .unwrap();
        assert_eq!(answer, vec![0xAB, 0xCD, 0x90, 0x00]);
        assert_eq!(t.0, vec![want]);
    }
}
