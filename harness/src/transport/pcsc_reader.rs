//! Any PC/SC reader through pcscd (a real reader with a real SIM or eUICC, or vpcd's
//! "Virtual PCD 00 00"). Connects shared, T=0 or T=1 as the card offers. On an error
//! from `transmit` the APDU may or may not have reached the card (PC/SC does not say).

use super::{Transport, TransportError};
use pcsc::{Card, Context, Disposition, Protocols, Scope, ShareMode, MAX_BUFFER_SIZE_EXTENDED};
use std::ffi::CString;

pub struct PcscReader {
    card: Card,
    reader: CString,
}

impl std::fmt::Debug for PcscReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscReader")
            .field("reader", &self.reader)
            .finish()
    }
}

fn err(e: pcsc::Error) -> TransportError {
    TransportError::Pcsc(e.to_string())
}

impl PcscReader {
    /// The names of the readers pcscd knows.
    pub fn list() -> Result<Vec<String>, TransportError> {
        let ctx = Context::establish(Scope::User).map_err(err)?;
        let names = ctx.list_readers_owned().map_err(err)?;
        Ok(names
            .iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect())
    }

    /// Connects to the card in the reader named `name` (exact name, or a unique prefix).
    pub fn connect(name: &str) -> Result<Self, TransportError> {
        let ctx = Context::establish(Scope::User).map_err(err)?;
        let names = ctx.list_readers_owned().map_err(err)?;
        let texts: Vec<String> = names
            .iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        let reader = names[choose(&texts, name)?].clone();
        let card = ctx
            .connect(&reader, ShareMode::Shared, Protocols::ANY)
            .map_err(err)?;
        Ok(Self { card, reader })
    }
}

/// The reader `wanted` names: the one with exactly that name, else the only one it prefixes.
fn choose(names: &[String], wanted: &str) -> Result<usize, TransportError> {
    if let Some(i) = names.iter().position(|n| n == wanted) {
        return Ok(i);
    }
    let quoted = |list: &mut dyn Iterator<Item = &String>| {
        list.map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let matches: Vec<usize> = (0..names.len())
        .filter(|&i| names[i].starts_with(wanted))
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(TransportError::NoSuchReader {
            wanted: wanted.into(),
            present: if names.is_empty() {
                "none (is pcscd running?)".into()
            } else {
                quoted(&mut names.iter())
            },
        }),
        many => Err(TransportError::AmbiguousReader {
            wanted: wanted.into(),
            matches: quoted(&mut many.iter().map(|&i| &names[i])),
        }),
    }
}

impl Transport for PcscReader {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut buf = vec![0u8; MAX_BUFFER_SIZE_EXTENDED];
        let answer = self.card.transmit(apdu, &mut buf).map_err(err)?;
        Ok(answer.to_vec())
    }

    fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
        self.card
            .reconnect(ShareMode::Shared, Protocols::ANY, Disposition::ResetCard)
            .map_err(err)?;
        self.atr()
    }

    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        let mut names = [0u8; 2048];
        let mut atr = [0u8; pcsc::MAX_ATR_SIZE];
        let status = self.card.status2(&mut names, &mut atr).map_err(err)?;
        Ok(status.atr().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        [
            "Virtual PCD 00 00",
            "Virtual PCD 00 01",
            "Gemalto USB 00 00",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn an_exact_name_or_a_unique_prefix_picks_the_reader() {
        assert_eq!(choose(&names(), "Virtual PCD 00 01").unwrap(), 1);
        assert_eq!(choose(&names(), "Gemalto").unwrap(), 2);
    }

    #[test]
    fn an_ambiguous_prefix_lists_the_matches() {
        let e = choose(&names(), "Virtual").unwrap_err().to_string();
        assert_eq!(
            e,
            "reader name \"Virtual\" is ambiguous: it starts \"Virtual PCD 00 00\", \"Virtual PCD 00 01\"; give more of the name"
        );
    }

    #[test]
    fn an_unknown_name_lists_the_readers_present() {
        let e = choose(&names(), "Omnikey").unwrap_err().to_string();
        assert!(e.contains("\"Gemalto USB 00 00\""), "{e}");
        let e = choose(&[], "x").unwrap_err().to_string();
        assert!(e.contains("is pcscd running"), "{e}");
    }
}
