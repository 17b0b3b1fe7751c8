//! How the card hosts applications: the one interface between the command pipeline
//! ([`crate::uicc`]) and whatever runs on the card — the UICC platform's file system with its
//! ADF applications ([`crate::platform`]), the eUICC's ISD-R and ECASD ([`crate::euicc`]), the
//! remote file management applications reached by secured packets ([`crate::ota::rfm`]).
//!
//! An application is found either by AID, when SELECT names it on a logical channel
//! (ISO/IEC 7816-4 §7.1.1, ETSI TS 102 221 §8.4), or by TAR, when a secured packet addresses it
//! (ETSI TS 102 225 §5.1.1, TAR values of TS 101 220 Annex D). It works on the card's
//! persistent state ([`CardState`], below every application) through a [`Context`], and keeps
//! its own volatile state, which [`Application::power_on`] drops.
//!
//! Layering (arrows point down, never up): the pipeline → this interface and the applications
//! → [`CardState`] → files, PINs, keys.

use crate::apdu::{Command, MAX_CHANNEL};
use crate::fs::{FileSystem, NodeId};
use crate::state::CardState;
use crate::status::StatusWord;
use rand::rngs::StdRng;
use std::collections::BTreeSet;

/// Index of a hosted application in the card's table (see [`crate::applications`]).
pub type AppId = usize;

pub use crate::ota::ts_102_225::Tar;

/// The selection state of one logical channel (TS 102 221 §8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel {
    pub df: NodeId,
    pub ef: Option<NodeId>,
    /// Current record number (1-based) of the current EF.
    pub record: Option<usize>,
    /// The ADF of the application selected on this channel.
    pub adf: Option<NodeId>,
    /// A hosted application selected by AID on this channel (instead of a file); `None`: the
    /// UICC platform's file system answers.
    pub app: Option<AppId>,
}

impl Channel {
    pub fn at_mf() -> Self {
        Self {
            df: FileSystem::MF,
            ef: None,
            record: None,
            adf: None,
            app: None,
        }
    }
}

/// Answer data waiting for GET RESPONSE, with the status word that ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) data: Vec<u8>,
    pub(crate) sw: StatusWord,
}

/// What a power cycle forgets: channels and their selections, verified key references, a
/// pending GET RESPONSE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub channels: Vec<Option<Channel>>,
    /// Key references verified since power-on (TS 102 221 §9.5.1).
    pub verified: BTreeSet<u8>,
    pub(crate) pending: Option<Pending>,
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

impl Session {
    /// GET RESPONSE: hands out pending data, Ne bytes at a time (ISO 7816-4 §7.6.1).
    pub fn get_response(&mut self, cmd: &Command<'_>) -> CmdResult {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Err(StatusWord::IncorrectP1P2);
        }
        let pending = self
            .pending
            .take()
            .ok_or(StatusWord::ConditionsOfUseNotSatisfied)?;
        let ne = cmd.ne.unwrap_or(256);
        // Le='00' (Ne=256) means "whatever is there"; an explicit larger Le is wrong.
        if ne > pending.data.len() && ne < 256 {
            let available = u8::try_from(pending.data.len()).unwrap_or(0);
            self.pending = Some(pending);
            return Err(StatusWord::WrongLe(available));
        }
        Ok(Response {
            data: pending.data,
            sw: pending.sw,
        })
    }

    /// Fits an answer to what the client can take (ISO 7816-3 §12.2 T=0 rules): data beyond
    /// Ne, or any data for a command sent without Le, waits for GET RESPONSE behind '61 XX'.
    pub fn shape(&mut self, response: Response, ne: Option<usize>) -> Vec<u8> {
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
        self.pending = Some(Pending { data: rest, sw });
        data.extend_from_slice(&StatusWord::MoreData(announce).to_bytes());
        data
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

/// Everything a command handler may touch: the persistent state, the session the command
/// arrived in, its channel, and the card's random source.
#[derive(Debug)]
pub struct Context<'a> {
    pub state: &'a mut CardState,
    pub session: &'a mut Session,
    pub channel: usize,
    pub rng: &'a mut StdRng,
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

/// An application the card hosts besides the UICC platform's file system.
///
/// Every method has a default that means "not something this application does", so an
/// application implements only what it is reached by.
pub trait Application: std::fmt::Debug + Send {
    /// A short name for logs and errors.
    fn name(&self) -> &'static str;

    /// Whether SELECT by DF name with exactly `aid` selects this application.
    fn answers_to_aid(&self, _state: &CardState, _aid: &[u8]) -> bool {
        false
    }

    /// Whether secured packets with `tar` are for it (TS 102 225 §5.1.1).
    fn answers_to_tar(&self, _state: &CardState, _tar: &Tar) -> bool {
        false
    }

    /// SELECT by AID has just made it the channel's application: its answer.
    fn select(&mut self, _ctx: &mut Context<'_>, _cmd: &Command<'_>) -> CmdResult {
        Ok(Response::ok(Vec::new()))
    }

    /// A command on a channel where it is selected. `None`: not one of its instructions; the
    /// UICC platform then handles it on the channel's file selection (which, while an
    /// application is selected, is the MF with no current EF).
    fn command(&mut self, _ctx: &mut Context<'_>, _cmd: &Command<'_>) -> Option<CmdResult> {
        None
    }

    /// The secured data of a command packet addressed to one of its TARs, after every check
    /// of TS 102 225 passed. `ctx` holds a session of its own (channel 0 at the MF, nothing
    /// verified), which the terminal's channels never see. Returns the additional response
    /// data of the Proof of Receipt (TS 102 225 §5.2).
    fn secured_data(&mut self, _ctx: &mut Context<'_>, _data: &[u8]) -> Vec<u8> {
        Vec::new()
    }

    /// Power-on or reset: drops volatile state and applies changes that wait for a reset to
    /// the persistent state. Returns whether the persistent state changed (so it is saved).
    fn power_on(&mut self, _state: &mut CardState) -> bool {
        false
    }
}

/// The applications a card hosts, found by AID or TAR.
#[derive(Debug, Default)]
pub struct Apps(Vec<Box<dyn Application>>);

impl Apps {
    pub fn new(apps: Vec<Box<dyn Application>>) -> Self {
        Self(apps)
    }

    /// The application SELECT by DF name `aid` reaches, if any.
    pub fn by_aid(&self, state: &CardState, aid: &[u8]) -> Option<AppId> {
        self.0.iter().position(|a| a.answers_to_aid(state, aid))
    }

    /// The application a secured packet with `tar` is for, if any.
    pub fn by_tar(
        &mut self,
        state: &CardState,
        tar: Tar,
    ) -> Option<&mut (dyn Application + 'static)> {
        self.0
            .iter_mut()
            .find(|a| a.answers_to_tar(state, &tar))
            .map(|a| a.as_mut())
    }

    pub fn get_mut(&mut self, id: AppId) -> Option<&mut (dyn Application + 'static)> {
        self.0.get_mut(id).map(|a| a.as_mut())
    }

    /// Power-on of every application; whether any changed the persistent state.
    pub fn power_on(&mut self, state: &mut CardState) -> bool {
        self.0
            .iter_mut()
            .fold(false, |changed, a| a.power_on(state) | changed)
    }
}
