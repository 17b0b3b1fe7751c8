//! `simlab lpa`: the LPA on the command line, against any transport.

use super::{download_via, process_notifications, ActivationCode, DeviceInfo, Es10Client};
use crate::cards;
use crate::es9p::Es9pClient;
use crate::output::Output;
use crate::transcript::{Recording, RecordingEs9, Transcript};
use crate::transport::{InProcess, PcscReader, Transport, VpcdReader};
use anyhow::Context as _;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct LpaArgs {
    /// A PC/SC reader (exact name or unique prefix), e.g. "Virtual PCD 00 00".
    #[arg(long, group = "target")]
    pub reader: Option<String>,
    /// An emulated eUICC, in-process: a definition file, or the built-in `euicc` (with --state
    /// to keep what it installs).
    #[arg(long, group = "target", value_name = "FILE|NAME")]
    pub card: Option<PathBuf>,
    /// Card state directory for --card.
    #[arg(long, requires = "card")]
    pub state: Option<PathBuf>,
    /// Play vpcd: wait on this address for a card to connect.
    #[arg(long, group = "target")]
    pub vpcd: Option<String>,
    /// Certificates (DER or PEM) trusted for the SM-DP+'s TLS; default: the CI of the built-in
    /// test PKI (vectors/pki).
    #[arg(long = "trust", value_name = "CERT")]
    pub trust: Vec<PathBuf>,
    #[command(subcommand)]
    pub command: LpaCommand,
}

#[derive(Subcommand, Debug)]
pub enum LpaCommand {
    /// EID, EUICCInfo2 and configured addresses.
    ChipInfo,
    /// Installed profiles.
    List,
    /// Download and install a profile.
    Download {
        #[arg(long)]
        activation_code: String,
        #[arg(long)]
        confirmation_code: Option<String>,
        /// Write every APDU and ES9+ call of the download to FILE, one a line, values as they
        /// were (written on failure too).
        #[arg(long, value_name = "FILE")]
        transcript: Option<PathBuf>,
    },
    Enable {
        iccid: String,
    },
    Disable {
        iccid: String,
    },
    Delete {
        iccid: String,
    },
    Nickname {
        iccid: String,
        nickname: String,
    },
    /// Pending notifications: list, send them to their SM-DP+ (process), or remove one.
    Notifications {
        #[command(subcommand)]
        action: NotificationAction,
    },
    /// Show or set the default SM-DP+ address.
    DefaultDp {
        address: Option<String>,
    },
    /// eUICCMemoryReset: delete every operational and test profile.
    Reset,
}

#[derive(Subcommand, Debug)]
pub enum NotificationAction {
    List,
    Process,
    Remove { seq: u64 },
}

fn transport(a: &LpaArgs) -> anyhow::Result<Box<dyn Transport>> {
    Ok(match (&a.reader, &a.card, &a.vpcd) {
        (Some(r), _, _) => Box::new(PcscReader::connect(r)?),
        (_, Some(c), _) => Box::new(InProcess::new(cards::load_card(c, a.state.as_deref())?)),
        (_, _, Some(v)) => Box::new(VpcdReader::accept(v, Duration::from_secs(30))?),
        _ => anyhow::bail!("give one of --reader, --card or --vpcd"),
    })
}

fn trust_roots(a: &LpaArgs) -> anyhow::Result<Vec<Vec<u8>>> {
    if a.trust.is_empty() {
        return Ok(vec![crate::defaults::ci_certificate()?]);
    }
    a.trust
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p)
                .with_context(|| format!("reading trusted certificate {}", p.display()))?;
            Ok(pem_or_der(&bytes))
        })
        .collect()
}

/// A PEM certificate's DER, or the bytes as they are.
fn pem_or_der(bytes: &[u8]) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return bytes.to_vec();
    };
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .unwrap_or_else(|_| bytes.to_vec())
}

fn print<T: serde::Serialize + std::fmt::Debug>(
    out: Output,
    text: &str,
    value: &T,
) -> anyhow::Result<()> {
    out.result(value, || text.to_owned())
}

/// Runs one `simlab lpa` command.
pub fn run(a: LpaArgs, out: Output) -> anyhow::Result<()> {
    let record = Transcript::new();
    let mut card = transport(&a)?;
    if let LpaCommand::Download {
        transcript: Some(_),
        ..
    } = &a.command
    {
        card = Box::new(Recording::new(card, &record));
    }
    let mut es10 = Es10Client::open(card)?;
    let json = out;
    match &a.command {
        LpaCommand::ChipInfo => {
            let eid = es10.eid()?;
            let addresses = es10.configured_addresses()?;
            let info2 = hex::encode_upper(es10.euicc_info2()?);
            let value = serde_json::json!({
                "eid": eid,
                "defaultDpAddress": addresses.default_dp_address,
                "rootDsAddress": addresses.root_ds_address,
                "euiccInfo2": info2,
            });
            let text = format!(
                "EID {eid}\ndefault SM-DP+ {}\nroot SM-DS {}\nEUICCInfo2 {info2}",
                addresses.default_dp_address.as_deref().unwrap_or("-"),
                addresses.root_ds_address
            );
            print(json, &text, &value)?;
        }
        LpaCommand::List => {
            let profiles = es10.profiles()?;
            let text = if profiles.is_empty() {
                "no profiles".to_string()
            } else {
                profiles
                    .iter()
                    .map(|p| {
                        format!(
                            "{} {:<8} {:<12} {}",
                            p.iccid,
                            p.state,
                            p.class.as_deref().unwrap_or("-"),
                            p.nickname.as_deref().or(p.name.as_deref()).unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            print(json, &text, &profiles)?;
        }
        LpaCommand::Download {
            activation_code,
            confirmation_code,
            transcript,
        } => {
            let ac: ActivationCode = activation_code.parse()?;
            let roots = trust_roots(&a)?;
            let https = Es9pClient::new(&ac.smdp_address, &roots)?;
            let done = download_via(
                &mut es10,
                &RecordingEs9::new(&https, &record),
                &ac,
                confirmation_code.as_deref(),
                &DeviceInfo::default(),
                &mut |s| tracing::info!("{s}"),
            );
            if let Some(path) = transcript {
                std::fs::write(path, record.render())
                    .with_context(|| format!("writing the transcript {}", path.display()))?;
            }
            let done = done?;
            let text = format!("installed profile {}", done.iccid.as_deref().unwrap_or("?"));
            print(json, &text, &done)?;
        }
        LpaCommand::Enable { iccid } => {
            es10.enable(iccid)?;
            print(
                json,
                &format!("enabled {iccid}"),
                &serde_json::json!({"enabled": iccid}),
            )?;
        }
        LpaCommand::Disable { iccid } => {
            es10.disable(iccid)?;
            print(
                json,
                &format!("disabled {iccid}"),
                &serde_json::json!({"disabled": iccid}),
            )?;
        }
        LpaCommand::Delete { iccid } => {
            es10.delete(iccid)?;
            print(
                json,
                &format!("deleted {iccid}"),
                &serde_json::json!({"deleted": iccid}),
            )?;
        }
        LpaCommand::Nickname { iccid, nickname } => {
            es10.set_nickname(iccid, nickname)?;
            print(
                json,
                &format!("{iccid} is now {nickname:?}"),
                &serde_json::json!({"iccid": iccid, "nickname": nickname}),
            )?;
        }
        LpaCommand::Notifications { action } => match action {
            NotificationAction::List => {
                let list = es10.list_notifications()?;
                let rows: Vec<serde_json::Value> = list
                    .iter()
                    .map(|n| {
                        serde_json::json!({
                            "seq": n.seq_number,
                            "operation": format!("{:?}", n.operation),
                            "address": n.notification_address,
                            "iccid": n.iccid.as_ref().map(|i| i.digits()),
                        })
                    })
                    .collect();
                let text = if rows.is_empty() {
                    "no notifications".to_string()
                } else {
                    list.iter()
                        .map(|n| {
                            format!(
                                "{} {:?} {}",
                                n.seq_number, n.operation, n.notification_address
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                print(json, &text, &rows)?;
            }
            NotificationAction::Process => {
                let roots = trust_roots(&a)?;
                let n = process_notifications(&mut es10, &roots, &mut |s| tracing::info!("{s}"))?;
                print(
                    json,
                    &format!("{n} notifications sent"),
                    &serde_json::json!({"sent": n}),
                )?;
            }
            NotificationAction::Remove { seq } => {
                es10.remove_notification(*seq)?;
                print(
                    json,
                    &format!("removed notification {seq}"),
                    &serde_json::json!({"removed": seq}),
                )?;
            }
        },
        LpaCommand::DefaultDp { address } => {
            if let Some(addr) = address {
                es10.set_default_dp(addr)?;
            }
            let current = es10.configured_addresses()?.default_dp_address;
            print(
                json,
                &format!("default SM-DP+ {}", current.as_deref().unwrap_or("-")),
                &serde_json::json!({"defaultDpAddress": current}),
            )?;
        }
        LpaCommand::Reset => {
            es10.memory_reset()?;
            print(
                json,
                "all profiles deleted",
                &serde_json::json!({"reset": true}),
            )?;
        }
    }
    es10.close();
    Ok(())
}
