//! The `simlab` harness: transports to cards, the vpcd adapter, the test PKI, and (in later
//! issues) the LPA, the emulated operator network, flows, suites and reports.

pub mod adapter;
pub mod aka_cli;
pub mod apdu;
pub mod bench;
pub mod card_cli;
pub mod cards;
pub mod defaults;
pub mod device;
pub mod eap_aka;
pub mod es9p;
pub mod flows;
pub mod lpa;
pub mod network;
pub mod ota;
pub mod output;
pub mod pki;
pub mod selftest;
pub mod smdp;
pub mod suite;
pub mod transcript;
pub mod transport;
