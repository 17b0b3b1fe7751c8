//! `simlab lpa`: the LPA on the command line, against any transport.

use super::chip_info::{ChipInfo, EuiccInfo2Summary};
use super::{
    download_via, process_notifications, ActivationCode, DeviceInfo, Es10Client, LpaError,
};
use crate::apdu::Target;
use crate::es9p::Es9pClient;
use crate::output::{CodedError, Output};
use crate::transcript::{Recording, RecordingEs9, Transcript};
use anyhow::Context as _;
use clap::{Args, Subcommand};
use simlab_emulator::rsp::es10::{Der as _, EuiccInfo2};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct LpaArgs {
    #[command(flatten)]
    pub target: Target,
    /// With --vpcd: connect to a card listening there (`simlab card serve --listen ADDR`)
    /// instead of waiting for one.
    #[arg(long, requires = "vpcd")]
    pub vpcd_connect: bool,
    /// State directory of an in-process --card (keeps what it installs across runs).
    #[arg(long, requires = "card", value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Certificates (DER or PEM) trusted for the SM-DP+'s TLS; default: the CI of the built-in
    /// test PKI (vectors/pki).
    #[arg(long = "trust", value_name = "CERT")]
    pub trust: Vec<PathBuf>,
    #[command(subcommand)]
    pub command: LpaCommand,
}

#[derive(Subcommand, Debug)]
pub enum LpaCommand {
    /// EID, configured addresses and EUICCInfo2 decoded (versions, free memory, capabilities,
    /// CI PKIds, PP version, SAS accreditation).
    ChipInfo,
    /// Installed profiles: ICCID, state, ISD-P AID, class, name, nickname.
    List,
    /// Download and install a profile (SGP.22 §3.1.3).
    Download {
        /// `LPA:1$<SM-DP+ address>$<matching ID>` (e.g. from `simlab network order`).
        #[arg(long, value_name = "AC")]
        activation_code: String,
        /// The confirmation code, when the order has one.
        #[arg(long, value_name = "CODE")]
        confirmation_code: Option<String>,
        /// Write every APDU and ES9+ call of the download to FILE, one a line, values as they
        /// were, each function labelled with its time (written on failure too).
        #[arg(long, value_name = "FILE")]
        transcript: Option<PathBuf>,
    },
    /// Enable a profile (the card switches to it at the next reset, as after REFRESH).
    Enable {
        /// ICCID of the profile (digits as printed).
        iccid: String,
    },
    /// Disable the enabled profile.
    Disable {
        /// ICCID of the profile.
        iccid: String,
    },
    /// Delete a disabled profile.
    Delete {
        /// ICCID of the profile.
        iccid: String,
    },
    /// Set a profile's nickname.
    Nickname {
        /// ICCID of the profile.
        iccid: String,
        /// The new nickname (up to 64 bytes UTF-8).
        nickname: String,
    },
    /// Pending notifications: list, send them to their SM-DP+ (process), or remove one.
    Notifications {
        #[command(subcommand)]
        action: NotificationAction,
    },
    /// Show or set the default SM-DP+ address.
    DefaultDp {
        /// The new address (host or host:port); without it, show the current one.
        address: Option<String>,
    },
    /// eUICCMemoryReset: delete every operational and test profile.
    Reset,
}

#[derive(Subcommand, Debug)]
pub enum NotificationAction {
    /// The notifications the eUICC holds.
    List,
    /// Send each to its SM-DP+ (ES9+ HandleNotification) and remove it when delivered.
    Process,
    /// Remove one without sending it.
    Remove {
        /// Its sequence number (from `notifications list`).
        seq: u64,
    },
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

/// A failure of the LPA as users read it: with a stable code, SGP.22 status codes when the
/// SM-DP+ gave them, and what to do where there is something to do.
fn lpa_error(e: LpaError, trusted: &[Vec<u8>]) -> anyhow::Error {
    use crate::es9p::client::Es9pError;
    use crate::lpa::isd_r::IsdRError;
    let coded = match &e {
        LpaError::Es9p(Es9pError::Failed {
            subject_code,
            reason_code,
            ..
        }) => CodedError::new("es9-error", e.to_string()).with_sgp22(subject_code, reason_code),
        LpaError::Es9p(Es9pError::Transport { reason, url, .. }) if is_trust_failure(reason) => {
            CodedError::new(
                "tls-untrusted",
                format!(
                    "the SM-DP+ at {url} presented a TLS certificate that does not chain to the \
                     trusted CI ({}): pass --trust CERT with the CI that issued its certificate \
                     (e.g. the PKI's CertificateIssuer/CERT_CI_ECDSA_NIST.der)",
                    describe_roots(trusted)
                ),
            )
        }
        LpaError::Es9p(_) => CodedError::new("es9-unreachable", e.to_string()),
        LpaError::IsdR(IsdRError::Status {
            what: "SELECT ISD-R",
            sw,
        }) => CodedError::new(
            "not-an-euicc",
            format!(
                "not an eUICC: the card has no ISD-R (SELECT {} answered {sw:04X}); use an eUICC \
                 (e.g. --card euicc)",
                hex::encode_upper(super::isd_r::ISD_R_AID)
            ),
        ),
        LpaError::IsdR(IsdRError::Status {
            what: "MANAGE CHANNEL open",
            sw,
        }) => CodedError::new(
            "not-an-euicc",
            format!(
                "the card refused to open a logical channel (MANAGE CHANNEL answered {sw:04X}): \
                 an eUICC's LPA needs one"
            ),
        ),
        LpaError::IsdR(_) => CodedError::new("transport", e.to_string()),
        LpaError::ConfirmationCodeRequired => {
            CodedError::new("confirmation-code-required", e.to_string())
        }
        LpaError::Result { .. } | LpaError::Decode { .. } => {
            CodedError::new("euicc-error", e.to_string())
        }
        LpaError::Other(_) => CodedError::new("lpa-error", e.to_string()),
    };
    coded.into()
}

/// rustls' words for a certificate chain it cannot verify with the roots it was given.
fn is_trust_failure(reason: &str) -> bool {
    [
        "UnknownIssuer",
        "invalid peer certificate",
        "BadSignature",
        "NotValidForName",
    ]
    .iter()
    .any(|w| reason.contains(w))
}

/// The trusted roots by subject and key ID, for messages.
fn describe_roots(roots: &[Vec<u8>]) -> String {
    use der::Decode as _;
    use x509_cert::ext::pkix::SubjectKeyIdentifier;
    roots
        .iter()
        .map(|der| match x509_cert::Certificate::from_der(der) {
            Ok(cert) => {
                let ski = cert
                    .tbs_certificate
                    .get::<SubjectKeyIdentifier>()
                    .ok()
                    .flatten()
                    .map(|(_, s)| format!(", key ID {}", hex::encode_upper(s.0.as_bytes())))
                    .unwrap_or_default();
                format!("{}{ski}", cert.tbs_certificate.subject)
            }
            Err(_) => "a certificate that does not parse".into(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Runs one `simlab lpa` command. The logical channel to the ISD-R is closed afterwards
/// (MANAGE CHANNEL close), whether the command succeeded or not.
pub fn run(a: LpaArgs, out: Output) -> anyhow::Result<()> {
    let record = Transcript::new();
    let mut card = a.target.open(a.vpcd_connect, a.state.as_deref())?;
    if let LpaCommand::Download {
        transcript: Some(_),
        ..
    } = &a.command
    {
        card = Box::new(Recording::new(card, &record));
    }
    let mut es10 = Es10Client::open(card).map_err(|e| lpa_error(e, &[]))?;
    let roots = if needs_roots(&a.command) {
        trust_roots(&a)?
    } else {
        Vec::new()
    };
    let result = command(&a, &mut es10, &roots, &record, out);
    es10.close();
    result.map_err(|e| match e.downcast::<LpaError>() {
        Ok(lpa) => lpa_error(lpa, &roots),
        Err(other) => other,
    })
}

fn needs_roots(c: &LpaCommand) -> bool {
    matches!(
        c,
        LpaCommand::Download { .. }
            | LpaCommand::Notifications {
                action: NotificationAction::Process
            }
    )
}

fn command(
    a: &LpaArgs,
    es10: &mut Es10Client<Box<dyn crate::transport::Transport>>,
    roots: &[Vec<u8>],
    record: &Transcript,
    out: Output,
) -> anyhow::Result<()> {
    match &a.command {
        LpaCommand::ChipInfo => {
            let eid = es10.eid()?;
            let addresses = es10.configured_addresses()?;
            let raw = es10.euicc_info2()?;
            let info2 = EuiccInfo2::from_der(&raw).map_err(|source| LpaError::Decode {
                function: "GetEUICCInfo2",
                source,
            })?;
            let info = ChipInfo {
                eid,
                default_dp_address: addresses.default_dp_address,
                root_ds_address: addresses.root_ds_address,
                euicc_info2: EuiccInfo2Summary::new(&info2, &raw),
            };
            out.result(&info, || info.text())
        }
        LpaCommand::List => {
            let profiles = es10.profiles()?;
            out.result(&profiles, || profile_table(&profiles))
        }
        LpaCommand::Download {
            activation_code,
            confirmation_code,
            transcript,
        } => {
            let ac: ActivationCode = activation_code.parse()?;
            let https = Es9pClient::new(&ac.smdp_address, roots)?;
            let done = download_via(
                es10,
                &RecordingEs9::new(&https, record),
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
            out.result(&done, || {
                format!("installed profile {}", done.iccid.as_deref().unwrap_or("?"))
            })
        }
        LpaCommand::Enable { iccid } => {
            es10.enable(iccid)?;
            out.result(&serde_json::json!({"enabled": iccid}), || {
                format!("enabled {iccid} (the card switches to it at its next reset)")
            })
        }
        LpaCommand::Disable { iccid } => {
            es10.disable(iccid)?;
            out.result(&serde_json::json!({"disabled": iccid}), || {
                format!("disabled {iccid}")
            })
        }
        LpaCommand::Delete { iccid } => {
            es10.delete(iccid)?;
            out.result(&serde_json::json!({"deleted": iccid}), || {
                format!("deleted {iccid}")
            })
        }
        LpaCommand::Nickname { iccid, nickname } => {
            es10.set_nickname(iccid, nickname)?;
            out.result(
                &serde_json::json!({"iccid": iccid, "nickname": nickname}),
                || format!("{iccid} is now {nickname:?}"),
            )
        }
        LpaCommand::Notifications { action } => match action {
            NotificationAction::List => {
                let list = es10.list_notifications()?;
                let rows: Vec<serde_json::Value> = list
                    .iter()
                    .map(|n| {
                        serde_json::json!({
                            "seqNumber": n.seq_number,
                            "profileManagementOperation": format!("{:?}", n.operation),
                            "notificationAddress": n.notification_address,
                            "iccid": n.iccid.as_ref().map(|i| i.digits()),
                        })
                    })
                    .collect();
                out.result(&rows, || {
                    if list.is_empty() {
                        return "no notifications".to_string();
                    }
                    let mut t = format!(
                        "{:>5}  {:<10} {:<21} {}",
                        "SEQ", "OPERATION", "ICCID", "SM-DP+"
                    );
                    for n in &list {
                        t.push_str(&format!(
                            "\n{:>5}  {:<10} {:<21} {}",
                            n.seq_number,
                            format!("{:?}", n.operation),
                            n.iccid.as_ref().map(|i| i.digits()).unwrap_or_default(),
                            n.notification_address
                        ));
                    }
                    t
                })
            }
            NotificationAction::Process => {
                let n = process_notifications(es10, roots, &mut |s| tracing::info!("{s}"))?;
                out.result(&serde_json::json!({"sent": n}), || {
                    format!("{n} notifications sent")
                })
            }
            NotificationAction::Remove { seq } => {
                es10.remove_notification(*seq)?;
                out.result(&serde_json::json!({"removed": seq}), || {
                    format!("removed notification {seq}")
                })
            }
        },
        LpaCommand::DefaultDp { address } => {
            if let Some(addr) = address {
                es10.set_default_dp(addr)?;
            }
            let current = es10.configured_addresses()?.default_dp_address;
            out.result(&serde_json::json!({"defaultDpAddress": current}), || {
                format!("default SM-DP+ {}", current.as_deref().unwrap_or("-"))
            })
        }
        LpaCommand::Reset => {
            es10.memory_reset()?;
            out.result(&serde_json::json!({"reset": true}), || {
                "all profiles deleted".to_owned()
            })
        }
    }
}

/// `lpa list` for people: a header, then one profile a line.
fn profile_table(profiles: &[super::ProfileSummary]) -> String {
    if profiles.is_empty() {
        return "no profiles".to_string();
    }
    let cell = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let rows: Vec<[String; 6]> = profiles
        .iter()
        .map(|p| {
            [
                p.iccid.clone(),
                p.state.clone(),
                cell(&p.isdp_aid),
                cell(&p.class),
                cell(&p.name),
                cell(&p.nickname),
            ]
        })
        .collect();
    let header = ["ICCID", "STATE", "ISD-P AID", "CLASS", "NAME", "NICKNAME"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut t = line(&header.map(str::to_owned));
    for r in &rows {
        t.push('\n');
        t.push_str(&line(r));
    }
    t
}
