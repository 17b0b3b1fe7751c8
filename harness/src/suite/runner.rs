//! Runs one case against the card: a reset first (each case starts from a fresh session;
//! persistent changes are the case's to undo), then each step, recording every exchange.
//!
//! ES10 steps reach the ISD-R the way an LPA does (the LPA's own ISD-R client,
//! `crate::lpa::IsdR`): the first ES10 step of a case opens a logical channel and selects
//! the ISD-R on it; each request goes in STORE DATA blocks of at most 120 bytes, and long
//! answers come back through '61 XX' and GET RESPONSE (SGP.22 §5.7.2).
//!
//! OTA steps ([`ota`]) send a secured packet in SMS-PP download ENVELOPEs; their `por` and
//! `sms` checks read the PoR, and `sw`/`data` checks and captures the last command's answer
//! the PoR reports.

use super::case::{Action, Case, Check, Vars};
use super::es10;
use super::ota::{self, OtaSession};
use crate::lpa::isd_r::{IsdR, IsdRError};
use crate::transcript::{Recording, Transcript};
use crate::transport::{split_sw, Transport, TransportError};
use serde::Serialize;
use std::time::{Duration, Instant};

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum Outcome {
    Passed,
    /// A check failed (or a step could not be carried out).
    Failed {
        line: usize,
        expected: String,
        got: String,
    },
    /// A requirement is not met.
    Skipped {
        reason: String,
    },
    /// The transport failed: the card or reader is gone; the run ends here.
    Error {
        message: String,
    },
}

/// One case's result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseResult {
    pub id: String,
    pub area: String,
    pub title: String,
    pub spec: String,
    pub file: String,
    pub line: usize,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Set when the deviations file lists the case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deviation: Option<String>,
    pub transcript: String,
    #[serde(serialize_with = "millis")]
    pub duration: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What counts for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    Passed,
    /// Failed and not listed as a deviation.
    Failed,
    /// Failed and listed.
    KnownDeviation,
    /// Passed though listed (the deviation may be stale).
    PassedDespiteDeviation,
    Skipped,
    Error,
}

impl CaseResult {
    pub fn verdict(&self) -> Verdict {
        match (&self.outcome, &self.deviation) {
            (Outcome::Passed, None) => Verdict::Passed,
            (Outcome::Passed, Some(_)) => Verdict::PassedDespiteDeviation,
            (Outcome::Failed { .. }, None) => Verdict::Failed,
            (Outcome::Failed { .. }, Some(_)) => Verdict::KnownDeviation,
            (Outcome::Skipped { .. }, _) => Verdict::Skipped,
            (Outcome::Error { .. }, _) => Verdict::Error,
        }
    }

    /// A skipped result for a case that did not run.
    pub fn skipped(case: &Case, reason: String) -> Self {
        Self::new(
            case,
            Outcome::Skipped { reason },
            String::new(),
            Duration::ZERO,
        )
    }

    fn new(case: &Case, outcome: Outcome, transcript: String, duration: Duration) -> Self {
        Self {
            id: case.id.clone(),
            area: case.area.clone(),
            title: case.title.clone(),
            spec: case.spec.clone(),
            file: case.file.display().to_string(),
            line: case.line,
            outcome,
            deviation: None,
            transcript,
            duration,
        }
    }
}

/// Why a step stopped the case.
enum Stop {
    Failed {
        line: usize,
        expected: String,
        got: String,
    },
    Transport(TransportError),
}

fn failed(line: usize, expected: impl Into<String>, got: impl Into<String>) -> Stop {
    Stop::Failed {
        line,
        expected: expected.into(),
        got: got.into(),
    }
}

/// Runs `case`; `globals` are the probed values, `ota` the run's OTA keys and counters.
pub fn run_case(
    t: &mut dyn Transport,
    case: &Case,
    globals: &Vars,
    ota: &mut OtaSession,
) -> CaseResult {
    let started = Instant::now();
    let transcript = Transcript::new();
    let result = {
        let mut rec = Recording::new(&mut *t, &transcript);
        run_steps(&mut rec, case, globals, ota)
    };
    let outcome = match result {
        Ok(()) => Outcome::Passed,
        Err(Stop::Failed {
            line,
            expected,
            got,
        }) => Outcome::Failed {
            line,
            expected,
            got,
        },
        // A card answering with less than a status word is a failing card, not a dead one.
        Err(Stop::Transport(e @ TransportError::ShortAnswer { .. })) => Outcome::Failed {
            line: 0,
            expected: "an answer with a status word".into(),
            got: e.to_string(),
        },
        Err(Stop::Transport(e)) => Outcome::Error {
            message: e.to_string(),
        },
    };
    CaseResult::new(case, outcome, transcript.render(), started.elapsed())
}

fn run_steps(
    t: &mut dyn Transport,
    case: &Case,
    globals: &Vars,
    session: &mut OtaSession,
) -> Result<(), Stop> {
    let mut vars = globals.clone();
    t.reset().map_err(Stop::Transport)?;
    let mut isd_r_channel: Option<u8> = None;
    for step in &case.steps {
        let line = step.line;
        let (data, sw) = match &step.action {
            Action::Reset => {
                t.reset().map_err(Stop::Transport)?;
                isd_r_channel = None;
                continue;
            }
            Action::Apdu { command, follow } => {
                let apdu = command
                    .bytes(&vars)
                    .map_err(|e| failed(line, "a command to send", e.to_string()))?;
                let answer = if *follow {
                    t.transmit(&apdu)
                } else {
                    t.transmit_raw(&apdu)
                }
                .map_err(Stop::Transport)?;
                if answer.len() < 2 {
                    return Err(failed(
                        line,
                        "an answer with a status word",
                        format!("{} bytes: {}", answer.len(), hex::encode_upper(&answer)),
                    ));
                }
                let (data, sw) = split_sw(&answer);
                (data.to_vec(), sw)
            }
            Action::Es10(call) => {
                let request = es10::encode(&call.function, &call.args, &vars)
                    .map_err(|e| failed(line, format!("an ES10 {} request", call.function), e))?;
                let channel = match isd_r_channel {
                    Some(c) => c,
                    None => {
                        let c = open_isd_r(&mut *t, line)?;
                        isd_r_channel = Some(c);
                        c
                    }
                };
                match IsdR::on_channel(&mut *t, channel).es10(&request) {
                    Ok(data) => (data, 0x9000),
                    Err(IsdRError::Status { sw, .. }) => (Vec::new(), sw),
                    Err(IsdRError::Transport(e)) => return Err(Stop::Transport(e)),
                    Err(e @ IsdRError::TooLong(_)) => {
                        return Err(failed(line, "an ES10 request that fits", e.to_string()))
                    }
                }
            }
            Action::Ota(call) => {
                let outcome = match ota::run(&mut *t, call, &vars, session) {
                    Ok(o) => o,
                    Err(ota::StepError::Transport(e)) => return Err(Stop::Transport(e)),
                    Err(ota::StepError::Failed(expected, got)) => {
                        return Err(failed(line, expected, got))
                    }
                };
                for check in &step.checks {
                    if let Check::Ota(c) = check {
                        ota::check(c, &outcome).map_err(|m| failed(line, m.expected, m.got))?;
                    }
                }
                let wants_answer = !step.captures.is_empty()
                    || step.checks.iter().any(|c| !matches!(c, Check::Ota(_)));
                match outcome.last_answer() {
                    Some((data, sw)) => (data.to_vec(), sw),
                    None if wants_answer => {
                        return Err(failed(
                            line,
                            "a command's answer in the PoR",
                            outcome.summary(),
                        ))
                    }
                    None => continue,
                }
            }
        };
        for check in &step.checks {
            if matches!(check, Check::Ota(_)) {
                continue;
            }
            check
                .check(&vars, &data, sw)
                .map_err(|m| failed(line, m.expected, m.got))?;
        }
        for capture in &step.captures {
            let value = capture
                .source
                .take(&data, sw)
                .map_err(|e| failed(line, format!("a value to capture as {}", capture.name), e))?;
            vars.insert(capture.name.clone(), value);
        }
    }
    Ok(())
}

/// Opens a logical channel and selects the ISD-R on it (as the LPA does).
fn open_isd_r(t: &mut dyn Transport, line: usize) -> Result<u8, Stop> {
    match IsdR::open(&mut *t) {
        Ok(isd_r) => Ok(isd_r.channel()),
        Err(IsdRError::Transport(e)) => Err(Stop::Transport(e)),
        Err(e) => Err(failed(
            line,
            "the ISD-R selected on a new logical channel (SGP.22 §2.2.1)",
            e.to_string(),
        )),
    }
}
