//! Building an emulated card from a definition file and an optional state directory.

use anyhow::Context as _;
use simlab_emulator::store::StateStore;
use simlab_emulator::{CardDefinition, Uicc};
use std::path::Path;

/// The card a definition describes; with `state`, its persistent state lives there (loaded
/// if present, else created from the definition).
pub fn load_card(definition: &Path, state: Option<&Path>) -> anyhow::Result<Uicc> {
    let def = CardDefinition::load(definition)
        .with_context(|| format!("loading card definition {}", definition.display()))?;
    let (atr, initial) = def
        .build()
        .with_context(|| format!("in card definition {}", definition.display()))?;
    match state {
        None => Ok(Uicc::new(atr, initial)),
        Some(dir) => {
            let store = StateStore::open(dir)?;
            Ok(Uicc::with_store(atr, initial, store)?)
        }
    }
}
