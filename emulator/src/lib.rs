//! simlab's virtual UICC/eUICC: pure card logic, bytes in and bytes out, plus a state store.
//! No sockets, no pcscd, no async: transports live in the harness.
//!
//! Entry point: [`uicc::Uicc`] (`power_on`, `transmit`, `reset`), built from a
//! [`definition::CardDefinition`] (a `vectors/cards/*.toml` file). With an `[euicc]` section
//! the card is an SGP.22 eUICC ([`euicc`]); the ES10 messages are typed in [`rsp::es10`].

pub mod aka;
pub mod apdu;
pub mod app;
pub mod applications;
pub mod arr;
pub mod definition;
pub mod euicc;
pub mod fcp;
pub mod fs;
pub mod ota;
pub mod pin;
pub mod platform;
pub mod rsp;
pub mod saip;
pub mod script;
pub mod state;
pub mod status;
pub mod store;
pub mod tlv;
pub mod ts_102_221;
pub mod ts_31_102;
pub mod uicc;

pub use definition::CardDefinition;
pub use status::StatusWord;
pub use uicc::Uicc;
