//! `simlab flows list` and `simlab flows run`.

use super::engine::{self, Env, NetworkSpec, Progress, StepOutcome};
use super::report::RunReport;
use super::scenario::{self, Scenario};
use crate::device::slot::{role_value, CardSpec};
use crate::output::{CodedError, Output};
use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde::Serialize;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Subcommand, Debug)]
pub enum FlowsCommand {
    /// The seed's flows with their figures, roles and variants.
    List,
    /// Replay flows end to end (default: every flow and variant, in-process cards, embedded
    /// network); exit 0 only when every one passed.
    Run(Box<RunArgs>),
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Flows (`companion-download`, or `euicc-upgrade/nfc` for one variant), scenario files
    /// (`vectors/flows/x.toml`) or directories of them; default: every flow × variant.
    pub targets: Vec<String>,
    /// `embedded` (a fresh network in this process for each scenario) or the operator URL of
    /// a running network (`simlab network serve` prints it).
    #[arg(long, default_value = "embedded")]
    pub network: String,
    /// Where a role's card is: `ROLE=reader:NAME`, `ROLE=file:CARD.toml[,state=DIR]` or
    /// `ROLE=vpcd:ADDR` (roles: `simlab flows list`). A role not given gets an in-process card.
    #[arg(long = "card", value_name = "ROLE=SPEC")]
    pub cards: Vec<String>,
    /// The definition the operator holds for a role's card (IMSI, keys, MSISDN), for cards on
    /// a reader: `ROLE=FILE`.
    #[arg(long = "card-def", value_name = "ROLE=FILE")]
    pub card_defs: Vec<String>,
    /// Write a JUnit XML report (one testcase per flow × variant).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the JSON report (every step and check) to FILE.
    #[arg(long = "json-report", alias = "json-file", value_name = "FILE")]
    pub json_file: Option<PathBuf>,
    /// Write one transcript per scenario into DIR (APDUs with ES10 names, HTTP, SMS, link).
    #[arg(long, value_name = "DIR")]
    pub transcripts: Option<PathBuf>,
    /// The repository's vectors directory (cards, PKI, profiles); default: that of the
    /// checkout simlab was built from.
    #[arg(long)]
    pub vectors: Option<PathBuf>,
    /// Certificates trusted for the SM-DP+'s TLS with --network URL (default: vectors' CI).
    #[arg(long = "trust")]
    pub trust: Vec<PathBuf>,
}

/// `flows list` as data.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Listing {
    flows: &'static [super::catalog::Flow],
}

pub fn run(cmd: FlowsCommand, out: Output) -> anyhow::Result<()> {
    match cmd {
        FlowsCommand::List => list(out),
        FlowsCommand::Run(a) => run_flows(*a, out),
    }
}

fn list(out: Output) -> anyhow::Result<()> {
    let listing = Listing {
        flows: super::catalog::FLOWS,
    };
    out.result(&listing, || {
        let mut text = String::new();
        for f in super::catalog::FLOWS {
            text.push_str(&format!(
                "{:<20} Fig. {:<11} {}\n",
                f.name, f.figures, f.summary
            ));
            let roles: Vec<String> = f
                .roles
                .iter()
                .map(|r| format!("{} ({:?}, default {})", r.name, r.kind, r.default_card))
                .collect();
            text.push_str(&format!("{:<20} roles: {}\n", "", roles.join(", ")));
            for v in f.variants {
                text.push_str(&format!("{:<20}   /{:<22} {}\n", "", v.name, v.summary));
            }
        }
        text
    })
}

fn scenarios(targets: &[String]) -> anyhow::Result<Vec<Scenario>> {
    if targets.is_empty() {
        return Ok(Scenario::all_builtin());
    }
    let mut all = Vec::new();
    for t in targets {
        let path = Path::new(t);
        if path.is_dir() {
            all.extend(
                scenario::load_dir(path).map_err(|e| CodedError::new("scenario", e.to_string()))?,
            );
        } else if t.ends_with(".toml") || path.is_file() {
            all.push(scenario::load(path).map_err(|e| CodedError::new("scenario", e.to_string()))?);
        } else {
            all.extend(Scenario::by_name(t).map_err(|e| CodedError::new("usage", e))?);
        }
    }
    Ok(all)
}

fn env(a: &RunArgs) -> anyhow::Result<Env> {
    let vectors = a
        .vectors
        .clone()
        .unwrap_or_else(|| PathBuf::from(super::BUILD_VECTORS));
    let mut env = Env::embedded(vectors);
    env.network = match a.network.as_str() {
        "embedded" => NetworkSpec::Embedded,
        url if url.starts_with("http://") || url.starts_with("https://") => {
            NetworkSpec::Url(url.trim_end_matches('/').to_owned())
        }
        other => anyhow::bail!(CodedError::new(
            "usage",
            format!(
                "--network {other:?}: expected `embedded` or the operator URL (http://HOST:PORT)"
            )
        )),
    };
    for c in &a.cards {
        let (role, spec) =
            role_value(c).map_err(|e| CodedError::new("usage", format!("--card {e}")))?;
        let spec: CardSpec = spec
            .parse()
            .map_err(|e: crate::device::slot::CardSpecError| {
                CodedError::new("usage", e.to_string())
            })?;
        env.cards.insert(role, spec);
    }
    for c in &a.card_defs {
        let (role, file) =
            role_value(c).map_err(|e| CodedError::new("usage", format!("--card-def {e}")))?;
        env.card_defs.insert(role, PathBuf::from(file));
    }
    env.trust = a.trust.clone();
    env.record = true;
    env.ask_codes = std::io::stdin().is_terminal();
    Ok(env)
}

fn run_flows(a: RunArgs, out: Output) -> anyhow::Result<()> {
    let scenarios = scenarios(&a.targets)?;
    let env = env(&a)?;
    // Roles given on the command line must exist in some flow that runs.
    for role in env.cards.keys().chain(env.card_defs.keys()) {
        let known = scenarios.iter().any(|s| s.flow.role(role).is_some());
        if !known {
            anyhow::bail!(CodedError::new(
                "usage",
                format!(
                    "no flow being run has a role {role:?} (simlab flows list shows the roles)"
                )
            ));
        }
    }
    // One line per step while it runs, when someone watches (progress goes to stderr when
    // stdout carries JSON).
    let terminal = if out.is_json() {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let progress = move |p: Progress<'_>| {
        if !terminal {
            return;
        }
        match p {
            Progress::Started { scenario } => out.progress(format!("▶ {scenario}")),
            Progress::Step { step, .. } => {
                let status = match &step.outcome {
                    StepOutcome::Ok => "ok".to_owned(),
                    StepOutcome::Refused { code } => format!("refused ({code}, as expected)"),
                    StepOutcome::Failed { message, .. } => format!("FAILED: {message}"),
                };
                out.progress(format!("  {:>6}  {} … {status}", step.id, step.title));
            }
            Progress::Check { check, .. } => {
                if !check.ok {
                    out.progress(format!("  check FAILED {}: {}", check.what, check.detail));
                }
            }
        }
    };
    let start = Instant::now();
    let results: Vec<_> = scenarios
        .iter()
        .map(|s| engine::run(s, &env, &progress))
        .collect();
    let network = match &env.network {
        NetworkSpec::Embedded => "embedded".to_owned(),
        NetworkSpec::Url(u) => u.clone(),
    };
    let report = RunReport::new(network, results, start.elapsed().as_secs_f64() * 1e3);
    if let Some(dir) = &a.transcripts {
        report.write_transcripts(dir)?;
    }
    if let Some(file) = &a.junit {
        std::fs::write(file, report.junit()?)
            .with_context(|| format!("writing {}", file.display()))?;
    }
    if let Some(file) = &a.json_file {
        std::fs::write(file, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", file.display()))?;
    }
    let passed = report.all_passed();
    out.result(&report, || report.table())?;
    if !passed {
        return Err(CodedError::new(
            "flows-failed",
            format!("{} of {} flows failed", report.failed, report.flows.len()),
        )
        .into());
    }
    Ok(())
}
