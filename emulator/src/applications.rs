//! Which applications a card hosts besides the UICC platform's file system: the one place
//! that names them, so the pipeline ([`crate::uicc`]) knows only the interface
//! ([`crate::app::Application`]).

use crate::app::{Application, Apps};
use crate::euicc::isd_r::{Ecasd, IsdR};
use crate::state::CardState;

/// The applications of a card with `state`: an eUICC adds its ISD-R and ECASD (SGP.22 §2.2).
pub fn hosted(state: &CardState) -> Apps {
    let mut apps: Vec<Box<dyn Application>> = Vec::new();
    if state.euicc.is_some() {
        apps.push(Box::new(IsdR::default()));
        apps.push(Box::new(Ecasd));
    }
    Apps::new(apps)
}
