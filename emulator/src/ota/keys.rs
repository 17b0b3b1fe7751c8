//! The card's OTA keys (persistent): its keysets, each with the minimum security level the
//! remote applications demand of packets using it and the replay counter of TS 102 225 §5.1.1,
//! which is checked and kept per keyset.

use super::ts_102_225::{Checksum, CounterMode, Keyset, Spi};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The least protection a command packet must have (the minimum security level of TS 102 226
/// §8.2.1.3.2.4 for the remote applications): a checksum at least as strong (none < RC < CC
/// < DS), ciphering if asked, and a counter mode at least as strict (none < available <
/// higher < one higher).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityLevel {
    pub checksum: Checksum,
    pub ciphering: bool,
    pub counter: CounterMode,
}

/// Why a security level text cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("security level {0:?}: expected words joined by '+': one of none, rc, cc, ds; optionally ciphering; optionally counter, counter-higher or counter-one-higher (e.g. \"cc+ciphering\")")]
pub struct SecurityLevelError(pub String);

impl SecurityLevel {
    /// Cryptographic checksum and ciphering, any counter mode: what the public sample
    /// keysets are used with.
    pub const CC_CIPHERED: Self = Self {
        checksum: Checksum::Cc,
        ciphering: true,
        counter: CounterMode::None,
    };

    /// Whether a packet with `spi` meets this level.
    pub fn satisfied_by(&self, spi: &Spi) -> bool {
        spi.checksum >= self.checksum
            && (spi.ciphering || !self.ciphering)
            && spi.counter >= self.counter
    }

    /// Reads `cc+ciphering+counter-higher` and the like.
    pub fn parse(text: &str) -> Result<Self, SecurityLevelError> {
        let bad = || SecurityLevelError(text.into());
        let mut level = Self {
            checksum: Checksum::None,
            ciphering: false,
            counter: CounterMode::None,
        };
        for word in text.split('+').map(str::trim) {
            match word {
                "none" => level.checksum = Checksum::None,
                "rc" => level.checksum = Checksum::Rc,
                "cc" => level.checksum = Checksum::Cc,
                "ds" => level.checksum = Checksum::Ds,
                "ciphering" => level.ciphering = true,
                "counter" => level.counter = CounterMode::Available,
                "counter-higher" => level.counter = CounterMode::Higher,
                "counter-one-higher" => level.counter = CounterMode::OneHigher,
                _ => return Err(bad()),
            }
        }
        Ok(level)
    }
}

impl std::fmt::Display for SecurityLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let checksum = match self.checksum {
            Checksum::None => "none",
            Checksum::Rc => "rc",
            Checksum::Cc => "cc",
            Checksum::Ds => "ds",
        };
        write!(f, "{checksum}")?;
        if self.ciphering {
            write!(f, "+ciphering")?;
        }
        match self.counter {
            CounterMode::None => Ok(()),
            CounterMode::Available => write!(f, "+counter"),
            CounterMode::Higher => write!(f, "+counter-higher"),
            CounterMode::OneHigher => write!(f, "+counter-one-higher"),
        }
    }
}

/// One keyset as the card holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardKeyset {
    pub keys: Keyset,
    pub min_security_level: SecurityLevel,
    /// The highest counter accepted so far (TS 102 225 §5.1.1 CNTR).
    pub counter: u64,
}

/// The card's OTA keysets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtaKeys {
    pub keysets: Vec<CardKeyset>,
}

impl OtaKeys {
    /// The keyset a packet with `kic`/`kid` uses: the one whose KID index matches, else the one
    /// whose KIc index matches.
    pub fn position(&self, kic: u8, kid: u8) -> Option<usize> {
        let (kic_index, kid_index) = (kic >> 4, kid >> 4);
        self.keysets
            .iter()
            .position(|k| k.keys.kid_index == kid_index)
            .or_else(|| {
                self.keysets
                    .iter()
                    .position(|k| k.keys.kic_index == kic_index)
            })
    }

    /// The ciphering key KIc names (by index).
    pub fn kic(&self, kic: u8) -> Option<&Keyset> {
        self.keysets
            .iter()
            .map(|k| &k.keys)
            .find(|k| k.kic_index == kic >> 4)
    }

    /// The checksum key KID names (by index).
    pub fn kid(&self, kid: u8) -> Option<&Keyset> {
        self.keysets
            .iter()
            .map(|k| &k.keys)
            .find(|k| k.kid_index == kid >> 4)
    }
}
