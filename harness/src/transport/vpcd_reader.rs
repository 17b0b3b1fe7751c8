//! A card reached over vpcd's wire protocol without pcscd: we play vpcd's part (reader
//! side). On an error the connection is closed; an APDU whose send failed did not reach
//! the card, one whose answer timed out may have run.

use super::{Transport, TransportError};
use simlab_vpcd::reader::{ReaderConnection, ReaderListener};
use std::time::Duration;

#[derive(Debug)]
pub struct VpcdReader {
    conn: ReaderConnection,
    atr: Vec<u8>,
}

impl VpcdReader {
    /// Listens on `addr` until a card connects (up to `wait`), then powers it on.
    pub fn accept(addr: &str, wait: Duration) -> Result<Self, TransportError> {
        let listener = ReaderListener::bind(addr)?;
        let conn = listener.accept_timeout(wait)?;
        Self::start(conn)
    }

    /// Connects to a card listening on `addr` (vpcd's reversed mode), then powers it on.
    pub fn connect(addr: &str) -> Result<Self, TransportError> {
        Self::start(ReaderConnection::connect(addr)?)
    }

    /// Powers an accepted connection on.
    pub fn start(mut conn: ReaderConnection) -> Result<Self, TransportError> {
        conn.power_on()?;
        let atr = conn.atr()?;
        Ok(Self { conn, atr })
    }
}

impl Transport for VpcdReader {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        Ok(self.conn.transmit(apdu)?)
    }

    fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
        self.conn.reset()?;
        self.atr = self.conn.atr()?;
        Ok(self.atr.clone())
    }

    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        Ok(self.atr.clone())
    }
}
