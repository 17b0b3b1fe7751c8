//! The ISD-R as an application (SGP.22 v2.5 §2.2.1, §5.7.2): ES10 functions arrive as
//! GlobalPlatform STORE DATA commands (GP Card Specification v2.3 §11.11) — P1 b8 "last block",
//! b5-b4 '01' BER-TLV structure, P2 the block number restarting at 00 for each function — and
//! their answers go back in the response data (61xx shaping is the card pipeline's job).
//!
//! The reassembled command is dispatched on its outer tag to the ES10a/b/c handlers. ES10
//! errors are result codes inside the answer; status words only say that the command itself
//! could not be taken (wrong P1/P2, unknown function, no session for a BPP segment).
//!
//! The card hosts the ISD-R ([`IsdR`]) and the ECASD ([`Ecasd`]) through its application
//! interface ([`crate::app::Application`]): selectable by AID on any logical channel, the
//! ISD-R taking STORE DATA, and the profile switch (REFRESH) applied at power-on.

use super::{download, es10a, es10b, es10c, EuiccState};
use crate::apdu::{Command, Instruction};
use crate::app::{Application, CmdResult, Context, Response};
use crate::rsp::es10::*;
use crate::state::CardState;
use crate::status::StatusWord;
use crate::tlv;
use rand::{CryptoRng, RngCore};

/// P1 b8: last (or only) block.
const P1_LAST_BLOCK: u8 = 0x80;
/// P1 b7-b6: encryption information; only '00' (no encryption) is supported.
const P1_ENCRYPTION_MASK: u8 = 0x60;
/// The most a reassembled ES10 command may hold (a whole bound profile package, generous).
const MAX_COMMAND_LEN: usize = 256 * 1024;

/// SELECT P2 b4-b3 '11': no data in the answer (TS 102 221 Table 11.2).
const P2_NO_DATA: u8 = 0x0C;

/// Volatile eUICC state: STORE DATA reassembly per channel and the download session.
#[derive(Debug, Default)]
pub struct EuiccSession {
    pub(crate) segments: std::collections::BTreeMap<usize, Segments>,
    pub(crate) download: download::DownloadState,
}

/// The ISD-R (SGP.22 §2.2.1) as a hosted application.
#[derive(Debug, Default)]
pub struct IsdR {
    session: EuiccSession,
}

impl Application for IsdR {
    fn name(&self) -> &'static str {
        "ISD-R"
    }

    fn answers_to_aid(&self, state: &CardState, aid: &[u8]) -> bool {
        state
            .euicc
            .as_ref()
            .is_some_and(|e| e.config.isd_r_aid.as_slice() == aid)
    }

    fn select(&mut self, ctx: &mut Context<'_>, cmd: &Command<'_>) -> CmdResult {
        // A new selection abandons a STORE DATA sequence left unfinished on this channel.
        self.session.segments.remove(&ctx.channel);
        Ok(Response::ok(applet_select_answer(cmd)))
    }

    fn command(&mut self, ctx: &mut Context<'_>, cmd: &Command<'_>) -> Option<CmdResult> {
        if cmd.ins != Instruction::StoreData {
            return None;
        }
        let Some(e) = ctx.state.euicc.as_deref_mut() else {
            return Some(Err(StatusWord::ConditionsOfUseNotSatisfied));
        };
        Some(
            store_data(
                e,
                &mut self.session,
                ctx.rng,
                ctx.channel,
                cmd.p1,
                cmd.p2,
                cmd.data,
            )
            .map(|answer| Response::ok(answer.unwrap_or_default())),
        )
    }

    /// Drops the download session and STORE DATA sequences, and applies a pending profile
    /// switch to the card's live content (REFRESH, see [`super`]).
    fn power_on(&mut self, state: &mut CardState) -> bool {
        self.session = EuiccSession::default();
        let Some(mut euicc) = state.euicc.take() else {
            return false;
        };
        let mut live = state.take_content();
        let changed = super::refresh(&mut euicc, &mut live);
        state.put_content(live);
        state.euicc = Some(euicc);
        changed
    }
}

/// The ECASD (SGP.22 §2.2.2): selectable; its credentials are used by the ISD-R, and it takes
/// no command of its own.
#[derive(Debug, Default)]
pub struct Ecasd;

impl Application for Ecasd {
    fn name(&self) -> &'static str {
        "ECASD"
    }

    fn answers_to_aid(&self, state: &CardState, aid: &[u8]) -> bool {
        state
            .euicc
            .as_ref()
            .is_some_and(|e| e.config.ecasd_aid.as_slice() == aid)
    }

    fn select(&mut self, _ctx: &mut Context<'_>, cmd: &Command<'_>) -> CmdResult {
        Ok(Response::ok(applet_select_answer(cmd)))
    }
}

/// The FCI of a SELECT by AID, or nothing when P2 asks for no data.
fn applet_select_answer(cmd: &Command<'_>) -> Vec<u8> {
    if cmd.p2 & P2_NO_DATA == P2_NO_DATA {
        Vec::new()
    } else {
        select_answer(cmd.data)
    }
}

/// A STORE DATA sequence in progress on one channel.
#[derive(Debug, Default, Clone)]
pub struct Segments {
    next_block: u8,
    data: Vec<u8>,
}

/// The SELECT answer of the ISD-R / ECASD: FCI template `6F { 84 AID }` (GP §11.9.3).
pub fn select_answer(aid: &[u8]) -> Vec<u8> {
    tlv::encode(0x6F, &tlv::encode(0x84, aid))
}

/// STORE DATA to the ISD-R. `Ok(None)`: an intermediate block (answer 9000, no data);
/// `Ok(Some(answer))`: the ES10 answer.
pub fn store_data<R: RngCore + CryptoRng>(
    state: &mut EuiccState,
    session: &mut EuiccSession,
    rng: &mut R,
    channel: usize,
    p1: u8,
    p2: u8,
    data: &[u8],
) -> Result<Option<Vec<u8>>, StatusWord> {
    if p1 & P1_ENCRYPTION_MASK != 0 {
        return Err(StatusWord::IncorrectP1P2);
    }
    let seg = session.segments.entry(channel).or_default();
    if p2 != seg.next_block {
        // A block out of sequence ends the function's STORE DATA sequence.
        session.segments.remove(&channel);
        return Err(StatusWord::IncorrectP1P2);
    }
    if seg.data.len() + data.len() > MAX_COMMAND_LEN {
        session.segments.remove(&channel);
        return Err(StatusWord::NotEnoughMemory);
    }
    seg.data.extend_from_slice(data);
    seg.next_block = seg.next_block.wrapping_add(1);
    if p1 & P1_LAST_BLOCK == 0 {
        return Ok(None);
    }
    let command = session
        .segments
        .remove(&channel)
        .map(|s| s.data)
        .unwrap_or_default();
    dispatch(state, session, rng, &command).map(Some)
}

/// Runs one reassembled ES10 command.
pub fn dispatch<R: RngCore + CryptoRng>(
    state: &mut EuiccState,
    session: &mut EuiccSession,
    rng: &mut R,
    command: &[u8],
) -> Result<Vec<u8>, StatusWord> {
    // A BPP piece (`A0`…`A3` header or whole, `86`/`87`/`88` segment) continues a load; its
    // outer element may be incomplete (a header alone), so only the tag is read here.
    let tag = read_tag(command).ok_or(StatusWord::IncorrectData)?;
    if download::is_bpp_piece(tag) {
        return download::load_piece(state, &mut session.download, rng, command);
    }
    let whole = tlv::parse_one(command).map_err(|_| StatusWord::IncorrectData)?;
    let bytes = whole.raw;
    let bad = |_| StatusWord::IncorrectData;
    match whole.tag {
        TAG_EUICC_CONFIGURED_ADDRESSES => Ok(es10a::configured_addresses(state)),
        TAG_SET_DEFAULT_DP_ADDRESS => es10a::set_default_dp_address(
            state,
            &SetDefaultDpAddressRequest::from_der(bytes).map_err(bad)?,
        ),
        TAG_EUICC_INFO1 => Ok(es10b::euicc_info1(state).to_der()),
        TAG_EUICC_INFO2 => Ok(es10b::euicc_info2(state).to_der()),
        TAG_GET_EUICC_CHALLENGE => Ok(es10b::get_challenge(&mut session.download, rng)),
        TAG_AUTHENTICATE_SERVER => {
            let req = AuthenticateServerRequest::from_der(bytes).map_err(bad)?;
            Ok(es10b::authenticate_server(state, &mut session.download, &req).to_der())
        }
        TAG_PREPARE_DOWNLOAD => {
            let req = PrepareDownloadRequest::from_der(bytes).map_err(bad)?;
            Ok(es10b::prepare_download(state, &mut session.download, rng, &req).to_der())
        }
        TAG_CANCEL_SESSION => {
            let req = CancelSessionRequest::from_der(bytes).map_err(bad)?;
            Ok(es10b::cancel_session(state, &mut session.download, &req).to_der())
        }
        TAG_LIST_NOTIFICATION => {
            let req = ListNotificationRequest::from_der(bytes).map_err(bad)?;
            Ok(es10b::list_notification(state, &req).to_der())
        }
        TAG_RETRIEVE_NOTIFICATIONS_LIST => {
            Ok(match RetrieveNotificationsListRequest::from_der(bytes) {
                Ok(req) => es10b::retrieve_notifications(state, &req),
                // The encoding trap of docs/clients.md (`BF2B 80 …`): a spec error, not a crash.
                Err(_) => RetrieveNotificationsListResponse::Error(
                    RetrieveNotificationsListError::UndefinedError,
                ),
            }
            .to_der())
        }
        TAG_NOTIFICATION_SENT => {
            let req = NotificationSentRequest::from_der(bytes).map_err(bad)?;
            Ok(es10b::remove_notification(state, &req).to_der())
        }
        TAG_GET_RAT => Ok(GetRatResponse {
            rat: state.config.rat.clone(),
        }
        .to_der()),
        TAG_LOAD_CRL => Ok(es10b::load_crl(state, bytes).to_der()),
        TAG_PROFILE_INFO_LIST => Ok(es10c::get_profiles_info(state, bytes).to_der()),
        TAG_ENABLE_PROFILE => {
            let req = EnableProfileRequest::from_der(bytes).map_err(bad)?;
            Ok(es10c::enable_profile(state, &req).to_der())
        }
        TAG_DISABLE_PROFILE => {
            let req = DisableProfileRequest::from_der(bytes).map_err(bad)?;
            Ok(es10c::disable_profile(state, &req).to_der())
        }
        TAG_DELETE_PROFILE => {
            let req = DeleteProfileRequest::from_der(bytes).map_err(bad)?;
            Ok(es10c::delete_profile(state, &req).to_der())
        }
        TAG_EUICC_MEMORY_RESET => {
            let req = EuiccMemoryResetRequest::from_der(bytes).map_err(bad)?;
            Ok(es10c::memory_reset(state, &req).to_der())
        }
        TAG_GET_EUICC_DATA => {
            let req = GetEuiccDataRequest::from_der(bytes).map_err(bad)?;
            es10c::get_eid(state, &req)
        }
        TAG_SET_NICKNAME => {
            let req = SetNicknameRequest::from_der(bytes).map_err(bad)?;
            Ok(es10c::set_nickname(state, &req).to_der())
        }
        // Anything else, SGP.32 GetCerts (BF56) included: not an SGP.22 function.
        _ => Err(StatusWord::ReferencedDataNotFound),
    }
}

/// The tag at the start of `data` (BER, up to 3 bytes).
fn read_tag(data: &[u8]) -> Option<u32> {
    let first = *data.first()?;
    let mut tag = u32::from(first);
    if first & 0x1F != 0x1F {
        return Some(tag);
    }
    for i in 1..3 {
        let b = *data.get(i)?;
        tag = (tag << 8) | u32::from(b);
        if b & 0x80 == 0 {
            return Some(tag);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_two_and_three_byte_tags() {
        assert_eq!(read_tag(&[0x86, 0x01]), Some(0x86));
        assert_eq!(read_tag(&[0xBF, 0x36, 0x00]), Some(0xBF36));
        assert_eq!(read_tag(&[0x5F, 0x81, 0x01]), Some(0x5F8101));
        assert_eq!(read_tag(&[0xBF]), None);
        assert_eq!(read_tag(&[]), None);
    }

    #[test]
    fn the_select_answer_is_an_fci_with_the_aid() {
        assert_eq!(
            select_answer(&[0xA0, 0x01]),
            [0x6F, 0x04, 0x84, 0x02, 0xA0, 0x01]
        );
    }
}
