//! `simlab suite`: APDU conformance suites for any card — simlab's own (in-process or
//! behind vpcd), a real SIM or eUICC in a PC/SC reader, or another emulator behind vpcd.
//!
//! Cases are data (`vectors/conformance/*.cases`, format in [`parse`]), one file per area:
//! UICC basics (ETSI TS 102 221), USIM (3GPP TS 31.102), eUICC ES10a/b/c (GSMA SGP.22, with
//! identifiers in the style of the SGP.23 test specification), OTA remote file management
//! (ETSI TS 102 225/226, with the card's keysets: [`ota`]). A run probes the card
//! ([`probe`]), skips cases whose requirements the card lacks, runs the rest ([`runner`]),
//! sets the failures a deviations file lists apart ([`deviations`]), and reports as text,
//! JUnit and JSON ([`report`]). Every APDU has a deadline ([`target`]): a card that stops
//! answering ends the run with a clear error and a complete report of what ran.

pub mod case;
pub mod deviations;
pub mod es10;
pub mod ota;
pub mod parse;
pub mod probe;
pub mod report;
pub mod runner;
pub mod target;

use crate::output::{CodedError, Output};
use anyhow::Context as _;
use clap::{Args, Subcommand};
use deviations::Deviations;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::time::Duration;
use target::{TargetSpec, Timed};

#[derive(Subcommand, Debug)]
pub enum SuiteCommand {
    /// Run conformance cases against a card and report (text, JUnit, JSON).
    Run(Box<RunArgs>),
    /// List the cases (identifier, area, requirements, spec clause) without a card.
    List(ListArgs),
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false, id = "target")]
pub struct TargetArgs {
    /// A PC/SC reader (exact name or unique prefix), e.g. "Virtual PCD 00 00".
    #[arg(long)]
    pub reader: Option<String>,
    /// simlab's card from this definition file, in-process.
    #[arg(long)]
    pub card: Option<PathBuf>,
    /// Play vpcd: listen on this address until a card connects (another emulator, or
    /// `simlab card serve --vpcd ADDR`).
    #[arg(long)]
    pub vpcd: Option<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// A directory of *.cases files, or one file.
    #[arg(default_value = "vectors/conformance")]
    pub cases: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    /// With --card: keep the card's persistent state in this directory.
    #[arg(long, requires = "card")]
    pub state: Option<PathBuf>,
    /// Only cases whose identifier matches this glob (repeatable), e.g. 'TC_eUICC_ES10c.*'.
    #[arg(long)]
    pub filter: Vec<String>,
    /// The card's deviations file (TOML: [card] provides, [deviations] pattern = reason).
    #[arg(long)]
    pub deviations: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write the JSON report here (`--json`, simlab's global flag, prints it on stdout).
    #[arg(long, value_name = "FILE")]
    pub json_report: Option<PathBuf>,
    /// Write every run case's transcript to DIR/<case>.txt.
    #[arg(long, value_name = "DIR")]
    pub transcripts: Option<PathBuf>,
    /// Longest wait for one APDU's answer, in seconds; a card silent longer ends the run.
    #[arg(long, default_value_t = 20.0)]
    pub timeout: f64,
    /// The card's OTA keysets for the `ota` cases: a TOML file with `[[ota.keyset]]` tables
    /// (docs/ota.md). Default with --card: the definition's keysets.
    #[arg(long, value_name = "FILE")]
    pub ota_keys: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// A directory of *.cases files, or one file.
    #[arg(default_value = "vectors/conformance")]
    pub cases: PathBuf,
    /// Only cases whose identifier matches this glob (repeatable).
    #[arg(long)]
    pub filter: Vec<String>,
}

pub fn run(cmd: SuiteCommand, out: Output) -> anyhow::Result<()> {
    match cmd {
        SuiteCommand::Run(a) => run_suite(*a, out),
        SuiteCommand::List(a) => list(a, out),
    }
}

fn filters(globs: &[String]) -> anyhow::Result<Vec<glob::Pattern>> {
    globs
        .iter()
        .map(|g| {
            glob::Pattern::new(g).map_err(|e| {
                CodedError::new("usage", format!("--filter {g:?} is not a glob: {e}")).into()
            })
        })
        .collect()
}

fn selected(files: &[case::CaseFile], globs: &[glob::Pattern]) -> Vec<case::Case> {
    files
        .iter()
        .flat_map(|f| f.cases.iter())
        .filter(|c| globs.is_empty() || globs.iter().any(|g| g.matches(&c.id)))
        .cloned()
        .collect()
}

fn load_cases(dir: &std::path::Path) -> anyhow::Result<Vec<case::CaseFile>> {
    parse::load(dir).map_err(|e| CodedError::new("case-file", format!("{e:#}")).into())
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    id: String,
    area: String,
    title: String,
    spec: String,
    requires: Vec<String>,
    file: String,
    line: usize,
}

fn list(a: ListArgs, out: Output) -> anyhow::Result<()> {
    let files = load_cases(&a.cases)?;
    let cases: Vec<Listed> = selected(&files, &filters(&a.filter)?)
        .into_iter()
        .map(|c| Listed {
            id: c.id,
            area: c.area,
            title: c.title,
            spec: c.spec,
            requires: c.requires,
            file: c.file.display().to_string(),
            line: c.line,
        })
        .collect();
    out.result(&cases, || {
        let mut s = String::new();
        for c in &cases {
            s.push_str(&format!("{:<48} {:<6} {}\n", c.id, c.area, c.spec));
        }
        s.push_str(&format!("{} cases\n", cases.len()));
        s
    })
}

/// What to run and against which card.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// A directory of `*.cases` files, or one file.
    pub cases: PathBuf,
    pub target: TargetSpec,
    /// Globs over case identifiers; empty: every case.
    pub filters: Vec<String>,
    pub deviations: Option<PathBuf>,
    /// Longest wait for one APDU's answer.
    pub timeout: Duration,
    /// The card's OTA keysets (`[[ota.keyset]]` tables); `None`: a `--card` definition's.
    pub ota_keys: Option<PathBuf>,
}

/// The keysets `ota` steps may use: the given file's, else the card definition's.
fn ota_keys(o: &RunOptions) -> anyhow::Result<ota::OtaKeys> {
    let (source, keysets) = match (&o.ota_keys, &o.target) {
        (Some(file), _) => (
            file.display().to_string(),
            crate::ota::cli::keysets_in(file)?,
        ),
        (None, TargetSpec::Card { definition, .. }) => (
            definition.display().to_string(),
            crate::ota::cli::card_keysets(definition)?,
        ),
        (None, _) => (String::new(), Vec::new()),
    };
    Ok(ota::OtaKeys { source, keysets })
}

/// Runs the cases against the card and returns the report (also when cases failed or the
/// card went away mid-run: see [`report::RunReport::ok`] and `aborted`). Errors are what
/// prevents a run: unreadable case or deviations files, a card that cannot be reached.
pub fn execute(o: &RunOptions) -> anyhow::Result<report::RunReport> {
    let files = load_cases(&o.cases)?;
    let cases = selected(&files, &filters(&o.filters)?);
    if cases.is_empty() {
        return Err(CodedError::new(
            "usage",
            format!("no case matches the --filter globs {:?}", o.filters),
        )
        .into());
    }
    let deviations = match &o.deviations {
        Some(p) => Deviations::load(p).map_err(|e| {
            let message = format!("{e:#}");
            anyhow::Error::new(CodedError::new("deviations-file", message))
        })?,
        None => Deviations::default(),
    };
    let keys = ota_keys(o)?;
    let spec = &o.target;
    let mut card = Timed::connect(spec, o.timeout).map_err(|e| {
        e.context(CodedError::new(
            "transport",
            format!("cannot reach the {spec}"),
        ))
    })?;
    let (atr, mut caps) = match crate::transport::Transport::reset(&mut card)
        .and_then(|atr| probe::probe(&mut card).map(|c| (atr, c)))
    {
        Ok(x) => x,
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(CodedError::new("transport", format!("probing the {spec}"))))
        }
    };
    caps.declare(&deviations.provides);
    caps.ota_keysets(&keys);
    let mut ota_session = ota::OtaSession::new(keys);

    let progress = ProgressBar::new(cases.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut results = Vec::with_capacity(cases.len());
    let mut aborted = None;
    let mut not_run = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        if aborted.is_some() {
            not_run.push(case.id.clone());
            continue;
        }
        progress.set_message(case.id.clone());
        let mut result = match caps.missing(&case.requires) {
            Some(reason) => runner::CaseResult::skipped(case, reason),
            None => runner::run_case(&mut card, case, &caps.vars, &mut ota_session),
        };
        result.deviation = deviations.reason(&case.id).map(str::to_owned);
        if let runner::Outcome::Error { message } = &result.outcome {
            aborted = Some(format!(
                "the card stopped answering during {} ({message}); {} cases not run",
                case.id,
                cases.len() - n - 1
            ));
        }
        results.push(result);
        progress.inc(1);
    }
    progress.finish_and_clear();

    let ids: Vec<&str> = files
        .iter()
        .flat_map(|f| f.cases.iter().map(|c| c.id.as_str()))
        .collect();
    let unused = deviations
        .unused(&ids)
        .into_iter()
        .map(str::to_owned)
        .collect();
    Ok(report::RunReport::new(
        report::RunInfo {
            target: spec.to_string(),
            card: deviations.card_name.clone(),
            atr: hex::encode_upper(&atr),
            capabilities: caps,
            not_run,
            aborted,
            unused_deviations: unused,
        },
        results,
    ))
}

fn run_suite(a: RunArgs, out: Output) -> anyhow::Result<()> {
    if !(a.timeout.is_finite() && a.timeout > 0.0) {
        return Err(
            CodedError::new("usage", "--timeout must be a positive number of seconds").into(),
        );
    }
    let target = match (a.target.reader, a.target.card, a.target.vpcd) {
        (Some(r), _, _) => TargetSpec::Reader(r),
        (_, Some(c), _) => TargetSpec::Card {
            definition: c,
            state: a.state,
        },
        (_, _, Some(v)) => TargetSpec::Vpcd(v),
        _ => return Err(CodedError::new("usage", "give one of --reader, --card or --vpcd").into()),
    };
    let report = execute(&RunOptions {
        cases: a.cases,
        target,
        filters: a.filter,
        deviations: a.deviations,
        timeout: Duration::from_secs_f64(a.timeout),
        ota_keys: a.ota_keys,
    })?;
    let aborted = report.aborted.clone();
    if let Some(path) = &a.junit {
        let xml = report.junit().context("building the JUnit report")?;
        std::fs::write(path, xml).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &a.json_report {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(dir) = &a.transcripts {
        report
            .write_transcripts(dir)
            .with_context(|| format!("writing transcripts to {}", dir.display()))?;
    }
    if let Some(why) = aborted {
        if !out.is_json() {
            crate::output::print_stdout(&report.text());
        }
        return Err(CodedError::new("transport", why).into());
    }
    if report.ok() {
        out.result(&report, || report.text())
    } else {
        if !out.is_json() {
            crate::output::print_stdout(&report.text());
        }
        Err(CodedError::new(
            "suite-failed",
            format!(
                "{} of {} cases failed unexpectedly",
                report.totals.failed,
                report.totals.total()
            ),
        )
        .into())
    }
}
