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
//! Frames are read through a buffer: one `read` brings in everything that has arrived, so a
//! frame whose header and body came together costs one system call.
//!
//! Debian's vpcd 0.8 writes the 2-byte header and the body in two `send()` calls without
//! TCP_NODELAY, so its body waits for our ACK of the header; Linux delays that ACK by ~40 ms
//! (about 21 APDU/s). When a header arrives without its body, setting TCP_QUICKACK sends that
//! ACK at once.
//!
//! A connection counts as vpcd's once vpcd has said something: pcscd asks every reader for
//! its ATR every 400 ms (vpcd's presence poll). So a TCP connection that stays silent is not a
//! working vpcd: in normal mode it is usually one queued behind another card in the same slot
//! (vpcd accepts one card per slot and leaves later connections unaccepted), which is warned
//! about; in reversed mode it is a dead or foreign peer, which is dropped after
//! [`ServeOptions::idle_timeout`], and which a new connection replaces as soon as the silent
//! one has missed two polls.

use std::io::{self, BufReader, ErrorKind, Read, Write};
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
/// How often pcscd asks a vpcd reader for the ATR (pcscd's presence poll of vpcd, 400 ms).
pub const VPCD_POLL_INTERVAL: Duration = Duration::from_millis(400);
/// Reversed mode: a connection silent for this long (two missed polls) is replaced by a new
/// one that is waiting.
const TAKEOVER_SILENCE: Duration = Duration::from_millis(2 * 400);
/// Read buffer: room for the largest frame, so any frame that has arrived is read at once.
const READ_BUFFER: usize = crate::frame::HEADER_LEN + crate::frame::MAX_PAYLOAD;

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
    /// Reversed mode: the peer sent nothing for [`ServeOptions::idle_timeout`]; closed.
    Idle,
    /// Reversed mode: the peer was silent and a new connection took its place; closed.
    Replaced,
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
    /// Set TCP_QUICKACK when a frame header arrives without its body (see the module doc).
    /// Only turn it off to measure the vpcd 0.8 stall.
    pub quickack: bool,
    /// Reversed mode: close a connection that sends nothing for this long. vpcd asks for the
    /// ATR every 400 ms ([`VPCD_POLL_INTERVAL`]), so silence means a dead or foreign peer.
    pub idle_timeout: Duration,
    /// Normal mode: warn when vpcd has not sent its first message this long after the TCP
    /// connection was made (another card is probably in that slot).
    pub first_message_warning: Duration,
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
            idle_timeout: Duration::from_secs(10),
            first_message_warning: Duration::from_secs(3),
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
    reader: BufReader<TcpStream>,
    peer: Option<SocketAddr>,
}

/// What the frame loop asks its caller while it waits for vpcd.
struct Watch<'a> {
    /// Called on every read timeout between frames with the time since the last frame (or
    /// since the connection, before the first) and the frames so far; `Some` ends the
    /// session with that outcome.
    silent: &'a mut dyn FnMut(Duration, u64) -> Option<SessionEnd>,
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
        Ok(Self {
            reader: BufReader::with_capacity(READ_BUFFER, stream),
            peer,
        })
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
        self.serve_watching(
            card,
            opts,
            &mut frames,
            &mut Watch {
                silent: &mut |_, _| None,
            },
        )
    }

    fn serve_watching<C: VirtualCard + ?Sized>(
        mut self,
        card: &mut C,
        opts: &ServeOptions,
        frames: &mut u64,
        watch: &mut Watch<'_>,
    ) -> Result<SessionEnd, CardError> {
        let stream = self.reader.get_mut();
        // The read timeout only paces stop-flag checks; idle time between frames is normal.
        stream
            .set_read_timeout(Some(opts.poll_interval))
            .map_err(CardError::Socket)?;
        stream
            .set_write_timeout(Some(opts.io_timeout))
            .map_err(CardError::Socket)?;
        let quickack_on = opts.quickack;
        let result = serve_frames(
            &mut self.reader,
            card,
            opts,
            self.peer,
            frames,
            &mut |s: &mut TcpStream| {
                if quickack_on {
                    quickack(s);
                }
            },
            watch,
        );
        // Dropping closes too; shutting down first makes the peer see EOF even if a clone
        // of the socket lived on.
        let _ = self.reader.get_mut().shutdown(std::net::Shutdown::Both);
        result
    }
}

/// The frame loop of the card side, over any byte stream: reads each frame through `reader`
/// (one `read` call for a frame that has arrived whole), hands it to `card` and writes the
/// answer. `wait_for_body` runs when a header came without its body (TCP_QUICKACK).
fn serve_frames<S: Read + Write, C: VirtualCard + ?Sized>(
    reader: &mut BufReader<S>,
    card: &mut C,
    opts: &ServeOptions,
    peer: Option<SocketAddr>,
    frames: &mut u64,
    wait_for_body: &mut dyn FnMut(&mut S),
    watch: &mut Watch<'_>,
) -> Result<SessionEnd, CardError> {
    let mut last_frame = Instant::now();
    loop {
        if opts.stopped() {
            return Ok(SessionEnd::Stopped);
        }
        let mut stalled_since: Option<Instant> = None;
        let mut ended: Option<SessionEnd> = None;
        let read = frame::read_frame_with(
            reader,
            &mut |r: &mut BufReader<S>, len| {
                if r.buffer().len() < len {
                    wait_for_body(r.get_mut());
                }
            },
            &mut |got| {
                if opts.stopped() {
                    return false;
                }
                if got == 0 {
                    ended = (watch.silent)(last_frame.elapsed(), *frames);
                    return ended.is_none();
                }
                stalled_since.get_or_insert_with(Instant::now).elapsed() < opts.io_timeout
            },
        );
        let payload = match read {
            Ok(payload) => payload,
            Err(FrameError::Closed) => return Ok(SessionEnd::Closed),
            Err(FrameError::Timeout { .. }) if opts.stopped() => return Ok(SessionEnd::Stopped),
            Err(FrameError::Timeout { got: 0 }) if ended.is_some() => {
                return Ok(ended.unwrap_or(SessionEnd::Idle))
            }
            Err(e) => return Err(e.into()),
        };
        last_frame = Instant::now();
        *frames += 1;
        let message = Message::decode(&payload)?;
        if *frames == 1 {
            // Only now is the peer known to be a vpcd at work (see the module doc).
            tracing::info!(?peer, first = ?message, "vpcd connected: the card is in its reader");
        }
        let answer = match message {
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
        frame::write_frame(reader.get_mut(), &answer)?;
        if answer.is_empty() {
            // vpcd.c: a zero-length answer means the card is gone; vpcd closes.
            return Ok(SessionEnd::CardRemoved);
        }
    }
}

/// Sets TCP_QUICKACK so the ACK of a frame header leaves now, not ~40 ms later (Linux only;
/// the option is not sticky, hence once per header that came alone). Failure only costs
/// speed.
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
                // Not "connected" yet: vpcd queues a second card of a slot unaccepted, and
                // only its first message says the card is in the reader.
                tracing::debug!(
                    ?peer,
                    "TCP connected to vpcd; waiting for its first message"
                );
                let mut frames = 0;
                let mut warned = false;
                let mut silent = |since: Duration, frames: u64| {
                    if frames == 0 && !warned && since >= opts.first_message_warning {
                        warned = true;
                        tracing::warn!(
                            ?peer,
                            "TCP connected to vpcd, but vpcd has not asked for the ATR after \
                             {since:.0?}: is another card in this slot? (one card per vpcd slot; \
                             port 35963 + N is reader \"Virtual PCD 00 0N\")"
                        );
                    }
                    None
                };
                let end = conn.serve_watching(
                    card,
                    opts,
                    &mut frames,
                    &mut Watch {
                        silent: &mut silent,
                    },
                );
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
        Ok(SessionEnd::Idle) => {
            tracing::warn!(
                ?peer,
                "peer sent nothing (vpcd asks every 400 ms): disconnected"
            )
        }
        Ok(SessionEnd::Replaced) => {
            tracing::info!(?peer, "silent peer replaced by a new connection")
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
    // A connection accepted while another one was being served (it replaces the silent one).
    let mut next: Option<(TcpStream, SocketAddr)> = None;
    while !opts.stopped() {
        let accepted = match next.take() {
            Some(conn) => Ok(conn),
            None => listener.accept(),
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = opts.backoff_min;
                tracing::debug!(%peer, "TCP connection; waiting for vpcd's first message");
                let takeover = TAKEOVER_SILENCE.min(opts.idle_timeout);
                let mut silent = |since: Duration, _frames: u64| {
                    if since >= opts.idle_timeout {
                        return Some(SessionEnd::Idle);
                    }
                    if since >= takeover {
                        if let Ok(waiting) = listener.accept() {
                            next = Some(waiting);
                            return Some(SessionEnd::Replaced);
                        }
                    }
                    None
                };
                let mut frames = 0;
                // Accepted sockets must block: reads rely on the timeout, not on polling.
                let end = stream
                    .set_nonblocking(false)
                    .map_err(CardError::Socket)
                    .and_then(|()| CardConnection::from_stream(stream))
                    .and_then(|conn| {
                        conn.serve_watching(
                            card,
                            opts,
                            &mut frames,
                            &mut Watch {
                                silent: &mut silent,
                            },
                        )
                    });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Message;
    use crate::NullCard;
    use std::collections::VecDeque;

    /// A byte stream that hands out one chunk per `read` call, as TCP delivers what one
    /// `send` of the peer put on the wire, and counts the calls.
    #[derive(Debug, Default)]
    struct Segments {
        chunks: VecDeque<Vec<u8>>,
        reads: usize,
        written: Vec<u8>,
    }

    impl Read for Segments {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            let Some(mut chunk) = self.chunks.pop_front() else {
                return Ok(0);
            };
            let n = chunk.len().min(buf.len());
            buf[..n].copy_from_slice(&chunk[..n]);
            if n < chunk.len() {
                self.chunks.push_front(chunk.split_off(n));
            }
            Ok(n)
        }
    }

    impl Write for Segments {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn frame(m: &Message) -> Vec<u8> {
        m.encode().unwrap()
    }

    /// Serves `chunks`; returns (read calls, body waits, frames, how it ended).
    fn serve(chunks: Vec<Vec<u8>>) -> (usize, usize, u64, SessionEnd) {
        let mut reader = BufReader::with_capacity(
            READ_BUFFER,
            Segments {
                chunks: chunks.into(),
                ..Segments::default()
            },
        );
        let mut waits = 0;
        let mut frames = 0;
        let end = serve_frames(
            &mut reader,
            &mut NullCard::default(),
            &ServeOptions::default(),
            None,
            &mut frames,
            &mut |_| waits += 1,
            &mut Watch {
                silent: &mut |_, _| None,
            },
        )
        .unwrap();
        (reader.get_ref().reads, waits, frames, end)
    }

    #[test]
    fn reads_each_frame_that_arrived_whole_with_one_read_call() {
        let mut chunks = vec![
            frame(&Message::Control(Control::GetAtr)),
            frame(&Message::Control(Control::PowerOn)),
        ];
        for i in 0..50u8 {
            chunks.push(frame(&Message::Apdu(vec![0x00, 0xB0, 0x00, i, 0x10])));
        }
        let n = chunks.len();
        let (reads, waits, frames, end) = serve(chunks);
        assert_eq!(end, SessionEnd::Closed);
        assert_eq!(frames, n as u64);
        assert_eq!(
            reads,
            n + 1,
            "one read per frame, plus the end of the stream"
        );
        assert_eq!(
            waits, 0,
            "no TCP_QUICKACK when the body came with its header"
        );
    }

    #[test]
    fn waits_for_the_body_only_when_the_header_came_alone() {
        // vpcd 0.8: header and body in two sends.
        let apdu = frame(&Message::Apdu(vec![0x00, 0xA4, 0x00, 0x04]));
        let (header, body) = apdu.split_at(2);
        let (reads, waits, frames, _) = serve(vec![header.to_vec(), body.to_vec()]);
        assert_eq!((frames, waits), (1, 1));
        assert_eq!(reads, 3);
    }

    #[test]
    fn several_frames_in_one_segment_need_one_read() {
        let mut all = Vec::new();
        for _ in 0..10 {
            all.extend(frame(&Message::Control(Control::GetAtr)));
        }
        let (reads, _, frames, _) = serve(vec![all]);
        assert_eq!((frames, reads), (10, 2));
    }
}
