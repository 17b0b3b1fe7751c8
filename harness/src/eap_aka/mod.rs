//! EAP-AKA (RFC 4187) for both ends of the seed's "EAP-SIM/AKA authentication" (Fig. 3 AS 1031,
//! Fig. 4 step 403): the network's entitlement server ([`server`]) and a device relaying the
//! challenge to its USIM ([`peer`]), over the GSMA TS.43 EAP relay.
//!
//! - [`packet`]: EAP / EAP-AKA packets and attributes (RFC 3748 §4, RFC 4187 §8–§10);
//! - [`keys`]: MK, the FIPS 186-2 PRF, K_encr / K_aut / MSK / EMSK, AT_MAC (RFC 4187 §7, §10.15);
//! - [`identity`]: the permanent NAI `0<IMSI>@nai.epc.mnc<MNC>.mcc<MCC>.3gppnetwork.org`;
//! - [`server`]: build an AKA-Challenge from an authentication vector, judge the answer;
//! - [`peer`]: check a challenge, hand RAND/AUTN to the card, build the answer.
//!
//! Authentication vectors come from `simlab_emulator::aka` (TS 33.102), the same code the
//! emulated USIM runs. Checked against public vectors in `vectors/eap-aka/`.

pub mod identity;
pub mod keys;
pub mod packet;
pub mod peer;
pub mod server;

#[cfg(test)]
mod vectors_tests;

pub use identity::{permanent_identity, Identity, IdentityError};
pub use keys::{derive, Keys};
pub use packet::{AkaPacket, Attribute, Packet, PacketError, Subtype};
pub use peer::{CardAnswer, Challenge, PeerAnswer, PeerError};
pub use server::{ServerChallenge, ServerVerdict};
