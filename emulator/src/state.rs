//! What a card keeps across power cycles: its file system, PINs, USIM authentication state,
//! OTA keys with their counters and, on an eUICC, the eUICC's identity and profiles. Every application works on this one
//! value; the card saves it whole ([`crate::store`]).
//!
//! Volatile state (channels, verified PINs, sessions) lives elsewhere: in the pipeline's
//! [`crate::app::Session`] and in each application.

use crate::aka::UsimState;
use crate::euicc::{EuiccState, ProfileContent};
use crate::fs::{ArrRef, FileSystem};
use crate::ota::keys::OtaKeys;
use crate::pin::PinStore;
use serde::{Deserialize, Serialize};

/// What a card keeps across power cycles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardState {
    pub fs: FileSystem,
    pub pins: PinStore,
    pub usim: Option<UsimState>,
    /// OTA keysets and their counters (TS 102 225); on an eUICC, the enabled profile's.
    #[serde(default)]
    pub ota: OtaKeys,
    /// The eUICC part (identity, profiles, notifications); `None` for a plain UICC.
    #[serde(default)]
    pub euicc: Option<Box<EuiccState>>,
}

impl CardState {
    /// The live telecom content as one value, leaving an empty card behind until
    /// [`Self::put_content`] (an eUICC swaps it when another profile becomes enabled).
    pub fn take_content(&mut self) -> ProfileContent {
        ProfileContent {
            fs: std::mem::replace(
                &mut self.fs,
                FileSystem::new(ArrRef {
                    arr_fid: 0,
                    record: 0,
                }),
            ),
            pins: std::mem::take(&mut self.pins),
            usim: self.usim.take(),
            ota: std::mem::take(&mut self.ota),
        }
    }

    /// Makes `content` the live telecom content.
    pub fn put_content(&mut self, content: ProfileContent) {
        self.fs = content.fs;
        self.pins = content.pins;
        self.usim = content.usim;
        self.ota = content.ota;
    }
}
