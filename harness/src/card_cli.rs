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

/// The PC/SC reader name of the vpcd slot at `addr` (docs/vpcd.md): port 35963 + N is
/// "Virtual PCD 00 0N" in Debian's vpcd configuration.
pub fn vpcd_reader_name(addr: &str) -> anyhow::Result<String> {
    let slot = addr
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .and_then(|p| p.checked_sub(simlab_vpcd::VPCD_BASE_PORT))
        .filter(|n| *n < 100)
        .ok_or_else(|| {
            CodedError::new(
                "usage",
                format!(
                    "vpcd address {addr:?}: expected host:port with port {} + slot",
                    simlab_vpcd::VPCD_BASE_PORT
                ),
            )
        })?;
    Ok(format!("Virtual PCD 00 {slot:02}"))
}

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
    // The help lists the built-in cards from harness::defaults, so it never goes stale.
    #[arg(
        long,
        value_name = "FILE|NAME",
        default_value = defaults::UICC,
        help = format!(
            "Card definition: a file, or a built-in card ({})",
            defaults::CARD_NAMES.join(", ")
        )
    )]
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
    /// With --listen: close a connection that sends nothing for this long (vpcd asks for the
    /// ATR every 400 ms, so a silent peer is dead); a new connection replaces a silent one
    /// at once.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub idle_timeout: f64,
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
    let idle_timeout = std::time::Duration::try_from_secs_f64(a.idle_timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            CodedError::new(
                "usage",
                format!(
                    "--idle-timeout {}: give a positive number of seconds",
                    a.idle_timeout
                ),
            )
        })?;
    let opts = simlab_vpcd::card::ServeOptions {
        idle_timeout,
        ..Default::default()
    };
    let stop = opts.stop.clone();
    ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;
    let mut vcard = VpcdCard::new(card);
    let mut listening = None;
    match &a.listen {
        Some(addr) => {
            let listener = std::net::TcpListener::bind(addr.as_str())
                .with_context(|| format!("listening on {addr}"))?;
            // The bound address, not the one asked for: with port 0 the OS picks the port, and
            // whoever points vpcd here needs to know it.
            let bound = listener
                .local_addr()
                .with_context(|| format!("listening on {addr}"))?
                .to_string();
            tracing::info!(card = %a.card.display(), listen = %bound, "serving card; vpcd connects here (reversed mode)");
            simlab_vpcd::card::serve_listener(&mut vcard, &listener, &opts)
                .with_context(|| format!("listening on {bound}"))?;
            listening = Some(bound);
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
        "listen": listening,
        "stopped": true,
    });
    out.result(&result, String::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rstest::rstest]
    #[case("127.0.0.1:35963", "Virtual PCD 00 00")]
    #[case("127.0.0.1:35964", "Virtual PCD 00 01")]
    #[case("[::1]:35965", "Virtual PCD 00 02")]
    fn vpcd_ports_map_to_reader_names(#[case] addr: &str, #[case] reader: &str) {
        assert_eq!(vpcd_reader_name(addr).unwrap(), reader);
    }

    #[test]
    fn a_port_below_vpcd_s_is_refused() {
        assert!(vpcd_reader_name("127.0.0.1:8080").is_err());
        assert!(vpcd_reader_name("localhost").is_err());
    }
}
