//! simlab's virtual UICC/eUICC: pure card logic, bytes in and bytes out, plus a state store.
//! No sockets, no pcscd, no async: transports live in the harness.

pub mod saip;
pub mod tlv;
