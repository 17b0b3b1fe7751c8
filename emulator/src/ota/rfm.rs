//! The remote file management applications of ETSI TS 102 226 §6: UICC RFM (TAR 'B0 00 10')
//! and USIM RFM (TAR 'B0 00 11', 3GPP TS 31.116), hosted through the card's application
//! interface and reached only by secured packets — also under the TARs the card's (on an
//! eUICC, the enabled profile's) RFM elements list, e.g. 'B0 01 20' and 'B0 01 40' in the
//! GSMA TS.48 test profiles.
//!
//! Each command string runs in a session of its own: the MF (UICC RFM) or ADF.USIM (USIM RFM)
//! is selected implicitly at its start (TS 102 226 §6.1, TS 31.116 §5.1), and the access
//! domain is ADM: every ADM key reference counts as verified, the user PINs only after a
//! VERIFY in the same command string. The commands are the UICC platform's own
//! ([`crate::platform`]), limited to SELECT, STATUS, READ/UPDATE BINARY, READ/UPDATE/SEARCH
//! RECORD, INCREASE, VERIFY, DEACTIVATE/ACTIVATE FILE and GET RESPONSE; the string stops at the
//! first command that fails (anything but '90 00', '91 XX', '61 XX', '62 82', '62 83').

use super::ts_102_225::Tar;
use super::ts_102_226::{self, FormatError, RApdu, ScriptFormat, ScriptResponse};
use crate::apdu::{Command, Instruction};
use crate::app::{Application, Context, Response};
use crate::fs::FileSystem;
use crate::platform;
use crate::state::CardState;
use crate::status::StatusWord;
use crate::ts_102_221;

/// TAR of UICC RFM (TS 101 220 Annex D).
pub const TAR_UICC_RFM: Tar = [0xB0, 0x00, 0x10];
/// TAR of USIM RFM (TS 31.116 §5.1).
pub const TAR_USIM_RFM: Tar = [0xB0, 0x00, 0x11];
/// The 3GPP RID and USIM application code that start every USIM AID (TS 31.110 Annex A).
const USIM_AID_PREFIX: [u8; 7] = [0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02];
/// ADM key references (TS 102 221 Table 9.3: ADM1–ADM5 '0A'–'0E', ADM6–ADM10 '8A'–'8E').
const ADM_KEYS: [u8; 10] = [0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x8A, 0x8B, 0x8C, 0x8D, 0x8E];
/// The most additional response data an RFM answer carries, so the PoR fits the ENVELOPE's
/// answer (256 bytes with the response header and its padding).
const MAX_RESPONSE_DATA: usize = 200;
/// SW of a command whose answer data was cut to fit (TS 102 226 §5.2.1.1).
const SW_TRUNCATED: u16 = 0x62F1;

/// Which file system root a command string starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RfmKind {
    /// UICC RFM: the MF.
    Uicc,
    /// USIM RFM: ADF.USIM.
    Usim,
}

/// A remote file management application.
#[derive(Debug, Clone, Copy)]
pub struct Rfm {
    kind: RfmKind,
    tar: Tar,
}

impl Rfm {
    pub fn new(kind: RfmKind) -> Self {
        let tar = match kind {
            RfmKind::Uicc => TAR_UICC_RFM,
            RfmKind::Usim => TAR_USIM_RFM,
        };
        Self { kind, tar }
    }

    /// The implicit selection at the start of a command string and the ADM access domain.
    fn start(&self, ctx: &mut Context<'_>) {
        ctx.session.verified.extend(ADM_KEYS);
        if self.kind == RfmKind::Usim {
            let usim = ctx.state.fs.adfs_matching(&USIM_AID_PREFIX).next();
            if let Some(adf) = usim {
                ts_102_221::select_node(ctx, adf);
            }
        } else {
            ts_102_221::select_node(ctx, FileSystem::MF);
        }
    }
}

impl Application for Rfm {
    fn name(&self) -> &'static str {
        match self.kind {
            RfmKind::Uicc => "UICC RFM",
            RfmKind::Usim => "USIM RFM",
        }
    }

    /// Its standard TAR, and the ones the card's (or enabled profile's) RFM elements name.
    fn answers_to_tar(&self, state: &CardState, tar: &Tar) -> bool {
        let extra = match self.kind {
            RfmKind::Uicc => &state.ota.uicc_rfm_tars,
            RfmKind::Usim => &state.ota.usim_rfm_tars,
        };
        *tar == self.tar || extra.contains(tar)
    }

    fn secured_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> Vec<u8> {
        self.start(ctx);
        let format = ScriptFormat::of(data);
        let (commands, bad) = match format {
            ScriptFormat::Expanded => match ts_102_226::decode_expanded(data) {
                Ok(c) => (c, None),
                Err(FormatError::BadFormat(code)) => {
                    let r = ScriptResponse {
                        executed: 0,
                        responses: Vec::new(),
                        bad_format: Some(code),
                    };
                    return r.encode_expanded();
                }
                Err(_) => (Vec::new(), None),
            },
            ScriptFormat::Compact => split_compact(data),
        };
        let mut responses: Vec<RApdu> = Vec::new();
        for apdu in &commands {
            let r = run(ctx, apdu);
            let go_on = continues(r.sw);
            responses.push(r);
            if !go_on {
                break;
            }
        }
        // A compact command whose length was wrong counts as executed, answered '67 00'.
        if let Some(sw) = bad {
            if responses.last().is_none_or(|r| continues(r.sw)) {
                responses.push(RApdu {
                    data: Vec::new(),
                    sw: sw.to_u16(),
                });
            }
        }
        let executed = u8::try_from(responses.len()).unwrap_or(u8::MAX);
        match format {
            ScriptFormat::Compact => {
                let last = responses.pop().map(fit).into_iter().collect();
                ScriptResponse {
                    executed,
                    responses: last,
                    bad_format: None,
                }
                .encode_compact()
            }
            ScriptFormat::Expanded => {
                // Keep the last answers that fit.
                let mut kept = Vec::new();
                let mut room = MAX_RESPONSE_DATA;
                for r in responses.into_iter().rev() {
                    let r = fit(r);
                    let size = r.data.len() + 4;
                    if size > room {
                        break;
                    }
                    room -= size;
                    kept.push(r);
                }
                kept.reverse();
                ScriptResponse {
                    executed,
                    responses: kept,
                    bad_format: None,
                }
                .encode_expanded()
            }
        }
    }
}

/// The commands of compact secured data, and the status of a malformed one that ends them.
fn split_compact(data: &[u8]) -> (Vec<Vec<u8>>, Option<StatusWord>) {
    let (commands, error) = ts_102_226::decode_compact_prefix(data);
    (commands, error.map(|_| StatusWord::WrongLength))
}

/// Whether the command string goes on after a command answered `sw`.
fn continues(sw: u16) -> bool {
    matches!(sw >> 8, 0x90 | 0x91 | 0x61) || matches!(sw, 0x6282 | 0x6283)
}

/// Cuts an answer's data to what a PoR can carry.
fn fit(mut r: RApdu) -> RApdu {
    if r.data.len() > MAX_RESPONSE_DATA - 4 {
        r.data.truncate(MAX_RESPONSE_DATA - 4);
        r.sw = SW_TRUNCATED;
    }
    r
}

/// Runs one command of a command string in the RFM session, shaped as for a T=0 terminal
/// (answer data beyond Ne waits for GET RESPONSE behind '61 XX').
fn run(ctx: &mut Context<'_>, apdu: &[u8]) -> RApdu {
    let answer = match Command::parse(apdu) {
        Err(sw) => sw.to_bytes().to_vec(),
        Ok(cmd) => {
            if cmd.ins != Instruction::GetResponse {
                ctx.session.pending = None;
            }
            let result = if cmd.channel != 0 {
                Err(StatusWord::LogicalChannelNotSupported)
            } else if !allowed(cmd.ins) {
                Err(StatusWord::InstructionNotSupported)
            } else if cmd.ins == Instruction::GetResponse {
                ctx.session.get_response(&cmd)
            } else {
                platform::execute(ctx, &cmd)
            };
            let response = result.unwrap_or_else(Response::status);
            ctx.session.shape(response, cmd.ne)
        }
    };
    let split = answer.len().saturating_sub(2);
    let (data, sw) = answer.split_at(split);
    RApdu {
        data: data.to_vec(),
        sw: match sw {
            [a, b] => u16::from_be_bytes([*a, *b]),
            _ => StatusWord::Unknown.to_u16(),
        },
    }
}

/// The instructions a remote file management application runs (TS 102 226 §6.2).
fn allowed(ins: Instruction) -> bool {
    use Instruction::*;
    matches!(
        ins,
        Select
            | Status
            | ReadBinary
            | UpdateBinary
            | ReadRecord
            | UpdateRecord
            | SearchRecord
            | Increase
            | Verify
            | DeactivateFile
            | ActivateFile
            | GetResponse
    )
}
