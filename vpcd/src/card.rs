//! Card side of the vpcd protocol (vsmartcard `src/vpcd/vpcd.c`, virtualsmartcard 0.8/0.9;
//! facts in `docs/vpcd.md`): serve a [`VirtualCard`] to vpcd.
//!
//! Normal mode: vpcd listens (127.0.0.1:35963 for slot 0) and the card connects
//! ([`serve`], [`spawn`]). Reversed mode: the reader's `DEVICENAME` is `host:port` and vpcd
//! connects to the card, which listens ([`listen`], [`serve_listener`], [`spawn_listener`]).
//!
//! Answers: get-ATR gets one frame holding the ATR; power on, power off and reset get none;
//! each C-APDU gets exactly one frame holding the R-APDU.
//!
//! Debian's vpcd 0.8 writes the 2-byte header and the body in two `send()` calls without
//! TCP_NODELAY, so its body waits for our ACK of the header; Linux delays that ACK by ~40 ms
//! (about 21 APDU/s). Setting TCP_QUICKACK after reading each header sends the ACK at once.

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::frame::{self, Control, FrameError, Message};
use crate::VirtualCard;

/// How long one connection attempt to vpcd may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest sleep between two polls of a non-blocking listener in reversed mode.
const ACCEPT_POLL: Duration = Duration::from_millis(10);

/// Errors of the card side. After any of them the connection is closed.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    /// No connection to vpcd could be made.
    #[error("cannot connect to vpcd at {addr}: {source} (is pcscd with vsmartcard-vpcd running?)")]
    Connect {
        /// The address as given.
        addr: String,
        /// What the OS said.
        source: io::Error,
    },
    /// Setting up a socket (options, binding, accepting) failed.
    #[error("socket setup failed: {0}")]
    Socket(#[source] io::Error),
    /// vpcd sent a frame that is not valid, or the stream broke.
    #[error("vpcd connection failed: {0}")]
    Frame(#[from] FrameError),
    /// The thread serving the card panicked (a bug in the card).
    #[error("the card thread panicked")]
    ThreadPanicked,
}

/// How a connection to vpcd ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// vpcd closed the connection between frames (pcscd stopped or restarted).
    Closed,
    /// The stop flag was set.
    Stopped,
    /// The card gave an empty ATR or R-APDU, sent as a zero-length frame: vpcd now counts
    /// the card as removed, and the connection was closed.
    CardRemoved,
}

/// Settings of [`serve`] and [`serve_listener`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Set it to make serving return (noticed within `poll_interval`).
    pub stop: Arc<AtomicBool>,
    /// First wait before reconnecting after a failed or ended connection.
    pub backoff_min: Duration,
    /// Longest wait between reconnection attempts (the wait doubles up to this).
    pub backoff_max: Duration,
    /// Read timeout of the socket, i.e. how often the stop flag is looked at while idle.
    pub poll_interval: Duration,
    /// How long a frame may stall half-read, and how long a write may block, before the
    /// connection is given up.
    pub io_timeout: Duration,
    /// Set TCP_QUICKACK after each frame header (see the module doc). Only turn it off to
    /// measure the vpcd 0.8 stall.
    pub quickack: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            stop: Arc::new(AtomicBool::new(false)),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            poll_interval: Duration::from_millis(100),
            io_timeout: Duration::from_secs(10),
            quickack: true,
        }
    }
}

impl ServeOptions {
    /// Default settings, with a stop flag shared with the caller.
    pub fn with_stop(stop: Arc<AtomicBool>) -> Self {
        Self {
            stop,
            ..Self::default()
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps `total`, waking every `poll_interval` to look at the stop flag.
    fn sleep(&self, total: Duration) {
        let deadline = Instant::now() + total;
        while !self.stopped() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            thread::sleep(left.min(self.poll_interval));
        }
    }
}

/// One connection between a card and vpcd, seen from the card.
#[derive(Debug)]
pub struct CardConnection {
    stream: TcpStream,
    peer: Option<SocketAddr>,
}

impl CardConnection {
    /// Connects to vpcd (normal mode), trying each resolved address for up to 3 s.
    pub fn connect<A: ToSocketAddrs>(addr: A) -> Result<Self, CardError> {
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|source| CardError::Connect {
                addr: "(unresolvable address)".to_owned(),
                source,
            })?
            .collect();
        let mut last = io::Error::new(ErrorKind::InvalidInput, "address resolved to nothing");
        for a in &addrs {
            match TcpStream::connect_timeout(a, CONNECT_TIMEOUT) {
                Ok(stream) => return Self::from_stream(stream),
                Err(e) => last = e,
            }
        }
        Err(CardError::Connect {
            addr: format!("{addrs:?}"),
            source: last,
        })
    }

    /// Wraps a connected stream (reversed mode: one accepted from vpcd). Sets TCP_NODELAY so
    /// each answer frame leaves at once.
    pub fn from_stream(stream: TcpStream) -> Result<Self, CardError> {
        stream.set_nodelay(true).map_err(CardError::Socket)?;
        let peer = stream.peer_addr().ok();
        Ok(Self { stream, peer })
    }

    /// The vpcd end of the connection.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Serves `card` on this connection until vpcd closes it, the card is removed, the stop
    /// flag is set, or an error comes. The connection is closed when this returns.
    ///
    /// On an error the card has seen every message decoded before it; a malformed frame is
    /// not passed to the card.
    pub fn serve<C: VirtualCard + ?Sized>(
        self,
        card: &mut C,
        opts: &ServeOptions,
    ) -> Result<SessionEnd, CardError> {
        let mut frames = 0;
        self.serve_counting(card, opts, &mut frames)
    }

    fn serve_counting<C: VirtualCard + ?Sized>(
        mut self,
        card: &mut C,
        opts: &ServeOptions,
        frames: &mut u64,
    ) -> Result<SessionEnd, CardError> {
        // The read timeout only paces stop-flag checks; idle time between frames is normal.
        self.stream
            .set_read_timeout(Some(opts.poll_interval))
            .map_err(CardError::Socket)?;
        self.stream
            .set_write_timeout(Some(opts.io_timeout))
            .map_err(CardError::Socket)?;
        let result = self.serve_frames(card, opts, frames);
        // Dropping closes too; shutting down first makes the peer see EOF even if a clone
        // of the socket lived on.
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        result
    }

    fn serve_frames<C: VirtualCard + ?Sized>(
        &mut self,
        card: &mut C,
        opts: &ServeOptions,
        frames: &mut u64,
    ) -> Result<SessionEnd, CardError> {
        loop {
            if opts.stopped() {
                return Ok(SessionEnd::Stopped);
            }
            let mut stalled_since: Option<Instant> = None;
            let read = frame::read_frame_with(&mut self.stream, &mut |s| quickack(s), &mut |got| {
                if opts.stopped() {
                    return false;
                }
                if got == 0 {
                    return true;
                }
                stalled_since.get_or_insert_with(Instant::now).elapsed() < opts.io_timeout
            });
            let payload = match read {
                Ok(payload) => payload,
                Err(FrameError::Closed) => return Ok(SessionEnd::Closed),
                Err(FrameError::Timeout { .. }) if opts.stopped() => {
                    return Ok(SessionEnd::Stopped)
                }
                Err(e) => return Err(e.into()),
            };
            *frames += 1;
            let answer = match Message::decode(&payload)? {
                Message::Control(Control::GetAtr) => card.atr(),
                Message::Control(Control::PowerOn) => {
                    card.power_on();
                    continue;
                }
                Message::Control(Control::PowerOff) => {
                    card.power_off();
                    continue;
                }
                Message::Control(Control::Reset) => {
                    card.reset();
                    continue;
                }
                Message::Apdu(apdu) => card.transmit(&apdu),
            };
            frame::write_frame(&mut self.stream, &answer)?;
            if answer.is_empty() {
                // vpcd.c: a zero-length answer means the card is gone; vpcd closes.
                return Ok(SessionEnd::CardRemoved);
            }
        }
    }
}

/// Sets TCP_QUICKACK so the ACK of a frame header leaves now, not ~40 ms later (Linux only;
/// the option is not sticky, hence once per frame). Failure only costs speed.
pub(crate) fn quickack(stream: &mut TcpStream) {
    #[cfg(target_os = "linux")]
    if let Err(e) = socket2::SockRef::from(&*stream).set_quickack(true) {
        tracing::trace!("TCP_QUICKACK not set: {e}");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = stream;
}

/// Serves `card` to vpcd at `addr` (normal mode) until the stop flag is set: connects,
/// serves until vpcd closes or fails, logs, and reconnects with exponential backoff, so
/// pcscd restarts are survived. Connection failures never end it.
pub fn serve<C: VirtualCard + ?Sized, A: ToSocketAddrs>(
    card: &mut C,
    addr: A,
    opts: &ServeOptions,
) {
    let mut backoff = opts.backoff_min;
    let mut failing = false;
    while !opts.stopped() {
        match CardConnection::connect(&addr) {
            Ok(conn) => {
                failing = false;
                let peer = conn.peer_addr();
                tracing::info!(?peer, "card connected to vpcd");
                let mut frames = 0;
                let end = conn.serve_counting(card, opts, &mut frames);
                log_session_end(peer, &end);
                if matches!(end, Ok(SessionEnd::Stopped)) {
                    return;
                }
                if frames > 0 {
                    backoff = opts.backoff_min;
                }
            }
            Err(e) if !failing => {
                failing = true;
                tracing::warn!("{e}; retrying with backoff up to {:?}", opts.backoff_max);
            }
            Err(e) => tracing::debug!("{e}"),
        }
        opts.sleep(backoff);
        backoff = (backoff * 2).min(opts.backoff_max);
    }
}

fn log_session_end(peer: Option<SocketAddr>, end: &Result<SessionEnd, CardError>) {
    match end {
        Ok(SessionEnd::Closed) => tracing::info!(?peer, "vpcd closed the connection"),
        Ok(SessionEnd::Stopped) => tracing::info!(?peer, "stopped serving the card"),
        Ok(SessionEnd::CardRemoved) => {
            tracing::info!(?peer, "card sent an empty answer: removed from the reader")
        }
        Err(e) => tracing::warn!(?peer, "vpcd connection dropped: {e}"),
    }
}

/// Reversed mode: binds `addr` and serves `card` to each vpcd that connects, one at a
/// time, until the stop flag is set. Errors only if the address cannot be bound.
pub fn listen<C: VirtualCard + ?Sized, A: ToSocketAddrs>(
    card: &mut C,
    addr: A,
    opts: &ServeOptions,
) -> Result<(), CardError> {
    let listener = TcpListener::bind(addr).map_err(CardError::Socket)?;
    serve_listener(card, &listener, opts)
}

/// Reversed mode on a listener the caller bound (port 0 works; ask it its port). Serves one
/// vpcd at a time until the stop flag is set. Errors only if the listener cannot be made
/// non-blocking (needed to notice the stop flag).
pub fn serve_listener<C: VirtualCard + ?Sized>(
    card: &mut C,
    listener: &TcpListener,
    opts: &ServeOptions,
) -> Result<(), CardError> {
    listener.set_nonblocking(true).map_err(CardError::Socket)?;
    accept_loop(card, listener, opts);
    Ok(())
}

fn accept_loop<C: VirtualCard + ?Sized>(card: &mut C, listener: &TcpListener, opts: &ServeOptions) {
    let mut backoff = opts.backoff_min;
    while !opts.stopped() {
        match listener.accept() {
            Ok((stream, peer)) => {
                backoff = opts.backoff_min;
                tracing::info!(%peer, "vpcd connected to the card");
                // Accepted sockets must block: reads rely on the timeout, not on polling.
                let end = stream
                    .set_nonblocking(false)
                    .map_err(CardError::Socket)
                    .and_then(|()| CardConnection::from_stream(stream))
                    .and_then(|conn| conn.serve(card, opts));
                log_session_end(Some(peer), &end);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => opts.sleep(ACCEPT_POLL),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                // E.g. EMFILE: waiting lets resources come back instead of spinning.
                tracing::warn!("accepting vpcd failed: {e}");
                opts.sleep(backoff);
                backoff = (backoff * 2).min(opts.backoff_max);
            }
        }
    }
}

/// A card served on its own thread; [`CardThread::stop`] ends it and gives the card back.
#[derive(Debug)]
pub struct CardThread<C> {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<C>,
}

impl<C> CardThread<C> {
    /// Sets the stop flag, waits for the thread (at most about `poll_interval`, or
    /// `io_timeout` if a write to vpcd is blocked) and returns the card.
    pub fn stop(self) -> Result<C, CardError> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().map_err(|_| CardError::ThreadPanicked)
    }

    /// True once the thread has ended (it ends only on stop or panic).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

/// Runs [`serve`] on a new thread (normal mode: the card connects to `addr`).
pub fn spawn<C, A>(mut card: C, addr: A, opts: ServeOptions) -> Result<CardThread<C>, CardError>
where
    C: VirtualCard + 'static,
    A: ToSocketAddrs + Send + 'static,
{
    let stop = Arc::clone(&opts.stop);
    let handle = thread::Builder::new()
        .name("vpcd-card".to_owned())
        .spawn(move || {
            serve(&mut card, addr, &opts);
            card
        })
        .map_err(CardError::Socket)?;
    Ok(CardThread { stop, handle })
}

/// Runs [`serve_listener`] on a new thread (reversed mode: vpcd or a
/// [`ReaderConnection::connect`](crate::reader::ReaderConnection::connect) connects to
/// `listener`).
pub fn spawn_listener<C>(
    mut card: C,
    listener: TcpListener,
    opts: ServeOptions,
) -> Result<CardThread<C>, CardError>
where
    C: VirtualCard + 'static,
{
    listener.set_nonblocking(true).map_err(CardError::Socket)?;
    let stop = Arc::clone(&opts.stop);
    let handle = thread::Builder::new()
        .name("vpcd-card-listener".to_owned())
        .spawn(move || {
            accept_loop(&mut card, &listener, &opts);
            card
        })
        .map_err(CardError::Socket)?;
    Ok(CardThread { stop, handle })
}
