//! Scenario files (`vectors/flows/*.toml`): a flow, its variant, parameters and the expected
//! outcome, so QA teams add cases without writing Rust. Every error names the file, line and
//! column, and what is accepted there.
//!
//! ```toml
//! # vectors/flows/upgrade-lockout.toml
//! flow = "euicc-upgrade"        # simlab flows list
//! variant = "typed"             # default: the flow's first variant
//! name = "three wrong codes lock the upgrade"
//!
//! [params]                      # any of Params' fields; the variant's are the defaults
//! auth = "sms"                  # "eap-aka" | "sms"
//! wrong_codes = 3
//!
//! [expect]
//! error = "code-locked"         # the stable code the flow must be refused with
//! step = "1604"                 # optional: at this step
//! ```

use super::catalog::{self, Flow, Variant};
use crate::device::link::Medium;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// How a device authenticates to the operator (seed: "EAP-SIM/AKA authentication or SMS
/// verification code authentication").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Auth {
    EapAka,
    Sms,
}

/// Call delivery of a multi-IMSI single-MSISDN group (seed: FA and MAH procedures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RingMode {
    #[serde(rename = "FA", alias = "fa")]
    Fa,
    #[serde(rename = "MAH", alias = "mah")]
    Mah,
}

impl RingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RingMode::Fa => "FA",
            RingMode::Mah => "MAH",
        }
    }
}

/// How the new device gets the code the old one received (claims 1 and 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CodeEntry {
    /// The user reads it on the old device and types it on the new one.
    Typed,
    /// The new device reads it from the old one over NFC (the short-range link).
    Nfc,
}

/// What a scenario may set; the variant gives the defaults, the file overrides them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    pub auth: Option<Auth>,
    pub medium: Option<Medium>,
    pub ring_mode: Option<RingMode>,
    /// Secondary devices (companion-download): 1 or 2.
    pub secondaries: Option<u32>,
    /// Wrong codes typed before the right one.
    pub wrong_codes: Option<u32>,
    pub code_entry: Option<CodeEntry>,
    /// Type the code only after it expired.
    pub expire_code: bool,
    /// Send the used code once more.
    pub reuse_code: bool,
    /// Use the activation code a second time.
    pub reuse_activation_code: bool,
    /// Let another eUICC fetch the profile first.
    pub download_by_other_eid: bool,
    /// The subscriber must sign the contract page (6020).
    pub contract: bool,
    /// …and declines it.
    pub decline: bool,
    /// The binding needs a second contract (6120).
    pub binding_contract: bool,
    /// The second device proves itself with a code (6130, 1250).
    pub second_device_code: bool,
    /// Unbinding also removes the profile (1307–1308).
    pub remove_profile: bool,
    /// A device outside the group tries the unbinding.
    pub unbind_by_outsider: bool,
    /// dual-card: bind the eUICC to the UICC's MSISDN.
    pub bind: bool,
    /// A stranger's device asks for the number.
    pub stranger: bool,
    /// Two new devices migrate the number at once.
    pub concurrent: bool,
    /// Restart the (embedded) network mid-flow.
    pub restart_network: bool,
}

impl Params {
    /// `self` with every field `over` sets.
    pub fn overridden_by(&self, over: &Params) -> Params {
        let d = Params::default();
        let pick_bool = |a: bool, b: bool, default: bool| if b != default { b } else { a };
        Params {
            auth: over.auth.or(self.auth),
            medium: over.medium.or(self.medium),
            ring_mode: over.ring_mode.or(self.ring_mode),
            secondaries: over.secondaries.or(self.secondaries),
            wrong_codes: over.wrong_codes.or(self.wrong_codes),
            code_entry: over.code_entry.or(self.code_entry),
            expire_code: pick_bool(self.expire_code, over.expire_code, d.expire_code),
            reuse_code: pick_bool(self.reuse_code, over.reuse_code, d.reuse_code),
            reuse_activation_code: pick_bool(
                self.reuse_activation_code,
                over.reuse_activation_code,
                d.reuse_activation_code,
            ),
            download_by_other_eid: pick_bool(
                self.download_by_other_eid,
                over.download_by_other_eid,
                d.download_by_other_eid,
            ),
            contract: pick_bool(self.contract, over.contract, d.contract),
            decline: pick_bool(self.decline, over.decline, d.decline),
            binding_contract: pick_bool(
                self.binding_contract,
                over.binding_contract,
                d.binding_contract,
            ),
            second_device_code: pick_bool(
                self.second_device_code,
                over.second_device_code,
                d.second_device_code,
            ),
            remove_profile: pick_bool(self.remove_profile, over.remove_profile, d.remove_profile),
            unbind_by_outsider: pick_bool(
                self.unbind_by_outsider,
                over.unbind_by_outsider,
                d.unbind_by_outsider,
            ),
            bind: pick_bool(self.bind, over.bind, d.bind),
            stranger: pick_bool(self.stranger, over.stranger, d.stranger),
            concurrent: pick_bool(self.concurrent, over.concurrent, d.concurrent),
            restart_network: pick_bool(
                self.restart_network,
                over.restart_network,
                d.restart_network,
            ),
        }
    }

    pub fn auth(&self) -> Auth {
        self.auth.unwrap_or(Auth::EapAka)
    }
}

/// The outcome a scenario expects: by default, the flow passes every check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Expect {
    /// The stable code (network `error.code`, or simlab's own for SM-DP+ and card refusals)
    /// the flow must be refused with; then it must also leave nothing half-done.
    pub error: Option<String>,
    /// The seed step of that refusal.
    pub step: Option<String>,
}

/// One flow × variant to run, with its parameters and expectation.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// Shown in reports and JUnit: the file stem, or `flow/variant`.
    pub name: String,
    pub flow: &'static Flow,
    pub variant: &'static Variant,
    pub params: Params,
    pub expect: Expect,
    /// The file it came from.
    pub source: Option<PathBuf>,
}

impl Scenario {
    /// The built-in scenario of a flow's variant.
    pub fn builtin(flow: &'static Flow, variant: &'static Variant) -> Self {
        Self {
            name: format!("{}/{}", flow.name, variant.name),
            flow,
            variant,
            params: (variant.params)(),
            expect: (variant.expect)(),
            source: None,
        }
    }

    /// Every flow × variant: what `simlab flows run` runs with no arguments.
    pub fn all_builtin() -> Vec<Scenario> {
        catalog::FLOWS
            .iter()
            .flat_map(|f| f.variants.iter().map(move |v| Scenario::builtin(f, v)))
            .collect()
    }

    /// `NAME` (a flow: all its variants) or `NAME/VARIANT`.
    pub fn by_name(arg: &str) -> Result<Vec<Scenario>, String> {
        let (flow_name, variant) = match arg.split_once('/') {
            Some((f, v)) => (f, Some(v)),
            None => (arg, None),
        };
        let flow = catalog::find(flow_name).ok_or_else(|| {
            format!(
                "no flow named {flow_name:?}; flows: {} (simlab flows list)",
                names(catalog::FLOWS.iter().map(|f| f.name))
            )
        })?;
        match variant {
            None => Ok(flow
                .variants
                .iter()
                .map(|v| Scenario::builtin(flow, v))
                .collect()),
            Some(v) => {
                let variant = flow.variant(v).ok_or_else(|| unknown_variant(flow, v))?;
                Ok(vec![Scenario::builtin(flow, variant)])
            }
        }
    }
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    it.collect::<Vec<_>>().join(", ")
}

fn unknown_variant(flow: &Flow, v: &str) -> String {
    format!(
        "flow {} has no variant {v:?}; variants: {}",
        flow.name,
        names(flow.variants.iter().map(|v| v.name))
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    flow: Spanned<String>,
    variant: Option<Spanned<String>>,
    name: Option<String>,
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    params: Params,
    #[serde(default)]
    expect: Expect,
}

/// A scenario file that could not be read, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Parses scenario text; `file` names it in errors.
pub fn parse(text: &str, file: &Path) -> Result<Scenario, ScenarioError> {
    let at = |span: Option<std::ops::Range<usize>>, message: String| {
        let (line, column) = match span {
            Some(s) => {
                let (l, c) = line_column(text, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ScenarioError {
            file: file.to_owned(),
            line,
            column,
            message,
        }
    };
    let parsed: File = toml::from_str(text).map_err(|e| {
        // toml's message starts with its own position lines; keep its explanation only.
        let message = e.message().to_owned();
        at(e.span(), message)
    })?;
    let flow = catalog::find(parsed.flow.get_ref()).ok_or_else(|| {
        at(
            Some(parsed.flow.span()),
            format!(
                "no flow named {:?}; flows: {}",
                parsed.flow.get_ref(),
                names(catalog::FLOWS.iter().map(|f| f.name))
            ),
        )
    })?;
    let variant = match &parsed.variant {
        None => flow
            .variants
            .first()
            .ok_or_else(|| at(None, "flow has no variant".into()))?,
        Some(v) => flow
            .variant(v.get_ref())
            .ok_or_else(|| at(Some(v.span()), unknown_variant(flow, v.get_ref())))?,
    };
    let params = (variant.params)().overridden_by(&parsed.params);
    let mut expect = (variant.expect)();
    if parsed.expect != Expect::default() {
        expect = parsed.expect;
    }
    let name = parsed.name.unwrap_or_else(|| {
        file.file_stem().map_or_else(
            || format!("{}/{}", flow.name, variant.name),
            |s| s.to_string_lossy().into_owned(),
        )
    });
    Ok(Scenario {
        name,
        flow,
        variant,
        params,
        expect,
        source: Some(file.to_owned()),
    })
}

/// Reads a scenario file.
pub fn load(file: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(file).map_err(|e| ScenarioError {
        file: file.to_owned(),
        line: None,
        column: None,
        message: format!("cannot read: {e}"),
    })?;
    parse(&text, file)
}

/// Every `*.toml` in a directory, sorted by name.
pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, ScenarioError> {
    let err = |message: String| ScenarioError {
        file: dir.to_owned(),
        line: None,
        column: None,
        message,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| err(format!("cannot read the directory: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files.iter().map(|f| load(f)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn parse_str(text: &str) -> Result<Scenario, ScenarioError> {
        parse(text, Path::new("case.toml"))
    }

    #[test]
    fn a_file_picks_a_variant_and_overrides_its_parameters() {
        let s = parse_str(
            "flow = \"euicc-upgrade\"\nvariant = \"lockout\"\n[params]\nauth = \"sms\"\nmedium = \"nfc\"\n",
        )
        .unwrap();
        assert_eq!(s.flow.name, "euicc-upgrade");
        assert_eq!(s.variant.name, "lockout");
        assert_eq!(
            s.params.wrong_codes,
            Some(3),
            "the variant's parameter stays"
        );
        assert_eq!(s.params.auth, Some(Auth::Sms));
        assert_eq!(s.params.medium, Some(Medium::Nfc));
        assert_eq!(s.expect.error.as_deref(), Some("code-locked"));
        assert_eq!(s.name, "case");
    }

    #[rstest]
    #[case::unknown_flow("flow = \"teleport\"\n", 1, 8, "no flow named \"teleport\"")]
    #[case::unknown_variant(
        "flow = \"unbind\"\nvariant = \"twice\"\n",
        2,
        11,
        "flow unbind has no variant \"twice\""
    )]
    #[case::unknown_param(
        "flow = \"unbind\"\n[params]\ncolour = 1\n",
        3,
        1,
        "unknown field `colour`"
    )]
    #[case::bad_value(
        "flow = \"unbind\"\n[params]\nauth = \"pin\"\n",
        3,
        8,
        "unknown variant `pin`"
    )]
    #[case::syntax("flow = \n", 1, 8, "")]
    fn errors_name_the_line_and_column(
        #[case] text: &str,
        #[case] line: usize,
        #[case] column: usize,
        #[case] says: &str,
    ) {
        let e = parse_str(text).unwrap_err();
        assert_eq!((e.line, e.column), (Some(line), Some(column)), "{e}");
        assert!(e.message.contains(says), "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("case.toml:{line}:{column}: ")),
            "{e}"
        );
    }

    #[test]
    fn every_builtin_variant_is_a_scenario_and_names_resolve() {
        catalog::validate().unwrap();
        let all = Scenario::all_builtin();
        assert!(all.len() >= 8);
        assert_eq!(Scenario::by_name("euicc-upgrade/nfc").unwrap().len(), 1);
        assert!(Scenario::by_name("euicc-upgrade/teleport")
            .unwrap_err()
            .contains("variants: typed"));
        assert!(Scenario::by_name("nope")
            .unwrap_err()
            .contains("flows: companion-download"));
    }
}
