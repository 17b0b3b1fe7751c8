//! The profile download session (SGP.22 v2.5 §3.1.3) as a typed state machine, and
//! ES10b.LoadBoundProfilePackage (§5.7.6, §2.5.5):
//!
//! `Idle → Challenged (GetEUICCChallenge) → Authenticated (AuthenticateServer) → Prepared
//! (PrepareDownload) → Loading (BF36…) → Idle (BF37 ProfileInstallationResult)`.
//!
//! Any failure, CancelSession, or a session command out of order returns to `Idle`. The
//! package arrives either whole (`BF36` in one ES10 command) or as LPAs send it: `BF36 L ‖
//! BF23…`, the whole `A0`, the `A1 L` header then each `88`, the whole `A2`, the `A3 L`
//! header then each `86`. Both are read as one byte stream with the [`Step`] saying what must
//! come next; intermediate commands answer empty (9000), the last one `BF37`.
//!
//! Every segment goes through [`BspReader`] (MAC checked, then decrypted) in order; a segment
//! that is missing, repeated or swapped fails its MAC (scp03tSecurityError), a segment of the
//! wrong kind fails the structure check (scp03tStructureError). The profile is added to the
//! eUICC only after the whole package was read and its content built: an interrupted or failed
//! installation leaves nothing behind.

use super::{install, notifications, EuiccState};
use crate::rsp::download::{InitialiseSecureChannel, ReplaceSessionKeys};
use crate::rsp::ecdsa::VerifyingKey;
use crate::rsp::ecka::OneTimeKeyPair;
use crate::rsp::es10::*;
use crate::rsp::kdf::derive_session_keys;
use crate::rsp::scp03t::{BspError, BspReader};
use crate::status::StatusWord;
use crate::tlv;
use rand::{CryptoRng, RngCore};

/// `sequenceOf87`, `sequenceOf88`, `secondSequenceOf87`, `sequenceOf86` in BF36.
const TAG_FIRST_87: u32 = 0xA0;
const TAG_SEQUENCE_88: u32 = 0xA1;
const TAG_SECOND_87: u32 = 0xA2;
const TAG_SEQUENCE_86: u32 = 0xA3;
const SEGMENT_86: u8 = 0x86;
const SEGMENT_87: u8 = 0x87;
const SEGMENT_88: u8 = 0x88;
/// RemoteOpId installBoundProfilePackage.
const REMOTE_OP_INSTALL: u8 = 1;
/// A minimal SAIP `EUICCResponse` (PEDefinitions): `peStatus { { status ok } }`.
const SIMA_RESPONSE_OK: [u8; 9] = [0x30, 0x07, 0xA0, 0x05, 0x30, 0x03, 0x80, 0x01, 0x00];

/// The session after AuthenticateServer.
#[derive(Debug)]
pub struct Authenticated {
    pub transaction_id: Vec<u8>,
    pub server_address: String,
    /// SubjectKeyIdentifier of the CI the SM-DP+ chose.
    pub ci_pkid: Vec<u8>,
    pub euicc_signature1: Vec<u8>,
    /// SM-DP+ OID from CERT.DPauth.ECDSA.
    pub smdp_oid: Option<Vec<u8>>,
}

/// The session after PrepareDownload.
#[derive(Debug)]
pub struct Prepared {
    pub auth: Authenticated,
    pub otk: OneTimeKeyPair,
    pub dp_pb: VerifyingKey,
    /// SM-DP+ OID from CERT.DPpb.ECDSA (what ProfileInstallationResultData carries).
    pub smdp_oid: Option<Vec<u8>>,
}

/// The download session (volatile).
#[derive(Debug, Default)]
pub enum DownloadState {
    #[default]
    Idle,
    Challenged {
        challenge: [u8; CHALLENGE_LEN],
    },
    Authenticated(Box<Authenticated>),
    Prepared(Box<Prepared>),
    Loading(Box<Loading>),
}

/// What the package stream must bring next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    ExpectBf36Header,
    ExpectBf23,
    /// The header of a `A0`…`A3` container; `A2` or `A3` when `optional_a2`.
    ExpectContainer {
        tag: u32,
        optional_a2: bool,
    },
    /// Segments of the container `tag`, `remaining` bytes of it left.
    Segments {
        tag: u32,
        remaining: usize,
    },
}

/// A package being loaded.
#[derive(Debug)]
pub struct Loading {
    prepared: Prepared,
    step: Step,
    buffer: Vec<u8>,
    /// BF36 content bytes not read yet.
    bpp_remaining: usize,
    reader: Option<BspReader>,
    configure_isdp: Vec<u8>,
    metadata_der: Vec<u8>,
    metadata: Option<StoreMetadataRequest>,
    upp: Vec<u8>,
}

impl Loading {
    pub fn transaction_id(&self) -> &[u8] {
        &self.prepared.auth.transaction_id
    }

    pub fn smdp_oid(&self) -> Option<Vec<u8>> {
        self.prepared.auth.smdp_oid.clone()
    }
}

/// Why loading stopped: the BPP command and the ErrorReason of `errorResult`.
type Failure = (BppCommandId, ErrorReason);

/// Whether an ES10 command with this first tag belongs to LoadBoundProfilePackage.
pub fn is_bpp_piece(tag: u32) -> bool {
    matches!(
        tag,
        TAG_BOUND_PROFILE_PACKAGE
            | TAG_FIRST_87
            | TAG_SEQUENCE_88
            | TAG_SECOND_87
            | TAG_SEQUENCE_86
            | 0x86
            | 0x87
            | 0x88
    )
}

/// One ES10 command of LoadBoundProfilePackage. Answers empty while more is expected,
/// `BF37` at the end or on failure.
pub fn load_piece<R: RngCore + CryptoRng>(
    state: &mut EuiccState,
    session: &mut DownloadState,
    _rng: &mut R,
    data: &[u8],
) -> Result<Vec<u8>, StatusWord> {
    let starts_package = data.starts_with(&[0xBF, 0x36]);
    let mut loading = match std::mem::take(session) {
        DownloadState::Loading(l) => l,
        DownloadState::Prepared(p) if starts_package => Box::new(Loading {
            prepared: *p,
            step: Step::ExpectBf36Header,
            buffer: Vec::new(),
            bpp_remaining: 0,
            reader: None,
            configure_isdp: Vec::new(),
            metadata_der: Vec::new(),
            metadata: None,
            upp: Vec::new(),
        }),
        _ if starts_package => {
            // No PrepareDownload before (the session, if any, ends here): the package names a
            // transaction the eUICC does not have (§5.7.6 invalidTransactionId). Not kept as a
            // notification: there is no SM-DP+ to send it to.
            let tx = transaction_id_of(data);
            let pir = notifications::installation_result(
                state,
                &tx,
                "",
                None,
                None,
                FinalResult::Error {
                    bpp_command_id: BppCommandId::InitialiseSecureChannel,
                    error_reason: ErrorReason::InvalidTransactionId,
                    sima_response: None,
                },
                false,
            )
            .map_err(|_| StatusWord::ExecutionError)?;
            return Ok(pir.to_der());
        }
        other => {
            // A segment with no package being loaded.
            *session = other;
            return Err(StatusWord::ConditionsOfUseNotSatisfied);
        }
    };
    loading.buffer.extend_from_slice(data);
    match advance(state, &mut loading) {
        Ok(None) => {
            *session = DownloadState::Loading(loading);
            Ok(Vec::new())
        }
        Ok(Some(installed)) => finish(state, &loading, Ok(installed)),
        Err(failure) => finish(state, &loading, Err(failure)),
    }
}

/// The transactionId inside a `BF36 … BF23 { … 80 … }` start, if readable.
fn transaction_id_of(data: &[u8]) -> Vec<u8> {
    header(data)
        .and_then(|(_, _, hl)| data.get(hl..))
        .and_then(|rest| tlv::parse(rest).ok())
        .and_then(|(bf23, _)| bf23.find(0x80).map(|t| t.value.to_vec()))
        .unwrap_or_default()
}

/// Reads a tag and length at the start of `buf` (the value may not be there yet).
fn header(buf: &[u8]) -> Option<(u32, usize, usize)> {
    let first = *buf.first()?;
    let mut tag = u32::from(first);
    let mut i = 1;
    if first & 0x1F == 0x1F {
        loop {
            let b = *buf.get(i)?;
            tag = (tag << 8) | u32::from(b);
            i += 1;
            if b & 0x80 == 0 || i > 3 {
                break;
            }
        }
    }
    let l = *buf.get(i)?;
    i += 1;
    let len = match l {
        0..=0x7F => usize::from(l),
        0x81..=0x83 => {
            let n = usize::from(l & 0x7F);
            let bytes = buf.get(i..i + n)?;
            i += n;
            bytes.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b))
        }
        _ => return Some((tag, usize::MAX, i)),
    };
    Some((tag, len, i))
}

/// The command id a step belongs to.
fn command_of(tag: u32) -> BppCommandId {
    match tag {
        TAG_FIRST_87 => BppCommandId::ConfigureIsdp,
        TAG_SEQUENCE_88 => BppCommandId::StoreMetadata,
        TAG_SECOND_87 => BppCommandId::ReplaceSessionKeys,
        _ => BppCommandId::LoadProfileElements,
    }
}

fn structure(tag: u32) -> Failure {
    (command_of(tag), ErrorReason::Scp03tStructureError)
}

/// Consumes what the buffer holds; `Ok(Some(_))` once the whole package is read and built.
fn advance(state: &EuiccState, l: &mut Loading) -> Result<Option<install::Installed>, Failure> {
    const ISC: BppCommandId = BppCommandId::InitialiseSecureChannel;
    loop {
        match l.step {
            Step::ExpectBf36Header => {
                let Some((tag, len, hl)) = header(&l.buffer) else {
                    return Ok(None);
                };
                if tag != TAG_BOUND_PROFILE_PACKAGE || len == usize::MAX {
                    return Err((ISC, ErrorReason::IncorrectInputValues));
                }
                l.buffer.drain(..hl);
                l.bpp_remaining = len;
                l.step = Step::ExpectBf23;
            }
            Step::ExpectBf23 => {
                let Some((tag, len, hl)) = header(&l.buffer) else {
                    return Ok(None);
                };
                if tag != TAG_INITIALISE_SECURE_CHANNEL {
                    return Err((ISC, ErrorReason::IncorrectInputValues));
                }
                let total = hl.saturating_add(len);
                if l.buffer.len() < total {
                    return Ok(None);
                }
                let bf23: Vec<u8> = l.buffer.drain(..total).collect();
                l.bpp_remaining = l
                    .bpp_remaining
                    .checked_sub(total)
                    .ok_or((ISC, ErrorReason::IncorrectInputValues))?;
                l.reader = Some(initialise_secure_channel(state, &l.prepared, &bf23)?);
                l.step = Step::ExpectContainer {
                    tag: TAG_FIRST_87,
                    optional_a2: false,
                };
            }
            Step::ExpectContainer { tag, optional_a2 } => {
                let Some((found, len, hl)) = header(&l.buffer) else {
                    return Ok(None);
                };
                let accepted = found == tag || (optional_a2 && found == TAG_SECOND_87);
                if !accepted || len == usize::MAX {
                    return Err(structure(tag));
                }
                l.buffer.drain(..hl);
                l.bpp_remaining = l
                    .bpp_remaining
                    .checked_sub(hl.saturating_add(len))
                    .ok_or(structure(found))?;
                l.step = Step::Segments {
                    tag: found,
                    remaining: len,
                };
            }
            Step::Segments { tag, remaining: 0 } => match tag {
                TAG_FIRST_87 => {
                    ConfigureIsdpRequest::from_der(&l.configure_isdp).map_err(|_| {
                        (
                            BppCommandId::ConfigureIsdp,
                            ErrorReason::IncorrectInputValues,
                        )
                    })?;
                    if state.profiles.len() >= state.config.max_profiles {
                        return Err((
                            BppCommandId::ConfigureIsdp,
                            ErrorReason::InstallFailedDueToInsufficientMemoryForProfile,
                        ));
                    }
                    l.step = Step::ExpectContainer {
                        tag: TAG_SEQUENCE_88,
                        optional_a2: false,
                    };
                }
                TAG_SEQUENCE_88 => {
                    l.metadata = Some(check_metadata(state, &l.metadata_der)?);
                    l.step = Step::ExpectContainer {
                        tag: TAG_SEQUENCE_86,
                        optional_a2: true,
                    };
                }
                TAG_SECOND_87 => {
                    l.step = Step::ExpectContainer {
                        tag: TAG_SEQUENCE_86,
                        optional_a2: false,
                    };
                }
                _ => {
                    if l.bpp_remaining != 0 || !l.buffer.is_empty() {
                        return Err(structure(TAG_SEQUENCE_86));
                    }
                    return install_checked(l).map(Some);
                }
            },
            Step::Segments { tag, remaining } => {
                let Some((found, len, hl)) = header(&l.buffer) else {
                    return Ok(None);
                };
                let want = match tag {
                    TAG_SEQUENCE_88 => SEGMENT_88,
                    TAG_SEQUENCE_86 => SEGMENT_86,
                    _ => SEGMENT_87,
                };
                if found != u32::from(want) || len == usize::MAX {
                    return Err(structure(tag));
                }
                let total = hl.saturating_add(len);
                if total > remaining {
                    return Err(structure(tag));
                }
                if l.buffer.len() < total {
                    return Ok(None);
                }
                let segment: Vec<u8> = l.buffer.drain(..total).collect();
                let reader = l.reader.as_mut().ok_or(structure(tag))?;
                let data = reader.open_expecting(want, &segment).map_err(|e| match e {
                    BspError::MacMismatch => (command_of(tag), ErrorReason::Scp03tSecurityError),
                    _ => structure(tag),
                })?;
                match tag {
                    TAG_FIRST_87 => l.configure_isdp.extend(data),
                    TAG_SEQUENCE_88 => l.metadata_der.extend(data),
                    TAG_SECOND_87 => {
                        let rsk = ReplaceSessionKeys::from_der(&data).map_err(|_| {
                            (
                                BppCommandId::ReplaceSessionKeys,
                                ErrorReason::IncorrectInputValues,
                            )
                        })?;
                        reader.replace_session_keys(&rsk.keys);
                    }
                    _ => l.upp.extend(data),
                }
                l.step = Step::Segments {
                    tag,
                    remaining: remaining - total,
                };
            }
        }
    }
}

/// Verifies BF23 (§5.7.6 / §2.6.6.1) and derives the session keys.
fn initialise_secure_channel(
    state: &EuiccState,
    p: &Prepared,
    bf23: &[u8],
) -> Result<BspReader, Failure> {
    const ISC: BppCommandId = BppCommandId::InitialiseSecureChannel;
    let isc = InitialiseSecureChannel::parse(bf23)
        .map_err(|_| (ISC, ErrorReason::IncorrectInputValues))?;
    if isc.remote_op_id != REMOTE_OP_INSTALL {
        return Err((ISC, ErrorReason::UnsupportedRemoteOperationType));
    }
    if isc.transaction_id != p.auth.transaction_id.as_slice() {
        return Err((ISC, ErrorReason::InvalidTransactionId));
    }
    p.dp_pb
        .verify(&isc.signature_input(&p.otk.public_key()), isc.smdp_sign)
        .map_err(|_| (ISC, ErrorReason::InvalidSignature))?;
    let shs = p
        .otk
        .shared_secret(isc.smdp_otpk)
        .map_err(|_| (ISC, ErrorReason::IncorrectInputValues))?;
    let keys = derive_session_keys(
        shs.as_bytes(),
        isc.key_type,
        isc.key_len,
        isc.host_id,
        &state.identity.eid,
    )
    .map_err(|_| (ISC, ErrorReason::UnsupportedCrtValues))?;
    Ok(BspReader::new(&keys))
}

/// StoreMetadata checks (§5.7.6, §2.9.2): ICCID not yet on the eUICC, a supported class,
/// profile policy rules the RAT allows for this owner.
fn check_metadata(state: &EuiccState, der: &[u8]) -> Result<StoreMetadataRequest, Failure> {
    const SM: BppCommandId = BppCommandId::StoreMetadata;
    let m =
        StoreMetadataRequest::from_der(der).map_err(|_| (SM, ErrorReason::IncorrectInputValues))?;
    if state.profiles.iter().any(|p| p.iccid == m.iccid) {
        return Err((SM, ErrorReason::InstallFailedDueToIccidAlreadyExistsOnEuicc));
    }
    match m.profile_class.unwrap_or(ProfileClass::Operational) {
        ProfileClass::Operational | ProfileClass::Test => {}
        _ => return Err((SM, ErrorReason::UnsupportedProfileClass)),
    }
    if let Some(ppr) = m.ppr {
        if !ppr_allowed(state, &ppr, m.profile_owner.as_ref()) {
            return Err((SM, ErrorReason::PprNotAllowed));
        }
    }
    Ok(m)
}

/// Every PPR set must be allowed by one RAT rule for the profile owner (§2.9.2.2; 'E' in
/// mccMnc is a wildcard digit).
fn ppr_allowed(state: &EuiccState, ppr: &PprIds, owner: Option<&OperatorId>) -> bool {
    let wanted = [(ppr.ppr1, 1), (ppr.ppr2, 2), (ppr.ppr3, 3)];
    wanted.iter().filter(|(set, _)| *set).all(|(_, n)| {
        state.config.rat.iter().any(|rule| {
            let covers = match n {
                1 => rule.ppr_ids.ppr1,
                2 => rule.ppr_ids.ppr2,
                _ => rule.ppr_ids.ppr3,
            };
            covers
                && rule.allowed_operators.iter().any(|op| {
                    owner.is_some_and(|o| mcc_mnc_matches(&op.mcc_mnc, &o.mcc_mnc))
                        || op.mcc_mnc == [0xEE; 3]
                })
        })
    })
}

fn mcc_mnc_matches(pattern: &[u8], value: &[u8]) -> bool {
    pattern.len() == value.len()
        && pattern.iter().zip(value).all(|(p, v)| {
            let nib = |x: u8, s: u8| (x >> s) & 0x0F;
            [0u8, 4]
                .iter()
                .all(|s| nib(*p, *s) == 0x0E || nib(*p, *s) == nib(*v, *s))
        })
}

/// Builds the profile content and checks it against the metadata.
fn install_checked(l: &Loading) -> Result<install::Installed, Failure> {
    const LPE: BppCommandId = BppCommandId::LoadProfileElements;
    let installed = install::build(&l.upp).map_err(|reason| (LPE, reason))?;
    if let Some(m) = &l.metadata {
        if m.iccid != installed.iccid {
            return Err((LPE, ErrorReason::InstallFailedDueToIccidMismatch));
        }
    }
    Ok(installed)
}

/// Ends the session: adds the profile on success, and answers the signed BF37 (kept as the
/// install notification for the SM-DP+ of the session).
fn finish(
    state: &mut EuiccState,
    l: &Loading,
    outcome: Result<install::Installed, Failure>,
) -> Result<Vec<u8>, StatusWord> {
    let p = &l.prepared;
    let smdp_oid = p.smdp_oid.clone();
    let iccid = l.metadata.as_ref().map(|m| m.iccid);
    let final_result = match outcome {
        Ok(installed) => {
            let configure = ConfigureIsdpRequest::from_der(&l.configure_isdp).unwrap_or_default();
            let aid = state.add_profile(
                installed,
                l.metadata.as_ref(),
                configure.dp_proprietary_data,
            );
            FinalResult::Success {
                isdp_aid: aid,
                sima_response: SIMA_RESPONSE_OK.to_vec(),
            }
        }
        Err((bpp_command_id, error_reason)) => FinalResult::Error {
            bpp_command_id,
            error_reason,
            sima_response: None,
        },
    };
    let pir = notifications::installation_result(
        state,
        &p.auth.transaction_id,
        &p.auth.server_address,
        smdp_oid,
        iccid,
        final_result,
        true,
    )
    .map_err(|_| StatusWord::ExecutionError)?;
    Ok(pir.to_der())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::short_form("A1 53", Some((0xA1, 0x53, 2)))]
    #[case::two_byte_length("A3 82 2E A0", Some((0xA3, 0x2EA0, 4)))]
    #[case::two_byte_tag("BF36 82 3016 BF23", Some((0xBF36, 0x3016, 5)))]
    #[case::cut_in_the_length("A3 82 2E", None)]
    #[case::empty("", None)]
    #[case::indefinite_length("A3 80", Some((0xA3, usize::MAX, 2)))]
    fn reads_headers_of_incomplete_elements(
        #[case] input: &str,
        #[case] want: Option<(u32, usize, usize)>,
    ) {
        let bytes = hex::decode(input.replace(' ', "")).unwrap();
        assert_eq!(header(&bytes), want);
    }

    #[rstest]
    #[case::bpp(0xBF36, true)]
    #[case::header_88(0xA1, true)]
    #[case::segment_86(0x86, true)]
    #[case::profile_info(0xBF2D, false)]
    #[case::bf23_alone(0xBF23, false)]
    fn knows_which_tags_continue_a_package(#[case] tag: u32, #[case] piece: bool) {
        assert_eq!(is_bpp_piece(tag), piece);
    }

    #[rstest]
    #[case::wildcard_all("EEEEEE", "00F110", true)]
    #[case::exact("00F110", "00F110", true)]
    #[case::wildcard_mnc_digit("00F1E0", "00F110", true)]
    #[case::other_mcc("21F410", "00F110", false)]
    fn mcc_mnc_wildcards_are_e_digits(
        #[case] pattern: &str,
        #[case] value: &str,
        #[case] ok: bool,
    ) {
        let p = hex::decode(pattern).unwrap();
        let v = hex::decode(value).unwrap();
        assert_eq!(mcc_mnc_matches(&p, &v), ok);
    }

    #[test]
    fn transaction_id_is_read_from_the_start_of_a_package() {
        let bf23 = tlv::encode(
            0xBF23,
            &[tlv::encode(0x82, &[1]), tlv::encode(0x80, &[7; 16])].concat(),
        );
        let mut start = vec![0xBF, 0x36, 0x82, 0x10, 0x00];
        start.extend(&bf23);
        assert_eq!(transaction_id_of(&start), vec![7; 16]);
        assert!(transaction_id_of(&[0xBF, 0x36]).is_empty());
    }
}
