//! A card's known deviations, as data (the model is rustls's BoGo shim config: test-name
//! pattern → reason). A run against a real card then separates regressions (failures not
//! listed) from known gaps (failures listed, reported with their reason and not counted).
//!
//! ```toml
//! [card]
//! name = "ACME eUICC v3"
//! provides = ["ts48-pins"]          # capabilities the probe cannot see (see probe.rs)
//!
//! [deviations]
//! "TC_UICC_SEARCH_RECORD.NoMatch" = "answers 90 00 with no data instead of 62 82"
//! "TC_USIM_AUTH.GSM_*" = "GSM context not supported by this card"
//! ```
//!
//! Patterns are globs over case identifiers (`*`, `?`, `[…]`).

use anyhow::Context as _;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    card: CardSection,
    #[serde(default)]
    deviations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CardSection {
    #[serde(default)]
    name: String,
    #[serde(default)]
    provides: Vec<String>,
}

/// A parsed deviations file.
#[derive(Debug, Clone, Default)]
pub struct Deviations {
    pub card_name: String,
    pub provides: Vec<String>,
    entries: Vec<(glob::Pattern, String)>,
}

impl Deviations {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading deviations file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in deviations file {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let file: File = toml::from_str(text).context(
            "expected TOML with [card] (name, provides) and [deviations] (pattern = reason)",
        )?;
        let mut entries = Vec::new();
        for (pattern, reason) in file.deviations {
            let p = glob::Pattern::new(&pattern)
                .with_context(|| format!("pattern {pattern:?} is not a glob"))?;
            if reason.trim().is_empty() {
                anyhow::bail!("pattern {pattern:?} has no reason: say why the card deviates");
            }
            entries.push((p, reason));
        }
        Ok(Self {
            card_name: file.card.name,
            provides: file.card.provides,
            entries,
        })
    }

    /// The reason a case is a known deviation, if it is.
    pub fn reason(&self, case_id: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(p, _)| p.matches(case_id))
            .map(|(_, r)| r.as_str())
    }

    /// Patterns that matched no case at all (probably stale or mistyped).
    pub fn unused<'a>(&'a self, ids: &[&str]) -> Vec<&'a str> {
        self.entries
            .iter()
            .filter(|(p, _)| !ids.iter().any(|id| p.matches(id)))
            .map(|(p, _)| p.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_case_ids_and_give_their_reason() {
        let d = Deviations::parse(
            "[card]\nname = \"x\"\nprovides = [\"ts48-pins\"]\n[deviations]\n\"TC_A.*\" = \"not yet\"\n",
        )
        .unwrap();
        assert_eq!(d.provides, vec!["ts48-pins"]);
        assert_eq!(d.reason("TC_A.One"), Some("not yet"));
        assert_eq!(d.reason("TC_B.One"), None);
        assert_eq!(d.unused(&["TC_B.One"]), vec!["TC_A.*"]);
    }

    /// A deviations file as TOML, written with the `toml` crate (so any string is quoted right).
    fn file_text(name: &str, provides: &[String], entries: &BTreeMap<String, String>) -> String {
        let mut card = toml::Table::new();
        card.insert("name".into(), name.into());
        card.insert(
            "provides".into(),
            toml::Value::Array(provides.iter().map(|p| p.as_str().into()).collect()),
        );
        let mut deviations = toml::Table::new();
        for (k, v) in entries {
            deviations.insert(k.clone(), v.as_str().into());
        }
        let mut root = toml::Table::new();
        root.insert("card".into(), toml::Value::Table(card));
        root.insert("deviations".into(), toml::Value::Table(deviations));
        toml::to_string(&root).unwrap()
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_text(text in "(?s).{0,400}") {
            let _ = Deviations::parse(&text);
        }

        #[test]
        fn never_panics_on_deviations_shaped_text(
            lines in proptest::collection::vec(
                "(\\[card\\]|\\[deviations\\]|name = \"[ -~]{0,8}\"|provides = \\[(\"[a-z0-9-]{0,6}\",? ?){0,3}\\]|\"[A-Za-z_.*?\\[\\]!-]{0,12}\" = \"[ -~]{0,8}\"|[ -~]{0,10})",
                0..10,
            )
        ) {
            let _ = Deviations::parse(&lines.join("\n"));
        }

        #[test]
        fn a_written_file_reads_back_the_same(
            name in "[ -~]{0,20}",
            provides in proptest::collection::vec("[a-z0-9-]{1,12}", 0..4),
            entries in proptest::collection::btree_map(
                "TC_[A-Za-z0-9_]{1,8}\\.[A-Za-z0-9_]{1,10}",
                "[ -~]{0,30}[!-~]",
                0..6,
            ),
        ) {
            let d = Deviations::parse(&file_text(&name, &provides, &entries)).unwrap();
            proptest::prop_assert_eq!(&d.card_name, &name);
            proptest::prop_assert_eq!(&d.provides, &provides);
            for (id, reason) in &entries {
                proptest::prop_assert_eq!(d.reason(id), Some(reason.as_str()));
            }
            let mut unused = d.unused(&[]);
            unused.sort_unstable();
            let keys: Vec<&str> = entries.keys().map(String::as_str).collect();
            proptest::prop_assert_eq!(unused, keys);
            proptest::prop_assert_eq!(d.reason("TC-NOT.Listed"), None);
        }
    }

    #[test]
    fn a_deviation_without_a_reason_or_an_unknown_key_is_refused() {
        assert!(Deviations::parse("[deviations]\n\"TC_A\" = \" \"\n").is_err());
        assert!(Deviations::parse("[card]\nprovide = []\n").is_err());
        assert!(Deviations::parse("[deviations]\n\"[\" = \"bad glob\"\n").is_err());
    }
}
