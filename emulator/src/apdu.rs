//! Command APDUs: ISO/IEC 7816-3 §12.1.3 length cases (short and extended) decoded by the
//! `iso7816` crate, then the class byte read as ETSI TS 102 221 §10.1.1 defines it for a UICC
//! (logical channel, secure messaging, interindustry vs proprietary), and the instruction
//! turned into a typed [`Instruction`].

use crate::status::StatusWord;
use iso7816::command::CommandView;

/// The instructions this card knows (TS 102 221 Table 10.5, GlobalPlatform STORE DATA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instruction {
    Select,
    Status,
    ReadBinary,
    UpdateBinary,
    ReadRecord,
    UpdateRecord,
    SearchRecord,
    Increase,
    Verify,
    ChangePin,
    DisablePin,
    EnablePin,
    UnblockPin,
    DeactivateFile,
    ActivateFile,
    Authenticate,
    ManageChannel,
    GetResponse,
    TerminalProfile,
    TerminalCapability,
    StoreData,
    Envelope,
}

impl Instruction {
    /// Decodes INS; `None` for an instruction the card does not know (answered 6D00).
    pub fn from_ins(ins: u8) -> Option<Self> {
        use Instruction::*;
        Some(match ins {
            0xA4 => Select,
            0xF2 => Status,
            0xB0 => ReadBinary,
            0xD6 => UpdateBinary,
            0xB2 => ReadRecord,
            0xDC => UpdateRecord,
            0xA2 => SearchRecord,
            0x32 => Increase,
            0x20 => Verify,
            0x24 => ChangePin,
            0x26 => DisablePin,
            0x28 => EnablePin,
            0x2C => UnblockPin,
            0x04 => DeactivateFile,
            0x44 => ActivateFile,
            0x88 => Authenticate,
            0x70 => ManageChannel,
            0xC0 => GetResponse,
            0x10 => TerminalProfile,
            0xAA => TerminalCapability,
            0xE2 => StoreData,
            0xC2 => Envelope,
            _ => return None,
        })
    }

    /// Which class family the instruction is coded with (TS 102 221 Table 10.5):
    /// `0X`/`4X` (interindustry) or `8X`/`CX` (TS 102 221 / GlobalPlatform proprietary).
    fn class_family(self) -> ClassFamily {
        use Instruction::*;
        match self {
            Status | TerminalProfile | TerminalCapability | StoreData | Increase | Envelope => {
                ClassFamily::Proprietary
            }
            // Some LPAs send GET RESPONSE with the class of the STORE DATA that started it.
            GetResponse => ClassFamily::Either,
            _ => ClassFamily::Interindustry,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClassFamily {
    Interindustry,
    Proprietary,
    Either,
}

/// A parsed command: header, data and Ne (`None` when the APDU carries no Le field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command<'a> {
    pub cla: u8,
    pub ins: Instruction,
    pub p1: u8,
    pub p2: u8,
    pub data: &'a [u8],
    pub ne: Option<usize>,
    pub channel: usize,
}

/// Highest logical channel number (TS 102 221 §10.1.1: 0–3 basic class, 4–19 extended).
pub const MAX_CHANNEL: usize = 19;

impl<'a> Command<'a> {
    /// Parses and checks a command APDU; the error is the status word to answer.
    pub fn parse(apdu: &'a [u8]) -> Result<Self, StatusWord> {
        let [cla, ins_byte, ..] = *apdu else {
            return Err(StatusWord::WrongLength);
        };
        let view = CommandView::try_from(apdu).map_err(|e| match e {
            iso7816::command::FromSliceError::InvalidClass => StatusWord::ClassNotSupported,
            _ => StatusWord::WrongLength,
        })?;
        let (family, channel) = decode_class(cla)?;
        let ins = Instruction::from_ins(ins_byte).ok_or(StatusWord::InstructionNotSupported)?;
        match (ins.class_family(), family) {
            (ClassFamily::Either, _) => {}
            (want, got) if want == got => {}
            _ => return Err(StatusWord::ClassNotSupported),
        }
        // The iso7816 crate reports Ne = 0 both for "no Le field" and never for "Le = 00"
        // (which it turns into 256/65536), so a zero means the field was absent.
        let ne = match view.expected() {
            0 => None,
            n => Some(n),
        };
        Ok(Self {
            cla,
            ins,
            p1: view.p1,
            p2: view.p2,
            data: view.data(),
            ne,
            channel,
        })
    }
}

/// Reads CLA per TS 102 221 §10.1.1: returns the family and the logical channel.
fn decode_class(cla: u8) -> Result<(ClassFamily, usize), StatusWord> {
    let family = if cla & 0x80 == 0 {
        ClassFamily::Interindustry
    } else {
        ClassFamily::Proprietary
    };
    match cla & 0x70 {
        // '0X' / '8X': b4-b3 secure messaging, b2-b1 channel 0–3.
        0x00 => {
            if cla & 0x0C != 0 {
                return Err(StatusWord::SecureMessagingNotSupported);
            }
            Ok((family, usize::from(cla & 0x03)))
        }
        // '4X' / 'CX': b6 secure messaging, b4-b1 channel 4–19.
        0x40 => Ok((family, 4 + usize::from(cla & 0x0F))),
        0x60 => Err(StatusWord::SecureMessagingNotSupported),
        // b5 set: command chaining, which no UICC command uses.
        0x10 | 0x50 => Err(StatusWord::Other(0x6884)),
        _ => Err(StatusWord::ClassNotSupported),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[rstest]
    #[case::case1("00A40000", Instruction::Select, 0, 0, None)]
    #[case::case2_short("00B00000 00", Instruction::ReadBinary, 0, 0, Some(256))]
    #[case::case3("01A40004 02 3F00", Instruction::Select, 1, 2, None)]
    #[case::case4("80F20000 00", Instruction::Status, 0, 0, Some(256))]
    #[case::extended_channel("4FA40004 02 3F00", Instruction::Select, 19, 2, None)]
    #[case::case2_extended("00B00000 000100", Instruction::ReadBinary, 0, 0, Some(256))]
    fn parses_length_cases_and_channels(
        #[case] apdu: &str,
        #[case] ins: Instruction,
        #[case] channel: usize,
        #[case] lc: usize,
        #[case] ne: Option<usize>,
    ) {
        let bytes = h(apdu);
        let cmd = Command::parse(&bytes).unwrap();
        assert_eq!(
            (cmd.ins, cmd.channel, cmd.data.len(), cmd.ne),
            (ins, channel, lc, ne)
        );
    }

    #[rstest]
    #[case::too_short("00A4", StatusWord::WrongLength)]
    #[case::lc_mismatch("00A40004 05 3F00", StatusWord::WrongLength)]
    #[case::unknown_ins("00FE0000", StatusWord::InstructionNotSupported)]
    #[case::proprietary_class_on_iso_command("80A40004 02 3F00", StatusWord::ClassNotSupported)]
    #[case::iso_class_on_status("00F20000 00", StatusWord::ClassNotSupported)]
    #[case::gsm_class("A0A40000 02 3F00", StatusWord::ClassNotSupported)]
    #[case::secure_messaging("0CA40004 02 3F00", StatusWord::SecureMessagingNotSupported)]
    #[case::invalid_class("FFA40000", StatusWord::ClassNotSupported)]
    fn rejects_bad_commands_with_the_spec_status(#[case] apdu: &str, #[case] sw: StatusWord) {
        assert_eq!(Command::parse(&h(apdu)).unwrap_err(), sw);
    }

    #[test]
    fn get_response_is_accepted_with_either_class() {
        assert!(Command::parse(&h("00C00000 10")).is_ok());
        assert!(Command::parse(&h("81C00000 10")).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = Command::parse(&bytes);
        }
    }
}
