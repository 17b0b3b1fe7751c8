//! What a run produced, for people (summary table, transcripts of failed cases), for CI
//! (JUnit XML with `quick-junit`: one testcase per case, classname = area, the expected and
//! the received answer as the failure message, the transcript as system-out) and for
//! machines (JSON).

use super::probe::Capabilities;
use super::runner::{CaseResult, Outcome, Verdict};
use quick_junit::{NonSuccessKind, Report as JunitReport, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Counts of one area (or of the whole run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub known_deviations: usize,
    pub passed_despite_deviation: usize,
    pub skipped: usize,
    pub errors: usize,
}

impl Counts {
    fn add(&mut self, v: Verdict) {
        match v {
            Verdict::Passed => self.passed += 1,
            Verdict::Failed => self.failed += 1,
            Verdict::KnownDeviation => self.known_deviations += 1,
            Verdict::PassedDespiteDeviation => self.passed_despite_deviation += 1,
            Verdict::Skipped => self.skipped += 1,
            Verdict::Error => self.errors += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.passed
            + self.failed
            + self.known_deviations
            + self.passed_despite_deviation
            + self.skipped
            + self.errors
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub target: String,
    pub card: String,
    pub atr: String,
    pub capabilities: Capabilities,
    pub totals: Counts,
    pub areas: BTreeMap<String, Counts>,
    /// Cases selected but never run because the card or reader went away.
    pub not_run: Vec<String>,
    /// Why the run ended early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
    pub unused_deviations: Vec<String>,
    pub cases: Vec<CaseResult>,
}

/// Everything about a run but its cases.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub target: String,
    pub card: String,
    pub atr: String,
    pub capabilities: Capabilities,
    pub not_run: Vec<String>,
    pub aborted: Option<String>,
    pub unused_deviations: Vec<String>,
}

impl RunReport {
    pub fn new(info: RunInfo, cases: Vec<CaseResult>) -> Self {
        let mut totals = Counts::default();
        let mut areas: BTreeMap<String, Counts> = BTreeMap::new();
        for c in &cases {
            totals.add(c.verdict());
            areas.entry(c.area.clone()).or_default().add(c.verdict());
        }
        Self {
            target: info.target,
            card: info.card,
            atr: info.atr,
            capabilities: info.capabilities,
            totals,
            areas,
            not_run: info.not_run,
            aborted: info.aborted,
            unused_deviations: info.unused_deviations,
            cases,
        }
    }

    /// Nothing failed that the deviations file does not list, and the run went to the end.
    pub fn ok(&self) -> bool {
        self.totals.failed == 0 && self.totals.errors == 0 && self.aborted.is_none()
    }

    /// Summary table, failed cases with their transcripts, stale deviations.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for c in self.cases.iter().filter(|c| c.verdict() == Verdict::Failed) {
            let _ = writeln!(s, "{}", failure_text(c));
        }
        let _ = writeln!(s, "simlab conformance run against {}", self.target);
        if !self.card.is_empty() {
            let _ = writeln!(s, "card: {}", self.card);
        }
        let _ = writeln!(s, "ATR:  {}", self.atr);
        let have: Vec<&str> = self.capabilities.have.keys().map(String::as_str).collect();
        let _ = writeln!(s, "capabilities: {}", have.join(", "));
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<12} {:>6} {:>6} {:>9} {:>7} {:>6}",
            "area", "passed", "failed", "deviation", "skipped", "total"
        );
        let mut row = |name: &str, c: &Counts| {
            let _ = writeln!(
                s,
                "{:<12} {:>6} {:>6} {:>9} {:>7} {:>6}",
                name,
                c.passed + c.passed_despite_deviation,
                c.failed + c.errors,
                c.known_deviations,
                c.skipped,
                c.total()
            );
        };
        for (area, c) in &self.areas {
            row(area, c);
        }
        row("all", &self.totals);
        let skipped: BTreeMap<&str, usize> = self.cases.iter().fold(BTreeMap::new(), |mut m, c| {
            if let Outcome::Skipped { reason } = &c.outcome {
                *m.entry(reason.as_str()).or_default() += 1;
            }
            m
        });
        if !skipped.is_empty() {
            let _ = writeln!(s, "\nskipped:");
            for (reason, n) in skipped {
                let _ = writeln!(s, "  {n:>4} × {reason}");
            }
        }
        let known: Vec<&CaseResult> = self
            .cases
            .iter()
            .filter(|c| c.verdict() == Verdict::KnownDeviation)
            .collect();
        if !known.is_empty() {
            let _ = writeln!(s, "\nknown deviations (failed as listed):");
            for c in known {
                let _ = writeln!(
                    s,
                    "  {} — {}",
                    c.id,
                    c.deviation.as_deref().unwrap_or_default()
                );
            }
        }
        let stale: Vec<&str> = self
            .cases
            .iter()
            .filter(|c| c.verdict() == Verdict::PassedDespiteDeviation)
            .map(|c| c.id.as_str())
            .collect();
        if !stale.is_empty() {
            let _ = writeln!(
                s,
                "\npassed although listed as deviations (remove them from the file?): {}",
                stale.join(", ")
            );
        }
        if !self.unused_deviations.is_empty() {
            let _ = writeln!(
                s,
                "\ndeviation patterns matching no case: {}",
                self.unused_deviations.join(", ")
            );
        }
        if let Some(why) = &self.aborted {
            let _ = writeln!(
                s,
                "\nRUN ABORTED: {why}\n{} selected cases did not run",
                self.not_run.len()
            );
        }
        let _ = writeln!(
            s,
            "\n{} passed, {} failed, {} skipped",
            self.totals.passed + self.totals.passed_despite_deviation,
            self.totals.failed + self.totals.errors,
            self.totals.skipped + self.totals.known_deviations
        );
        s
    }

    /// JUnit XML: one `testsuite` per area.
    pub fn junit(&self) -> Result<String, quick_junit::SerializeError> {
        let mut report = JunitReport::new("simlab-conformance");
        let mut suites: BTreeMap<&str, TestSuite> = BTreeMap::new();
        for c in &self.cases {
            let status = match (&c.outcome, c.verdict()) {
                (Outcome::Passed, _) => TestCaseStatus::success(),
                (Outcome::Skipped { reason }, _) => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(reason.as_str());
                    s
                }
                (Outcome::Failed { .. }, Verdict::KnownDeviation) => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(format!(
                        "known deviation: {}",
                        c.deviation.as_deref().unwrap_or_default()
                    ));
                    s.set_description(failure_message(c));
                    s
                }
                (Outcome::Failed { .. }, _) => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(failure_message(c));
                    s.set_type("mismatch");
                    s.set_description(format!("{}\n{}", c.spec, failure_message(c)));
                    s
                }
                (Outcome::Error { message }, _) => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                    s.set_message(message.as_str());
                    s.set_type("transport");
                    s
                }
            };
            let mut tc = TestCase::new(c.id.as_str(), status);
            tc.set_classname(c.area.as_str());
            tc.set_time(c.duration);
            if !c.transcript.is_empty() {
                tc.set_system_out(c.transcript.as_str());
            }
            tc.add_property(quick_junit::Property::new("spec", c.spec.as_str()));
            suites
                .entry(c.area.as_str())
                .or_insert_with(|| TestSuite::new(c.area.as_str()))
                .add_test_case(tc);
        }
        report.add_test_suites(suites.into_values());
        report.to_string()
    }

    /// Writes each run case's transcript to `dir/<case id>.txt`.
    pub fn write_transcripts(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for c in self.cases.iter().filter(|c| !c.transcript.is_empty()) {
            let mut text = format!("# {} — {}\n# {}\n", c.id, c.title, c.spec);
            if let Some(m) = failure_details(c) {
                let _ = writeln!(text, "# {}", m.replace('\n', "\n# "));
            }
            text.push_str(&c.transcript);
            std::fs::write(dir.join(format!("{}.txt", c.id)), text)?;
        }
        Ok(())
    }
}

fn failure_details(c: &CaseResult) -> Option<String> {
    match &c.outcome {
        Outcome::Failed { .. } => Some(failure_message(c)),
        Outcome::Error { message } => Some(format!("transport error: {message}")),
        _ => None,
    }
}

/// `line N: expected …, got …`.
pub fn failure_message(c: &CaseResult) -> String {
    match &c.outcome {
        Outcome::Failed {
            line,
            expected,
            got,
        } => format!("{}:{line}: expected {expected}\n  got {got}", c.file),
        Outcome::Error { message } => message.clone(),
        _ => String::new(),
    }
}

fn failure_text(c: &CaseResult) -> String {
    let mut s = format!(
        "FAILED {} — {}\n  {}\n  {}\n",
        c.id,
        c.title,
        c.spec,
        failure_message(c)
    );
    for l in c.transcript.lines() {
        let _ = writeln!(s, "    {l}");
    }
    s
}
