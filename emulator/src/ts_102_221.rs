//! ETSI TS 102 221 (V17) §11.1 commands of the UICC platform: SELECT, STATUS, READ/UPDATE
//! BINARY, READ/UPDATE/SEARCH RECORD, INCREASE, the PIN commands, DEACTIVATE/ACTIVATE FILE,
//! MANAGE CHANNEL, TERMINAL PROFILE/CAPABILITY. Each function owns one command.

use crate::apdu::{Command, Instruction, MAX_CHANNEL};
use crate::app::{Channel, CmdResult, Context, Response};
use crate::arr::{self, Operation};
use crate::fcp;
use crate::fs::{FileBody, FileSystem, LifeCycle, NodeId, FID_CURRENT_ADF, FID_MF};
use crate::pin::PinError;
use crate::status::StatusWord;

// ---------------------------------------------------------------------------------------
// SELECT (§11.1.1)

/// P1 of SELECT (Table 11.1).
const SELECT_BY_FID: u8 = 0x00;
const SELECT_CHILD_DF: u8 = 0x01;
const SELECT_PARENT_DF: u8 = 0x03;
const SELECT_BY_AID: u8 = 0x04;
const SELECT_PATH_FROM_MF: u8 = 0x08;
const SELECT_PATH_FROM_CURRENT: u8 = 0x09;

/// P2 b4-b3 (Table 11.2): what SELECT returns.
const P2_RETURN_FCP: u8 = 0x04;
const P2_NO_DATA: u8 = 0x0C;
/// P2 b2-b1 with P1 = 04: next occurrence.
const P2_NEXT_OCCURRENCE: u8 = 0x02;
/// P2 b7-b6 = 01 with P1 = 04: terminate the application session.
const P2_TERMINATION: u8 = 0x40;

pub fn select(ctx: &mut Context<'_>, cmd: &Command<'_>) -> CmdResult {
    let want_fcp = match cmd.p2 & 0x0C {
        P2_RETURN_FCP => true,
        P2_NO_DATA => false,
        _ => return Err(StatusWord::IncorrectP1P2),
    };
    if cmd.p2 & 0xB0 != 0 || (cmd.p2 & P2_TERMINATION != 0 && cmd.p1 != SELECT_BY_AID) {
        return Err(StatusWord::IncorrectP1P2);
    }
    let target = resolve(ctx, cmd.p1, cmd.p2, cmd.data)?;
    if cmd.p2 & P2_TERMINATION != 0 {
        // The session of that application ends; the channel falls back to the MF.
        ctx.set_chan(Channel::at_mf());
        return Ok(Response::ok(Vec::new()));
    }
    select_node(ctx, target);
    answer_select(ctx, target, want_fcp)
}

/// Makes `target` the current file of the command's channel.
pub fn select_node(ctx: &mut Context<'_>, target: NodeId) {
    let fs = &ctx.state.fs;
    let mut chan = ctx.chan();
    if fs.node(target).is_some_and(|n| n.is_df()) {
        chan.df = target;
        chan.ef = None;
    } else {
        chan.df = fs.parent(target).unwrap_or(FileSystem::MF);
        chan.ef = Some(target);
    }
    chan.record = None;
    let app = fs.application_of(chan.df);
    if app != FileSystem::MF {
        chan.adf = Some(app);
    }
    ctx.set_chan(chan);
}

/// FCP (if asked) with 9000, or with the '62 83' warning for a deactivated file (§11.1.1.3).
pub fn answer_select(ctx: &Context<'_>, target: NodeId, want_fcp: bool) -> CmdResult {
    let data = if want_fcp {
        fcp::encode(&ctx.state.fs, target, &ctx.state.pins)
    } else {
        Vec::new()
    };
    let deactivated = ctx
        .state
        .fs
        .node(target)
        .is_some_and(|n| n.life_cycle == LifeCycle::Deactivated);
    let sw = if deactivated {
        StatusWord::SelectedFileInvalidated
    } else {
        StatusWord::Success
    };
    Ok(Response { data, sw })
}

/// Finds the file a SELECT (or DEACTIVATE/ACTIVATE FILE with data) names.
fn resolve(ctx: &Context<'_>, p1: u8, p2: u8, data: &[u8]) -> Result<NodeId, StatusWord> {
    let fs = &ctx.state.fs;
    let chan = ctx.chan();
    match p1 {
        SELECT_BY_FID => {
            // §11.1.1.1: empty data selects the MF.
            if data.is_empty() {
                return Ok(FileSystem::MF);
            }
            let fid = fid_of(data)?;
            by_fid(fs, &chan, fid).ok_or(StatusWord::FileNotFound)
        }
        SELECT_CHILD_DF => {
            let fid = fid_of(data)?;
            fs.child_by_fid(chan.df, fid)
                .filter(|c| fs.node(*c).is_some_and(|n| n.is_df()))
                .ok_or(StatusWord::FileNotFound)
        }
        SELECT_PARENT_DF => {
            if !data.is_empty() {
                return Err(StatusWord::WrongLength);
            }
            Ok(fs.parent(chan.df).unwrap_or(FileSystem::MF))
        }
        SELECT_BY_AID => by_aid(fs, &chan, data, p2 & 0x03),
        SELECT_PATH_FROM_MF | SELECT_PATH_FROM_CURRENT => {
            if data.is_empty() || data.len() % 2 != 0 {
                return Err(StatusWord::WrongLength);
            }
            let start = if p1 == SELECT_PATH_FROM_MF {
                FileSystem::MF
            } else {
                chan.df
            };
            by_path(fs, &chan, start, data).ok_or(StatusWord::FileNotFound)
        }
        _ => Err(StatusWord::IncorrectP1P2),
    }
}

fn fid_of(data: &[u8]) -> Result<u16, StatusWord> {
    match *data {
        [hi, lo] => Ok(u16::from_be_bytes([hi, lo])),
        _ => Err(StatusWord::WrongLength),
    }
}

/// §8.4.1: by FID the MF, the current ADF ('7FFF'), the current DF, its children, its
/// parent and the parent's DF children are reachable.
fn by_fid(fs: &FileSystem, chan: &Channel, fid: u16) -> Option<NodeId> {
    if fid == FID_MF {
        return Some(FileSystem::MF);
    }
    if fid == FID_CURRENT_ADF {
        return chan.adf;
    }
    let current = fs.node(chan.df)?;
    if current.fid == fid && chan.df != FileSystem::MF {
        return Some(chan.df);
    }
    if let Some(child) = fs.child_by_fid(chan.df, fid) {
        return Some(child);
    }
    let parent = fs.parent(chan.df)?;
    if fs.node(parent).is_some_and(|p| p.fid == fid) {
        return Some(parent);
    }
    fs.child_by_fid(parent, fid)
        .filter(|s| fs.node(*s).is_some_and(|n| n.is_df()))
}

/// Path selection (§8.4.2): FIDs after the start, '7FFF' first meaning the current ADF.
fn by_path(fs: &FileSystem, chan: &Channel, start: NodeId, path: &[u8]) -> Option<NodeId> {
    let mut at = start;
    for (i, pair) in path.chunks_exact(2).enumerate() {
        let fid = u16::from_be_bytes([*pair.first()?, *pair.get(1)?]);
        at = match fid {
            FID_CURRENT_ADF if i == 0 => chan.adf.or_else(|| fs.adfs().next())?,
            FID_MF if i == 0 => FileSystem::MF,
            _ => fs.child_by_fid(at, fid)?,
        };
    }
    Some(at)
}

/// Selection by DF name (ISO 7816-4 §7.1.1): full or right-truncated AID, first or next.
fn by_aid(
    fs: &FileSystem,
    chan: &Channel,
    aid: &[u8],
    occurrence: u8,
) -> Result<NodeId, StatusWord> {
    if aid.is_empty() || aid.len() > 16 {
        return Err(StatusWord::WrongLength);
    }
    let mut matches = fs.adfs_matching(aid);
    match occurrence {
        0x00 => matches.next().ok_or(StatusWord::FileNotFound),
        P2_NEXT_OCCURRENCE => {
            let found: Vec<NodeId> = matches.collect();
            let after = chan
                .adf
                .and_then(|cur| found.iter().position(|n| *n == cur))
                .map(|p| p + 1)
                .unwrap_or(0);
            found.get(after).copied().ok_or(StatusWord::FileNotFound)
        }
        _ => Err(StatusWord::IncorrectP1P2),
    }
}

// ---------------------------------------------------------------------------------------
// STATUS (§11.1.2)

pub fn status(ctx: &mut Context<'_>, cmd: &Command<'_>) -> CmdResult {
    if cmd.p1 > 0x02 {
        return Err(StatusWord::IncorrectP1P2);
    }
    let chan = ctx.chan();
    match cmd.p2 {
        0x00 => Ok(Response::ok(fcp::encode(
            &ctx.state.fs,
            chan.df,
            &ctx.state.pins,
        ))),
        // DF name (AID) of the current application, as TLV '84'.
        0x01 => {
            let aid = chan
                .adf
                .and_then(|a| ctx.state.fs.node(a))
                .and_then(|n| n.aid())
                .unwrap_or_default();
            Ok(Response::ok(crate::tlv::encode(fcp::TAG_DF_NAME, aid)))
        }
        0x0C => Ok(Response::ok(Vec::new())),
        _ => Err(StatusWord::IncorrectP1P2),
    }
}

// ---------------------------------------------------------------------------------------
// READ / UPDATE BINARY (§11.1.3, §11.1.4)

/// The EF a BINARY/RECORD command works on: by SFI (which also selects it) or the current EF.
fn target_ef(ctx: &mut Context<'_>, sfi: Option<u8>) -> Result<NodeId, StatusWord> {
    match sfi {
        Some(sfi) => {
            let chan = ctx.chan();
            let ef = ctx
                .state
                .fs
                .child_by_sfi(chan.df, sfi)
                .ok_or(StatusWord::FileNotFound)?;
            if chan.ef != Some(ef) {
                select_node(ctx, ef);
            }
            Ok(ef)
        }
        None => ctx.chan().ef.ok_or(StatusWord::NoEfSelected),
    }
}

/// Checks the access rule of `ef` for `op` and that the file is usable.
fn check_access(ctx: &Context<'_>, ef: NodeId, op: Operation) -> Result<(), StatusWord> {
    let fs = &ctx.state.fs;
    let node = fs.node(ef).ok_or(StatusWord::FileNotFound)?;
    if node.life_cycle == LifeCycle::Deactivated && !matches!(op, Operation::Activate) {
        return Err(StatusWord::ConditionsOfUseNotSatisfied);
    }
    if rule_allows(ctx, ef, op) {
        Ok(())
    } else {
        Err(StatusWord::SecurityStatusNotSatisfied)
    }
}

/// Evaluates the file's EF.ARR record (§9.2.4): the EF.ARR is looked for in the file's DF,
/// then upwards to the MF, as the referenced-format rules say.
fn rule_allows(ctx: &Context<'_>, file: NodeId, op: Operation) -> bool {
    let fs = &ctx.state.fs;
    let Some(node) = fs.node(file) else {
        return false;
    };
    let mut dir = if node.is_df() {
        Some(file)
    } else {
        node.parent
    };
    while let Some(d) = dir {
        if let Some(arr_ef) = fs.child_by_fid(d, node.arr.arr_fid) {
            let record = fs
                .node(arr_ef)
                .and_then(|n| n.records())
                .and_then(|(_, recs)| recs.get(usize::from(node.arr.record).wrapping_sub(1)));
            return record.is_some_and(|r| arr::allows(r, op, &|k| ctx.key_satisfied(k)));
        }
        dir = fs.parent(d);
    }
    false
}

fn binary_params(cmd: &Command<'_>) -> (Option<u8>, usize) {
    if cmd.p1 & 0x80 != 0 {
        (Some(cmd.p1 & 0x1F), usize::from(cmd.p2))
    } else {
        (None, usize::from(u16::from_be_bytes([cmd.p1, cmd.p2])))
    }
}

pub fn read_binary(ctx: &mut Context<'_>, cmd: &Command<'_>) -> CmdResult {
    let (sfi, offset) = binary_params(cmd);
    if cmd.p1 & 0x80 != 0 && cmd.p1 & 0x60 != 0 {
        return Err(StatusWord::IncorrectP1P2);
    }
    let ef = target_ef(ctx, sfi)?;
    let FileBody::Transparent(content) =
        &ctx.state.fs.node(ef).ok_or(StatusWord::FileNotFound)?.body
    else {
        return Err(StatusWord::IncompatibleFileStructure);
    };
    let content_len = content.len();
    check_access(ctx, ef, Operation::Read)?;
    if offset >= content_len {
        return Err(StatusWord::WrongParameters);
    }
    // No Le on the wire is P3 = '00' in T=0 terms: up to 256 bytes.
    let ne = cmd.ne.unwrap_or(256);
    let end = offset.saturating_add(ne).min(content_len);
    let FileBody::Transparent(content) =
        &ctx.state.fs.node(ef).ok_or(StatusWord::FileNotFound)?.body
    else {
        return Err(StatusWord::IncompatibleFileStructure);
    };
    let data = content.get(offset..end).unwrap_or_default().to_vec();
    // Ne = 256 (Le '00') reads "up to the end"; an explicit longer Ne gets '62 82' (§11.1.3).
    let sw = if offset + ne > content_len && ne < 256 {
        StatusWord::EndOfFileReached
    } else {
        StatusWord::Success
    };
    Ok(Response { data, sw })
}

pub fn update_binary(ctx: &mut Context<'_>, cmd: &Command<'_>) -> CmdResult {
    let (sfi, offset) = binary_params(cmd);
    if cmd.data.is_empty() {
        return Err(StatusWord::WrongLength);
    }
    let ef = target_ef(ctx, sfi)?;
    let size = match &ctx.state.fs.node(ef).ok_or(StatusWord::FileNotFound)?.body {
        FileBody::Transparent(content) => content.len(),
        _ => return Err(StatusWord::IncompatibleFileStructure),
    };
    check_access(ctx, ef, Operation::Update)?;
    if offset >= size {
        return Err(StatusWord::WrongParameters);
    }
    if offset + cmd.data.len() > size {
        return Err(StatusWord::WrongLength);
    }
    if let Some(FileBody::Transparent(content)) = ctx.state.fs.node_mut(ef).map(|n| &mut n.body) {
        if let Some(slot) = content.get_mut(offset..offset + cmd.data.len()) {
            slot.copy_from_slice(cmd.data);
        }
    }
    Ok(Response::ok(Vec::new()))
}

// ---------------------------------------------------------------------------------------
// READ / UPDATE / SEARCH RECORD (§11.1.5, §11.1.6, §11.1.7)

/// Record addressing modes, P2 b3-b1 (Table 11.11).
const MODE_NEXT: u8 = 0x02;
const MODE_PREVIOUS: u8 = 0x03;
const MODE_ABSOLUTE: u8 = 0x04;

fn record_sfi(p2: u8) -> Option<u8> {
    match p2 >> 3 {
        0 => None,
        sfi => Some(sfi),
    }
}

/// Which record a READ/UPDATE RECORD addresses (1-based), given the count and the pointer.
fn address_record(
    p1: u8,
    mode: u8,
    current: Option<usize>,
    count: usize,
    cyclic: bool,
) -> Result<usize, StatusWord> {
    let n = match mode {
        MODE_ABSOLUTE if p1 == 0 => current.ok_or(StatusWord::RecordNotFound)?,
        MODE_ABSOLUTE => usize::from(p1),
        MODE_NEXT if p1 == 0 => match current {
            None => 1,
            Some(c) if c < count => c + 1,
            Some(_) if cyclic => 1,
            Some(_) => return Err(StatusWord::RecordNotFound),
        },
        MODE_PREVIOUS if p1 == 0 => match current {
            None => count,
            Some(c) if c > 1 => c - 1,
            Some(_) if cyclic => count,
            Some(_) => return Err(StatusWord::RecordNotFound),
        },
        _ => return Err(StatusWord::IncorrectP1P2),
    };
    if n == 0 || n > count {
        return Err(StatusWord::RecordNotFound);
    }
    Ok(n)
}

pub fn read_record(ctx: &mut Context<'_>, cmd: &Command<'_>) -> CmdResult {
    let ef = target_ef(ctx, record_sfi(cmd.p2))?;
    let node = ctx.state.fs.node(ef).ok_or(StatusWord::FileNotFound)?;
    let cyclic = matches!(node.body, FileBody::Cyclic { .. });
    let (record_len, count) = node
        .records()
        .map(|(l, r)| (l, r.len()))
        .ok_or(StatusWord::IncompatibleFileStructure)?;
    check_access(ctx, ef, Operation::Read)?;
    let n = address_record(cmd.p1, cmd.p2 & 0x07, ctx.chan().record, count, cyclic)?;
    // Ne must be the record length; Le '00' (256) is accepted as "the whole record".
    let ne = cmd.ne.unwrap_or(256);
    if ne != record_len && ne != 256 {
        return Err(StatusWord::WrongLe(u8::try_from(record_len).unwrap_or(0)));
    }
    let data = ctx
        .state
        .fs
        .node(ef)
        .and_then(|n| n.records())
        .and_then(|(_, r)| r.get(n - 1))
        .cloned()
        .unwrap_or_default();
    move_record_pointer(ctx, cmd.p2 & 0x07, n);
    Ok(Response::ok(data))
}

pub fn update_record(ctx: &mut Context<'_>, cmd: &Command<'_>) -> CmdResult {
    let ef = target_ef(ctx, record_sfi(cmd.p2))?;
    let node = ctx.state.fs.node(ef).ok_or(StatusWord::FileNotFound)?;
    let cyclic = matches!(node.body, FileBody::Cyclic { .. });
    let (record_len, count) = node
        .records()
        .map(|(l, r)| (l, r.len()))
        .ok_or(StatusWord::IncompatibleFileStructure)?;
    check_access(ctx, ef, Operation::Update)?;
    if cmd.data.len() != record_len {
        return Err(StatusWord::WrongLength);
    }
    let mode = cmd.p2 & 0x07;
    let n = if cyclic {
        // §11.1.6: a cyclic file is updated in PREVIOUS mode only; the oldest record is
        // overwritten and becomes record 1.
        if mode != MODE_PREVIOUS || cmd.p1 != 0 {
            return Err(StatusWord::IncorrectP1P2);
        }
        if let Some(FileBody::Cyclic { records, .. }) =
            ctx.state.fs.node_mut(ef).map(|n| &mut n.body)
        {
            records.rotate_right(1);
        }
        1
    } else {
        address_record(cmd.p1, mode, ctx.chan().record, count, false)?
    };
    if let Some(FileBody::LinearFixed { records, .. } | FileBody::Cyclic { records, .. }) =
        ctx.state.fs.node_mut(ef).map(|n| &mut n.body)
    {
        if let Some(r) = records.get_mut(n - 1) {
            r.copy_from_slice(cmd.data);
        }
    }
    if cyclic {
        // §11.1.6: the record updated in PREVIOUS mode of a cyclic EF becomes current.
        let mut chan = ctx.chan();
        chan.record = Some(n);
        ctx.set_chan(chan);
    } else {
        move_record_pointer(ctx, mode, n);
    }
    Ok(Response::ok(Vec::new()))
}

/// §11.1.5.1 / §11.1.6.1: NEXT and PREVIOUS move the record pointer to the record they
/// reached; CURRENT and ABSOLUTE (P2 '04') leave it where it was.
fn move_record_pointer(ctx: &mut Context<'_>, mode: u8, n: usize) {
    if matches!(mode, MODE_NEXT | MODE_PREVIOUS) {
        let mut chan = ctx.chan();
        chan.record = Some(n);
        ctx.set_chan(chan);
    }
}

/// SEARCH RECORD, simple search forward ('04') or backward ('05') from record P1
/// (P1 = '00': from the current record). Answers the numbers of records that contain the
/// pattern, and makes the first of them the current record; '62 82' when none does.
pub fn search_record(ctx: &mut Context<'_>, cmd: &Command<'_>) -> CmdResult {
    let ef = target_ef(ctx, record_sfi(cmd.p2))?;
    let (_, count) = ctx
        .state
        .fs
        .node(ef)
        .and_then(|n| n.records())
        .map(|(l, r)| (l, r.len()))
        .ok_or(StatusWord::IncompatibleFileStructure)?;
    check_access(ctx, ef, Operation::Read)?;
    if cmd.data.is_empty() {
        return Err(StatusWord::WrongLength);
    }
    let start = match cmd.p1 {
        0 => ctx.chan().record.unwrap_or(1),
        n => usize::from(n),
    };
    if start == 0 || start > count {
        return Err(StatusWord::RecordNotFound);
    }
    let order: Vec<usize> = match cmd.p2 & 0x07 {
        0x04 => (start..=count).collect(),
        0x05 => (1..=start).rev().collect(),
        _ => return Err(StatusWord::IncorrectP1P2),
    };
    let records = ctx
        .state
        .fs
        .node(ef)
        .and_then(|n| n.records())
        .map(|(_, r)| r.clone())
        .unwrap_or_default();
    let found: Vec<u8> = order
        .into_iter()
        .filter(|n| {
            records
                .get(n - 1)
                .is_some_and(|r| r.windows(cmd.data.len()).any(|w| w == cmd.data))
        })
        .filter_map(|n| u8::try_from(n).ok())
        .collect();
    // §10.2.1.3 and Table 10.16: a search that finds nothing ends with the warning
    // '62 82' (unsuccessful search), no data, and the record pointer left where it was.
    let Some(first) = found.first() else {
        return Err(StatusWord::EndOfFileReached);
    };
    let mut chan = ctx.chan();
    chan.record = Some(usize::from(*first));
    ctx.set_chan(chan);
    Ok(Response::ok(found))
}

// ---------------------------------------------------------------------------------------
// INCREASE (§11.1.8)

/// Adds the value in the data to record 1 (the last updated or increased) of the current
/// cyclic EF and writes the sum into the oldest record, which becomes record 1. Answers the
/// new record and the value added; '98 50' when the sum would overflow the record.
pub fn increase(ctx: &mut Context<'_>, cmd: &Command<'_>) -> CmdResult {
    if cmd.p1 != 0 || cmd.p2 != 0 {
        return Err(StatusWord::IncorrectP1P2);
    }
    let ef = ctx.chan().ef.ok_or(StatusWord::NoEfSelected)?;
    let (record_len, last) = match &ctx.state.fs.node(ef).ok_or(StatusWord::FileNotFound)?.body {
        FileBody::Cyclic {
            record_len,
            records,
        } => (*record_len, records.first().cloned().unwrap_or_default()),
        _ => return Err(StatusWord::IncompatibleFileStructure),
    };
    check_access(ctx, ef, Operation::Increase)?;
    if cmd.data.is_empty() || cmd.data.len() > record_len {
        return Err(StatusWord::WrongLength);
    }
    // Big-endian addition of the right-aligned value, carrying from the last byte.
    let mut sum = last.clone();
    let mut carry = 0u16;
    for i in (0..record_len).rev() {
        let offset = record_len - 1 - i;
        let add = cmd
            .data
            .len()
            .checked_sub(1 + offset)
            .and_then(|j| cmd.data.get(j))
            .copied()
            .unwrap_or(0);
        let byte = sum.get(i).copied().unwrap_or(0);
        let total = u16::from(byte) + u16::from(add) + carry;
        if let Some(slot) = sum.get_mut(i) {
            *slot = (total & 0xFF) as u8;
        }
        carry = total >> 8;
    }
    if carry != 0 {
        return Err(StatusWord::IncreaseMaxReached);
    }
    if let Some(FileBody::Cyclic { records, .. }) = ctx.state.fs.node_mut(ef).map(|n| &mut n.body) {
        records.rotate_right(1);
        if let Some(first) = records.first_mut() {
            first.clone_from(&sum);
        }
    }
    let mut chan = ctx.chan();
    chan.record = Some(1);
    ctx.set_chan(chan);
    let mut answer = sum;
    answer.extend_from_slice(cmd.data);
    Ok(Response::ok(answer))
}

// ---------------------------------------------------------------------------------------
// VERIFY / CHANGE / DISABLE / ENABLE / UNBLOCK PIN (§11.1.9–§11.1.13)

fn pin_status(e: PinError) -> StatusWord {
    match e {
        PinError::NotFound => StatusWord::ReferencedDataNotFound,
        PinError::Wrong(n) => StatusWord::VerificationFailed(n),
        PinError::Blocked => StatusWord::AuthenticationMethodBlocked,
        PinError::BadFormat => StatusWord::IncorrectData,
        PinError::Disabled => StatusWord::ReferencedDataInvalidated,
        PinError::NotAllowed => StatusWord::ConditionsOfUseNotSatisfied,
    }
}

pub fn pin_command(ctx: &mut Context<'_>, cmd: &Command<'_>) -> CmdResult {
    let key = cmd.p2;
    let pins = &mut ctx.state.pins;
    let pin = pins.get(key).ok_or(StatusWord::ReferencedDataNotFound)?;
    let block = |d: &[u8]| -> Result<(), StatusWord> {
        if d.len() == 8 {
            Ok(())
        } else {
            Err(StatusWord::WrongLength)
        }
    };
    let result = match cmd.ins {
        Instruction::Verify => {
            if cmd.p1 != 0 {
                return Err(StatusWord::IncorrectP1P2);
            }
            if cmd.data.is_empty() {
                // §11.1.9: without data, the retry counter (or "already verified").
                return if pin.attempts_left == 0 {
                    Err(StatusWord::AuthenticationMethodBlocked)
                } else if ctx.session.verified.contains(&key) || !pin.enabled {
                    Ok(Response::ok(Vec::new()))
                } else {
                    Err(StatusWord::VerificationFailed(pin.attempts_left))
                };
            }
            block(cmd.data)?;
            pins.verify(key, cmd.data)
        }
        Instruction::ChangePin => {
            if cmd.data.len() != 16 || cmd.p1 != 0 {
                return Err(if cmd.p1 != 0 {
                    StatusWord::IncorrectP1P2
                } else {
                    StatusWord::WrongLength
                });
            }
            let (old, new) = cmd.data.split_at(8);
            pins.change(key, old, new)
        }
        Instruction::DisablePin | Instruction::EnablePin => {
            if cmd.p1 != 0 {
                return Err(StatusWord::IncorrectP1P2);
            }
            block(cmd.data)?;
            pins.set_enabled(key, cmd.data, cmd.ins == Instruction::EnablePin)
        }
        Instruction::UnblockPin => {
            if cmd.p1 != 0 {
                return Err(StatusWord::IncorrectP1P2);
            }
            if cmd.data.is_empty() {
                let left = pins.puk_attempts(key).map_err(pin_status)?;
                return Err(if left == 0 {
                    StatusWord::AuthenticationMethodBlocked
                } else {
                    StatusWord::VerificationFailed(left)
                });
            }
            if cmd.data.len() != 16 {
                return Err(StatusWord::WrongLength);
            }
            let (puk, new) = cmd.data.split_at(8);
            pins.unblock(key, puk, new)
        }
        _ => return Err(StatusWord::InstructionNotSupported),
    };
    match result {
        Ok(()) => {
            ctx.session.verified.insert(key);
            Ok(Response::ok(Vec::new()))
        }
        Err(e) => {
            ctx.session.verified.remove(&key);
            Err(pin_status(e))
        }
    }
}

// ---------------------------------------------------------------------------------------
// DEACTIVATE FILE / ACTIVATE FILE (§11.1.14, §11.1.15)

/// With data, the file is first selected as SELECT would (same P1 meanings); without data the
/// current EF, or else the current DF/ADF, is the target.
pub fn set_life_cycle(ctx: &mut Context<'_>, cmd: &Command<'_>) -> CmdResult {
    let target = if cmd.data.is_empty() {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Err(StatusWord::IncorrectP1P2);
        }
        let chan = ctx.chan();
        chan.ef.unwrap_or(chan.df)
    } else {
        let t = resolve(ctx, cmd.p1, 0, cmd.data)?;
        select_node(ctx, t);
        t
    };
    if target == FileSystem::MF {
        return Err(StatusWord::ConditionsOfUseNotSatisfied);
    }
    let (op, lcs) = match cmd.ins {
        Instruction::DeactivateFile => (Operation::Deactivate, LifeCycle::Deactivated),
        _ => (Operation::Activate, LifeCycle::Activated),
    };
    if !rule_allows(ctx, target, op) {
        return Err(StatusWord::SecurityStatusNotSatisfied);
    }
    if let Some(node) = ctx.state.fs.node_mut(target) {
        node.life_cycle = lcs;
    }
    Ok(Response::ok(Vec::new()))
}

// ---------------------------------------------------------------------------------------
// MANAGE CHANNEL (§11.1.17)

pub fn manage_channel(ctx: &mut Context<'_>, cmd: &Command<'_>) -> CmdResult {
    let origin = ctx
        .session
        .channels
        .get(ctx.channel)
        .copied()
        .flatten()
        .ok_or(StatusWord::LogicalChannelNotSupported)?;
    match cmd.p1 {
        0x00 => {
            let wanted = match cmd.p2 {
                0 => (1..=MAX_CHANNEL)
                    .find(|c| ctx.session.channels.get(*c).is_some_and(Option::is_none))
                    .ok_or(StatusWord::LogicalChannelNotSupported)?,
                n if usize::from(n) <= MAX_CHANNEL => usize::from(n),
                _ => return Err(StatusWord::IncorrectP1P2),
            };
            let slot = ctx
                .session
                .channels
                .get_mut(wanted)
                .ok_or(StatusWord::LogicalChannelNotSupported)?;
            if slot.is_some() {
                return Err(StatusWord::LogicalChannelNotSupported);
            }
            // Opened from the basic channel: MF selected; from another channel: that
            // channel's selection is inherited (ISO 7816-4 §7.1.2).
            *slot = Some(if ctx.channel == 0 {
                Channel::at_mf()
            } else {
                origin
            });
            let data = if cmd.p2 == 0 {
                vec![u8::try_from(wanted).unwrap_or(0)]
            } else {
                Vec::new()
            };
            Ok(Response::ok(data))
        }
        0x80 => {
            let target = if cmd.p2 == 0 {
                ctx.channel
            } else {
                usize::from(cmd.p2)
            };
            if target == 0 {
                return Err(StatusWord::IncorrectP1P2);
            }
            match ctx.session.channels.get_mut(target) {
                Some(slot @ Some(_)) => {
                    *slot = None;
                    Ok(Response::ok(Vec::new()))
                }
                _ => Err(StatusWord::LogicalChannelNotSupported),
            }
        }
        _ => Err(StatusWord::IncorrectP1P2),
    }
}

// ---------------------------------------------------------------------------------------
// TERMINAL PROFILE (§11.2.1) and TERMINAL CAPABILITY (§11.1.19)

/// Accepted and acknowledged; this card runs no proactive session, so nothing else follows.
pub fn terminal_capabilities(cmd: &Command<'_>) -> CmdResult {
    if cmd.p1 != 0 || cmd.p2 != 0 {
        return Err(StatusWord::IncorrectP1P2);
    }
    Ok(Response::ok(Vec::new()))
}
