//! harness
pub mod pki;
