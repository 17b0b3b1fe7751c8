//! Reaching the ISD-R over any [`Transport`] the way SGP.22 LPAs do: open a logical channel
//! (MANAGE CHANNEL), SELECT the ISD-R by AID on it, then send each ES10 function as STORE
//! DATA (GlobalPlatform Card Spec §11.11; SGP.22 §5.7.2) in segments of at most 120 bytes:
//! P1 '11' for every block but the last, '91' for the last; P2 the block number, restarting
//! at 0 for each function. Long answers arrive through 61xx + GET RESPONSE.

use crate::transport::{split_sw, Transport, TransportError};
use thiserror::Error;

/// ISD-R AID (SGP.22 §2.2.3).
pub const ISD_R_AID: [u8; 16] = [
    0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x01, 0x00,
];

/// Largest STORE DATA block an LPA sends (what widely used LPAs do; SGP.22 allows up to 255).
pub const SEGMENT: usize = 120;

const INS_STORE_DATA: u8 = 0xE2;
const P1_MORE_BLOCKS: u8 = 0x11;
const P1_LAST_BLOCK: u8 = 0x91;

#[derive(Debug, Error)]
pub enum IsdRError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{what}: card answered status {sw:04X}")]
    Status { what: &'static str, sw: u16 },
    #[error("ES10 request of {0} bytes needs more than 256 STORE DATA blocks")]
    TooLong(usize),
}

/// An open logical channel with the ISD-R selected.
#[derive(Debug)]
pub struct IsdR<T: Transport> {
    transport: T,
    channel: u8,
}

impl<T: Transport> IsdR<T> {
    /// Opens a channel and selects the ISD-R on it.
    pub fn open(mut transport: T) -> Result<Self, IsdRError> {
        let answer = transport.transmit(&[0x00, 0x70, 0x00, 0x00, 0x01])?;
        let channel = match split_sw(&answer) {
            ([ch], 0x9000) if *ch > 0 && *ch < 20 => *ch,
            (_, sw) => {
                return Err(IsdRError::Status {
                    what: "MANAGE CHANNEL open",
                    sw,
                })
            }
        };
        let mut me = Self { transport, channel };
        let mut select = vec![me.cla(0x00), 0xA4, 0x04, 0x00, ISD_R_AID.len() as u8];
        select.extend_from_slice(&ISD_R_AID);
        let answer = me.transport.transmit(&select)?;
        match split_sw(&answer).1 {
            0x9000 => Ok(me),
            sw => {
                me.close_channel();
                Err(IsdRError::Status {
                    what: "SELECT ISD-R",
                    sw,
                })
            }
        }
    }

    /// The ISD-R already selected on `channel` by the caller (no MANAGE CHANNEL, no SELECT).
    pub fn on_channel(transport: T, channel: u8) -> Self {
        Self { transport, channel }
    }

    /// The logical channel the ISD-R is selected on.
    pub fn channel(&self) -> u8 {
        self.channel
    }

    /// CLA with the channel number (TS 102 221 §10.1.1).
    fn cla(&self, base: u8) -> u8 {
        if self.channel < 4 {
            base | self.channel
        } else {
            (base & 0x80) | 0x40 | (self.channel - 4)
        }
    }

    /// Sends one ES10 request (a complete `BFxx` TLV) and returns the answer data.
    pub fn es10(&mut self, request: &[u8]) -> Result<Vec<u8>, IsdRError> {
        let blocks: Vec<&[u8]> = if request.is_empty() {
            vec![&[][..]]
        } else {
            request.chunks(SEGMENT).collect()
        };
        if blocks.len() > 256 {
            return Err(IsdRError::TooLong(request.len()));
        }
        let last = blocks.len() - 1;
        for (n, block) in blocks.iter().enumerate() {
            let p1 = if n == last {
                P1_LAST_BLOCK
            } else {
                P1_MORE_BLOCKS
            };
            let mut apdu = vec![
                self.cla(0x80),
                INS_STORE_DATA,
                p1,
                n as u8,
                block.len() as u8,
            ];
            apdu.extend_from_slice(block);
            let answer = self.transport.transmit(&apdu)?;
            let (data, sw) = split_sw(&answer);
            if sw >> 8 != 0x90 {
                return Err(IsdRError::Status {
                    what: "STORE DATA",
                    sw,
                });
            }
            if n == last {
                return Ok(data.to_vec());
            }
        }
        Ok(Vec::new())
    }

    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    fn close_channel(&mut self) {
        let _ = self.transport.transmit(&[0x00, 0x70, 0x80, self.channel]);
    }

    /// Closes the channel and gives the transport back.
    pub fn close(mut self) -> T {
        self.close_channel();
        self.transport
    }
}
