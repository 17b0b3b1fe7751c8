//! `simlab card`: serve an emulated card to vpcd (so pcscd and every PC/SC program see it in
//! a "Virtual PCD" reader), or run its self-test ([`crate::selftest`]).

use crate::adapter::VpcdCard;
use crate::output::{CodedError, Output};
use crate::{cards, defaults, selftest};
use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

/// The environment variable naming the vpcd slot (`host:port`) `card serve` connects to.
pub const VPCD_ENV: &str = "SIMLAB_VPCD";

#[derive(Subcommand, Debug)]
pub enum CardCommand {
    /// Serve a card to vpcd until Ctrl-C: pcscd shows it in the reader of that vpcd slot
    /// (port 35963 = "Virtual PCD 00 00", 35964 = "Virtual PCD 00 01"); reconnects when
    /// pcscd restarts.
    Serve(ServeArgs),
    /// Check a card end to end: ICCID, PIN1, IMSI, AUTHENTICATE with a network-side vector,
    /// replay → AUTS → resynchronisation, in-process and over the vpcd wire protocol; then an
    /// eUICC download from simlab's SM-DP+ over loopback HTTPS, enable, AUTHENTICATE as the
    /// downloaded profile, disable, delete.
    Selftest(SelftestArgs),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Card definition: a file, or a built-in card (uicc, euicc).
    #[arg(long, value_name = "FILE|NAME", default_value = defaults::UICC)]
    pub card: PathBuf,
    /// Directory keeping the card's persistent state (PINs, SQN, files, profiles) across runs.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// vpcd slot to connect to (host:port; port 35963 + N is reader "Virtual PCD 00 0N").
    #[arg(
        long,
        value_name = "ADDR",
        env = VPCD_ENV,
        default_value = simlab_vpcd::DEFAULT_VPCD_ADDR,
        conflicts_with = "listen"
    )]
    pub vpcd: String,
    /// Reversed mode: listen on ADDR and let vpcd connect (vpcd's DEVICENAME host:port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Log every APDU and answer on stderr (as RUST_LOG=simlab::apdu=debug does).
    #[arg(long)]
    pub log_apdus: bool,
}

#[derive(Args, Debug)]
pub struct SelftestArgs {
    /// Card definition: a file, or a built-in card (default: uicc).
    #[arg(long, value_name = "FILE|NAME")]
    pub card: Option<PathBuf>,
    /// A vectors directory for the eUICC part (cards/euicc.toml, pki/, profiles/); default:
    /// the built-in ones.
    #[arg(long, value_name = "DIR")]
    pub vectors: Option<PathBuf>,
    /// Only the UICC part.
    #[arg(long)]
    pub uicc_only: bool,
}

impl CardCommand {
    /// Whether the command asked for the APDU log.
    pub fn logs_apdus(&self) -> bool {
        matches!(
            self,
            CardCommand::Serve(ServeArgs {
                log_apdus: true,
                ..
            })
        )
    }
}

/// One part of the self-test: passed, and what it did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SelftestPart {
    passed: bool,
    transcript: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SelftestReport {
    uicc: SelftestPart,
    #[serde(skip_serializing_if = "Option::is_none")]
    euicc: Option<SelftestPart>,
}

fn part(report: &str) -> SelftestPart {
    SelftestPart {
        passed: true,
        transcript: report.lines().map(str::to_owned).collect(),
    }
}

/// Runs a `simlab card` command.
pub fn run(cmd: CardCommand, out: Output) -> anyhow::Result<()> {
    match cmd {
        CardCommand::Serve(a) => serve(a, out),
        CardCommand::Selftest(a) => {
            let selftest_failed =
                |what: &str| CodedError::new("selftest-failed", format!("{what} self-test"));
            let uicc = selftest::run(a.card.as_deref()).context(selftest_failed("UICC"))?;
            if !out.is_json() {
                out.progress(uicc.trim_end());
            }
            let euicc = if a.uicc_only {
                None
            } else {
                let report =
                    selftest::run_euicc(a.vectors.as_deref()).context(selftest_failed("eUICC"))?;
                if !out.is_json() {
                    out.progress(report.trim_end());
                }
                Some(part(&report))
            };
            let report = SelftestReport {
                uicc: part(&uicc),
                euicc,
            };
            out.result(&report, String::new)
        }
    }
}

fn serve(a: ServeArgs, out: Output) -> anyhow::Result<()> {
    let card = cards::load_card(&a.card, a.state.as_deref())?;
    let opts = simlab_vpcd::card::ServeOptions::default();
    let stop = opts.stop.clone();
    ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;
    let mut vcard = VpcdCard::new(card);
    match &a.listen {
        Some(addr) => {
            tracing::info!(card = %a.card.display(), listen = %addr, "serving card; vpcd connects here (reversed mode)");
            simlab_vpcd::card::listen(&mut vcard, addr.as_str(), &opts)
                .with_context(|| format!("listening on {addr}"))?;
        }
        None => {
            tracing::info!(card = %a.card.display(), vpcd = %a.vpcd, "serving card to vpcd; Ctrl-C stops");
            simlab_vpcd::card::serve(&mut vcard, a.vpcd.as_str(), &opts);
        }
    }
    tracing::info!("stopped");
    let result = serde_json::json!({
        "card": a.card.display().to_string(),
        "vpcd": a.listen.is_none().then_some(&a.vpcd),
        "listen": a.listen,
        "stopped": true,
    });
    out.result(&result, String::new)
}
