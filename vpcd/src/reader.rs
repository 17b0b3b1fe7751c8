//! Reader side of the vpcd protocol (vsmartcard `src/vpcd/vpcd.c`, virtualsmartcard
//! 0.8/0.9; facts in `docs/vpcd.md`): play vpcd's part and drive any vpcd card
//! (ours, or vsmartcard's Python `vicc`) without pcscd.
//!
//! Normal mode: we listen ([`ReaderListener`]) and the card connects, as it would to vpcd.
//! Reversed mode: the card listens and we connect ([`ReaderConnection::connect`]).
//!
//! Unlike vpcd, every read and write has a timeout (default [`DEFAULT_TIMEOUT`]), so a dead
//! card gives an error, never a hang. After any error that came once something was sent,
//! the connection is shut down: a late answer would otherwise be taken for the next one.

use std::io::{self, ErrorKind};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::thread;
use std::time::{Duration, Instant};

use crate::card::quickack;
use crate::frame::{self, Control, FrameError, Message};

/// Default read, write and connect timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest sleep between two polls of the listener in [`ReaderListener::accept_timeout`].
const ACCEPT_POLL: Duration = Duration::from_millis(5);

/// Errors of the reader side.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    /// No connection to a listening card could be made (reversed mode).
    #[error("cannot connect to a card at {addr}: {source}")]
    Connect {
        /// The resolved addresses tried.
        addr: String,
        /// What the OS said.
        source: io::Error,
    },
    /// Binding, accepting or setting socket options failed.
    #[error("socket setup failed: {0}")]
    Socket(#[source] io::Error),
    /// No card connected in time.
    #[error("no card connected within {0:?}")]
    AcceptTimeout(Duration),
    /// The card answered with a zero-length frame: it is removed and the connection closed.
    #[error("the card sent a zero-length frame: it counts as removed; the connection is closed")]
    CardRemoved,
    /// An earlier error already closed this connection.
    #[error("this card connection failed earlier and is closed; accept or connect again")]
    Closed,
    /// The card sent something invalid, did not answer in time, or the socket failed.
    #[error("card connection failed: {0}")]
    Frame(#[from] FrameError),
}

/// Listens where a card connects, as vpcd does in normal mode.
#[derive(Debug)]
pub struct ReaderListener {
    listener: TcpListener,
    timeout: Duration,
}

impl ReaderListener {
    /// Binds `addr` (use `127.0.0.1:0` for any free port, then [`Self::local_addr`]).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> Result<Self, ReaderError> {
        let listener = TcpListener::bind(addr).map_err(ReaderError::Socket)?;
        Ok(Self::from_listener(listener))
    }

    /// Wraps a bound listener.
    pub fn from_listener(listener: TcpListener) -> Self {
        Self {
            listener,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Read and write timeout given to the connections accepted from now on.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The address cards must connect to.
    pub fn local_addr(&self) -> Result<SocketAddr, ReaderError> {
        self.listener.local_addr().map_err(ReaderError::Socket)
    }

    /// Waits (without limit) for a card to connect. Nothing is sent to the card yet.
    pub fn accept(&self) -> Result<ReaderConnection, ReaderError> {
        self.listener
            .set_nonblocking(false)
            .map_err(ReaderError::Socket)?;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => return ReaderConnection::from_stream(stream, self.timeout),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(ReaderError::Socket(e)),
            }
        }
    }

    /// Waits at most `limit` for a card to connect. Nothing is sent to the card yet.
    pub fn accept_timeout(&self, limit: Duration) -> Result<ReaderConnection, ReaderError> {
        self.listener
            .set_nonblocking(true)
            .map_err(ReaderError::Socket)?;
        let deadline = Instant::now() + limit;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).map_err(ReaderError::Socket)?;
                    return ReaderConnection::from_stream(stream, self.timeout);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(ReaderError::AcceptTimeout(limit));
                    }
                    thread::sleep(left.min(ACCEPT_POLL));
                }
                Err(e) => return Err(ReaderError::Socket(e)),
            }
        }
    }
}

/// One card connection, driven the way vpcd drives it. Not answered control messages
/// (power on/off, reset) succeed once handed to the OS: the protocol gives no confirmation.
#[derive(Debug)]
pub struct ReaderConnection {
    stream: TcpStream,
    peer: Option<SocketAddr>,
    closed: bool,
}

impl ReaderConnection {
    /// Reversed mode: connects to a listening card, each resolved address for up to
    /// [`DEFAULT_TIMEOUT`]. Nothing is sent to the card yet.
    pub fn connect<A: ToSocketAddrs>(addr: A) -> Result<Self, ReaderError> {
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|source| ReaderError::Connect {
                addr: "(unresolvable address)".to_owned(),
                source,
            })?
            .collect();
        let mut last = io::Error::new(ErrorKind::InvalidInput, "address resolved to nothing");
        for a in &addrs {
            match TcpStream::connect_timeout(a, DEFAULT_TIMEOUT) {
                Ok(stream) => return Self::from_stream(stream, DEFAULT_TIMEOUT),
                Err(e) => last = e,
            }
        }
        Err(ReaderError::Connect {
            addr: format!("{addrs:?}"),
            source: last,
        })
    }

    /// Wraps a connected stream, sets TCP_NODELAY and the read and write timeout.
    pub fn from_stream(stream: TcpStream, timeout: Duration) -> Result<Self, ReaderError> {
        stream.set_nodelay(true).map_err(ReaderError::Socket)?;
        let peer = stream.peer_addr().ok();
        let mut conn = Self {
            stream,
            peer,
            closed: false,
        };
        conn.set_timeout(timeout)?;
        Ok(conn)
    }

    /// Sets the read and write timeout: how long one read or write may wait for the card.
    /// A zero duration is taken as 1 ms (the OS would read zero as "no timeout").
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), ReaderError> {
        let timeout = timeout.max(Duration::from_millis(1));
        self.stream
            .set_read_timeout(Some(timeout))
            .map_err(ReaderError::Socket)?;
        self.stream
            .set_write_timeout(Some(timeout))
            .map_err(ReaderError::Socket)
    }

    /// The card end of the connection.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// True once an error has closed this connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Sends power on (`0x01`). On error the card may or may not have received it, and the
    /// connection is closed.
    pub fn power_on(&mut self) -> Result<(), ReaderError> {
        self.send(&Message::Control(Control::PowerOn))
    }

    /// Sends power off (`0x00`). On error the card may or may not have received it, and the
    /// connection is closed.
    pub fn power_off(&mut self) -> Result<(), ReaderError> {
        self.send(&Message::Control(Control::PowerOff))
    }

    /// Sends reset (`0x02`). On error the card may or may not have received it, and the
    /// connection is closed.
    pub fn reset(&mut self) -> Result<(), ReaderError> {
        self.send(&Message::Control(Control::Reset))
    }

    /// Asks for the ATR (`0x04`) and returns it. Changes nothing on the card. On error the
    /// connection is closed ([`ReaderError::CardRemoved`]: the card answered zero bytes).
    pub fn atr(&mut self) -> Result<Vec<u8>, ReaderError> {
        self.send(&Message::Control(Control::GetAtr))?;
        self.receive()
    }

    /// Sends a C-APDU and returns the R-APDU (data, then SW1 SW2) exactly as the card sent it
    /// (no T=0 handling: 61xx and 6Cxx come back as they are).
    ///
    /// On [`FrameError::ApduTooShort`] or [`FrameError::Oversize`] nothing was sent and the
    /// connection stays usable. On any other error the APDU may have reached the card and
    /// may have been executed (its state may have changed), and the connection is closed.
    pub fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ReaderError> {
        self.send(&Message::Apdu(apdu.to_vec()))?;
        self.receive()
    }

    fn send(&mut self, message: &Message) -> Result<(), ReaderError> {
        if self.closed {
            return Err(ReaderError::Closed);
        }
        frame::write_message(&mut self.stream, message).map_err(|e| self.fail(e))
    }

    fn receive(&mut self) -> Result<Vec<u8>, ReaderError> {
        // QUICKACK, as on the card side, in case the card writes header and body apart.
        let read =
            frame::read_frame_with(&mut self.stream, &mut |s, _| quickack(s), &mut |_| false);
        read.map_err(|e| self.fail(e))
    }

    /// Closes the connection unless the error came before anything was sent.
    fn fail(&mut self, e: FrameError) -> ReaderError {
        if e.is_before_send() {
            return e.into();
        }
        self.closed = true;
        let _ = self.stream.shutdown(Shutdown::Both);
        match e {
            FrameError::ZeroLength => ReaderError::CardRemoved,
            other => other.into(),
        }
    }
}
