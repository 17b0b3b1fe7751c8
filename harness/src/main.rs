//! `simlab`: the command line. Each subcommand lives in its own module (clap arguments and a
//! `run(args, out)`); this file only parses, sets up logging and prints the outcome.

use clap::{Parser, Subcommand};
use simlab_harness::output::Output;
use simlab_harness::{aka_cli, apdu, bench, card_cli, lpa, network, ota, pki, transcript};
use std::io::IsTerminal as _;

#[derive(Parser, Debug)]
#[command(
    name = "simlab",
    version,
    about = "A virtual UICC/eUICC and conformance harness",
    after_help = format!(
        "The shipped cards ({}), test PKI and TS.48 templates are built in; \
         --card/--pki/--templates override them. RUST_LOG=debug logs more.",
        simlab_harness::defaults::CARD_NAMES.join(", ")
    )
)]
struct Cli {
    /// Print one JSON document on stdout ({"ok": true, "result": …} or {"ok": false,
    /// "error": …}) instead of text; accepted anywhere on the line.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The emulated card: serve it to pcscd, or check it end to end.
    #[command(subcommand)]
    Card(card_cli::CardCommand),
    /// Send APDUs to a card; say what each status word means and decode what is recognised.
    Apdu(apdu::ApduArgs),
    /// List the PC/SC readers pcscd knows.
    Readers,
    /// Test PKI (SGP.26 layout): generate one, or export the built-in one.
    #[command(subcommand)]
    Pki(pki::cli::PkiCommand),
    /// Measure APDU rates, profile downloads or the flows, side by side with a baseline, with ratios.
    Bench(bench::BenchArgs),
    /// The LPA: chip info, profiles, download, enable/disable/delete, notifications.
    Lpa(lpa::cli::LpaArgs),
    /// The emulated operator network: SM-DP+ (ES9+, ES2+ over HTTPS), entitlement, SMS centre,
    /// contract page, BOSS, HLR and calls, in one process.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Authentication vectors (3GPP TS 33.102) for authenticating a card by hand.
    #[command(subcommand)]
    Aka(aka_cli::AkaCommand),
    /// Download transcripts: normalise one, or compare two.
    #[command(subcommand)]
    Transcript(transcript::cli::TranscriptCommand),
    /// The seed's flows end to end: `flows list`, `flows run [NAME|FILE…]`.
    #[command(subcommand)]
    Flows(simlab_harness::flows::cli::FlowsCommand),
    /// Remote card management over the air: SCP80 secured packets by SMS-PP to RFM.
    #[command(subcommand)]
    Ota(ota::cli::OtaCommand),
    /// Conformance suites: run the cases of vectors/conformance against any card.
    #[command(subcommand)]
    Suite(simlab_harness::suite::SuiteCommand),
}

/// The log filter: RUST_LOG when set, else `info` (`warn` for benchmarks, whose output is a
/// table connection logs would only interleave with), plus the APDU log when asked for.
fn log_filter(command: &Command) -> tracing_subscriber::EnvFilter {
    let default = match command {
        Command::Bench(_) => "warn",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    match command {
        Command::Card(c) if c.logs_apdus() => {
            match format!("{}=debug", simlab_harness::adapter::APDU_LOG_TARGET).parse() {
                Ok(directive) => filter.add_directive(directive),
                Err(_) => filter,
            }
        }
        _ => filter,
    }
}

/// Parses the command line. With `--json` anywhere on it, a usage error is the failure
/// envelope too (code `usage`), so scripts always get JSON; help and version print as usual.
fn parse() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let wants_json = std::env::args().skip(1).any(|a| a == "--json");
            let is_usage_error = !matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp
                    | clap::error::ErrorKind::DisplayVersion
                    | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            );
            if wants_json && is_usage_error {
                let message = e.render().to_string();
                let error = anyhow::Error::new(simlab_harness::output::CodedError::new(
                    "usage",
                    message.trim_end().trim_start_matches("error: "),
                ));
                Output::new(true).error(&error);
                std::process::exit(USAGE_EXIT_CODE);
            }
            e.exit()
        }
    }
}

/// Exit code of a command line that does not parse (clap's, and sysexits' EX_USAGE family).
const USAGE_EXIT_CODE: i32 = 2;

/// Exit code when stdout or stderr went away mid-print: 128 + SIGPIPE, what a shell shows for
/// a command-line tool ended by a closed pipe.
const CLOSED_OUTPUT_EXIT_CODE: i32 = 141;

/// `simlab … | head`: a reader that went away ends simlab quietly, as command-line tools end,
/// instead of a panic ("failed printing to stdout: Broken pipe", exit 101). Done here, once,
/// for every print of every command. SIGPIPE itself stays ignored (Rust's default) rather
/// than restored to its default action: hyper and rustls write to sockets with `writev`, which
/// raises SIGPIPE on a peer that went away, and that signal would kill `simlab network serve`
/// whenever a client dies mid-request (found by `tests/sigkill_downloads.rs`).
fn end_quietly_on_closed_output() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        // std's print macros panic with "failed printing to stdout: <io error>".
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(CLOSED_OUTPUT_EXIT_CODE);
        }
        default_hook(info);
    }));
}

fn main() {
    end_quietly_on_closed_output();
    let cli = parse();
    tracing_subscriber::fmt()
        .with_env_filter(log_filter(&cli.command))
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into files or pipes.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let out = Output::new(cli.json);
    if let Err(e) = run(cli.command, out) {
        out.error(&e);
        std::process::exit(1);
    }
}

fn run(command: Command, out: Output) -> anyhow::Result<()> {
    match command {
        Command::Card(c) => card_cli::run(c, out),
        Command::Apdu(a) => apdu::run(a, out),
        Command::Readers => apdu::readers(out),
        Command::Pki(c) => pki::cli::run(c, out),
        Command::Bench(a) => bench::run(&a, out),
        Command::Lpa(a) => lpa::cli::run(a, out),
        Command::Network(c) => network::run(c, out),
        Command::Aka(c) => aka_cli::run(c, out),
        Command::Transcript(c) => transcript::cli::run(c, out),
        Command::Flows(c) => simlab_harness::flows::cli::run(c, out),
        Command::Ota(c) => ota::cli::run(c, out),
        Command::Suite(c) => simlab_harness::suite::run(c, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    /// Every command, from `simlab` down, with its path.
    fn commands(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
        out.push((path.to_owned(), cmd.clone()));
        for sub in cmd.get_subcommands() {
            commands(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_subcommand_and_option_has_help_text() {
        let mut all = Vec::new();
        commands(&Cli::command(), "simlab", &mut all);
        let mut missing = Vec::new();
        for (path, cmd) in &all {
            if cmd.get_about().is_none() {
                missing.push(path.clone());
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} <{id}>"));
                }
            }
        }
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }

    #[test]
    fn no_help_shows_a_path_of_the_build_machine() {
        let mut all = Vec::new();
        commands(&Cli::command(), "simlab", &mut all);
        let here = env!("CARGO_MANIFEST_DIR");
        let build_root = std::path::Path::new(here)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        // The builder's home directory too (a default under ~ rendered at build time).
        let home = std::env::var("HOME").unwrap_or_default();
        for (path, mut cmd) in all {
            let help = cmd.render_long_help().to_string();
            assert!(!help.contains(&build_root), "{path}: {help}");
            assert!(
                home.len() < 2 || !help.contains(&format!("{home}/")),
                "{path}: {help}"
            );
        }
    }
}
