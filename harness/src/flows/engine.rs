//! Running one scenario: the devices it needs, the network, each step in the seed's numbering
//! (timed, reported as it runs), the checks that prove the outcome, and the verdict.
//!
//! A flow is a plain function over a [`Ctx`]. It wraps each seed step in [`Ctx::step`] (a
//! failure there fails the flow, naming the step) or [`Ctx::attempt`] (where the scenario may
//! expect a refusal: then the flow checks that nothing was left half-done and stops), and
//! proves each outcome with [`Ctx::check`]. The verdict: passed when every step ran and every
//! check held, or when the expected refusal came and the checks after it held.

use super::net::Net;
use super::scenario::Scenario;
use crate::device::slot::CardSpec;
use crate::device::{Device, Recorder, Slot};
use crate::output::CodedError;
use crate::transcript::Transcript;
use anyhow::{anyhow, Context as _};
use serde::Serialize;
use simlab_emulator::CardDefinition;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Which network the flows use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkSpec {
    /// A fresh network in this process for each scenario (loopback, state in SQLite).
    Embedded,
    /// A running network (`simlab network serve`, or another deployment): its operator URL.
    Url(String),
}

/// How to run scenarios: the network, where each role's card is, what the operator holds.
#[derive(Debug, Clone)]
pub struct Env {
    pub network: NetworkSpec,
    /// `--card ROLE=SPEC`.
    pub cards: BTreeMap<String, CardSpec>,
    /// `--card-def ROLE=FILE`.
    pub card_defs: BTreeMap<String, PathBuf>,
    /// The repository's `vectors/` (cards, PKI, profiles).
    pub vectors: PathBuf,
    /// Keep a transcript of each run.
    pub record: bool,
    /// Ask on the terminal for a code the harness cannot read from the network's SMS centre.
    pub ask_codes: bool,
    /// Certificates trusted for the SM-DP+'s TLS with `Url` (default: the CI of vectors/pki).
    pub trust: Vec<PathBuf>,
}

impl Env {
    /// The embedded default: in-process cards from `vectors/cards`, the embedded network.
    pub fn embedded(vectors: impl Into<PathBuf>) -> Self {
        Self {
            network: NetworkSpec::Embedded,
            cards: BTreeMap::new(),
            card_defs: BTreeMap::new(),
            vectors: vectors.into(),
            record: true,
            ask_codes: false,
            trust: Vec::new(),
        }
    }
}

/// One step as it ran.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    /// The seed's step number where it has one (`404`, `6130`), else a short name.
    pub id: String,
    pub title: String,
    pub outcome: StepOutcome,
    pub millis: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum StepOutcome {
    Ok,
    /// Refused as the scenario expected, with the stable code.
    Refused {
        code: String,
    },
    Failed {
        code: Option<String>,
        message: String,
    },
}

/// One proven (or disproven) outcome.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckRecord {
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

/// Why a flow failed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub step: Option<String>,
    pub code: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(s) = &self.step {
            write!(f, "step {s}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(c) = &self.code {
            write!(f, " [{c}]")?;
        }
        Ok(())
    }
}

/// What a progress line reports.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    Started {
        scenario: &'a str,
    },
    Step {
        scenario: &'a str,
        step: &'a StepRecord,
    },
    Check {
        scenario: &'a str,
        check: &'a CheckRecord,
    },
}

/// The verdict of one scenario.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowResult {
    pub name: String,
    pub flow: String,
    pub variant: String,
    pub figures: String,
    pub passed: bool,
    /// The expected refusal that came.
    pub refused: Option<String>,
    pub failure: Option<Failure>,
    pub steps: Vec<StepRecord>,
    pub checks: Vec<CheckRecord>,
    pub millis: f64,
    #[serde(skip)]
    pub transcript: Option<Transcript>,
}

/// A step's result when a refusal may be expected.
#[derive(Debug)]
pub enum Attempt<R> {
    Done(R),
    /// Refused with the code the scenario expects.
    Refused(String),
}

/// The running scenario.
pub struct Ctx<'e> {
    pub scenario: &'e Scenario,
    pub env: &'e Env,
    pub net: Net,
    pub rec: Recorder,
    steps: Vec<StepRecord>,
    checks: Vec<CheckRecord>,
    refused: Option<String>,
    progress: &'e (dyn Fn(Progress<'_>) + Sync),
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("scenario", &self.scenario.name)
            .finish_non_exhaustive()
    }
}

/// The stable code of an error: a [`CodedError`] in its chain, the network's code, or the
/// SM-DP+'s SGP.22 status code by name ([`sgp22_code`]).
pub fn error_code(e: &anyhow::Error) -> Option<String> {
    e.chain()
        .find_map(|c| c.downcast_ref::<CodedError>())
        .map(|c| c.code.to_owned())
        .or_else(|| super::net::code_of(e))
        .or_else(|| {
            e.chain()
                .find_map(|c| c.downcast_ref::<crate::es9p::client::Es9pError>())
                .and_then(|x| x.status_code())
                .map(|(subject, reason)| sgp22_code(subject, reason))
        })
}

/// A stable name for an SGP.22 status code an SM-DP+ answered (SGP.22 v2.5 §5.6 tables of
/// subject and reason codes); `sgp22-<subject>-<reason>` for the others.
pub fn sgp22_code(subject: &str, reason: &str) -> String {
    match (subject, reason) {
        // §5.6.2 AuthenticateClient: "Matching ID refused" (unknown or used up).
        ("8.2.6", "3.8") => "matching-id-refused".into(),
        // §5.6.2: "EID refused" (the order is for another eUICC).
        ("8.1.1", "3.8") => "eid-refused".into(),
        ("8.2.7", "3.8") => "confirmation-code-refused".into(),
        ("8.2.7", "6.4") => "confirmation-code-retries-exceeded".into(),
        ("8.2", "1.2") => "profile-not-released".into(),
        ("8.8.5", "6.4") => "download-retries-exceeded".into(),
        _ => format!("sgp22-{subject}-{reason}"),
    }
}

impl<'e> Ctx<'e> {
    /// Runs one seed step; an error fails the flow at this step.
    pub fn step<R>(
        &mut self,
        id: &str,
        title: &str,
        f: impl FnOnce(&mut Self) -> anyhow::Result<R>,
    ) -> Result<R, Failure> {
        match self.attempt_inner(id, title, false, f)? {
            Attempt::Done(r) => Ok(r),
            Attempt::Refused(code) => Err(Failure {
                step: Some(id.to_owned()),
                code: Some(code),
                message: "refused".into(),
            }),
        }
    }

    /// Runs a step the scenario may expect to be refused: the expected code gives
    /// [`Attempt::Refused`], any other error fails the flow.
    pub fn attempt<R>(
        &mut self,
        id: &str,
        title: &str,
        f: impl FnOnce(&mut Self) -> anyhow::Result<R>,
    ) -> Result<Attempt<R>, Failure> {
        self.attempt_inner(id, title, true, f)
    }

    fn attempt_inner<R>(
        &mut self,
        id: &str,
        title: &str,
        refusable: bool,
        f: impl FnOnce(&mut Self) -> anyhow::Result<R>,
    ) -> Result<Attempt<R>, Failure> {
        self.rec.note(format!("== {id} {title}"));
        let start = Instant::now();
        let result = f(self);
        let millis = start.elapsed().as_secs_f64() * 1e3;
        let (outcome, ret) = match result {
            Ok(r) => (StepOutcome::Ok, Ok(Attempt::Done(r))),
            Err(e) => {
                let code = error_code(&e);
                let expected = &self.scenario.expect;
                let step_matches = expected.step.as_deref().is_none_or(|s| s == id);
                match (&code, &expected.error) {
                    (Some(c), Some(want)) if refusable && c == want && step_matches => {
                        self.refused = Some(c.clone());
                        self.rec.note(format!("REFUSED {c}: {e:#}"));
                        (
                            StepOutcome::Refused { code: c.clone() },
                            Ok(Attempt::Refused(c.clone())),
                        )
                    }
                    _ => {
                        let message = format!("{e:#}");
                        self.rec.note(format!("FAILED {message}"));
                        (
                            StepOutcome::Failed {
                                code: code.clone(),
                                message: message.clone(),
                            },
                            Err(Failure {
                                step: Some(id.to_owned()),
                                code,
                                message,
                            }),
                        )
                    }
                }
            }
        };
        let record = StepRecord {
            id: id.to_owned(),
            title: title.to_owned(),
            outcome,
            millis,
        };
        (self.progress)(Progress::Step {
            scenario: &self.scenario.name,
            step: &record,
        });
        self.steps.push(record);
        ret
    }

    /// Records an outcome; a false one fails the flow.
    pub fn check(
        &mut self,
        what: impl Into<String>,
        ok: bool,
        detail: impl Into<String>,
    ) -> Result<(), Failure> {
        let record = CheckRecord {
            what: what.into(),
            ok,
            detail: detail.into(),
        };
        self.rec.note(format!(
            "CHECK {} {}: {}",
            if ok { "ok" } else { "FAILED" },
            record.what,
            record.detail
        ));
        (self.progress)(Progress::Check {
            scenario: &self.scenario.name,
            check: &record,
        });
        let failure = (!ok).then(|| Failure {
            step: None,
            code: None,
            message: format!("{}: {}", record.what, record.detail),
        });
        self.checks.push(record);
        failure.map_or(Ok(()), Err)
    }

    /// `check` of an equality, showing both sides.
    pub fn check_eq<T: PartialEq + std::fmt::Debug>(
        &mut self,
        what: &str,
        got: T,
        want: T,
    ) -> Result<(), Failure> {
        let ok = got == want;
        let detail = if ok {
            format!("{got:?}")
        } else {
            format!("got {got:?}, expected {want:?}")
        };
        self.check(what, ok, detail)
    }

    /// A device of `role`'s card(s): the card the user gave with `--card`, else the
    /// in-process default from `vectors/cards`; with the definition the operator holds.
    pub fn device(&self, name: &str) -> anyhow::Result<Device> {
        let flow = self.scenario.flow;
        let slot = |role: &str| -> anyhow::Result<Option<Slot>> {
            let Some(r) = flow.role(role) else {
                return Ok(None);
            };
            Ok(Some(self.slot(r)?))
        };
        let mut device = match flow.role(name) {
            Some(r) => {
                let s = self.slot(r)?;
                match r.kind {
                    super::catalog::CardKind::Uicc => Device::new(name, Some(s), None, &self.rec),
                    super::catalog::CardKind::Euicc => Device::new(name, None, Some(s), &self.rec),
                }
            }
            None => {
                let uicc = slot(&format!("{name}.uicc"))?;
                let euicc = slot(&format!("{name}.euicc"))?;
                if uicc.is_none() && euicc.is_none() {
                    return Err(anyhow!("flow {} has no device {name}", flow.name));
                }
                Device::new(name, uicc, euicc, &self.rec)
            }
        };
        device.info = crate::lpa::DeviceInfo::default();
        Ok(device)
    }

    /// A device the flow needs but no user names (the first phone of the migration's history):
    /// an in-process card from `vectors/cards/<card>`.
    pub fn extra_device(&self, name: &str, card: &str) -> anyhow::Result<Device> {
        let file = self.env.vectors.join("cards").join(card);
        let definition = CardDefinition::load(&file)
            .with_context(|| format!("card definition {}", file.display()))?;
        let spec = CardSpec::File {
            definition: file,
            state: None,
        };
        let transport = spec.open()?;
        let slot = Slot::new(
            name,
            &spec.to_string(),
            transport,
            Some(definition.clone()),
            &self.rec,
        );
        Ok(if definition.euicc.is_some() {
            Device::new(name, None, Some(slot), &self.rec)
        } else {
            Device::new(name, Some(slot), None, &self.rec)
        })
    }

    fn slot(&self, role: &super::catalog::Role) -> anyhow::Result<Slot> {
        let spec = match self.env.cards.get(role.name) {
            Some(s) => s.clone(),
            None => CardSpec::File {
                definition: self.env.vectors.join("cards").join(role.default_card),
                state: None,
            },
        };
        let def_file = self
            .env
            .card_defs
            .get(role.name)
            .cloned()
            .or_else(|| spec.definition_file().cloned());
        let definition = match &def_file {
            Some(f) => Some(
                CardDefinition::load(f)
                    .with_context(|| format!("card definition of {}", role.name))?,
            ),
            None => None,
        };
        let transport = spec
            .open()
            .with_context(|| format!("opening the card of {} ({spec})", role.name))?;
        Ok(Slot::new(
            role.name,
            &spec.to_string(),
            transport,
            definition,
            &self.rec,
        ))
    }

    /// Ends the flow with the expected refusal (after its checks).
    pub fn refused(&self) -> bool {
        self.refused.is_some()
    }
}

/// A flow's body.
pub type FlowFn = fn(&mut Ctx<'_>) -> Result<(), Failure>;

/// Runs one scenario to its verdict.
pub fn run(scenario: &Scenario, env: &Env, progress: &(dyn Fn(Progress<'_>) + Sync)) -> FlowResult {
    let start = Instant::now();
    progress(Progress::Started {
        scenario: &scenario.name,
    });
    let transcript = env.record.then(Transcript::new);
    let rec = transcript
        .as_ref()
        .map_or_else(Recorder::off, Recorder::new);
    rec.note(format!(
        "# {} — {} (JP7540673B2 Fig. {}), variant {}: {}",
        scenario.name,
        scenario.flow.name,
        scenario.flow.figures,
        scenario.variant.name,
        scenario.variant.summary
    ));
    let mut steps = Vec::new();
    let mut checks = Vec::new();
    let mut refused = None;
    let outcome = match Net::open(env, scenario, &rec) {
        Err(e) => Err(Failure {
            step: Some("network".into()),
            code: error_code(&e),
            message: format!("{e:#}"),
        }),
        Ok(net) => {
            let mut ctx = Ctx {
                scenario,
                env,
                net,
                rec: rec.clone(),
                steps: Vec::new(),
                checks: Vec::new(),
                refused: None,
                progress,
            };
            let body = super::flow_fn(scenario.flow.name);
            let r = match body {
                Some(f) => f(&mut ctx),
                None => Err(Failure {
                    step: None,
                    code: None,
                    message: format!("flow {} is not implemented", scenario.flow.name),
                }),
            };
            steps = std::mem::take(&mut ctx.steps);
            checks = std::mem::take(&mut ctx.checks);
            refused = ctx.refused.take();
            ctx.net.stop();
            r
        }
    };
    let failure = match (outcome, &scenario.expect.error, &refused) {
        (Err(f), _, _) => Some(f),
        (Ok(()), Some(want), None) => Some(Failure {
            step: scenario.expect.step.clone(),
            code: None,
            message: format!("expected the flow to be refused with {want}, but it completed"),
        }),
        (Ok(()), _, _) => None,
    };
    FlowResult {
        name: scenario.name.clone(),
        flow: scenario.flow.name.to_owned(),
        variant: scenario.variant.name.to_owned(),
        figures: scenario.flow.figures.to_owned(),
        passed: failure.is_none(),
        refused,
        failure,
        steps,
        checks,
        millis: start.elapsed().as_secs_f64() * 1e3,
        transcript,
    }
}

/// How long to wait for something the network does in the background.
pub const SETTLE: Duration = Duration::from_secs(5);
