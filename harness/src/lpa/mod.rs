//! The LPA (SGP.22 §3, §5.7 ES10 client, §5.6 ES9+ client): activation codes, the ISD-R
//! channel, and the download / profile management operations built on them.

pub mod activation_code;
pub mod isd_r;

pub use activation_code::ActivationCode;
pub use isd_r::IsdR;
