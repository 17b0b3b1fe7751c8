//! Reports of a `simlab flows run`: the summary table for people, a JUnit XML file (one
//! testcase per flow × variant, named `flow/variant` or after the scenario file), the JSON
//! result, and one transcript file per scenario.

use super::engine::{FlowResult, StepOutcome};
use anyhow::Context as _;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub network: String,
    pub passed: usize,
    pub failed: usize,
    pub millis: f64,
    pub flows: Vec<FlowResult>,
}

impl RunReport {
    pub fn new(network: String, flows: Vec<FlowResult>, millis: f64) -> Self {
        let passed = flows.iter().filter(|f| f.passed).count();
        Self {
            network,
            passed,
            failed: flows.len() - passed,
            millis,
            flows,
        }
    }

    pub fn all_passed(&self) -> bool {
        self.failed == 0
    }

    /// The summary table, then each failure's reason.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let width = self
            .flows
            .iter()
            .map(|f| f.name.len())
            .max()
            .unwrap_or(8)
            .max(8);
        let _ = writeln!(
            out,
            "{:<width$}  {:<8}  {:>5}  {:>6}  {:>9}  outcome",
            "scenario", "figures", "steps", "checks", "ms"
        );
        for f in &self.flows {
            let outcome = match (&f.failure, &f.refused) {
                (Some(fail), _) => format!("FAIL {fail}"),
                (None, Some(code)) => format!("pass (refused: {code})"),
                (None, None) => "pass".to_owned(),
            };
            let _ = writeln!(
                out,
                "{:<width$}  {:<8}  {:>5}  {:>6}  {:>9.1}  {outcome}",
                f.name,
                f.figures,
                f.steps.len(),
                f.checks.iter().filter(|c| c.ok).count(),
                f.millis,
            );
        }
        let _ = writeln!(
            out,
            "{} passed, {} failed ({:.0} ms, network: {})",
            self.passed, self.failed, self.millis, self.network
        );
        out
    }

    /// JUnit XML: suite `simlab flows`, one testcase per scenario, class = the flow.
    pub fn junit(&self) -> anyhow::Result<String> {
        let mut suite = TestSuite::new("simlab flows");
        for f in &self.flows {
            let status = match &f.failure {
                None => TestCaseStatus::success(),
                Some(fail) => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(fail.to_string());
                    if let Some(code) = &fail.code {
                        s.set_type(code.clone());
                    }
                    s.set_description(steps_text(f));
                    s
                }
            };
            let mut case = TestCase::new(f.name.clone(), status);
            case.set_classname(format!("flows.{}", f.flow));
            case.set_time(Duration::from_secs_f64(f.millis / 1e3));
            case.set_assertions(f.checks.len());
            suite.add_test_case(case);
        }
        let mut report = Report::new("simlab");
        report.set_time(Duration::from_secs_f64(self.millis / 1e3));
        report.add_test_suite(suite);
        Ok(report.to_string()?)
    }

    /// Writes one transcript per scenario into `dir` (`<name>.txt`, `/` as `_`), as recorded.
    pub fn write_transcripts(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for f in &self.flows {
            if let Some(t) = &f.transcript {
                let file = dir.join(format!("{}.txt", f.name.replace(['/', '\\'], "_")));
                let mut text = crate::transcript::render_named(&t.entries()).join("\n");
                text.push('\n');
                std::fs::write(&file, text)
                    .with_context(|| format!("writing {}", file.display()))?;
            }
        }
        Ok(())
    }
}

/// Each step on a line (the JUnit failure's description).
fn steps_text(f: &FlowResult) -> String {
    let mut out = String::new();
    for s in &f.steps {
        let status = match &s.outcome {
            StepOutcome::Ok => "ok".to_owned(),
            StepOutcome::Refused { code } => format!("refused {code}"),
            StepOutcome::Failed { message, .. } => format!("FAILED {message}"),
        };
        let _ = writeln!(out, "{:>6} {} — {status}", s.id, s.title);
    }
    for c in &f.checks {
        let _ = writeln!(
            out,
            "check {} {}: {}",
            if c.ok { "ok" } else { "FAILED" },
            c.what,
            c.detail
        );
    }
    out
}
