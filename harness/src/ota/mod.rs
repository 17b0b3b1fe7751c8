//! Over-the-air remote management from the sending side: what an operator's OTA server and a
//! handset's modem do with SCP80 secured packets (ETSI TS 102 225) carried by SMS-PP (3GPP
//! TS 31.115, TS 23.040) to a card's remote file management (ETSI TS 102 226).
//!
//! The library API the operator network and the devices use (documented in `docs/ota.md`):
//!
//! - [`RemoteCommand`] + [`build_sms_pp`]: the SMS-DELIVER TPDUs that carry a command string
//!   for a subscriber's keyset (one, or a concatenated message when it is long);
//! - [`deliver_sms_pp`]: what a handset does with such a TPDU — ENVELOPE (SMS-PP download) to
//!   its card, the PoR back (the SMS-DELIVER-REPORT's user data);
//! - [`verify_por`]: the sender's check of that PoR (TAR, counter, ciphering and checksum as
//!   the SPI asked) and the outcome of each command;
//! - [`send`]: all three against one card.
//!
//! The codecs are the card's own ([`simlab_emulator::ota`]), so both sides read the same
//! specification text the same way; the public vectors of `vectors/ota` pin them to real cards.

pub mod cli;

use crate::transport::{split_sw, Transport, TransportError};
use simlab_emulator::ota::ts_102_225::{
    Checksum, CommandPacket, CounterMode, Keyset, OpenedPor, PacketError, PacketKeys, PorError,
    PorRequest, PorStatus, ResponsePacket, Spi, Tar,
};
use simlab_emulator::ota::ts_102_226::{self, FormatError, ScriptFormat, ScriptResponse};
use simlab_emulator::ota::ts_23_040::{Address, SmsError};
use simlab_emulator::ota::ts_31_111::SmsPpDownload;
use simlab_emulator::ota::ts_31_115::{self, SplitError};
use thiserror::Error;

pub use simlab_emulator::ota::rfm::{TAR_UICC_RFM, TAR_USIM_RFM};

/// What can go wrong sending, delivering or checking a secured packet.
#[derive(Debug, Error)]
pub enum OtaError {
    #[error("building the command packet: {0}")]
    Packet(#[from] PacketError),
    #[error("the command string: {0}")]
    Script(#[from] FormatError),
    #[error("the command packet does not fit in short messages: {0}")]
    Split(#[from] SplitError),
    #[error("the short message: {0}")]
    Sms(#[from] SmsError),
    #[error("card transport: {0}")]
    Transport(#[from] TransportError),
    #[error("the card refused the ENVELOPE (SMS-PP download) with SW {sw:04X}")]
    CardRefused { sw: u16 },
    #[error("the PoR cannot be read: {0}")]
    Por(#[from] PorError),
    #[error("the PoR is for TAR {got} but the command went to {sent}")]
    PorTar { sent: String, got: String },
    #[error("the PoR carries counter {got} but the command carried {sent}")]
    PorCounter { sent: u64, got: u64 },
    #[error("the SPI asked for a PoR but the card answered none")]
    NoPor,
}

/// A command string for one remote application, with the security it travels under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCommand {
    pub tar: Tar,
    pub spi: Spi,
    /// The counter (CNTR); with a counter mode of "higher" it must exceed the card's.
    pub counter: u64,
    pub format: ScriptFormat,
    /// The APDUs, ISO/IEC 7816-3 short form (a case 4 command keeps its Le only in the
    /// expanded format).
    pub apdus: Vec<Vec<u8>>,
}

impl RemoteCommand {
    /// USIM RFM (TAR B00011) with the upstream sample cards' SPI: ciphering and CC, no
    /// counter, PoR required, ciphered, with CC; compact format.
    pub fn usim_rfm(apdus: Vec<Vec<u8>>) -> Self {
        Self {
            tar: TAR_USIM_RFM,
            spi: default_spi(),
            counter: 0,
            format: ScriptFormat::Compact,
            apdus,
        }
    }

    /// The deactivation of ADF.USIM that disables an old card (TS 102 221 §11.1.14): USIM RFM
    /// starts at ADF.USIM, so DEACTIVATE FILE without data deactivates it.
    pub fn deactivate_usim() -> Self {
        Self::usim_rfm(vec![vec![0x00, 0x04, 0x00, 0x00]])
    }

    /// The secured data: the APDUs in the command's format.
    pub fn secured_data(&self) -> Result<Vec<u8>, OtaError> {
        Ok(match self.format {
            ScriptFormat::Compact => ts_102_226::encode_compact(&self.apdus)?,
            ScriptFormat::Expanded => ts_102_226::encode_expanded(&self.apdus),
        })
    }

    /// The sealed command packet (CPL onwards) for `keyset`.
    pub fn command_packet(&self, keyset: &Keyset) -> Result<Vec<u8>, OtaError> {
        let packet = CommandPacket::for_keyset(
            keyset,
            self.spi,
            self.tar,
            self.counter,
            self.secured_data()?,
        );
        Ok(packet.seal(&PacketKeys::of(keyset))?)
    }

    /// The KID byte the packet carries (the PoR's checksum uses it too).
    pub fn kid(&self, keyset: &Keyset) -> u8 {
        CommandPacket::for_keyset(keyset, self.spi, self.tar, self.counter, Vec::new()).kid
    }
}

/// Ciphering + CC, no counter; PoR required, ciphered, with CC ('06 19').
pub fn default_spi() -> Spi {
    Spi {
        counter: CounterMode::None,
        ciphering: true,
        checksum: Checksum::Cc,
        por: PorRequest::Always,
        por_checksum: Checksum::Cc,
        por_ciphered: true,
        por_via_submit: false,
    }
}

/// The SMS-DELIVER TPDUs (TP-PID '7F', TP-DCS 'F6') carrying `command` secured with
/// `keyset`, from `originator` (the OTA server's address): one, or the parts of a
/// concatenated message (reference `reference`).
pub fn build_sms_pp(
    keyset: &Keyset,
    command: &RemoteCommand,
    originator: &Address,
    reference: u8,
) -> Result<Vec<Vec<u8>>, OtaError> {
    let packet = command.command_packet(keyset)?;
    let scts = [0x62, 0x10, 0x10, 0x00, 0x00, 0x00, 0x00];
    ts_31_115::split(&packet, originator, scts, reference)?
        .iter()
        .map(|sms| sms.encode().map_err(OtaError::from))
        .collect()
}

/// What a handset's modem does with an SMS-PP data download message: ENVELOPE to its card
/// (fetching a '61 XX' answer with GET RESPONSE) and the card's answer data, the PoR to put
/// in the SMS-DELIVER-REPORT. `Ok(None)`: the card took the message and answered nothing (a
/// part of a concatenated message, or no PoR asked). On error nothing more than that one
/// ENVELOPE has happened on the card.
pub fn deliver_sms_pp<T: Transport + ?Sized>(
    transport: &mut T,
    tpdu: &[u8],
) -> Result<Option<Vec<u8>>, OtaError> {
    let envelope = SmsPpDownload {
        address: Some(Address::isdn("+15555550000")),
        tpdu: tpdu.to_vec(),
    };
    let answer = transport.transmit(&envelope.envelope_apdu())?;
    let (data, sw) = split_sw(&answer);
    // TS 31.111 §7.1.1.2: '90 00' and '91 XX' are an RP-ACK, '62 XX'/'63 XX' an RP-ERROR,
    // both with the answer data in the SMS-DELIVER-REPORT; anything else carries none.
    match sw >> 8 {
        0x90 | 0x91 | 0x62 | 0x63 if !data.is_empty() => Ok(Some(data.to_vec())),
        0x90 | 0x91 => Ok(None),
        _ => Err(OtaError::CardRefused { sw }),
    }
}

/// The sender's reading of a PoR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PorReport {
    pub status: PorStatus,
    /// Ciphered and/or checksummed as the SPI asked (and verified).
    pub secured: bool,
    pub counter: u64,
    /// The command string's outcome (present for PoR OK with additional data).
    pub script: Option<ScriptResponse>,
    /// The PoR as received (SMS user data).
    pub raw: Vec<u8>,
}

/// Checks a PoR for `command` sent with `keyset`: its TAR and counter, its security as the SPI
/// asked, and decodes the command string's outcome.
pub fn verify_por(
    keyset: &Keyset,
    command: &RemoteCommand,
    por: &[u8],
) -> Result<PorReport, OtaError> {
    let OpenedPor { packet, secured } = ResponsePacket::open(
        por,
        &command.spi,
        command.kid(keyset),
        &PacketKeys::of(keyset),
    )?;
    if packet.tar != command.tar {
        return Err(OtaError::PorTar {
            sent: hex::encode_upper(command.tar),
            got: hex::encode_upper(packet.tar),
        });
    }
    // A PoR for a packet whose header the card could not read carries no counter.
    if secured && packet.counter != command.counter {
        return Err(OtaError::PorCounter {
            sent: command.counter,
            got: packet.counter,
        });
    }
    let script = if packet.status == PorStatus::Ok && !packet.data.is_empty() {
        Some(ScriptResponse::decode(command.format, &packet.data)?)
    } else {
        None
    };
    Ok(PorReport {
        status: packet.status,
        secured,
        counter: packet.counter,
        script,
        raw: por.to_vec(),
    })
}

/// Everything one send did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReport {
    pub command_packet: Vec<u8>,
    pub tpdus: Vec<Vec<u8>>,
    /// `None` when the SPI asked no PoR (or one only on error, and all went well).
    pub por: Option<PorReport>,
}

/// Builds, delivers and checks: the whole round trip against one card.
pub fn send<T: Transport + ?Sized>(
    transport: &mut T,
    keyset: &Keyset,
    command: &RemoteCommand,
) -> Result<SendReport, OtaError> {
    let originator = Address::isdn("12345678");
    let command_packet = command.command_packet(keyset)?;
    let tpdus = build_sms_pp(keyset, command, &originator, 1)?;
    let mut por = None;
    for tpdu in &tpdus {
        por = deliver_sms_pp(transport, tpdu)?;
    }
    let por = match (por, command.spi.por) {
        (Some(p), _) => Some(verify_por(keyset, command, &p)?),
        (None, PorRequest::Always) => return Err(OtaError::NoPor),
        (None, _) => None,
    };
    Ok(SendReport {
        command_packet,
        tpdus,
        por,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::transport::InProcess;
    use simlab_emulator::{CardDefinition, Uicc};

    fn card() -> InProcess {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/cards/uicc.toml");
        let (atr, state) = CardDefinition::load(std::path::Path::new(path))
            .unwrap()
            .build()
            .unwrap();
        InProcess::new(Uicc::new(atr, state))
    }

    fn keyset() -> Keyset {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/cards/uicc.toml");
        let def = CardDefinition::load(std::path::Path::new(path)).unwrap();
        def.ota.keys().unwrap().keysets[0].keys.clone()
    }

    #[test]
    fn the_usim_deactivation_round_trip_reports_por_ok_and_the_card_shows_62_83() {
        let mut t = card();
        let report = send(&mut t, &keyset(), &RemoteCommand::deactivate_usim()).unwrap();
        let por = report.por.unwrap();
        assert_eq!((por.status, por.secured), (PorStatus::Ok, true));
        let script = por.script.unwrap();
        assert_eq!((script.executed, script.last().unwrap().sw), (1, 0x9000));
        let answer = t
            .transmit(&hex::decode("00A4040C0CA0000000871002FF49FF0589").unwrap())
            .unwrap();
        assert_eq!(answer, [0x62, 0x83]);
    }

    #[test]
    fn a_network_and_a_handset_split_the_work_tpdu_by_tpdu() {
        let mut t = card();
        let keys = keyset();
        let mut apdus = vec![hex::decode("00A4000C026F46").unwrap()];
        apdus.extend(vec![hex::decode("00B0000001").unwrap(); 40]);
        let mut command = RemoteCommand::usim_rfm(apdus);
        command.spi.counter = CounterMode::Higher;
        command.counter = 9;
        let tpdus = build_sms_pp(&keys, &command, &Address::isdn("+4900"), 3).unwrap();
        assert_eq!(tpdus.len(), 2, "a long command string needs two messages");
        assert_eq!(deliver_sms_pp(&mut t, &tpdus[0]).unwrap(), None);
        let por = deliver_sms_pp(&mut t, &tpdus[1]).unwrap().unwrap();
        let report = verify_por(&keys, &command, &por).unwrap();
        assert_eq!(report.status, PorStatus::Ok);
        assert_eq!(report.counter, 9);
        let script = report.script.unwrap();
        assert_eq!((script.executed, script.last().unwrap().sw), (41, 0x9000));
        // The same message again: the card has seen counter 9 already.
        deliver_sms_pp(&mut t, &tpdus[0]).unwrap();
        let por = deliver_sms_pp(&mut t, &tpdus[1]).unwrap().unwrap();
        assert_eq!(
            verify_por(&keys, &command, &por).unwrap().status,
            PorStatus::CounterLow
        );
    }

    #[test]
    fn a_por_for_another_tar_is_rejected() {
        let keys = keyset();
        let command = RemoteCommand::deactivate_usim();
        let mut other = command.clone();
        other.tar = TAR_UICC_RFM;
        let mut t = card();
        let report = send(&mut t, &keys, &other).unwrap();
        let err = verify_por(&keys, &command, &report.por.unwrap().raw).unwrap_err();
        assert!(matches!(err, OtaError::PorTar { .. }), "{err}");
    }

    #[test]
    fn an_envelope_the_card_cannot_read_is_a_refusal_with_its_status_word() {
        let mut t = card();
        let err = deliver_sms_pp(&mut t, &[0x00]).unwrap_err();
        assert!(matches!(err, OtaError::CardRefused { sw: 0x6A80 }), "{err}");
    }
}
