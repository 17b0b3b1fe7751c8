//! Building an emulated card from a definition (a file, or a built-in card by name: see
//! [`crate::defaults`]) and an optional state directory.

use simlab_emulator::store::StateStore;
use simlab_emulator::{CardDefinition, Uicc};
use std::path::Path;

/// The card a definition describes (`definition`: a file, or `uicc`/`euicc` for a built-in
/// card); with `state`, its persistent state lives there (loaded if present, else created
/// from the definition).
pub fn load_card(definition: &Path, state: Option<&Path>) -> anyhow::Result<Uicc> {
    let def = crate::defaults::card_definition(definition)?;
    build_card(&def, &definition.display().to_string(), state)
}

/// The card `def` describes (`label` names it in errors), as [`load_card`].
pub fn build_card(def: &CardDefinition, label: &str, state: Option<&Path>) -> anyhow::Result<Uicc> {
    let (atr, initial) = def.build().map_err(|e| {
        anyhow::Error::new(e).context(crate::output::CodedError::new(
            "card-definition",
            format!("in card definition {label}"),
        ))
    })?;
    match state {
        None => Ok(Uicc::new(atr, initial)),
        Some(dir) => {
            let store = StateStore::open(dir)?;
            if let Some(saved) = store.load::<simlab_emulator::state::CardState>()? {
                def.check_saved_state(&saved).map_err(|e| {
                    anyhow::Error::new(e).context(crate::output::CodedError::new(
                        "card-state",
                        format!("state directory {} with card {label}", dir.display()),
                    ))
                })?;
            }
            Ok(Uicc::with_store(atr, initial, store)?)
        }
    }
}
