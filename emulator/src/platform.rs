//! The UICC platform: the commands a UICC answers on any channel whatever application is
//! selected there — the file commands of ETSI TS 102 221 §11.1 on the channel's file
//! selection, and the commands of the ADF application selected in the file system (3GPP
//! TS 31.102 §7.1.2 AUTHENTICATE for the USIM). One flat `match` hands each instruction to the
//! function that owns it.
//!
//! The pipeline ([`crate::uicc`]) calls it for every command no hosted application took.

use crate::apdu::{Command, Instruction};
use crate::app::{CmdResult, Context};
use crate::status::StatusWord;
use crate::{ts_102_221, ts_31_102};

/// Runs one command on the channel's file selection. GET RESPONSE and ENVELOPE belong to the
/// pipeline (they concern the transport and the toolkit, not files).
pub fn execute(ctx: &mut Context<'_>, cmd: &Command<'_>) -> CmdResult {
    use Instruction::*;
    match cmd.ins {
        Select => {
            let r = ts_102_221::select(ctx, cmd);
            if r.is_ok() {
                // A file (or ADF) selected: the channel no longer talks to a hosted application.
                let mut chan = ctx.chan();
                chan.app = None;
                ctx.set_chan(chan);
            }
            r
        }
        Status => ts_102_221::status(ctx, cmd),
        ReadBinary => ts_102_221::read_binary(ctx, cmd),
        UpdateBinary => ts_102_221::update_binary(ctx, cmd),
        ReadRecord => ts_102_221::read_record(ctx, cmd),
        UpdateRecord => ts_102_221::update_record(ctx, cmd),
        SearchRecord => ts_102_221::search_record(ctx, cmd),
        Increase => ts_102_221::increase(ctx, cmd),
        Verify | ChangePin | DisablePin | EnablePin | UnblockPin => {
            ts_102_221::pin_command(ctx, cmd)
        }
        DeactivateFile | ActivateFile => ts_102_221::set_life_cycle(ctx, cmd),
        Authenticate => ts_31_102::authenticate(ctx, cmd),
        ManageChannel => ts_102_221::manage_channel(ctx, cmd),
        TerminalProfile | TerminalCapability => ts_102_221::terminal_capabilities(cmd),
        // STORE DATA needs a selected application that takes it (an ISD-R).
        StoreData => Err(StatusWord::ConditionsOfUseNotSatisfied),
        GetResponse | Envelope => Err(StatusWord::ConditionsOfUseNotSatisfied),
    }
}
