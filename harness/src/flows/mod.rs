//! The seed's eight flows (JP7540673B2, figures 4–17 and the granted claims), replayed end to
//! end: devices with real or emulated cards ([`crate::device`]), the operator network
//! (embedded, or any deployment by URL; docs/network.md), every outcome proven on the cards
//! (read back over APDUs) and in the network (its admin API, attach, calls).
//!
//! - [`catalog`]: the flows, their figures, roles and variants (as data);
//! - [`scenario`]: scenario files (`vectors/flows/*.toml`);
//! - [`engine`]: running one scenario, steps and checks, the verdict;
//! - [`net`]: the devices' view of the network (the one module that knows its client);
//! - the flows: [`companion`] (Fig. 4, 5, 6), [`multi_imsi`] (Fig. 11–13), [`dual_card`]
//!   (Fig. 14, 15), [`transfer`] (Fig. 16, 17);
//! - [`report`] and [`cli`]: `simlab flows list|run`, JUnit, JSON, transcripts.

pub mod bench;
pub mod catalog;
pub mod cli;
mod common;
pub mod companion;
pub mod dual_card;
pub mod engine;
pub mod multi_imsi;
pub mod net;
pub mod report;
pub mod scenario;
pub mod transfer;

pub use engine::{run, Env, FlowResult, NetworkSpec};

/// The repository's `vectors/` when the binary was built from a checkout: the in-process cards
/// of each role, the test PKI and the TS.48 templates of the embedded network.
pub const BUILD_VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors");
pub use scenario::Scenario;

/// The body of the flow named `name` (names of [`catalog::FLOWS`]).
pub fn flow_fn(name: &str) -> Option<engine::FlowFn> {
    Some(match name {
        "companion-download" => companion::companion_download,
        "bind-with-download" => companion::bind_with_download,
        "contract" => companion::contract,
        "multi-imsi-uicc" => multi_imsi::multi_imsi_uicc,
        "unbind" => multi_imsi::unbind,
        "dual-card" => dual_card::dual_card,
        "euicc-upgrade" => transfer::euicc_upgrade,
        "euicc-migration" => transfer::euicc_migration,
        _ => return None,
    })
}
