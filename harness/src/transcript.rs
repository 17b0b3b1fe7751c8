//! Transcripts of what the LPA says on both of its interfaces during a profile download
//! (GSMA SGP.22 v2.5 §3.1.3): every APDU exchanged with the eUICC (ES10 over STORE DATA,
//! §5.7.2, with ISO 7816-4 GET RESPONSE for '61 XX') and every ES9+ call to the SM-DP+ (JSON
//! binding, §6.5.2), in order, one line each.
//!
//! Recording: wrap the card's [`Transport`] in [`Recording`] and the ES9+ implementation in
//! [`RecordingEs9`]; both append to one shared [`Transcript`].
//!
//! # Line format
//! - `> 81E29100 78 BF38 …` — a command APDU: header (CLA INS P1 P2), Lc, data, Le.
//! - `< … 9000` — its answer: data, then the status word.
//! - `POST /gsma/rsp2/es9plus/<function> {json}` and `200 {json}` / `204` — an ES9+ call and
//!   its answer. The JSON is compact with sorted keys. It is the request as the HTTPS client
//!   serialises it, and the answer as the client parsed it (fields it does not know are not
//!   shown). A function the SM-DP+ reported as failed is shown as the `200` header-only body
//!   SGP.22 §6.5.1.4 defines; a call that never got an answer is `ERR <reason>`.
//! - `RESET <ATR>` — a card reset.
//!
//! Binary data is hex, spaced at BER-TLV field boundaries (tag, length, value). JSON fields
//! that SGP.22 §6.5.2 types as base64 (and the hex `transactionId`) are shown decoded, so the
//! same bytes look the same on both interfaces. An ES10 command spans several STORE DATA
//! blocks (P1 '11' / '91', §5.7.2), so its TLV structure is read from the reassembled
//! message and each block shows its part; likewise an answer spread over GET RESPONSEs.
//!
//! # Normalisation ([`normalise`])
//! Two downloads of the same profile differ in values drawn at random for each session. A
//! stable transcript (for snapshot tests) replaces each such value, wherever it occurs, with a
//! placeholder named after its role and numbered in order of first appearance:
//! - `<TXID>`: the transactionId (§5.6.1, chosen by the SM-DP+ per session).
//! - `<EUICC-CHALLENGE>`, `<SERVER-CHALLENGE>`: the challenges of mutual authentication
//!   (§5.7.13 GetEUICCChallenge, §5.6.1 serverChallenge in ServerSigned1).
//! - `<SIG-n>`: every ECDSA signature (`5F37`): serverSignature1, euiccSignature1/2,
//!   smdpSignature2, the SM-DP+'s signature in InitialiseSecureChannel, euiccSignPIR.
//!   ECDSA signatures use a fresh random k and sign the values above.
//! - `<OTPK-n>`: the one-time ECKA keys (`5F49`, otPK.EUICC.ECKA and otPK.DP.ECKA, §3.1.3).
//! - `<BPP-86-n>`, `<BPP-87-n>`: the encrypted segments of the Bound Profile Package (§2.5.5,
//!   SCP03t with session keys derived from the one-time keys): every byte changes per session.
//! - `<BPP-88-MAC-n>`: the MAC closing each `88` StoreMetadata segment, which is MACed but not
//!   encrypted: its plaintext (the profile metadata) stays visible.
//! - `<HASH-CC>`: the hashed confirmation code (§3.1.3.2), which hashes the transactionId.
//! - `<host:PORT>`: the SM-DP+ address, whose port the operating system picks per run.
//!
//! Values shorter than [`MIN_MASKED_LEN`] bytes are never masked: a short sequence could occur
//! by chance in deterministic data. Deterministic data (EID, ICCID, certificates, EUICCInfo,
//! profile metadata, the SM-DP+'s OID, status words) is never masked; long deterministic
//! values are abbreviated to `…(N bytes, sha256 XXXXXXXX)`, so a change still shows.

use crate::es9p::{
    AuthenticateClientRequest, AuthenticateClientResponse, CancelSessionRequest, Es9Plus,
    Es9pError, GetBoundProfilePackageRequest, GetBoundProfilePackageResponse,
    HandleNotificationRequest, HeaderOnly, InitiateAuthenticationRequest,
    InitiateAuthenticationResponse, AUTHENTICATE_CLIENT, CANCEL_SESSION, ES9P_PATH_PREFIX,
    GET_BOUND_PROFILE_PACKAGE, HANDLE_NOTIFICATION, INITIATE_AUTHENTICATION,
};
use crate::transport::{Transport, TransportError};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

pub mod cli;
mod document;

pub use document::{document, labelled_lines, parse, unwrap_lines, wrap, ParseError, WRAP_WIDTH};

/// Shortest value the normaliser masks (see the module doc).
pub const MIN_MASKED_LEN: usize = 8;
/// Primitive values longer than this are abbreviated when normalising.
const ABBREVIATE_PRIMITIVE_OVER: usize = 64;
/// Constructed values longer than this, with nothing masked inside, are abbreviated.
const ABBREVIATE_CONSTRUCTED_OVER: usize = 256;
/// Hex digits of the SHA-256 shown for an abbreviated value.
const DIGEST_HEX_DIGITS: usize = 8;

/// ISO 7816-4 §7.6 / GlobalPlatform §11.11: STORE DATA, the carrier of ES10 (SGP.22 §5.7.2).
const INS_STORE_DATA: u8 = 0xE2;
/// ISO 7816-4 §7.6.1 GET RESPONSE, fetching what a '61 XX' answer announced.
const INS_GET_RESPONSE: u8 = 0xC0;
/// STORE DATA P1 b8: last block (SGP.22 §5.7.2: P1 '91' last, '11' more to come).
const P1_LAST_BLOCK: u8 = 0x80;
/// SW1 '61': XX more bytes available with GET RESPONSE (ISO 7816-4 §5.1.3).
const SW1_MORE_DATA: u8 = 0x61;
/// Bit 6 of a tag's first byte: constructed encoding (X.690 §8.1.2.5).
const CONSTRUCTED: u8 = 0x20;

// SGP.22 §2.5 / §5.7 ASN.1 tags the normaliser reads random values from.
/// `[APPLICATION 55]` ECDSA signature (euiccSignature1, serverSignature1, …).
const TAG_SIGNATURE: u32 = 0x5F37;
/// `[APPLICATION 73]` one-time public key (euiccOtpk, smdpOtpk).
const TAG_ONE_TIME_KEY: u32 = 0x5F49;
/// `BoundProfilePackage [54]` (§2.5.5).
const TAG_BOUND_PROFILE_PACKAGE: u32 = 0xBF36;
/// firstSequenceOf87 `[0]`, sequenceOf88 `[1]`, secondSequenceOf87 `[2]`, sequenceOf86 `[3]`.
const TAGS_BPP_SEQUENCES: [u32; 4] = [0xA0, 0xA1, 0xA2, 0xA3];
/// Encrypted profile elements, encrypted+MACed ConfigureISDP/ReplaceSessionKeys, MACed
/// StoreMetadata (§2.5.5).
const TAGS_BPP_SEGMENTS: [u32; 3] = [0x86, 0x87, 0x88];
/// `GetEuiccChallengeRequest/Response [46]` (§5.7.7); the answer carries `euiccChallenge [0]`.
const TAG_GET_EUICC_CHALLENGE: u32 = 0xBF2E;
/// `PrepareDownloadRequest [33]` (§5.7.5), which carries `hashCc` as an OCTET STRING.
const TAG_PREPARE_DOWNLOAD: u32 = 0xBF21;
const TAG_OCTET_STRING: u32 = 0x04;
const TAG_SEQUENCE: u32 = 0x30;
/// `ServerSigned1 ::= SEQUENCE { transactionId [0], euiccChallenge [1], serverAddress [3],
/// serverChallenge [4] }` (§5.6.1): recognised by exactly these children.
const SERVER_SIGNED1_CHILDREN: [u32; 4] = [0x80, 0x81, 0x83, 0x84];
const TAG_TRANSACTION_ID: u32 = 0x80;
const TAG_EUICC_CHALLENGE: u32 = 0x80;
const TAG_SERVER_SIGNED1_EUICC_CHALLENGE: u32 = 0x81;
const TAG_SERVER_ADDRESS: u32 = 0x83;
const TAG_SERVER_CHALLENGE: u32 = 0x84;
/// StoreMetadata segment of sequenceOf88: plaintext followed by its MAC (§2.5.5).
const TAG_STORE_METADATA_SEGMENT: u32 = 0x88;
/// SCP03t sends the first 8 bytes of the CMAC (SGP.22 §2.5.5, GP Amendment F).
const SEGMENT_MAC_LEN: usize = 8;
/// Length of `Octet32` hashCc (§5.7.5).
const HASH_CC_LEN: usize = 32;

/// ES9+ JSON fields typed as base64 in SGP.22 §6.5.2.6–§6.5.2.10 that carry DER.
const BASE64_DER_FIELDS: [&str; 14] = [
    "euiccInfo1",
    "serverSigned1",
    "serverSignature1",
    "euiccCiPKIdToBeUsed",
    "serverCertificate",
    "authenticateServerResponse",
    "profileMetadata",
    "smdpSigned2",
    "smdpSignature2",
    "smdpCertificate",
    "prepareDownloadResponse",
    "boundProfilePackage",
    "pendingNotification",
    "cancelSessionResponse",
];
/// JSON fields holding a clock reading (Unix seconds) in the operator network's answers
/// (docs/network.md): masked as `<TIME>` when normalising.
const TIME_FIELDS: [&str; 5] = [
    "receivedAt",
    "createdAt",
    "updatedAt",
    "answeredAt",
    "expiresAt",
];
/// The one base64 field that is raw bytes, not DER (§6.5.2.6: 16 random bytes).
const FIELD_EUICC_CHALLENGE: &str = "euiccChallenge";
/// §6.5.2: `TransactionId` is a hexadecimal string.
const FIELD_TRANSACTION_ID: &str = "transactionId";
const FIELD_SMDP_ADDRESS: &str = "smdpAddress";

/// HTTP status of an ES9+ answer with a body, and of handleNotification (SGP.22 §6.5.1).
const HTTP_OK: u16 = 200;
const HTTP_NO_CONTENT: u16 = 204;

/// One recorded event.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A card reset and the ATR it gave.
    Reset { atr: Vec<u8> },
    /// One APDU and its answer (data and status word), as the transport carried them.
    Apdu { command: Vec<u8>, response: Vec<u8> },
    /// An APDU the transport failed to deliver or answer.
    ApduFailed { command: Vec<u8>, error: String },
    /// An ES9+ request: the path and its JSON body.
    HttpRequest { path: String, body: Value },
    /// The answer to the last request: status and JSON body (none for 204).
    HttpResponse { status: u16, body: Option<Value> },
    /// A request that got no usable answer (connection, TLS, unparsable body).
    HttpFailed { error: String },
    /// Any other HTTP request (the operator network's services): method, path with query,
    /// JSON or form body. Its answer is an [`Entry::HttpResponse`].
    Http {
        method: String,
        path: String,
        body: Option<Value>,
    },
    /// A line of context, shown as it is: a flow step, a short-range link message, an SMS.
    Note { text: String },
    /// A value drawn at random during the run (a one-time code, a token, an AKA RAND), named
    /// by `label`: never shown, but masked as `<LABEL-n>` wherever it occurs when normalising
    /// (bytes in APDUs and JSON; its text, when it is text, in lines).
    Secret { label: String, value: Vec<u8> },
}

/// A shared, append-only list of [`Entry`] with the time each was recorded; clones are
/// handles to the same list.
#[derive(Debug, Clone, Default)]
pub struct Transcript(Arc<Mutex<Recorded>>);

#[derive(Debug, Default)]
struct Recorded {
    entries: Vec<Entry>,
    times: Vec<SystemTime>,
}

impl Transcript {
    pub fn new() -> Self {
        Self::default()
    }

    fn recorded(&self) -> std::sync::MutexGuard<'_, Recorded> {
        // A panic elsewhere while holding the lock leaves complete Vecs: keep using them.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one entry, stamped with the current time.
    pub fn push(&self, entry: Entry) {
        let mut r = self.recorded();
        r.entries.push(entry);
        r.times.push(SystemTime::now());
    }

    /// A copy of everything recorded so far.
    pub fn entries(&self) -> Vec<Entry> {
        self.recorded().entries.clone()
    }

    /// Every value as recorded, nothing masked or abbreviated; a step label with the time
    /// before each ES10/ES9+ function, long lines wrapped (see [`document`]).
    pub fn render(&self) -> String {
        let r = self.recorded();
        document(&r.entries, Some(&r.times), false)
    }

    /// Random values masked, long deterministic values abbreviated (see the module doc); step
    /// labels without times, long lines wrapped.
    pub fn normalised(&self) -> String {
        document(&self.entries(), None, true)
    }
}

/// A [`Transport`] that records every exchange (GET RESPONSE included) in a [`Transcript`].
#[derive(Debug)]
pub struct Recording<T: Transport> {
    inner: T,
    transcript: Transcript,
}

impl<T: Transport> Recording<T> {
    pub fn new(inner: T, transcript: &Transcript) -> Self {
        Self {
            inner,
            transcript: transcript.clone(),
        }
    }

    pub fn inner(&self) -> &T {
        &self.inner
    }

    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: Transport> Transport for Recording<T> {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let answer = self.inner.transmit_raw(apdu);
        self.transcript.push(match &answer {
            Ok(response) => Entry::Apdu {
                command: apdu.to_vec(),
                response: response.clone(),
            },
            Err(e) => Entry::ApduFailed {
                command: apdu.to_vec(),
                error: e.to_string(),
            },
        });
        answer
    }

    fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
        let atr = self.inner.reset()?;
        self.transcript.push(Entry::Reset { atr: atr.clone() });
        Ok(atr)
    }

    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        self.inner.atr()
    }
}

/// An [`Es9Plus`] that records each call and its answer in a [`Transcript`].
pub struct RecordingEs9<'a> {
    inner: &'a dyn Es9Plus,
    transcript: Transcript,
}

impl std::fmt::Debug for RecordingEs9<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingEs9")
            .field("transcript", &self.transcript)
            .finish_non_exhaustive()
    }
}

impl<'a> RecordingEs9<'a> {
    pub fn new(inner: &'a dyn Es9Plus, transcript: &Transcript) -> Self {
        Self {
            inner,
            transcript: transcript.clone(),
        }
    }

    fn request<Req: serde::Serialize>(&self, function: &str, req: &Req) {
        self.transcript.push(Entry::HttpRequest {
            path: format!("{ES9P_PATH_PREFIX}{function}"),
            body: to_json(req),
        });
    }

    fn answer<Resp: serde::Serialize>(&self, status: u16, result: &Result<Resp, Es9pError>) {
        self.transcript.push(match result {
            Ok(resp) => {
                let body = to_json(resp);
                Entry::HttpResponse {
                    status,
                    // handleNotification answers 204 without a body (§6.5.2.9).
                    body: (!body.is_null()).then_some(body),
                }
            }
            Err(Es9pError::Failed {
                status,
                subject_code,
                reason_code,
                message,
                ..
            }) => {
                // §6.5.1.4: a failed function is a 200 whose header says so.
                let mut data = serde_json::json!({
                    "subjectCode": subject_code,
                    "reasonCode": reason_code,
                });
                if let (Some(m), Some(map)) = (message, data.as_object_mut()) {
                    map.insert("message".into(), Value::String(m.clone()));
                }
                Entry::HttpResponse {
                    status: HTTP_OK,
                    body: Some(serde_json::json!({"header": {"functionExecutionStatus": {
                        "status": status, "statusCodeData": data}}})),
                }
            }
            Err(e) => Entry::HttpFailed {
                error: e.to_string(),
            },
        });
    }
}

fn to_json<V: serde::Serialize>(v: &V) -> Value {
    serde_json::to_value(v).unwrap_or_else(|e| Value::String(format!("(not JSON: {e})")))
}

impl Es9Plus for RecordingEs9<'_> {
    fn initiate_authentication(
        &self,
        req: &InitiateAuthenticationRequest,
    ) -> Result<InitiateAuthenticationResponse, Es9pError> {
        self.request(INITIATE_AUTHENTICATION, req);
        let result = self.inner.initiate_authentication(req);
        self.answer(HTTP_OK, &result);
        result
    }

    fn authenticate_client(
        &self,
        req: &AuthenticateClientRequest,
    ) -> Result<AuthenticateClientResponse, Es9pError> {
        self.request(AUTHENTICATE_CLIENT, req);
        let result = self.inner.authenticate_client(req);
        self.answer(HTTP_OK, &result);
        result
    }

    fn get_bound_profile_package(
        &self,
        req: &GetBoundProfilePackageRequest,
    ) -> Result<GetBoundProfilePackageResponse, Es9pError> {
        self.request(GET_BOUND_PROFILE_PACKAGE, req);
        let result = self.inner.get_bound_profile_package(req);
        self.answer(HTTP_OK, &result);
        result
    }

    fn handle_notification(&self, req: &HandleNotificationRequest) -> Result<(), Es9pError> {
        self.request(HANDLE_NOTIFICATION, req);
        let result = self.inner.handle_notification(req);
        self.answer(HTTP_NO_CONTENT, &result);
        result
    }

    fn cancel_session(&self, req: &CancelSessionRequest) -> Result<HeaderOnly, Es9pError> {
        self.request(CANCEL_SESSION, req);
        let result = self.inner.cancel_session(req);
        self.answer(HTTP_OK, &result);
        result
    }
}

/// The transcript as recorded: every byte shown, nothing masked or abbreviated.
pub fn render(entries: &[Entry]) -> Vec<String> {
    render_with(entries, false)
}

/// The transcript with every per-session random value replaced by a placeholder and long
/// deterministic values abbreviated (see the module doc): the same download gives the same
/// lines on every run.
pub fn normalise(entries: &[Entry]) -> Vec<String> {
    normalise_with(entries, false)
}

/// [`render`] with the SGP.22 function name after the first block of each ES10 command
/// (`# ES10c.GetProfilesInfo`), for transcripts of whole flows where several cards speak.
pub fn render_named(entries: &[Entry]) -> Vec<String> {
    render_with(entries, true)
}

/// [`normalise`] with ES10 function names, as [`render_named`].
pub fn normalise_named(entries: &[Entry]) -> Vec<String> {
    normalise_with(entries, true)
}

fn render_with(entries: &[Entry], es10_names: bool) -> Vec<String> {
    let plan = Plan::new(entries);
    let renderer = Renderer {
        masks: Masks::default(),
        abbreviate: false,
        es10_names,
    };
    renderer.lines(entries, &plan)
}

fn normalise_with(entries: &[Entry], es10_names: bool) -> Vec<String> {
    let plan = Plan::new(entries);
    let mut masks = Masks::default();
    for source in &plan.order {
        match *source {
            Source::Stream(s) => {
                if let Some(stream) = plan.streams.get(s) {
                    if stream.mode != Mode::Plain {
                        masks.collect_der(&stream.bytes);
                    }
                }
            }
            Source::Json(i) => match entries.get(i) {
                Some(Entry::HttpRequest { body, .. })
                | Some(Entry::Http {
                    body: Some(body), ..
                })
                | Some(Entry::HttpResponse {
                    body: Some(body), ..
                }) => masks.collect_json(body),
                _ => {}
            },
        }
    }
    for entry in entries {
        if let Entry::Secret { label, value } = entry {
            masks.add_secret(label, value);
        }
    }
    let renderer = Renderer {
        masks,
        abbreviate: true,
        es10_names,
    };
    renderer.lines(entries, &plan)
}

// ---------------------------------------------------------------------------------------------
// Grouping APDUs into ES10 messages

/// How a byte stream is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not BER-TLV (SELECT's AID, raw random bytes).
    Plain,
    /// BER-TLV if it parses completely, else plain.
    Tlv,
    /// An ES10 command from STORE DATA blocks: BER-TLV where the LPA may send only the tag and
    /// length of a constructed element whose children follow as separate commands (the BPP
    /// segments of SGP.22 §2.5.5: `BF36` with `BF23`, `A0`, `A1` header, …).
    Es10Command,
}

#[derive(Debug)]
struct Stream {
    bytes: Vec<u8>,
    mode: Mode,
}

/// Which bytes of which stream an APDU's data (or its answer's data) is.
#[derive(Debug, Clone)]
struct Slice {
    stream: usize,
    range: Range<usize>,
}

/// Where things come from, in order of first appearance.
#[derive(Debug, Clone, Copy)]
enum Source {
    Stream(usize),
    Json(usize),
}

/// The reassembled messages of a transcript, and for each APDU entry where its data lies.
#[derive(Debug, Default)]
struct Plan {
    streams: Vec<Stream>,
    /// Per entry index: (command data, answer data).
    slices: HashMap<usize, (Option<Slice>, Option<Slice>)>,
    order: Vec<Source>,
}

impl Plan {
    fn new(entries: &[Entry]) -> Self {
        let mut plan = Plan::default();
        let mut open_command: Option<usize> = None;
        let mut open_answer: Option<usize> = None;
        for (i, entry) in entries.iter().enumerate() {
            match entry {
                Entry::Apdu { command, response } => {
                    let parts = ApduParts::parse(command);
                    let data = parts.data(command);
                    let store_data = command.get(1) == Some(&INS_STORE_DATA);
                    let cmd = if store_data {
                        let s = match open_command {
                            Some(s) => s,
                            None => plan.stream(Mode::Es10Command),
                        };
                        let last = command.get(2).is_some_and(|p1| p1 & P1_LAST_BLOCK != 0);
                        open_command = (!last).then_some(s);
                        Some(plan.append(s, data))
                    } else {
                        open_command = None;
                        (!data.is_empty()).then(|| {
                            let s = plan.stream(Mode::Plain);
                            plan.append(s, data)
                        })
                    };
                    let (answer, sw1) = match response.len() {
                        n if n >= 2 => (&response[..n - 2], response.get(n - 2).copied()),
                        _ => (&response[..], None),
                    };
                    let more = sw1 == Some(SW1_MORE_DATA);
                    let continued = open_answer
                        .take()
                        .filter(|_| command.get(1) == Some(&INS_GET_RESPONSE));
                    let resp = match continued {
                        Some(s) => Some(plan.append(s, answer)),
                        None if !answer.is_empty() || more => {
                            let s = plan.stream(Mode::Tlv);
                            Some(plan.append(s, answer))
                        }
                        None => None,
                    };
                    if more {
                        open_answer = resp.as_ref().map(|r| r.stream);
                    }
                    plan.slices.insert(i, (cmd, resp));
                }
                Entry::HttpRequest { .. } | Entry::HttpResponse { .. } | Entry::Http { .. } => {
                    plan.order.push(Source::Json(i));
                }
                // Context lines and secrets do not interrupt an ES10 message split over blocks.
                Entry::Note { .. } | Entry::Secret { .. } => {}
                Entry::Reset { .. } | Entry::ApduFailed { .. } | Entry::HttpFailed { .. } => {
                    open_command = None;
                    open_answer = None;
                }
            }
        }
        plan
    }

    fn stream(&mut self, mode: Mode) -> usize {
        self.streams.push(Stream {
            bytes: Vec::new(),
            mode,
        });
        let s = self.streams.len() - 1;
        self.order.push(Source::Stream(s));
        s
    }

    fn append(&mut self, s: usize, data: &[u8]) -> Slice {
        let bytes = &mut self.streams[s].bytes;
        let start = bytes.len();
        bytes.extend_from_slice(data);
        Slice {
            stream: s,
            range: start..bytes.len(),
        }
    }
}

/// The fields of a command APDU (ISO 7816-4 §5.1: cases 1–4, short and extended).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ApduParts {
    header: Range<usize>,
    lc: Range<usize>,
    data: Range<usize>,
    le: Range<usize>,
}

impl ApduParts {
    fn parse(apdu: &[u8]) -> Self {
        let n = apdu.len();
        let at = |r: Range<usize>, lc: Range<usize>, le: Range<usize>| Self {
            header: 0..4.min(n),
            lc,
            data: r,
            le,
        };
        let empty = n..n;
        if n <= 4 {
            return at(empty.clone(), empty.clone(), empty);
        }
        if n == 5 {
            return at(empty.clone(), empty, 4..5);
        }
        let b4 = usize::from(apdu[4]);
        if b4 != 0 {
            if n == 5 + b4 {
                return at(5..n, 4..5, empty);
            }
            if n == 6 + b4 {
                return at(5..n - 1, 4..5, n - 1..n);
            }
        } else if n >= 7 {
            let lc = usize::from(u16::from_be_bytes([apdu[5], apdu[6]]));
            if n == 7 + lc {
                return at(7..n, 4..7, empty);
            }
            if n == 9 + lc {
                return at(7..n - 2, 4..7, n - 2..n);
            }
            if n == 7 {
                // Case 2 extended: '00' and a two-byte Le.
                return at(empty.clone(), empty, 4..7);
            }
        }
        // Not a well-formed APDU: show everything after the header as data.
        at(4..n, empty.clone(), empty)
    }

    fn data<'a>(&self, apdu: &'a [u8]) -> &'a [u8] {
        apdu.get(self.data.clone()).unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Finding random values

/// What a random value is, which names its placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    TransactionId,
    EuiccChallenge,
    ServerChallenge,
    HashCc,
    Signature,
    OneTimeKey,
    BppSegment(u8),
    StoreMetadataMac,
}

impl Kind {
    fn base(self) -> String {
        match self {
            Kind::TransactionId => "TXID".into(),
            Kind::EuiccChallenge => "EUICC-CHALLENGE".into(),
            Kind::ServerChallenge => "SERVER-CHALLENGE".into(),
            Kind::HashCc => "HASH-CC".into(),
            Kind::Signature => "SIG".into(),
            Kind::OneTimeKey => "OTPK".into(),
            Kind::BppSegment(tag) => format!("BPP-{tag:02X}"),
            Kind::StoreMetadataMac => "BPP-88-MAC".into(),
        }
    }

    /// One per session: the first needs no number.
    fn is_single(self) -> bool {
        matches!(
            self,
            Kind::TransactionId | Kind::EuiccChallenge | Kind::ServerChallenge | Kind::HashCc
        )
    }
}

#[derive(Debug, Clone)]
struct Mask {
    bytes: Vec<u8>,
    name: String,
}

/// The random values found so far, each with its placeholder name.
#[derive(Debug, Default)]
struct Masks {
    values: Vec<Mask>,
    counts: HashMap<String, usize>,
    /// SM-DP+ addresses with a port, and the host they keep.
    addresses: Vec<(String, String)>,
    /// Secrets that are text (codes, tokens), with their placeholder, replaced in lines
    /// where they stand as a whole word.
    texts: Vec<(String, String)>,
}

impl Masks {
    fn add(&mut self, kind: Kind, bytes: &[u8]) {
        if bytes.len() < MIN_MASKED_LEN || self.values.iter().any(|m| m.bytes == bytes) {
            return;
        }
        let base = kind.base();
        let n = self.counts.entry(base.clone()).or_insert(0);
        *n += 1;
        let name = if kind.is_single() && *n == 1 {
            base
        } else {
            format!("{base}-{n}")
        };
        self.values.push(Mask {
            bytes: bytes.to_vec(),
            name,
        });
    }

    /// A value the recorder named ([`Entry::Secret`]): `LABEL-n`, numbered per label. Its bytes
    /// are masked in APDUs and decoded JSON (when long enough to be unique, as any value);
    /// its text, when it is printable, in lines where it stands as a whole word.
    fn add_secret(&mut self, label: &str, value: &[u8]) {
        if value.is_empty() || self.values.iter().any(|m| m.bytes == value) {
            return;
        }
        let text = std::str::from_utf8(value)
            .ok()
            .filter(|t| t.chars().all(|c| c.is_ascii_graphic()));
        if text.is_some_and(|t| self.texts.iter().any(|(known, _)| known == t)) {
            return;
        }
        let n = self.counts.entry(label.to_owned()).or_insert(0);
        *n += 1;
        let name = format!("{label}-{n}");
        match text {
            Some(t) => self.texts.push((t.to_owned(), name.clone())),
            // Binary values also travel as text in JSON: hex (either case) and base64.
            None if value.len() >= MIN_MASKED_LEN => {
                use base64::Engine as _;
                for t in [
                    hex::encode_upper(value),
                    hex::encode(value),
                    base64::engine::general_purpose::STANDARD.encode(value),
                ] {
                    self.texts.push((t, name.clone()));
                }
            }
            None => {}
        }
        if value.len() >= MIN_MASKED_LEN {
            self.values.push(Mask {
                bytes: value.to_vec(),
                name,
            });
        }
    }

    /// An SM-DP+ address `host:port`: the port is masked, the host kept.
    fn add_address(&mut self, address: &str) {
        let Some((host, port)) = address.rsplit_once(':') else {
            return;
        };
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return;
        }
        if self.addresses.iter().any(|(a, _)| a == address) {
            return;
        }
        let name = format!("{host}:PORT");
        self.addresses.push((address.to_owned(), name.clone()));
        if address.len() >= MIN_MASKED_LEN {
            self.values.push(Mask {
                bytes: address.as_bytes().to_vec(),
                name,
            });
        }
    }

    fn collect_json(&mut self, body: &Value) {
        let Value::Object(map) = body else { return };
        for (key, value) in map {
            match (key.as_str(), value) {
                (FIELD_TRANSACTION_ID, Value::String(s)) => {
                    if let Ok(bytes) = hex::decode(s.trim()) {
                        self.add(Kind::TransactionId, &bytes);
                    }
                }
                (FIELD_EUICC_CHALLENGE, Value::String(s)) => {
                    if let Ok(bytes) = crate::es9p::base64_bytes::decode(s) {
                        self.add(Kind::EuiccChallenge, &bytes);
                    }
                }
                (FIELD_SMDP_ADDRESS, Value::String(s)) => self.add_address(s),
                (k, Value::String(s)) if BASE64_DER_FIELDS.contains(&k) => {
                    if let Ok(bytes) = crate::es9p::base64_bytes::decode(s) {
                        self.collect_der(&bytes);
                    }
                }
                (_, Value::Object(_)) => self.collect_json(value),
                _ => {}
            }
        }
    }

    /// Walks BER-TLV (tolerating constructed headers whose value follows elsewhere, as in the
    /// BPP segment commands) and collects the random values of the module doc.
    fn collect_der(&mut self, bytes: &[u8]) {
        self.collect_level(bytes, &mut Vec::new());
    }

    fn collect_level(&mut self, bytes: &[u8], ancestors: &mut Vec<u32>) {
        let mut pos = 0;
        while pos < bytes.len() {
            let Some(h) = Header::read(&bytes[pos..]) else {
                return;
            };
            let start = pos + h.size;
            let end = start + h.len;
            let Some(value) = bytes.get(start..end) else {
                if h.constructed {
                    // Only the header is here: its children follow in this same stream.
                    pos = start;
                    continue;
                }
                return;
            };
            self.collect_element(h.tag, value, ancestors);
            if h.constructed {
                ancestors.push(h.tag);
                self.collect_level(value, ancestors);
                ancestors.pop();
            }
            pos = end;
        }
    }

    fn collect_element(&mut self, tag: u32, value: &[u8], ancestors: &[u32]) {
        let children = || -> Vec<(u32, &[u8])> {
            let mut out = Vec::new();
            let mut rest = value;
            while let Some(h) = Header::read(rest) {
                let Some(v) = rest.get(h.size..h.size + h.len) else {
                    break;
                };
                out.push((h.tag, v));
                rest = &rest[h.size + h.len..];
            }
            out
        };
        match tag {
            TAG_SIGNATURE => self.add(Kind::Signature, value),
            TAG_ONE_TIME_KEY => self.add(Kind::OneTimeKey, value),
            t if TAGS_BPP_SEGMENTS.contains(&t)
                && ancestors
                    .iter()
                    .all(|a| *a == TAG_BOUND_PROFILE_PACKAGE || TAGS_BPP_SEQUENCES.contains(a)) =>
            {
                // Top level of a segment command, or inside BF36/A0–A3: a protected segment.
                match value.len().checked_sub(SEGMENT_MAC_LEN) {
                    Some(n) if t == TAG_STORE_METADATA_SEGMENT && n > 0 => {
                        self.add(Kind::StoreMetadataMac, &value[n..]);
                    }
                    _ => self.add(Kind::BppSegment(t.to_be_bytes()[3]), value),
                }
            }
            TAG_SEQUENCE => {
                let c = children();
                let tags: Vec<u32> = c.iter().map(|(t, _)| *t).collect();
                if tags == SERVER_SIGNED1_CHILDREN {
                    for (t, v) in c {
                        match t {
                            TAG_TRANSACTION_ID => self.add(Kind::TransactionId, v),
                            TAG_SERVER_SIGNED1_EUICC_CHALLENGE => self.add(Kind::EuiccChallenge, v),
                            TAG_SERVER_CHALLENGE => self.add(Kind::ServerChallenge, v),
                            TAG_SERVER_ADDRESS => {
                                if let Ok(a) = std::str::from_utf8(v) {
                                    self.add_address(a);
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            TAG_GET_EUICC_CHALLENGE => {
                for (t, v) in children() {
                    if t == TAG_EUICC_CHALLENGE {
                        self.add(Kind::EuiccChallenge, v);
                    }
                }
            }
            TAG_PREPARE_DOWNLOAD => {
                for (t, v) in children() {
                    if t == TAG_OCTET_STRING && v.len() == HASH_CC_LEN {
                        self.add(Kind::HashCc, v);
                    }
                }
            }
            _ => {}
        }
    }
}

/// A BER-TLV tag and length (X.690 §8.1.2–§8.1.3), definite lengths only.
#[derive(Debug, Clone, Copy)]
struct Header {
    tag: u32,
    tag_size: usize,
    /// Tag and length bytes.
    size: usize,
    len: usize,
    constructed: bool,
}

impl Header {
    fn read(input: &[u8]) -> Option<Self> {
        let first = *input.first()?;
        let mut tag = u32::from(first);
        let mut tag_size = 1;
        if first & 0x1F == 0x1F {
            // X.690 §8.1.2.4: subsequent tag bytes have b8 set while more follow.
            loop {
                let b = *input.get(tag_size)?;
                tag = (tag << 8) | u32::from(b);
                tag_size += 1;
                if b & 0x80 == 0 {
                    break;
                }
                if tag_size >= 4 {
                    return None;
                }
            }
        }
        let l = *input.get(tag_size)?;
        let (len, len_size) = match l {
            0x00..=0x7F => (usize::from(l), 1),
            0x81..=0x83 => {
                let n = usize::from(l & 0x7F);
                let bytes = input.get(tag_size + 1..tag_size + 1 + n)?;
                (
                    bytes.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b)),
                    n + 1,
                )
            }
            _ => return None,
        };
        Some(Self {
            tag,
            tag_size,
            size: tag_size + len_size,
            len,
            constructed: first & CONSTRUCTED != 0,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering

/// A piece of a stream as shown: hex, a placeholder, or an abbreviation.
#[derive(Debug, Clone)]
enum Tok {
    Hex(Range<usize>),
    Mask(Range<usize>, usize),
    Abbrev(Range<usize>),
}

impl Tok {
    fn range(&self) -> &Range<usize> {
        match self {
            Tok::Hex(r) | Tok::Mask(r, _) | Tok::Abbrev(r) => r,
        }
    }
}

struct Renderer {
    masks: Masks,
    abbreviate: bool,
    /// Name each command: ES10 functions by their tag, other commands by INS.
    es10_names: bool,
}

impl Renderer {
    fn lines(&self, entries: &[Entry], plan: &Plan) -> Vec<String> {
        let toks: Vec<Vec<Tok>> = plan
            .streams
            .iter()
            .map(|s| self.tokens(&s.bytes, s.mode))
            .collect();
        let show = |slice: &Option<Slice>| -> Vec<String> {
            match slice {
                Some(sl) => match (plan.streams.get(sl.stream), toks.get(sl.stream)) {
                    (Some(s), Some(t)) => self.show(&s.bytes, t, &sl.range),
                    _ => Vec::new(),
                },
                None => Vec::new(),
            }
        };
        let mut lines = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            match entry {
                Entry::Reset { atr } => lines.push(format!("RESET {}", hex::encode_upper(atr))),
                Entry::Apdu { command, response } => {
                    let (cmd, resp) = plan.slices.get(&i).cloned().unwrap_or_default();
                    let parts = ApduParts::parse(command);
                    let field = |r: &Range<usize>| {
                        hex::encode_upper(command.get(r.clone()).unwrap_or_default())
                    };
                    let mut words = vec![">".to_string(), field(&parts.header)];
                    words.push(field(&parts.lc));
                    words.extend(show(&cmd));
                    words.push(field(&parts.le));
                    if self.es10_names {
                        if let Some(name) = command_name(command, cmd.as_ref(), plan) {
                            words.push(format!("# {name}"));
                        }
                    }
                    lines.push(join_words(words));
                    let mut words = vec!["<".to_string()];
                    words.extend(show(&resp));
                    let sw = response.get(response.len().saturating_sub(2)..);
                    words.push(hex::encode_upper(sw.unwrap_or_default()));
                    lines.push(join_words(words));
                }
                Entry::ApduFailed { command, error } => {
                    lines.push(format!("> {}", hex::encode_upper(command)));
                    lines.push(format!("ERR {error}"));
                }
                Entry::HttpRequest { path, body } => {
                    let body = self.json(body, None);
                    lines.push(self.mask_text(&format!("POST {path} {}", compact(&body))));
                }
                Entry::HttpResponse { status, body } => match body {
                    Some(b) => lines.push(
                        self.mask_text(&format!("{status} {}", compact(&self.json(b, None)))),
                    ),
                    None => lines.push(status.to_string()),
                },
                Entry::HttpFailed { error } => {
                    lines.push(format!("ERR {}", self.mask_text(error)));
                }
                Entry::Http { method, path, body } => {
                    let line = match body {
                        Some(b) => format!("{method} {path} {}", compact(&self.json(b, None))),
                        None => format!("{method} {path}"),
                    };
                    lines.push(self.mask_text(&line));
                }
                Entry::Note { text } => lines.push(self.mask_text(text)),
                Entry::Secret { .. } => {}
            }
        }
        lines
    }

    /// Occurrences of known random values, non-overlapping, in order.
    fn occurrences(&self, bytes: &[u8]) -> Vec<(Range<usize>, usize)> {
        let mut found = Vec::new();
        for (m, mask) in self.masks.values.iter().enumerate() {
            let n = mask.bytes.len();
            if n == 0 || n > bytes.len() {
                continue;
            }
            let mut pos = 0;
            while pos + n <= bytes.len() {
                if bytes[pos..pos + n] == mask.bytes[..] {
                    found.push((pos..pos + n, m));
                    pos += n;
                } else {
                    pos += 1;
                }
            }
        }
        // Earlier first; at the same start, the longer value wins.
        found.sort_by_key(|(r, _)| (r.start, usize::MAX - r.end));
        let mut kept: Vec<(Range<usize>, usize)> = Vec::new();
        for (r, m) in found {
            if kept.last().is_none_or(|(k, _)| k.end <= r.start) {
                kept.push((r, m));
            }
        }
        kept
    }

    fn tokens(&self, bytes: &[u8], mode: Mode) -> Vec<Tok> {
        let occ = self.occurrences(bytes);
        let mut out = Vec::new();
        let whole = 0..bytes.len();
        match mode {
            Mode::Plain => self.plain(whole, &occ, &mut out),
            Mode::Tlv | Mode::Es10Command => {
                if !self.walk(
                    bytes,
                    whole.clone(),
                    mode == Mode::Es10Command,
                    &occ,
                    &mut out,
                ) {
                    out.clear();
                    self.plain(whole, &occ, &mut out);
                }
            }
        }
        out
    }

    /// BER-TLV tokens of `range`; false when it is not BER-TLV. `open` allows a constructed
    /// header whose value runs past the end (its children then follow at this level).
    fn walk(
        &self,
        bytes: &[u8],
        range: Range<usize>,
        open: bool,
        occ: &[(Range<usize>, usize)],
        out: &mut Vec<Tok>,
    ) -> bool {
        let mut pos = range.start;
        while pos < range.end {
            if let Some((r, m)) = occ
                .iter()
                .find(|(r, _)| r.start == pos && r.end <= range.end)
            {
                out.push(Tok::Mask(r.clone(), *m));
                pos = r.end;
                continue;
            }
            let Some(h) = Header::read(&bytes[pos..range.end]) else {
                return false;
            };
            let start = pos + h.size;
            let end = start + h.len;
            out.push(Tok::Hex(pos..pos + h.tag_size));
            out.push(Tok::Hex(pos + h.tag_size..start));
            if end > range.end {
                if open && h.constructed {
                    pos = start;
                    continue;
                }
                return false;
            }
            let masked_inside = occ.iter().any(|(r, _)| r.start < end && r.end > start);
            let limit = if h.constructed {
                ABBREVIATE_CONSTRUCTED_OVER
            } else {
                ABBREVIATE_PRIMITIVE_OVER
            };
            if self.abbreviate && !masked_inside && h.len > limit {
                out.push(Tok::Abbrev(start..end));
            } else if h.tag == TAG_STORE_METADATA_SEGMENT
                && self.walk_maced(bytes, start..end, occ, out)
            {
                // Shown as the metadata's TLV and the masked MAC.
            } else if h.constructed {
                let mut inner = Vec::new();
                if self.walk(bytes, start..end, false, occ, &mut inner) {
                    out.extend(inner);
                } else {
                    self.plain(start..end, occ, out);
                }
            } else {
                self.plain(start..end, occ, out);
            }
            pos = end;
        }
        true
    }

    /// A MACed segment (plaintext TLV ‖ masked MAC) as TLV and placeholder; false (nothing
    /// pushed) when it is not that.
    fn walk_maced(
        &self,
        bytes: &[u8],
        range: Range<usize>,
        occ: &[(Range<usize>, usize)],
        out: &mut Vec<Tok>,
    ) -> bool {
        let Some(mac) = range.end.checked_sub(SEGMENT_MAC_LEN) else {
            return false;
        };
        let Some((r, m)) = occ.iter().find(|(r, _)| *r == (mac..range.end)) else {
            return false;
        };
        let mut inner = Vec::new();
        if mac <= range.start || !self.walk(bytes, range.start..mac, false, occ, &mut inner) {
            return false;
        }
        out.extend(inner);
        out.push(Tok::Mask(r.clone(), *m));
        true
    }

    /// Hex runs and placeholders.
    fn plain(&self, range: Range<usize>, occ: &[(Range<usize>, usize)], out: &mut Vec<Tok>) {
        let mut pos = range.start;
        let run = |from: usize, to: usize, out: &mut Vec<Tok>| {
            if to > from {
                if self.abbreviate && to - from > ABBREVIATE_PRIMITIVE_OVER {
                    out.push(Tok::Abbrev(from..to));
                } else {
                    out.push(Tok::Hex(from..to));
                }
            }
        };
        for (r, m) in occ {
            if r.start >= pos && r.end <= range.end {
                run(pos, r.start, out);
                out.push(Tok::Mask(r.clone(), *m));
                pos = r.end;
            }
        }
        run(pos, range.end, out);
    }

    /// The words of the tokens that fall in `range` (an APDU's share of a message).
    fn show(&self, bytes: &[u8], toks: &[Tok], range: &Range<usize>) -> Vec<String> {
        let mut words = Vec::new();
        for t in toks {
            let r = t.range();
            let (from, to) = (r.start.max(range.start), r.end.min(range.end));
            if from >= to {
                continue;
            }
            let whole = from == r.start && to == r.end;
            let part = || format!("[{}..{}]", from - r.start, to - r.start);
            words.push(match t {
                Tok::Hex(_) => hex::encode_upper(&bytes[from..to]),
                Tok::Mask(_, m) => {
                    let name = self
                        .masks
                        .values
                        .get(*m)
                        .map(|v| v.name.as_str())
                        .unwrap_or("?");
                    if whole {
                        format!("<{name}>")
                    } else {
                        format!("<{name}{}>", part())
                    }
                }
                Tok::Abbrev(_) => {
                    let digest = hex::encode_upper(Sha256::digest(&bytes[r.clone()]));
                    let digest = &digest[..DIGEST_HEX_DIGITS];
                    let n = r.len();
                    if whole {
                        format!("…({n} bytes, sha256 {digest})")
                    } else {
                        format!(
                            "…(bytes {}..{} of {n}, sha256 {digest})",
                            from - r.start,
                            to - r.start
                        )
                    }
                }
            });
        }
        words
    }

    /// A JSON body with keys sorted and binary fields decoded and masked.
    fn json(&self, v: &Value, key: Option<&str>) -> Value {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    if let Some(value) = map.get(k) {
                        out.insert(k.clone(), self.json(value, Some(k)));
                    }
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(|i| self.json(i, None)).collect()),
            // Clock readings (the operator network's timestamps) differ on every run.
            Value::Number(_)
                if self.abbreviate && key.is_some_and(|k| TIME_FIELDS.contains(&k)) =>
            {
                Value::String("<TIME>".into())
            }
            Value::String(s) => {
                let decoded = match key {
                    Some(FIELD_TRANSACTION_ID) => {
                        hex::decode(s.trim()).ok().map(|b| (b, Mode::Plain))
                    }
                    Some(FIELD_EUICC_CHALLENGE) => crate::es9p::base64_bytes::decode(s)
                        .ok()
                        .map(|b| (b, Mode::Plain)),
                    Some(k) if BASE64_DER_FIELDS.contains(&k) => {
                        crate::es9p::base64_bytes::decode(s)
                            .ok()
                            .map(|b| (b, Mode::Tlv))
                    }
                    _ => None,
                };
                match decoded {
                    Some((bytes, mode)) => {
                        let toks = self.tokens(&bytes, mode);
                        Value::String(self.show(&bytes, &toks, &(0..bytes.len())).join(" "))
                    }
                    None => Value::String(self.mask_text(s)),
                }
            }
            other => other.clone(),
        }
    }

    /// Text with every SM-DP+ address's port masked.
    fn mask_text(&self, text: &str) -> String {
        let text = self
            .masks
            .addresses
            .iter()
            .fold(text.to_owned(), |t, (address, name)| {
                t.replace(address.as_str(), &format!("<{name}>"))
            });
        self.masks.texts.iter().fold(text, |t, (secret, name)| {
            replace_word(&t, secret, &format!("<{name}>"))
        })
    }
}

fn join_words(words: Vec<String>) -> String {
    words
        .into_iter()
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` with every occurrence of `word` that is not part of a longer run of letters and
/// digits replaced: a six-digit code inside an IMSI stays.
fn replace_word(text: &str, word: &str, by: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let alnum_before = |s: &str| {
        s.chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric())
    };
    let alnum_after = |s: &str| s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    while let Some(at) = rest.find(word) {
        let (before, after) = (&rest[..at], &rest[at + word.len()..]);
        out.push_str(before);
        let bounded_left = !(alnum_before(before) || (before.is_empty() && alnum_before(&out)));
        if bounded_left && !alnum_after(after) {
            out.push_str(by);
        } else {
            out.push_str(word);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The name of a command for a flow transcript: the ES10 function of a STORE DATA's message
/// (at its first block; SGP.22 §5.7 tags), else the ISO 7816-4 / ETSI TS 102 221 command.
fn command_name(command: &[u8], data: Option<&Slice>, plan: &Plan) -> Option<&'static str> {
    let ins = *command.get(1)?;
    if ins == INS_STORE_DATA {
        let slice = data?;
        if slice.range.start != 0 {
            return None;
        }
        let bytes = &plan.streams.get(slice.stream)?.bytes;
        return es10_function_name(Header::read(bytes)?.tag);
    }
    Some(match ins {
        0xA4 => "SELECT",
        0xB0 => "READ BINARY",
        0xB2 => "READ RECORD",
        0xD6 => "UPDATE BINARY",
        0xDC => "UPDATE RECORD",
        0x20 => "VERIFY PIN",
        0x88 => "AUTHENTICATE",
        0xC2 => "ENVELOPE",
        0xC0 => "GET RESPONSE",
        0x70 => "MANAGE CHANNEL",
        0xF2 => "STATUS",
        0x10 => "TERMINAL PROFILE",
        0x12 => "FETCH",
        0x14 => "TERMINAL RESPONSE",
        0xCA | 0xCB => "GET DATA",
        _ => return None,
    })
}

/// SGP.22 v2.5 §5.7 function of an ES10 message by its outer tag.
fn es10_function_name(tag: u32) -> Option<&'static str> {
    use simlab_emulator::rsp::es10 as t;
    Some(match tag {
        t::TAG_EUICC_INFO1 => "ES10b.GetEUICCInfo1",
        t::TAG_PREPARE_DOWNLOAD => "ES10b.PrepareDownload",
        t::TAG_EUICC_INFO2 => "ES10b.GetEUICCInfo2",
        t::TAG_INITIALISE_SECURE_CHANNEL => {
            "ES10b.LoadBoundProfilePackage (InitialiseSecureChannel)"
        }
        t::TAG_BOUND_PROFILE_PACKAGE => "ES10b.LoadBoundProfilePackage",
        t::TAG_LIST_NOTIFICATION => "ES10b.ListNotification",
        t::TAG_SET_NICKNAME => "ES10c.SetNickname",
        t::TAG_RETRIEVE_NOTIFICATIONS_LIST => "ES10b.RetrieveNotificationsList",
        t::TAG_PROFILE_INFO_LIST => "ES10c.GetProfilesInfo",
        t::TAG_GET_EUICC_CHALLENGE => "ES10b.GetEUICCChallenge",
        t::TAG_NOTIFICATION_SENT => "ES10b.RemoveNotificationFromList",
        t::TAG_ENABLE_PROFILE => "ES10c.EnableProfile",
        t::TAG_DISABLE_PROFILE => "ES10c.DisableProfile",
        t::TAG_DELETE_PROFILE => "ES10c.DeleteProfile",
        t::TAG_EUICC_MEMORY_RESET => "ES10c.eUICCMemoryReset",
        t::TAG_LOAD_CRL => "ES10b.LoadCRL",
        t::TAG_AUTHENTICATE_SERVER => "ES10b.AuthenticateServer",
        t::TAG_EUICC_CONFIGURED_ADDRESSES => "ES10a.GetEuiccConfiguredAddresses",
        t::TAG_GET_EUICC_DATA => "ES10c.GetEID",
        t::TAG_SET_DEFAULT_DP_ADDRESS => "ES10a.SetDefaultDpAddress",
        t::TAG_CANCEL_SESSION => "ES10b.CancelSession",
        t::TAG_GET_RAT => "ES10b.GetRAT",
        _ => return None,
    })
}

/// Compact JSON; keys come sorted from [`Renderer::json`].
fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use proptest::prelude::*;
    use rstest::rstest;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    fn tlv(tag: &str, value: &[u8]) -> Vec<u8> {
        let mut out = h(tag);
        simlab_emulator::tlv::push_length(&mut out, value.len());
        out.extend_from_slice(value);
        out
    }

    const EID: &str = "89049032123451234512345678901235";

    /// The start of a download as an LPA records it, with the session's random values made
    /// from `seed` and the SM-DP+ listening on `port`.
    fn session(seed: u8, port: u16) -> Vec<Entry> {
        let txid = vec![seed; 16];
        let challenge = vec![seed ^ 0x55; 16];
        let server_challenge = vec![seed ^ 0xAA; 16];
        let signature = vec![seed ^ 0x0F; 64];
        let address = format!("127.0.0.1:{port}");
        let signed1 = tlv(
            "30",
            &[
                tlv("80", &txid),
                tlv("81", &challenge),
                tlv("83", address.as_bytes()),
                tlv("84", &server_challenge),
            ]
            .concat(),
        );
        let sig_field = tlv("5F37", &signature);
        let auth = tlv("BF38", &[signed1.clone(), sig_field.clone()].concat());
        // AuthenticateServer in two STORE DATA blocks, split inside the signature.
        let (first, second) = auth.split_at(auth.len() - 20);
        let store = |p1: u8, p2: u8, data: &[u8]| {
            [
                vec![0x81, INS_STORE_DATA, p1, p2, data.len() as u8],
                data.to_vec(),
            ]
            .concat()
        };
        let ok = h("9000");
        vec![
            Entry::Apdu {
                command: h("81E29100 03 BF2E00"),
                response: [tlv("BF2E", &tlv("80", &challenge)), ok.clone()].concat(),
            },
            Entry::HttpRequest {
                path: format!("{ES9P_PATH_PREFIX}{INITIATE_AUTHENTICATION}"),
                body: serde_json::json!({
                    "euiccChallenge": STANDARD.encode(&challenge),
                    "euiccInfo1": STANDARD.encode(h("BF20 03 82 01 02")),
                    "smdpAddress": address,
                }),
            },
            Entry::HttpResponse {
                status: HTTP_OK,
                body: Some(serde_json::json!({
                    "header": {"functionExecutionStatus": {"status": "Executed-Success"}},
                    "transactionId": hex::encode_upper(&txid),
                    "serverSigned1": STANDARD.encode(&signed1),
                    "serverSignature1": STANDARD.encode(&sig_field),
                })),
            },
            Entry::Apdu {
                command: store(0x11, 0, first),
                response: ok.clone(),
            },
            Entry::Apdu {
                command: store(0x91, 1, second),
                response: h("6115"),
            },
            Entry::Apdu {
                command: h("01C00000 15"),
                response: [tlv("BF3E", &tlv("5A", &h(EID))), h("9000")].concat(),
            },
        ]
    }

    #[test]
    fn different_random_values_normalise_to_the_same_lines() {
        let (a, b) = (session(0x11, 43210), session(0x22, 51234));
        assert_ne!(render(&a), render(&b));
        assert_eq!(normalise(&a), normalise(&b));
    }

    #[test]
    fn masks_every_occurrence_by_role_and_keeps_deterministic_values() {
        let lines = normalise(&session(0x11, 43210));
        assert_eq!(
            lines,
            [
                "> 81E29100 03 BF2E 00",
                "< BF2E 12 80 10 <EUICC-CHALLENGE> 9000",
                "POST /gsma/rsp2/es9plus/initiateAuthentication {\"euiccChallenge\":\"<EUICC-CHALLENGE>\",\"euiccInfo1\":\"BF20 03 82 01 02\",\"smdpAddress\":\"<127.0.0.1:PORT>\"}",
                "200 {\"header\":{\"functionExecutionStatus\":{\"status\":\"Executed-Success\"}},\"serverSignature1\":\"5F37 40 <SIG-1>\",\"serverSigned1\":\"30 47 80 10 <TXID> 81 10 <EUICC-CHALLENGE> 83 0F <127.0.0.1:PORT> 84 10 <SERVER-CHALLENGE>\",\"transactionId\":\"<TXID>\"}",
                "> 81E21100 7C BF38 818C 30 47 80 10 <TXID> 81 10 <EUICC-CHALLENGE> 83 0F <127.0.0.1:PORT> 84 10 <SERVER-CHALLENGE> 5F37 40 <SIG-1[0..44]>",
                "< 9000",
                "> 81E29101 14 <SIG-1[44..64]>",
                "< 6115",
                "> 01C00000 15",
                "< BF3E 12 5A 10 89049032123451234512345678901235 9000",
            ]
        );
        // The raw form shows the values themselves.
        let raw = render(&session(0x11, 43210)).join("\n");
        assert!(raw.contains(&"11".repeat(16)), "{raw}");
        assert!(raw.contains("127.0.0.1:43210"), "{raw}");
    }

    #[test]
    fn abbreviates_long_deterministic_values_with_a_digest() {
        let cert = tlv("30", &tlv("04", &[0x42; 300]));
        let entries = vec![Entry::Apdu {
            command: h("81E29100 00"),
            response: [cert.clone(), h("9000")].concat(),
        }];
        let lines = normalise(&entries);
        let digest = hex::encode_upper(Sha256::digest(&cert[4..]));
        assert_eq!(
            lines[1],
            format!("< 30 820130 …(304 bytes, sha256 {}) 9000", &digest[..8])
        );
        // Nothing is abbreviated in the raw form.
        assert!(render(&entries)[1].contains(&"42".repeat(300)));
    }

    #[test]
    fn a_value_shorter_than_the_minimum_is_not_masked() {
        let mut masks = Masks::default();
        masks.add(Kind::TransactionId, &[1, 2, 3]);
        assert!(masks.values.is_empty());
        masks.add(Kind::Signature, &[7; 64]);
        masks.add(Kind::Signature, &[7; 64]);
        masks.add(Kind::Signature, &[8; 64]);
        let names: Vec<&str> = masks.values.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["SIG-1", "SIG-2"]);
    }

    #[test]
    fn bpp_segment_commands_are_read_with_their_open_headers() {
        // SGP.22 §2.5.5: `A3` header alone, then each `86` as its own command.
        let segment = vec![0x5A; 40];
        let bpp = tlv(
            "BF36",
            &tlv(
                "A3",
                &[tlv("86", &segment), tlv("86", &[0x6B; 40])].concat(),
            ),
        );
        let entries = vec![
            Entry::HttpResponse {
                status: HTTP_OK,
                body: Some(serde_json::json!({"boundProfilePackage": STANDARD.encode(&bpp)})),
            },
            Entry::Apdu {
                command: h("81E29100 02 A3 54"),
                response: h("9000"),
            },
            Entry::Apdu {
                command: [h("81E29100 2A 86 28"), segment].concat(),
                response: h("9000"),
            },
        ];
        assert_eq!(
            normalise(&entries),
            [
                "200 {\"boundProfilePackage\":\"BF36 56 A3 54 86 28 <BPP-86-1> 86 28 <BPP-86-2>\"}",
                "> 81E29100 02 A3 54",
                "< 9000",
                "> 81E29100 2A 86 28 <BPP-86-1>",
                "< 9000",
            ]
        );
    }

    #[test]
    fn a_store_metadata_segment_keeps_its_plaintext_and_masks_its_mac() {
        let metadata = tlv("BF25", &tlv("5A", &h("989444999999990920F3")));
        let segment = [metadata, vec![0xC3; SEGMENT_MAC_LEN]].concat();
        let bpp = tlv("BF36", &tlv("A1", &tlv("88", &segment)));
        let entries = vec![Entry::HttpResponse {
            status: HTTP_OK,
            body: Some(serde_json::json!({"boundProfilePackage": STANDARD.encode(&bpp)})),
        }];
        assert_eq!(
            normalise(&entries),
            ["200 {\"boundProfilePackage\":\"BF36 1B A1 19 88 17 BF25 0C 5A 0A 989444999999990920F3 <BPP-88-MAC-1>\"}"]
        );
    }

    #[rstest]
    #[case::case_1("00708001", "00708001", "", "", "")]
    #[case::case_2("00700000 01", "00700000", "", "", "01")]
    #[case::case_3("01A40400 02 3F00", "01A40400", "02", "3F00", "")]
    #[case::case_4("00B20104 01 AA 00", "00B20104", "01", "AA", "00")]
    #[case::extended_case_3("80E29100 000003 BF2E00", "80E29100", "000003", "BF2E00", "")]
    #[case::extended_case_4("80E29100 000001 AA 0000", "80E29100", "000001", "AA", "0000")]
    #[case::inconsistent_length("80E29100 05 AA", "80E29100", "", "05AA", "")]
    fn splits_an_apdu_at_its_field_boundaries(
        #[case] apdu: &str,
        #[case] header: &str,
        #[case] lc: &str,
        #[case] data: &str,
        #[case] le: &str,
    ) {
        let apdu = h(apdu);
        let p = ApduParts::parse(&apdu);
        let field = |r: Range<usize>| hex::encode_upper(&apdu[r]);
        assert_eq!(
            (field(p.header), field(p.lc), field(p.data), field(p.le)),
            (header.into(), lc.into(), data.into(), le.into())
        );
    }

    struct Refusing;

    impl Es9Plus for Refusing {
        fn initiate_authentication(
            &self,
            _: &InitiateAuthenticationRequest,
        ) -> Result<InitiateAuthenticationResponse, Es9pError> {
            Err(Es9pError::Failed {
                function: INITIATE_AUTHENTICATION,
                status: "Failed".into(),
                subject_code: "8.8.1".into(),
                reason_code: "3.8".into(),
                message: None,
            })
        }
        fn authenticate_client(
            &self,
            _: &AuthenticateClientRequest,
        ) -> Result<AuthenticateClientResponse, Es9pError> {
            Err(Es9pError::Tls("no".into()))
        }
        fn get_bound_profile_package(
            &self,
            _: &GetBoundProfilePackageRequest,
        ) -> Result<GetBoundProfilePackageResponse, Es9pError> {
            Err(Es9pError::Tls("no".into()))
        }
        fn handle_notification(&self, _: &HandleNotificationRequest) -> Result<(), Es9pError> {
            Ok(())
        }
        fn cancel_session(&self, _: &CancelSessionRequest) -> Result<HeaderOnly, Es9pError> {
            Err(Es9pError::Tls("no".into()))
        }
    }

    #[test]
    fn records_a_refusal_as_the_failed_header_and_a_notification_as_204() {
        let transcript = Transcript::new();
        let es9 = RecordingEs9::new(&Refusing, &transcript);
        let req = InitiateAuthenticationRequest {
            header: None,
            euicc_challenge: vec![9; 16],
            euicc_info1: h("BF20 00"),
            smdp_address: "smdp.example".into(),
        };
        assert!(es9.initiate_authentication(&req).is_err());
        es9.handle_notification(&HandleNotificationRequest {
            header: None,
            pending_notification: h("BF37 00"),
        })
        .unwrap();
        assert!(es9
            .authenticate_client(&AuthenticateClientRequest {
                header: None,
                transaction_id: vec![1; 16],
                authenticate_server_response: h("BF38 00"),
            })
            .is_err());
        let lines = normalise(&transcript.entries());
        assert_eq!(
            lines[1],
            "200 {\"header\":{\"functionExecutionStatus\":{\"status\":\"Failed\",\"statusCodeData\":{\"reasonCode\":\"3.8\",\"subjectCode\":\"8.8.1\"}}}}"
        );
        assert_eq!(
            lines[2],
            "POST /gsma/rsp2/es9plus/handleNotification {\"pendingNotification\":\"BF37 00\"}"
        );
        assert_eq!(lines[3], "204");
        assert_eq!(lines[5], "ERR TLS setup: no");
    }

    #[test]
    fn recording_transport_records_each_exchange_and_resets() {
        #[derive(Debug)]
        struct Echo;
        impl Transport for Echo {
            fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
                Ok(match apdu.get(1) {
                    Some(&INS_GET_RESPONSE) => h("5A0107 9000"),
                    _ => h("6103"),
                })
            }
            fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
                Ok(h("3B00"))
            }
            fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
                Ok(h("3B00"))
            }
        }
        let transcript = Transcript::new();
        let mut t = Recording::new(Echo, &transcript);
        t.reset().unwrap();
        assert_eq!(t.transmit(&h("00CA0000 00")).unwrap(), h("5A0107 9000"));
        assert_eq!(
            transcript.render(),
            "RESET 3B00\n> 00CA0000 00\n< 6103\n> 00C00000 03\n< 5A 01 07 9000\n"
        );
    }

    #[test]
    fn secrets_are_masked_in_apdus_json_and_lines_but_not_inside_longer_numbers() {
        let rand = [0x5Au8; 16];
        let entries = vec![
            Entry::Secret {
                label: "CODE".into(),
                value: b"123456".to_vec(),
            },
            Entry::Secret {
                label: "RAND".into(),
                value: rand.to_vec(),
            },
            Entry::Note {
                text: "SMS to +15555550100: your code is 123456".into(),
            },
            Entry::Http {
                method: "POST".into(),
                path: "/code?imsi=001010123456063".into(),
                body: Some(serde_json::json!({"code": "123456"})),
            },
            Entry::HttpResponse {
                status: 200,
                body: Some(serde_json::json!({"ok": true})),
            },
            Entry::Apdu {
                command: [&h("00880081 22 10")[..], &rand, &h("10"), &[1u8; 16]].concat(),
                response: h("9862"),
            },
        ];
        assert_eq!(
            normalise_named(&entries),
            vec![
                "SMS to +15555550100: your code is <CODE-1>",
                "POST /code?imsi=001010123456063 {\"code\":\"<CODE-1>\"}",
                "200 {\"ok\":true}",
                "> 00880081 22 10 <RAND-1> 1001010101010101010101010101010101 # AUTHENTICATE",
                "< 9862",
            ]
        );
        assert!(render(&entries)[0].ends_with("is 123456"));
    }

    #[test]
    fn es10_commands_are_named_at_their_first_block() {
        let entries = vec![
            Entry::Apdu {
                command: h("81E29100 03 BF2D00"),
                response: h("BF2D03A0009000"),
            },
            Entry::Note {
                text: "[new.euicc]".into(),
            },
            Entry::Apdu {
                command: h("81E21100 02 BF38"),
                response: h("9000"),
            },
            Entry::Apdu {
                command: h("81E29101 02 0000"),
                response: h("9000"),
            },
        ];
        let lines = render_named(&entries);
        assert_eq!(lines[0], "> 81E29100 03 BF2D 00 # ES10c.GetProfilesInfo");
        assert_eq!(lines[3], "> 81E21100 02 BF38 # ES10b.AuthenticateServer");
        assert_eq!(lines[5], "> 81E29101 02 0000");
        assert!(!render(&entries)[0].contains('#'));
    }

    proptest! {
        #[test]
        fn normalising_arbitrary_exchanges_never_panics(
            exchanges in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..300),
                 proptest::collection::vec(any::<u8>(), 0..300)), 0..8),
            field in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut entries: Vec<Entry> = exchanges
                .into_iter()
                .map(|(command, response)| Entry::Apdu { command, response })
                .collect();
            entries.push(Entry::HttpResponse {
                status: HTTP_OK,
                body: Some(serde_json::json!({
                    "boundProfilePackage": STANDARD.encode(&field),
                    "transactionId": hex::encode(&field),
                })),
            });
            let lines = normalise(&entries);
            prop_assert!(lines.len() >= entries.len());
            let _ = render(&entries);
        }
    }
}
