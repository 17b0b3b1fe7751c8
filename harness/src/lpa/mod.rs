//! The LPA (SGP.22 §3, §5.7 ES10 client, §5.6 ES9+ client): activation codes, the ISD-R
//! channel, ES10 functions, and profile download / notification delivery built on them.

pub mod activation_code;
pub mod chip_info;
pub mod cli;
pub mod download;
pub mod es10;
pub mod isd_r;

pub use activation_code::ActivationCode;
pub use download::{download, download_via, process_notifications, DeviceInfo, Downloaded};
pub use es10::{Es10Client, LpaError, ProfileSummary};
pub use isd_r::IsdR;
