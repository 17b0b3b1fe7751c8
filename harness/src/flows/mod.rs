//! The seed's eight flows (JP7540673B2, figures 4–17 and the granted claims), replayed end to
//! end: devices with real or emulated cards, the operator network (embedded, or any deployment
//! by URL), every outcome proven on the cards (read back over APDUs) and in the network (its
//! admin API).

pub mod catalog;
pub mod scenario;
