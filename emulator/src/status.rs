//! Status words (SW1 SW2) as ETSI TS 102 221 §10.2.1 and ISO/IEC 7816-4 §5.1.3 define them.
//!
//! ES10 result codes are NOT status words: they travel inside 9000 answers (SGP.22 §5.7).

/// A status word. Variants with a payload carry SW2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusWord {
    /// `90 00` normal ending.
    Success,
    /// `91 XX` normal ending with a proactive command of XX bytes pending (TS 102 221 §10.2.1.1).
    ProactiveCommandPending(u8),
    /// `61 XX` XX more bytes available with GET RESPONSE (`00` = 256 or more).
    MoreData(u8),
    /// `62 82` end of file or record reached before reading Ne bytes.
    EndOfFileReached,
    /// `62 83` selected file invalidated (deactivated), TS 102 221 §10.2.1.3.
    SelectedFileInvalidated,
    /// `63 CX` verification failed, X retries left.
    VerificationFailed(u8),
    /// `64 00` technical problem, no precise diagnosis; state unchanged.
    ExecutionError,
    /// `65 81` memory problem.
    MemoryProblem,
    /// `67 00` wrong length (Lc or Le).
    WrongLength,
    /// `68 81` logical channel not supported or not open.
    LogicalChannelNotSupported,
    /// `68 82` secure messaging not supported.
    SecureMessagingNotSupported,
    /// `69 81` command incompatible with file structure.
    IncompatibleFileStructure,
    /// `69 82` security status not satisfied.
    SecurityStatusNotSatisfied,
    /// `69 83` authentication/verification method blocked.
    AuthenticationMethodBlocked,
    /// `69 84` referenced data invalidated.
    ReferencedDataInvalidated,
    /// `69 85` conditions of use not satisfied.
    ConditionsOfUseNotSatisfied,
    /// `69 86` command not allowed (no EF selected).
    NoEfSelected,
    /// `6A 80` incorrect parameters in the data field.
    IncorrectData,
    /// `6A 81` function not supported.
    FunctionNotSupported,
    /// `6A 82` file or application not found.
    FileNotFound,
    /// `6A 83` record not found.
    RecordNotFound,
    /// `6A 84` not enough memory space.
    NotEnoughMemory,
    /// `6A 86` incorrect parameters P1 to P2.
    IncorrectP1P2,
    /// `6A 88` referenced data not found.
    ReferencedDataNotFound,
    /// `6B 00` wrong parameters P1-P2 (offset outside the EF).
    WrongParameters,
    /// `6C XX` wrong Le: XX is the exact length available.
    WrongLe(u8),
    /// `6D 00` instruction code not supported or invalid.
    InstructionNotSupported,
    /// `6E 00` class not supported.
    ClassNotSupported,
    /// `6F 00` technical problem, no precise diagnosis.
    Unknown,
    /// `98 62` authentication error, incorrect MAC (TS 102 221 §10.2.1.6, application errors).
    AuthenticationMacFailure,
    /// `98 50` INCREASE cannot be performed, maximum value reached (TS 102 221 §10.2.1.6).
    IncreaseMaxReached,
    /// Any other status word, kept as it came (used by clients reading real cards).
    Other(u16),
}

impl StatusWord {
    /// The two bytes on the wire.
    pub fn to_u16(self) -> u16 {
        use StatusWord::*;
        match self {
            Success => 0x9000,
            ProactiveCommandPending(n) => 0x9100 | u16::from(n),
            MoreData(n) => 0x6100 | u16::from(n),
            EndOfFileReached => 0x6282,
            SelectedFileInvalidated => 0x6283,
            VerificationFailed(n) => 0x63C0 | u16::from(n & 0x0F),
            ExecutionError => 0x6400,
            MemoryProblem => 0x6581,
            WrongLength => 0x6700,
            LogicalChannelNotSupported => 0x6881,
            SecureMessagingNotSupported => 0x6882,
            IncompatibleFileStructure => 0x6981,
            SecurityStatusNotSatisfied => 0x6982,
            AuthenticationMethodBlocked => 0x6983,
            ReferencedDataInvalidated => 0x6984,
            ConditionsOfUseNotSatisfied => 0x6985,
            NoEfSelected => 0x6986,
            IncorrectData => 0x6A80,
            FunctionNotSupported => 0x6A81,
            FileNotFound => 0x6A82,
            RecordNotFound => 0x6A83,
            NotEnoughMemory => 0x6A84,
            IncorrectP1P2 => 0x6A86,
            ReferencedDataNotFound => 0x6A88,
            WrongParameters => 0x6B00,
            WrongLe(n) => 0x6C00 | u16::from(n),
            InstructionNotSupported => 0x6D00,
            ClassNotSupported => 0x6E00,
            Unknown => 0x6F00,
            AuthenticationMacFailure => 0x9862,
            IncreaseMaxReached => 0x9850,
            Other(sw) => sw,
        }
    }

    /// Total: every u16 maps to a variant, and `from_u16(sw.to_u16()) == sw`.
    pub fn from_u16(sw: u16) -> Self {
        use StatusWord::*;
        let sw2 = (sw & 0xFF) as u8;
        match sw {
            0x9000 => Success,
            0x9100..=0x91FF => ProactiveCommandPending(sw2),
            0x6100..=0x61FF => MoreData(sw2),
            0x6282 => EndOfFileReached,
            0x6283 => SelectedFileInvalidated,
            0x63C0..=0x63CF => VerificationFailed(sw2 & 0x0F),
            0x6400 => ExecutionError,
            0x6581 => MemoryProblem,
            0x6700 => WrongLength,
            0x6881 => LogicalChannelNotSupported,
            0x6882 => SecureMessagingNotSupported,
            0x6981 => IncompatibleFileStructure,
            0x6982 => SecurityStatusNotSatisfied,
            0x6983 => AuthenticationMethodBlocked,
            0x6984 => ReferencedDataInvalidated,
            0x6985 => ConditionsOfUseNotSatisfied,
            0x6986 => NoEfSelected,
            0x6A80 => IncorrectData,
            0x6A81 => FunctionNotSupported,
            0x6A82 => FileNotFound,
            0x6A83 => RecordNotFound,
            0x6A84 => NotEnoughMemory,
            0x6A86 => IncorrectP1P2,
            0x6A88 => ReferencedDataNotFound,
            0x6B00 => WrongParameters,
            0x6C00..=0x6CFF => WrongLe(sw2),
            0x6D00 => InstructionNotSupported,
            0x6E00 => ClassNotSupported,
            0x6F00 => Unknown,
            0x9862 => AuthenticationMacFailure,
            0x9850 => IncreaseMaxReached,
            other => Other(other),
        }
    }

    /// SW1 `90`, `91` or `61`: the command completed (TS 102 221 §10.2.1.1).
    pub fn is_success(self) -> bool {
        matches!(
            self,
            StatusWord::Success | StatusWord::ProactiveCommandPending(_) | StatusWord::MoreData(_)
        )
    }

    pub fn to_bytes(self) -> [u8; 2] {
        self.to_u16().to_be_bytes()
    }
}

impl std::fmt::Display for StatusWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04X} ({self:?})", self.to_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_u16_round_trips(sw in any::<u16>()) {
            prop_assert_eq!(StatusWord::from_u16(sw).to_u16(), sw);
        }
    }

    #[test]
    fn named_variants_map_back_to_themselves() {
        for sw in [
            StatusWord::AuthenticationMacFailure,
            StatusWord::WrongLe(0x10),
            StatusWord::VerificationFailed(2),
        ] {
            assert_eq!(StatusWord::from_u16(sw.to_u16()), sw);
        }
    }
}
