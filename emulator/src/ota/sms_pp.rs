//! The card's side of SMS-PP data download (3GPP TS 31.111 §7.1.1): an ENVELOPE 'D1' brings
//! an SMS-DELIVER; its user data is a secured packet (TS 31.115 §4), reassembled when it came
//! in several messages; the receiving entity checks it as ETSI TS 102 225 §5.1 says and hands
//! the secured data to the application its TAR names; the Proof of Receipt goes back as the
//! ENVELOPE's answer data, which the terminal puts in the SMS-DELIVER-REPORT (a T=0 terminal
//! fetches it with GET RESPONSE after '61 XX').
//!
//! The checks, in order, each with the PoR status it ends with (TS 102 225 §5.2.1 Table 5):
//! header readable and lengths consistent ('06' unidentified security error), TAR known
//! ('09'), a keyset for KIc/KID with matching algorithms ('06'), the SPI at least the keyset's
//! minimum security level ('0A'), deciphering ('05' ciphering error), RC/CC ('01'), counter
//! ('02' low, '03' high, '04' blocked). The counter is updated only when all of them passed, so
//! nothing a packet asks is done, and nothing stored changes, unless its checksum verified.
//! PoRs for the failures up to '0A' go back unciphered and without RC/CC/DS (the receiver has
//! no trusted keys for them); the others are secured as the SPI asks. A PoR asked "via
//! SMS-SUBMIT" also comes back in the ENVELOPE's answer: this card runs no proactive session.

use super::keys::OtaKeys;
use super::ts_102_225::{
    Checksum, CommandHeader, CommandPacket, CounterMode, PacketError, PacketKeys, PorStatus,
    ResponsePacket, Spi, COUNTER_MAX,
};
use super::ts_23_040::{SmsDeliver, PID_USIM_DATA_DOWNLOAD};
use super::ts_31_111::SmsPpDownload;
use super::ts_31_115::{Reassembly, Received};
use crate::apdu::Command;
use crate::app::{Apps, CmdResult, Context, Response, Session};
use crate::status::StatusWord;

/// The SMS-PP receiver's volatile state: the parts of a concatenated message.
#[derive(Debug, Default)]
pub struct Receiver {
    reassembly: Reassembly,
}

/// Why a packet was not executed: its PoR status and the counter it carried, if read.
struct Refusal {
    status: PorStatus,
    counter: u64,
}

impl From<PorStatus> for Refusal {
    fn from(status: PorStatus) -> Self {
        Self { status, counter: 0 }
    }
}

impl Receiver {
    /// ENVELOPE (TS 102 221 §11.2.2) with an SMS-PP download.
    pub fn envelope(
        &mut self,
        ctx: &mut Context<'_>,
        apps: &mut Apps,
        cmd: &Command<'_>,
    ) -> CmdResult {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Err(StatusWord::IncorrectP1P2);
        }
        // Other envelopes (menu selection, event download, …) are for toolkit applications,
        // which this card does not host.
        let download = SmsPpDownload::decode(cmd.data).map_err(|_| StatusWord::IncorrectData)?;
        let sms = SmsDeliver::decode(&download.tpdu).map_err(|_| StatusWord::IncorrectData)?;
        if sms.pid != PID_USIM_DATA_DOWNLOAD {
            return Err(StatusWord::IncorrectData);
        }
        let packet = match self.reassembly.receive(sms) {
            Received::Packet(p) => p,
            // A part of a concatenated message, or a message without a command packet: taken,
            // nothing to answer.
            Received::Partial | Received::NotSecured => return Ok(Response::ok(Vec::new())),
            Received::Refused => return Err(StatusWord::NotEnoughMemory),
        };
        Ok(Response::ok(
            receive_packet(ctx, apps, &packet).unwrap_or_default(),
        ))
    }
}

/// Checks and runs one command packet; the PoR (SMS user data) when one is wanted.
pub fn receive_packet(ctx: &mut Context<'_>, apps: &mut Apps, packet: &[u8]) -> Option<Vec<u8>> {
    let header = match CommandHeader::parse(packet) {
        Ok(h) => h,
        Err(e) => return unreadable_header(packet, e),
    };
    let keys_index = ctx.state.ota.position(header.kic, header.kid);
    let outcome = check_and_run(ctx, apps, &header, packet, keys_index);
    let (status, counter, data) = match outcome {
        Ok((counter, data)) => (PorStatus::Ok, counter, data),
        Err(r) => (r.status, r.counter, Vec::new()),
    };
    if !header.spi.wants_por(status) {
        return None;
    }
    let por = ResponsePacket {
        tar: header.tar,
        counter,
        status,
        data,
    };
    if status.security_established() {
        if let Ok(keys) = resolve_keys(&ctx.state.ota, &header, keys_index) {
            if let Ok(p) = por.seal(&header.spi, header.kid, &keys) {
                return Some(p);
            }
        }
    }
    por.seal(&plain(header.spi), header.kid, &PacketKeys::none())
        .ok()
}

/// The SPI with the PoR's ciphering and checksum removed (for an unsecured PoR).
fn plain(spi: Spi) -> Spi {
    Spi {
        por_ciphered: false,
        por_checksum: Checksum::None,
        ..spi
    }
}

/// A header that cannot be read: a PoR "unidentified security error" when the SPI and TAR
/// are there to address it, else nothing.
fn unreadable_header(packet: &[u8], _e: PacketError) -> Option<Vec<u8>> {
    let spi = Spi::decode([*packet.get(3)?, *packet.get(4)?]).ok()?;
    let tar = [*packet.get(7)?, *packet.get(8)?, *packet.get(9)?];
    let status = PorStatus::UnidentifiedSecurityError;
    if !spi.wants_por(status) {
        return None;
    }
    ResponsePacket {
        tar,
        counter: 0,
        status,
        data: Vec::new(),
    }
    .seal(&plain(spi), 0, &PacketKeys::none())
    .ok()
}

/// The keys KIc and KID name, checked against the keyset's algorithms ('0' in b4-b1 means
/// "known implicitly": the keyset's).
fn resolve_keys<'a>(
    keys: &'a OtaKeys,
    header: &CommandHeader,
    index: Option<usize>,
) -> Result<PacketKeys<'a>, PorStatus> {
    let spi = header.spi;
    let unidentified = PorStatus::UnidentifiedSecurityError;
    index.ok_or(unidentified)?;
    let cipher = if spi.ciphering || spi.por_ciphered {
        let k = keys.kic(header.kic).ok_or(unidentified)?;
        let code = header.kic & 0x0F;
        if code != 0 && code != k.kic_algorithm.code() {
            return Err(unidentified);
        }
        Some((k.kic_algorithm, k.kic.as_slice()))
    } else {
        None
    };
    let mac = if spi.checksum == Checksum::Cc || spi.por_checksum == Checksum::Cc {
        let k = keys.kid(header.kid).ok_or(unidentified)?;
        let code = header.kid & 0x0F;
        if spi.checksum == Checksum::Cc && code != 0 && code != k.kid_algorithm.code() {
            return Err(unidentified);
        }
        Some((k.kid_algorithm, k.kid.as_slice()))
    } else {
        None
    };
    Ok(PacketKeys { cipher, mac })
}

/// Every check of the module documentation, then the application: the counter and the
/// additional response data.
fn check_and_run(
    ctx: &mut Context<'_>,
    apps: &mut Apps,
    header: &CommandHeader,
    packet: &[u8],
    index: Option<usize>,
) -> Result<(u64, Vec<u8>), Refusal> {
    if apps.by_tar(ctx.state, header.tar).is_none() {
        return Err(PorStatus::TarUnknown.into());
    }
    let index = index.ok_or(PorStatus::UnidentifiedSecurityError)?;
    let keyset = ctx
        .state
        .ota
        .keysets
        .get(index)
        .ok_or(PorStatus::UnidentifiedSecurityError)?;
    if !keyset.min_security_level.satisfied_by(&header.spi) {
        return Err(PorStatus::InsufficientSecurityLevel.into());
    }
    let stored = keyset.counter;
    let opened = {
        let keys = resolve_keys(&ctx.state.ota, header, Some(index))?;
        CommandPacket::open(header, packet, &keys).map_err(|e| Refusal::from(e.status()))?
    };
    let counter = opened.counter;
    let refuse = |status| Refusal { status, counter };
    match header.spi.counter {
        CounterMode::None | CounterMode::Available => {}
        CounterMode::Higher | CounterMode::OneHigher if stored >= COUNTER_MAX => {
            return Err(refuse(PorStatus::CounterBlocked))
        }
        _ if counter <= stored => return Err(refuse(PorStatus::CounterLow)),
        CounterMode::OneHigher if counter != stored + 1 => {
            return Err(refuse(PorStatus::CounterHigh))
        }
        CounterMode::Higher | CounterMode::OneHigher => {
            if let Some(k) = ctx.state.ota.keysets.get_mut(index) {
                k.counter = counter;
            }
        }
    }
    let app = apps
        .by_tar(ctx.state, header.tar)
        .ok_or(PorStatus::TarUnknown)
        .map_err(Refusal::from)?;
    // The application's own session: the terminal's channels and PINs stay as they are.
    let mut session = Session::default();
    let mut app_ctx = Context {
        state: &mut *ctx.state,
        session: &mut session,
        channel: 0,
        rng: &mut *ctx.rng,
    };
    let data = app.secured_data(&mut app_ctx, &opened.data);
    Ok((counter, data))
}
