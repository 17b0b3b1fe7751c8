//! `simlab`: the command line. Each subcommand is a thin shell over the library.

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};
use simlab_harness::adapter::VpcdCard;
use simlab_harness::output::Output;
use simlab_harness::transport::{InProcess, PcscReader, Transport, VpcdReader};
use simlab_harness::{bench, cards, pki, selftest};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "simlab",
    version,
    about = "A virtual UICC/eUICC and conformance harness"
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
    Card(CardCommand),
    /// Send APDUs to a card and print the answers (61xx is fetched with GET RESPONSE).
    Apdu(ApduArgs),
    /// List the PC/SC readers pcscd knows.
    Readers,
    /// Test PKI (SGP.26 layout).
    #[command(subcommand)]
    Pki(PkiCommand),
    /// Measure APDU rates side by side with a null card baseline, and print the ratios.
    Bench(bench::BenchArgs),
    /// The LPA: chip info, profiles, download, enable/disable/delete, notifications.
    Lpa(simlab_harness::lpa::cli::LpaArgs),
    /// The emulated operator network (SM-DP+ with ES9+ and ES2+ over HTTPS).
    #[command(subcommand)]
    Network(simlab_harness::network::NetworkCommand),
    /// The seed's flows end to end: `flows list`, `flows run [NAME|FILE…]`.
    #[command(subcommand)]
    Flows(simlab_harness::flows::cli::FlowsCommand),
}

#[derive(Subcommand, Debug)]
enum CardCommand {
    /// Serve a card to vpcd (pcscd's "Virtual PCD 00 00") until interrupted.
    Serve(ServeArgs),
    /// Run the read-back session (ICCID, PIN, IMSI, AUTHENTICATE) against the card,
    /// in-process and over the vpcd wire protocol (default: the built-in card); then an
    /// eUICC download from simlab's SM-DP+ over loopback HTTPS, enable, AUTHENTICATE as the
    /// downloaded profile, disable, delete.
    Selftest(SelftestArgs),
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Card definition file.
    #[arg(long, default_value = "vectors/cards/uicc.toml")]
    card: PathBuf,
    /// Directory keeping the card's persistent state (PINs, SQN, files) across runs.
    #[arg(long)]
    state: Option<PathBuf>,
    /// vpcd address to connect to (its reader slot 0 listens on 35963).
    #[arg(long, default_value = simlab_vpcd::DEFAULT_VPCD_ADDR, conflicts_with = "listen")]
    vpcd: String,
    /// Reversed mode: listen here and let vpcd connect (DEVICENAME host:port).
    #[arg(long)]
    listen: Option<String>,
}

#[derive(Args, Debug)]
struct SelftestArgs {
    /// Card definition file (default: the built-in vectors/cards/uicc.toml).
    #[arg(long)]
    card: Option<PathBuf>,
    /// The repository's vectors directory, for the eUICC part (test PKI, TS.48 profiles,
    /// euicc.toml); default: the checkout the binary was built from.
    #[arg(long, default_value = simlab_harness::selftest::BUILD_VECTORS)]
    vectors: PathBuf,
    /// Only the UICC part.
    #[arg(long)]
    uicc_only: bool,
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct Target {
    /// A PC/SC reader (exact name or unique prefix), e.g. "Virtual PCD 00 00".
    #[arg(long)]
    reader: Option<String>,
    /// An emulated card from this definition file, in-process.
    #[arg(long)]
    card: Option<PathBuf>,
    /// Play vpcd: listen on this address until a card connects (e.g. 127.0.0.1:35963
    /// with no pcscd running), or with --vpcd-connect, connect to a listening card.
    #[arg(long)]
    vpcd: Option<String>,
}

#[derive(Args, Debug)]
struct ApduArgs {
    #[command(flatten)]
    target: Target,
    /// With --vpcd: connect to a card listening there instead of waiting for one.
    #[arg(long)]
    vpcd_connect: bool,
    /// APDUs in hex (spaces inside one argument are ignored).
    #[arg(required = true)]
    apdus: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum PkiCommand {
    /// Write a complete test PKI (CI, EUM, eUICC, DPauth, DPpb, DPtls) with keys.
    Generate(PkiArgs),
}

#[derive(Args, Debug)]
struct PkiArgs {
    #[arg(long)]
    out: PathBuf,
    /// nist, brainpool or both.
    #[arg(long, default_value = "nist")]
    curve: String,
    /// SM-DP+ host name for the TLS certificate.
    #[arg(long, default_value = "testsmdpplus1.example.com")]
    smdp_host: String,
    /// EID of the eUICC certificate (32 digits, valid check digits).
    #[arg(long)]
    eid: Option<String>,
}

fn main() {
    let cli = Cli::parse();
    // A benchmark's output is its table; connection logs would only interleave with it.
    let default_log = if matches!(cli.command, Command::Bench(_)) {
        "warn"
    } else {
        "info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_log.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let out = Output::new(cli.json);
    if let Err(e) = run(cli) {
        out.error(&e);
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let out = Output::new(cli.json);
    match cli.command {
        Command::Card(CardCommand::Serve(a)) => serve(a),
        Command::Card(CardCommand::Selftest(a)) => {
            let report = selftest::run(a.card.as_deref())?;
            print!("{report}");
            if !a.uicc_only {
                let report = selftest::run_euicc(&a.vectors).with_context(|| {
                    format!("eUICC self-test (vectors from {})", a.vectors.display())
                })?;
                print!("{report}");
            }
            Ok(())
        }
        Command::Apdu(a) => apdu(a),
        Command::Readers => {
            for r in PcscReader::list()? {
                println!("{r}");
            }
            Ok(())
        }
        Command::Pki(PkiCommand::Generate(a)) => {
            let mut opts = pki::PkiOptions {
                curves: pki::curves_from_arg(&a.curve)?,
                smdp_host: a.smdp_host,
                ..pki::PkiOptions::default()
            };
            if let Some(eid) = a.eid {
                opts.eid = eid;
            }
            let summary = pki::generate(&a.out, &opts)?;
            println!("{summary}");
            Ok(())
        }
        Command::Bench(a) => bench::run(&a),
        Command::Network(cmd) => simlab_harness::network::run(cmd),
        Command::Lpa(a) => simlab_harness::lpa::cli::run(a, out),
        Command::Flows(c) => simlab_harness::flows::cli::run(c, out),
    }
}

fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let card = cards::load_card(&a.card, a.state.as_deref())?;
    let opts = simlab_vpcd::card::ServeOptions::default();
    let stop = opts.stop.clone();
    ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;
    let mut vcard = VpcdCard::new(card);
    match &a.listen {
        Some(addr) => {
            tracing::info!(card = %a.card.display(), listen = %addr, "serving card; vpcd connects here (reversed mode)");
            simlab_vpcd::card::listen(&mut vcard, addr.as_str(), &opts)?;
        }
        None => {
            tracing::info!(card = %a.card.display(), vpcd = %a.vpcd, "serving card to vpcd; Ctrl-C stops");
            simlab_vpcd::card::serve(&mut vcard, a.vpcd.as_str(), &opts);
        }
    }
    tracing::info!("stopped");
    Ok(())
}

fn parse_hex(s: &str) -> anyhow::Result<Vec<u8>> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(&clean).with_context(|| format!("APDU {s:?} is not hex (example: 00A4000C023F00)"))
}

fn apdu(a: ApduArgs) -> anyhow::Result<()> {
    let apdus = a
        .apdus
        .iter()
        .map(|s| parse_hex(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut transport: Box<dyn Transport> = match (&a.target.reader, &a.target.card, &a.target.vpcd)
    {
        (Some(r), _, _) => Box::new(PcscReader::connect(r)?),
        (_, Some(c), _) => Box::new(InProcess::new(cards::load_card(c, None)?)),
        (_, _, Some(v)) if a.vpcd_connect => Box::new(VpcdReader::connect(v)?),
        (_, _, Some(v)) => Box::new(VpcdReader::accept(v, Duration::from_secs(30))?),
        _ => bail!("give one of --reader, --card or --vpcd"),
    };
    println!("ATR {}", hex::encode_upper(transport.atr()?));
    for apdu in apdus {
        let answer = transport.transmit(&apdu)?;
        println!("> {}", hex::encode_upper(&apdu));
        println!("< {}", hex::encode_upper(&answer));
    }
    Ok(())
}
