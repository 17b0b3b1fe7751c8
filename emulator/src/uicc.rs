//! The card: ATR, the command pipeline (parse → class/channel check → one `match` on the
//! instruction → response shaping for T=0 clients) and persistence of what must survive a
//! power cycle.
//!
//! Persistent state ([`CardState`]: files, PINs, USIM sequence numbers) and volatile state
//! ([`Session`]: open channels, their selections, verified PINs, a pending GET RESPONSE) are
//! separate types; a power cycle drops the second and keeps the first.
//!
//! An eUICC ([`CardState::euicc`]) adds the ISD-R and ECASD applications (SGP.22 v2.5 §2.2),
//! selectable by AID on any logical channel, with ES10 over STORE DATA ([`crate::euicc`]); its
//! enabled profile's content is the card's file system, PINs and USIM.

use crate::apdu::{Command, Instruction, MAX_CHANNEL};
use crate::euicc::{self, EuiccSession, EuiccState};
use crate::fs::{FileSystem, NodeId};
use crate::pin::PinStore;
use crate::status::StatusWord;
use crate::store::{StateStore, StoreError};
use crate::{ts_102_221, ts_31_102};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What a card keeps across power cycles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardState {
    pub fs: FileSystem,
    pub pins: PinStore,
    pub usim: Option<ts_31_102::UsimState>,
    /// The eUICC part (identity, profiles, notifications); `None` for a plain UICC.
    #[serde(default)]
    pub euicc: Option<Box<EuiccState>>,
}

/// An application selected by AID that is not a file-system ADF (SGP.22 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applet {
    IsdR,
    Ecasd,
}

/// The selection state of one logical channel (TS 102 221 §8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel {
    pub df: NodeId,
    pub ef: Option<NodeId>,
    /// Current record number (1-based) of the current EF.
    pub record: Option<usize>,
    /// The ADF of the application selected on this channel.
    pub adf: Option<NodeId>,
    /// The ISD-R or ECASD when one is selected on this channel (instead of a file).
    pub applet: Option<Applet>,
}

impl Channel {
    pub fn at_mf() -> Self {
        Self {
            df: FileSystem::MF,
            ef: None,
            record: None,
            adf: None,
            applet: None,
        }
    }
}

/// Answer data waiting for GET RESPONSE, with the status word that ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    data: Vec<u8>,
    sw: StatusWord,
}

/// What a power cycle forgets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub channels: Vec<Option<Channel>>,
    /// Key references verified since power-on (TS 102 221 §9.5.1).
    pub verified: BTreeSet<u8>,
    pending: Option<Pending>,
}

impl Default for Session {
    fn default() -> Self {
        let mut channels = vec![None; MAX_CHANNEL + 1];
        if let Some(basic) = channels.first_mut() {
            *basic = Some(Channel::at_mf());
        }
        Self {
            channels,
            verified: BTreeSet::new(),
            pending: None,
        }
    }
}

/// A command's result before it is shaped for the transport: data and status word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<u8>,
    pub sw: StatusWord,
}

impl Response {
    pub fn ok(data: Vec<u8>) -> Self {
        Self {
            data,
            sw: StatusWord::Success,
        }
    }

    pub fn status(sw: StatusWord) -> Self {
        Self {
            data: Vec::new(),
            sw,
        }
    }
}

/// What a command handler returns: an answer, or the status word of its failure.
pub type CmdResult = Result<Response, StatusWord>;

/// Everything a command handler may touch.
#[derive(Debug)]
pub struct Context<'a> {
    pub state: &'a mut CardState,
    pub session: &'a mut Session,
    pub channel: usize,
}

impl Context<'_> {
    /// The selection of the command's channel (the pipeline checked it is open).
    pub fn chan(&self) -> Channel {
        self.session
            .channels
            .get(self.channel)
            .copied()
            .flatten()
            .unwrap_or_else(Channel::at_mf)
    }

    pub fn set_chan(&mut self, c: Channel) {
        if let Some(slot) = self.session.channels.get_mut(self.channel) {
            *slot = Some(c);
        }
    }

    /// A key reference counts as satisfied when verified in this session or disabled.
    pub fn key_satisfied(&self, key: u8) -> bool {
        self.session.verified.contains(&key) || self.state.pins.get(key).is_some_and(|p| !p.enabled)
    }
}

/// The default ATR, offering T=0 only, as real UICCs and eUICCs do (ISO 7816-3 §8.2):
/// `3B 97 96 80 1F C7 80 31 E0 73 FE 21 00 A4`. T0 '97': TA1 and TD1 follow, seven historical
/// bytes; TA1 '96' (Fi=512, Di=32); TD1 '80': T=0, TD2 follows; TD2 '1F': T=15 global, TA3
/// follows; TA3 'C7' (clock stop allowed, classes A/B/C, as TS 102 221 §6.3.3 expects); seven
/// historical bytes; TCK 'A4' (ISO 7816-3 §8.2.5: present once T=15 is indicated).
///
/// Why not T=1 too: when an ATR offers both, pcscd settles on T=1 for the first client that
/// connects with "any protocol" (opensc-tool, pcsc_scan, pyscard), and every later client that
/// insists on T=0 (pySim-shell's transmits, lpac's connect) then fails with
/// `SCARD_E_PROTO_MISMATCH` until the card is reset. A card definition may still set
/// `card.atr` to an ATR that offers T=1.
pub const DEFAULT_ATR: &[u8] = &[
    0x3B, 0x97, 0x96, 0x80, 0x1F, 0xC7, 0x80, 0x31, 0xE0, 0x73, 0xFE, 0x21, 0x00, 0xA4,
];

/// A UICC with its USIM.
#[derive(Debug)]
pub struct Uicc {
    atr: Vec<u8>,
    state: CardState,
    session: Session,
    store: Option<StateStore>,
    /// Volatile eUICC state: STORE DATA reassembly and the download session.
    euicc_session: EuiccSession,
    /// Randomness for challenges and one-time keys (seedable for reproducible transcripts).
    rng: StdRng,
}

impl Uicc {
    /// A card with `state`, kept only in memory.
    pub fn new(atr: Vec<u8>, state: CardState) -> Self {
        let mut card = Self {
            atr,
            state,
            session: Session::default(),
            store: None,
            euicc_session: EuiccSession::default(),
            rng: StdRng::from_entropy(),
        };
        card.refresh_profile();
        card
    }

    /// Seeds the card's random source (challenges, one-time keys): same seed and same
    /// commands give the same answers.
    pub fn seed_rng(&mut self, seed: u64) {
        self.rng = StdRng::seed_from_u64(seed);
    }

    /// The eUICC's REFRESH: makes the enabled profile's content the card's (see
    /// [`crate::euicc`]), saving the state if it changed.
    fn refresh_profile(&mut self) {
        let before = self.store.as_ref().map(|_| self.state.clone());
        if euicc::refresh(&mut self.state) {
            if let (Some(store), Some(before)) = (&self.store, before) {
                if store.save(&self.state).is_err() {
                    // Not saved: keep presenting what is on disk.
                    self.state = before;
                }
            }
        }
    }

    /// A card whose state lives in `store`: loaded from it when present, else `initial`
    /// is written there first.
    pub fn with_store(
        atr: Vec<u8>,
        initial: CardState,
        store: StateStore,
    ) -> Result<Self, StoreError> {
        let state = match store.load::<CardState>()? {
            Some(saved) => saved,
            None => {
                store.save(&initial)?;
                initial
            }
        };
        let mut card = Self {
            atr,
            state,
            session: Session::default(),
            store: Some(store),
            euicc_session: EuiccSession::default(),
            rng: StdRng::from_entropy(),
        };
        card.refresh_profile();
        Ok(card)
    }

    pub fn atr(&self) -> &[u8] {
        &self.atr
    }

    pub fn state(&self) -> &CardState {
        &self.state
    }

    /// Cold reset: volatile state is lost, persistent state stays. Returns the ATR.
    pub fn power_on(&mut self) -> Vec<u8> {
        self.session = Session::default();
        self.euicc_session = EuiccSession::default();
        self.refresh_profile();
        self.atr.clone()
    }

    /// Warm reset; same effect on state as a power cycle.
    pub fn reset(&mut self) -> Vec<u8> {
        self.power_on()
    }

    /// One command APDU in, one response APDU (data ‖ SW1 SW2) out. Never panics.
    pub fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        let cmd = match Command::parse(apdu) {
            Ok(cmd) => cmd,
            Err(sw) => return sw.to_bytes().to_vec(),
        };
        if cmd.ins != Instruction::GetResponse {
            // Any other command discards answer data nobody fetched (ISO 7816-3 §10.3.3).
            self.session.pending = None;
        }
        if cmd.ins != Instruction::ManageChannel
            && self
                .session
                .channels
                .get(cmd.channel)
                .copied()
                .flatten()
                .is_none()
        {
            return StatusWord::LogicalChannelNotSupported.to_bytes().to_vec();
        }
        let response = match self.execute_persisting(&cmd) {
            Ok(r) => r,
            Err(sw) => Response::status(sw),
        };
        self.shape(response, cmd.ne)
    }

    /// Runs a command; when it changed persistent state, saves it before answering.
    /// If the save fails, the change is undone and the card answers '65 81'.
    fn execute_persisting(&mut self, cmd: &Command<'_>) -> CmdResult {
        if !mutates(cmd) || self.store.is_none() {
            return self.execute(cmd);
        }
        let before = self.state.clone();
        let result = self.execute(cmd);
        if self.state != before {
            if let Some(store) = &self.store {
                if store.save(&self.state).is_err() {
                    self.state = before;
                    return Err(StatusWord::MemoryProblem);
                }
            }
        }
        result
    }

    fn execute(&mut self, cmd: &Command<'_>) -> CmdResult {
        match cmd.ins {
            Instruction::Select => {
                if let Some(r) = self.select_applet(cmd) {
                    return r;
                }
            }
            Instruction::StoreData => return self.store_data(cmd),
            _ => {}
        }
        let mut ctx = Context {
            state: &mut self.state,
            session: &mut self.session,
            channel: cmd.channel,
        };
        use Instruction::*;
        match cmd.ins {
            Select => {
                let r = ts_102_221::select(&mut ctx, cmd);
                if r.is_ok() {
                    // A file (or USIM) selected: the channel no longer talks to an applet.
                    let mut chan = ctx.chan();
                    chan.applet = None;
                    ctx.set_chan(chan);
                }
                r
            }
            Status => ts_102_221::status(&mut ctx, cmd),
            ReadBinary => ts_102_221::read_binary(&mut ctx, cmd),
            UpdateBinary => ts_102_221::update_binary(&mut ctx, cmd),
            ReadRecord => ts_102_221::read_record(&mut ctx, cmd),
            UpdateRecord => ts_102_221::update_record(&mut ctx, cmd),
            SearchRecord => ts_102_221::search_record(&mut ctx, cmd),
            Verify | ChangePin | DisablePin | EnablePin | UnblockPin => {
                ts_102_221::pin_command(&mut ctx, cmd)
            }
            DeactivateFile | ActivateFile => ts_102_221::set_life_cycle(&mut ctx, cmd),
            Authenticate => ts_31_102::authenticate(&mut ctx, cmd),
            ManageChannel => ts_102_221::manage_channel(&mut ctx, cmd),
            GetResponse => self.get_response(cmd),
            TerminalProfile | TerminalCapability => ts_102_221::terminal_capabilities(cmd),
            StoreData => Err(StatusWord::ConditionsOfUseNotSatisfied),
        }
    }

    /// SELECT by AID of the ISD-R or ECASD (SGP.22 §2.2.1/§2.2.2); `None` when the command
    /// is not about them (the file system handles it).
    fn select_applet(&mut self, cmd: &Command<'_>) -> Option<CmdResult> {
        const SELECT_BY_AID: u8 = 0x04;
        const P2_NO_DATA: u8 = 0x0C;
        let e = self.state.euicc.as_ref()?;
        if cmd.p1 != SELECT_BY_AID || cmd.data.is_empty() {
            return None;
        }
        let applet = if cmd.data == e.config.isd_r_aid.as_slice() {
            Applet::IsdR
        } else if cmd.data == e.config.ecasd_aid.as_slice() {
            Applet::Ecasd
        } else {
            return None;
        };
        let answer = if cmd.p2 & P2_NO_DATA == P2_NO_DATA {
            Vec::new()
        } else {
            euicc::isd_r::select_answer(cmd.data)
        };
        let slot = self.session.channels.get_mut(cmd.channel)?;
        // The applet replaces the channel's file and application selection: file commands
        // and AUTHENTICATE on this channel find no EF / no USIM until a file is selected.
        *slot = Some(Channel {
            applet: Some(applet),
            ..Channel::at_mf()
        });
        self.euicc_session.segments.remove(&cmd.channel);
        Some(Ok(Response::ok(answer)))
    }

    /// STORE DATA: ES10 to the ISD-R selected on the channel.
    fn store_data(&mut self, cmd: &Command<'_>) -> CmdResult {
        let applet = self
            .session
            .channels
            .get(cmd.channel)
            .copied()
            .flatten()
            .and_then(|c| c.applet);
        let Some(e) = self.state.euicc.as_deref_mut() else {
            return Err(StatusWord::ConditionsOfUseNotSatisfied);
        };
        if applet != Some(Applet::IsdR) {
            return Err(StatusWord::ConditionsOfUseNotSatisfied);
        }
        match euicc::isd_r::store_data(
            e,
            &mut self.euicc_session,
            &mut self.rng,
            cmd.channel,
            cmd.p1,
            cmd.p2,
            cmd.data,
        )? {
            Some(answer) => Ok(Response::ok(answer)),
            None => Ok(Response::ok(Vec::new())),
        }
    }

    /// GET RESPONSE: hands out pending data, Ne bytes at a time (ISO 7816-4 §7.6.1).
    fn get_response(&mut self, cmd: &Command<'_>) -> CmdResult {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Err(StatusWord::IncorrectP1P2);
        }
        let pending = self
            .session
            .pending
            .take()
            .ok_or(StatusWord::ConditionsOfUseNotSatisfied)?;
        let ne = cmd.ne.unwrap_or(256);
        // Le='00' (Ne=256) means "whatever is there"; an explicit larger Le is wrong.
        if ne > pending.data.len() && ne < 256 {
            let available = u8::try_from(pending.data.len()).unwrap_or(0);
            self.session.pending = Some(pending);
            return Err(StatusWord::WrongLe(available));
        }
        Ok(Response {
            data: pending.data,
            sw: pending.sw,
        })
    }

    /// Fits an answer to what the client can take (ISO 7816-3 §12.2 T=0 rules): data beyond
    /// Ne, or any data for a command sent without Le, waits for GET RESPONSE behind '61 XX'.
    fn shape(&mut self, response: Response, ne: Option<usize>) -> Vec<u8> {
        let Response { mut data, sw } = response;
        let carries_data = matches!(
            sw,
            StatusWord::Success | StatusWord::SelectedFileInvalidated
        ) || matches!(
            sw,
            StatusWord::EndOfFileReached | StatusWord::ProactiveCommandPending(_)
        );
        if data.is_empty() || !carries_data {
            return sw.to_bytes().to_vec();
        }
        let limit = ne.unwrap_or(0);
        if data.len() <= limit {
            data.extend_from_slice(&sw.to_bytes());
            return data;
        }
        let rest = data.split_off(limit);
        let announce = u8::try_from(rest.len()).unwrap_or(0); // '00' = 256 or more
        self.session.pending = Some(Pending { data: rest, sw });
        data.extend_from_slice(&StatusWord::MoreData(announce).to_bytes());
        data
    }
}

/// Commands that can change persistent state (and so trigger a save). Of STORE DATA only the
/// last block runs an ES10 function (GP §11.11: P1 b8); the others just collect data.
fn mutates(cmd: &Command<'_>) -> bool {
    use Instruction::*;
    const P1_LAST_BLOCK: u8 = 0x80;
    if cmd.ins == StoreData {
        return cmd.p1 & P1_LAST_BLOCK != 0;
    }
    let ins = cmd.ins;
    matches!(
        ins,
        UpdateBinary
            | UpdateRecord
            | Verify
            | ChangePin
            | DisablePin
            | EnablePin
            | UnblockPin
            | DeactivateFile
            | ActivateFile
            | Authenticate
    )
}

#[cfg(test)]
mod tests {
    use super::DEFAULT_ATR;

    /// ISO 7816-3 §8.2: walks the interface bytes and collects the protocols the TDi announce.
    fn offered_protocols(atr: &[u8]) -> Vec<u8> {
        let mut protocols = Vec::new();
        let mut i = 1;
        let mut y = atr[i] >> 4;
        loop {
            i += 1 + usize::try_from((y & 0x7).count_ones()).unwrap_or(0);
            if y & 0x8 == 0 {
                break;
            }
            let td = atr[i];
            protocols.push(td & 0x0F);
            y = td >> 4;
        }
        protocols
    }

    #[test]
    fn the_default_atr_offers_t0_and_the_global_t15_but_not_t1() {
        assert_eq!(offered_protocols(DEFAULT_ATR), [0, 15]);
    }

    #[test]
    fn the_default_atr_has_a_valid_check_byte_and_seven_historical_bytes() {
        assert_eq!(DEFAULT_ATR[1..].iter().fold(0, |a, b| a ^ b), 0, "TCK");
        assert_eq!(DEFAULT_ATR[1] & 0x0F, 7);
        // TS + T0 + TA1 TD1 + TD2 TA3 + 7 historical + TCK.
        assert_eq!(DEFAULT_ATR.len(), 2 + 2 + 2 + 7 + 1);
    }
}
