//! The card: ATR, the command pipeline (parse → class/channel check → one `match` on the
//! instruction → response shaping for T=0 clients) and persistence of what must survive a
//! power cycle.
//!
//! Persistent state ([`CardState`]: files, PINs, USIM sequence numbers) and volatile state
//! ([`Session`]: open channels, their selections, verified PINs, a pending GET RESPONSE) are
//! separate types; a power cycle drops the second and keeps the first.
//!
//! Applications are hosted through one interface ([`crate::app::Application`]): SELECT by AID
//! of a hosted application makes it the channel's application, and the commands on that
//! channel go to it first; whatever it does not take, and every command on a channel without
//! one, goes to the UICC platform's file system ([`crate::platform`]). Which applications a
//! card hosts (an eUICC's ISD-R and ECASD, SGP.22 v2.5 §2.2) is decided in
//! [`crate::applications`]; the pipeline knows none of them.

use crate::apdu::{Command, Instruction};
use crate::app::{Apps, CmdResult, Context, Response, Session};
use crate::applications;
use crate::ota::sms_pp;
use crate::platform;
use crate::status::StatusWord;
use crate::store::{StateStore, StoreError};
use rand::rngs::StdRng;
use rand::SeedableRng;

pub use crate::app::Channel;
pub use crate::state::CardState;

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
    /// The hosted applications (with their volatile state).
    apps: Apps,
    /// The SMS-PP download receiver behind ENVELOPE (concatenated messages in progress).
    sms_pp: sms_pp::Receiver,
    /// Randomness for challenges and one-time keys (seedable for reproducible transcripts).
    rng: StdRng,
}

impl Uicc {
    /// A card with `state`, kept only in memory.
    pub fn new(atr: Vec<u8>, state: CardState) -> Self {
        let mut card = Self {
            atr,
            apps: applications::hosted(&state),
            sms_pp: sms_pp::Receiver::default(),
            state,
            session: Session::default(),
            store: None,
            rng: StdRng::from_entropy(),
        };
        card.power_on_apps();
        card
    }

    /// Seeds the card's random source (challenges, one-time keys): same seed and same
    /// commands give the same answers.
    pub fn seed_rng(&mut self, seed: u64) {
        self.rng = StdRng::seed_from_u64(seed);
    }

    /// Power-on of the hosted applications (an eUICC's REFRESH makes the enabled profile's
    /// content the card's, see [`crate::euicc`]), saving the state if it changed.
    fn power_on_apps(&mut self) {
        let before = self.store.as_ref().map(|_| self.state.clone());
        if self.apps.power_on(&mut self.state) {
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
            apps: applications::hosted(&state),
            sms_pp: sms_pp::Receiver::default(),
            state,
            session: Session::default(),
            store: Some(store),
            rng: StdRng::from_entropy(),
        };
        card.power_on_apps();
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
        self.sms_pp = sms_pp::Receiver::default();
        self.power_on_apps();
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
        self.session.shape(response, cmd.ne)
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

    /// Parse, then dispatch: GET RESPONSE to the pipeline, ENVELOPE to the SMS-PP receiver
    /// (which finds applications by TAR), SELECT of a hosted application's AID to it, any other
    /// command first to the channel's application, then to the platform.
    fn execute(&mut self, cmd: &Command<'_>) -> CmdResult {
        if cmd.ins == Instruction::GetResponse {
            return self.session.get_response(cmd);
        }
        let mut ctx = Context {
            state: &mut self.state,
            session: &mut self.session,
            channel: cmd.channel,
            rng: &mut self.rng,
        };
        if cmd.ins == Instruction::Envelope {
            return self.sms_pp.envelope(&mut ctx, &mut self.apps, cmd);
        }
        if let Some(id) = selected_by_aid(&self.apps, ctx.state, cmd) {
            if let Some(app) = self.apps.get_mut(id) {
                // The application replaces the channel's file and ADF selection: file
                // commands and AUTHENTICATE on this channel find no EF / no USIM until a file
                // is selected again.
                ctx.set_chan(Channel {
                    app: Some(id),
                    ..Channel::at_mf()
                });
                return app.select(&mut ctx, cmd);
            }
        }
        if let Some(app) = ctx.chan().app.and_then(|id| self.apps.get_mut(id)) {
            if let Some(result) = app.command(&mut ctx, cmd) {
                return result;
            }
        }
        platform::execute(&mut ctx, cmd)
    }
}

/// The hosted application a SELECT by DF name (P1 '04', ISO 7816-4 §7.1.1) with a full AID
/// names, if any; any other SELECT is the file system's.
fn selected_by_aid(apps: &Apps, state: &CardState, cmd: &Command<'_>) -> Option<usize> {
    const SELECT_BY_AID: u8 = 0x04;
    if cmd.ins != Instruction::Select || cmd.p1 != SELECT_BY_AID || cmd.data.is_empty() {
        return None;
    }
    apps.by_aid(state, cmd.data)
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
            | Increase
            | Envelope
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
