//! Which applications a card hosts besides the UICC platform's file system: the one place
//! that names them, so the pipeline ([`crate::uicc`]) knows only the interface
//! ([`crate::app::Application`]).

use crate::app::{Application, Apps};
use crate::euicc::isd_r::{Ecasd, IsdR};
use crate::ota::rfm::{Rfm, RfmKind};
use crate::state::CardState;

/// The applications of a card with `state`: UICC RFM and USIM RFM (TS 102 226, reached by
/// TAR) on every card; an eUICC adds its ISD-R and ECASD (SGP.22 §2.2).
pub fn hosted(state: &CardState) -> Apps {
    let mut apps: Vec<Box<dyn Application>> = vec![
        Box::new(Rfm::new(RfmKind::Uicc)),
        Box::new(Rfm::new(RfmKind::Usim)),
    ];
    if state.euicc.is_some() {
        apps.push(Box::new(IsdR::default()));
        apps.push(Box::new(Ecasd));
    }
    Apps::new(apps)
}
