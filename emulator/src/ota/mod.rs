//! Remote card management over the air: secured packets ("SCP80", ETSI TS 102 225) carried
//! by SMS (3GPP TS 31.115, TS 23.040) to the card in an ENVELOPE SMS-PP download (3GPP
//! TS 31.111 / ETSI TS 102 223), and remote file management (ETSI TS 102 226, 3GPP TS 31.116).
//!
//! Codecs both sides use, one module per spec: [`ts_102_225`] (command and response packets,
//! SPI, keys, ciphering and checksums), [`ts_102_226`] (compact and expanded remote APDUs and
//! their responses), [`ts_23_040`] (SMS-DELIVER, user data header), [`ts_31_115`] (secured
//! packets in one or several short messages), [`ts_31_111`] (the SMS-PP download ENVELOPE).
//!
//! The card's side: [`keys`] (keysets, minimum security level, counters, kept in the card's
//! persistent state), [`sms_pp`] (the receiving entity behind ENVELOPE) and [`rfm`] (the UICC
//! and USIM RFM applications, reached by TAR).

pub mod keys;
pub mod rfm;
pub mod sms_pp;
pub mod ts_102_225;
pub mod ts_102_226;
pub mod ts_23_040;
pub mod ts_31_111;
pub mod ts_31_115;

#[cfg(test)]
mod vectors_tests;
