//! `simlab network`: the emulated operator network on loopback (docs/network.md): the SM-DP+
//! (SGP.22 v2.5 ES9+ and ES2+ over HTTPS, [`crate::smdp`]) and the operator's services over HTTP
//! in the same process and database ([`server`]: entitlement server with EAP-AKA and SMS codes,
//! contract page, SMS centre, BOSS, HLR and calls, admin API), its typed client ([`client`]),
//! and orders placed on the SM-DP+ (ES2+ DownloadOrder + ConfirmOrder, printing the activation
//! code of SGP.22 §4.1).
//!
//! The binary adds one line: `Network(#[command(subcommand)] NetworkCommand)` dispatched to
//! [`run`].

pub mod client;
pub mod contract;
pub mod db;
pub mod error;
pub mod es2;
pub mod es2_tls;
pub mod http;
pub mod ota;
pub mod server;
pub mod service;
pub mod ts43;

use crate::defaults::{BuiltIn, Files};
use crate::output::{CodedError, Output};
use crate::pki;
use crate::smdp::{self, ConfirmOrderRequest, DownloadOrderRequest, Es2pClient, SmdpOptions};
use anyhow::Context as _;
use server::OperatorArgs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;

/// Default SM-DP+ port of `simlab network serve` (ES9+, what activation codes name).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
/// Default ES2+ port (the operator's, mutual TLS).
pub const DEFAULT_ES2_LISTEN: &str = "127.0.0.1:8444";

#[derive(clap::Subcommand, Debug)]
pub enum NetworkCommand {
    /// Serve the SM-DP+ (ES9+ and ES2+ over HTTPS) and the operator services until
    /// interrupted; prints every address, the CA certificate clients must trust and an example
    /// activation code. With --smdp URL, only the operator services, against that SM-DP+.
    Serve {
        /// Address ES9+ listens on (port 0 picks a free port); a warning is logged when it is
        /// not a loopback address.
        #[arg(long, default_value = DEFAULT_LISTEN, conflicts_with = "smdp")]
        listen: SocketAddr,
        /// Address ES2+ listens on: mutual TLS, operator client certificates only.
        #[arg(long, default_value = DEFAULT_ES2_LISTEN, conflicts_with = "smdp")]
        es2_listen: SocketAddr,
        /// Operator CA (DER or PEM) ES2+ clients must chain to [default: the PKI's
        /// Operator/CERT_OPERATOR_CA_NIST.der].
        #[arg(long, value_name = "FILE", conflicts_with = "smdp")]
        operator_ca: Option<PathBuf>,
        /// Host name to advertise instead of the listen IP (must be in the DPtls SAN).
        #[arg(long, conflicts_with = "smdp")]
        host: Option<String>,
        /// SQLite database file (default: in memory, lost on exit).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Test PKI directory (SGP.26 layout); default: the built-in test PKI.
        #[arg(long, value_name = "DIR")]
        pki: Option<PathBuf>,
        /// Curve of DPauth/DPpb: nist or brainpool (TLS always uses the NIST DPtls).
        #[arg(long, default_value = "nist", conflicts_with = "smdp")]
        curve: String,
        /// Directory of SAIP profile templates (`*.der`); default: the built-in TS.48 ones.
        #[arg(long, value_name = "DIR")]
        templates: Option<PathBuf>,
        /// Do not send ReplaceSessionKeys (`A2`) in bound packages.
        #[arg(long, conflicts_with = "smdp")]
        no_replace_session_keys: bool,
        /// HTTPS URL receiving the SM-DP+'s ES2+.HandleDownloadProgressInfo, called with
        /// mutual TLS (CERT.DP.TLS as client certificate; the server's must chain to the
        /// operator CA) [default: this network's BOSS, --operator-es2-listen].
        #[arg(long, value_name = "URL", conflicts_with = "smdp")]
        es2_callback: Option<String>,
        /// Lifetime of an ES9+ session in seconds; afterwards it answers "TransactionId –
        /// Unknown" and is purged.
        #[arg(long, value_name = "SECONDS", default_value_t = smdp::DEFAULT_SESSION_TTL.as_secs(), conflicts_with = "smdp")]
        session_ttl: u64,
        // Boxed: the operator's options would make every `simlab` command as large.
        #[command(flatten)]
        operator: Box<OperatorArgs>,
    },
    /// Place an order (DownloadOrder + ConfirmOrder with release) and print its activation code.
    Order {
        /// Template file stem (the built-in TS.48 templates: see `vectors/profiles`).
        #[arg(long)]
        template: String,
        /// Bind the order to this EID.
        #[arg(long)]
        eid: Option<String>,
        /// Require this confirmation code.
        #[arg(long)]
        confirmation_code: Option<String>,
        /// The ES2+ port of a running SM-DP+ (`https://host:port` or `host:port`; `simlab
        /// network serve` listens on 127.0.0.1:8444), reached with the PKI's operator client
        /// certificate (mutual TLS).
        #[arg(long, conflicts_with = "db")]
        server: Option<String>,
        /// Or write the order into this SM-DP+ database directly.
        #[arg(long)]
        db: Option<PathBuf>,
        /// SM-DP+ address for the activation code in `--db` mode.
        #[arg(long, default_value = DEFAULT_LISTEN)]
        address: String,
        /// Test PKI directory (its CI is the TLS root for `--server`, its Operator/ BOSS
        /// certificate and key the client identity); default: the built-in test PKI.
        #[arg(long, value_name = "DIR")]
        pki: Option<PathBuf>,
        /// Directory of SAIP profile templates (`--db` mode); default: the built-in ones.
        #[arg(long, value_name = "DIR")]
        templates: Option<PathBuf>,
    },
}

/// Blocks until Ctrl-C (SIGINT).
fn wait_for_ctrl_c() -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .context("installing the Ctrl-C handler")?;
    let _ = rx.recv();
    Ok(())
}

/// `network serve --smdp URL`: prints what runs (the operator services) and what the SM-DP+
/// elsewhere must do (send its progress to this BOSS's ES2+ endpoint), then serves until
/// Ctrl-C.
fn serve_against_remote(
    network: server::RunningNetwork,
    provisioned: &[db::LineView],
    out: Output,
) -> anyhow::Result<()> {
    let urls = network.urls();
    let result = serde_json::json!({
        "smdp": {
            "address": network.smdp_address(),
            "es2Url": network.network().options().smdp_es2_url,
        },
        "operatorUrl": network.operator_url(),
        "es2CallbackUrl": network.es2_callback_url(),
        "operator": urls["urls"],
        "subscribers": provisioned,
    });
    out.result(&result, || {
        format!(
            "Against the SM-DP+ at https://{address} (ES2+ {es2})\n  \
             that SM-DP+ must send HandleDownloadProgressInfo to {callback} (mutual TLS; \
             `simlab network serve --es2-callback {callback}`)\n\
             {operator}  Ctrl-C stops",
            address = network.smdp_address(),
            es2 = network.network().options().smdp_es2_url,
            callback = network.es2_callback_url(),
            operator = server::urls_text(&network, provisioned),
        )
    })?;
    wait_for_ctrl_c()?;
    network.stop();
    Ok(())
}

fn curve(arg: &str) -> anyhow::Result<pki::Curve> {
    pki::curves_from_arg(arg)?
        .first()
        .copied()
        .context("a single curve: nist or brainpool")
}

/// What `simlab network order` ordered: what the operator provisions in its HSS, and the
/// activation code for the device.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderReport {
    pub iccid: String,
    pub template: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imsi: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msisdn: Option<String>,
    pub matching_id: String,
    pub activation_code: String,
    pub confirmation_code_required: bool,
}

impl OrderReport {
    fn text(&self) -> String {
        let mut t = format!("ICCID           {}\n", self.iccid);
        for (name, v) in [
            ("IMSI", &self.imsi),
            ("K", &self.k),
            ("OPc", &self.opc),
            ("MSISDN", &self.msisdn),
            ("EID", &self.eid),
        ] {
            if let Some(v) = v {
                t.push_str(&format!("{name:<16}{v}\n"));
            }
        }
        t.push_str(&format!("matching ID     {}\n", self.matching_id));
        t.push_str(&format!("activation code {}", self.activation_code));
        if self.confirmation_code_required {
            t.push_str("  (download with --confirmation-code)");
        }
        t
    }
}

/// Runs a `simlab network` subcommand.
pub fn run(cmd: NetworkCommand, out: Output) -> anyhow::Result<()> {
    match cmd {
        NetworkCommand::Serve {
            listen,
            es2_listen,
            operator_ca,
            host,
            db,
            pki,
            curve: curve_arg,
            templates,
            no_replace_session_keys,
            es2_callback,
            session_ttl,
            operator,
        } => {
            let mut opts = SmdpOptions::new(
                Files::or_built_in(pki.as_deref(), BuiltIn::Pki),
                Files::or_built_in(templates.as_deref(), BuiltIn::Profiles),
            );
            opts.listen = listen;
            opts.es2_listen = es2_listen;
            opts.operator_ca = operator_ca;
            opts.session_ttl = std::time::Duration::from_secs(session_ttl);
            opts.public_host = host;
            opts.db = db;
            opts.curve = curve(&curve_arg)?;
            opts.replace_session_keys = !no_replace_session_keys;
            opts.es2_callback_url = es2_callback;
            let (network, provisioned) = operator.start(opts)?;
            let Some(running) = network.smdp() else {
                return serve_against_remote(network, &provisioned, out);
            };
            let example = running
                .smdp()
                .templates()
                .next()
                .map(|t| running.smdp().activation_code(t))
                .unwrap_or_default();
            let result = serde_json::json!({
                "address": running.address,
                "es9Url": format!("https://{}/gsma/rsp2/es9plus/", running.address),
                "es2Address": running.es2_address,
                "es2Url": format!("https://{}/gsma/rsp2/es2plus/", running.es2_address),
                "caCertificate": running.ca_cert_path.display().to_string(),
                "exampleActivationCode": example,
                "templates": running.smdp().templates().collect::<Vec<_>>(),
                "operatorUrl": network.operator_url(),
                "operator": network.urls()["urls"],
                "subscribers": provisioned,
            });
            out.result(&result, || {
                format!(
                    "SM-DP+ listening on https://{addr}\n  ES9+: https://{addr}/gsma/rsp2/es9plus/...\n  \
                     ES2+: https://{es2}/gsma/rsp2/es2plus/... (operator client certificate \
                     required)\n  TLS root (CI) certificate: {ca}\n  \
                     example activation code (template as is): {example}\n  \
                     personalised order: simlab network order --server {es2} --template NAME\n\
                     {operator}  Ctrl-C stops",
                    addr = running.address,
                    es2 = running.es2_address,
                    ca = running.ca_cert_path.display(),
                    operator = server::urls_text(&network, &provisioned),
                )
            })?;
            wait_for_ctrl_c()?;
            network.stop();
            Ok(())
        }
        NetworkCommand::Order {
            template,
            eid,
            confirmation_code,
            server,
            db,
            address,
            pki,
            templates,
        } => {
            let report = match (server, db) {
                (Some(server), _) => {
                    let pki = Files::or_built_in(pki.as_deref(), BuiltIn::Pki);
                    let client = Es2pClient::from_pki(&server, pki)?;
                    let ordered = client.download_order(&DownloadOrderRequest {
                        eid: eid.clone(),
                        profile_type: Some(template.clone()),
                        ..Default::default()
                    })?;
                    let confirmed = client.confirm_order(&ConfirmOrderRequest {
                        iccid: ordered.iccid.clone(),
                        confirmation_code: confirmation_code.clone(),
                        release_flag: true,
                        ..Default::default()
                    })?;
                    // SGP.22 §5.3.2: the SM-DP+ names its ES9+ address; the ES2+ one differs.
                    let smdp_address = confirmed
                        .smdp_address
                        .context("ConfirmOrder answered no smdpAddress for the activation code")?;
                    let subscriber = ordered.subscriber.unwrap_or_default();
                    OrderReport {
                        iccid: ordered.iccid,
                        template,
                        eid,
                        imsi: subscriber.imsi,
                        k: subscriber.k,
                        opc: subscriber.opc,
                        msisdn: subscriber.msisdn,
                        activation_code: format!("LPA:1${smdp_address}${}", confirmed.matching_id),
                        matching_id: confirmed.matching_id,
                        confirmation_code_required: confirmation_code.is_some(),
                    }
                }
                (None, Some(db)) => {
                    let mut opts = SmdpOptions::new(
                        Files::or_built_in(pki.as_deref(), BuiltIn::Pki),
                        Files::or_built_in(templates.as_deref(), BuiltIn::Profiles),
                    );
                    opts.db = Some(db);
                    let smdp = smdp::Smdp::open(&opts, &address)?;
                    let (order, ac) = smdp
                        .order_activation_code(
                            &template,
                            eid.as_deref(),
                            confirmation_code.as_deref(),
                        )
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    OrderReport {
                        iccid: order.iccid,
                        template,
                        eid,
                        imsi: order.imsi,
                        k: order.k.map(hex::encode_upper),
                        opc: order.opc.map(hex::encode_upper),
                        msisdn: order.msisdn,
                        matching_id: order.matching_id.unwrap_or_default(),
                        activation_code: ac,
                        confirmation_code_required: confirmation_code.is_some(),
                    }
                }
                (None, None) => {
                    return Err(CodedError::new(
                        "usage",
                        "give --server ADDR (a running SM-DP+) or --db FILE",
                    )
                    .into())
                }
            };
            out.result(&report, || report.text())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: NetworkCommand,
    }

    #[test]
    fn parses_order_with_a_server() {
        let cli = Cli::parse_from([
            "simlab",
            "order",
            "--template",
            "TS48v4_SAIP2.3_BERTLV",
            "--server",
            "127.0.0.1:8443",
            "--confirmation-code",
            "1234",
        ]);
        match cli.cmd {
            NetworkCommand::Order {
                template,
                server,
                confirmation_code,
                ..
            } => {
                assert_eq!(template, "TS48v4_SAIP2.3_BERTLV");
                assert_eq!(server.as_deref(), Some("127.0.0.1:8443"));
                assert_eq!(confirmation_code.as_deref(), Some("1234"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn serve_takes_the_transfer_lifetime_in_seconds() {
        let cli = Cli::parse_from(["simlab", "serve", "--transfer-ttl", "120"]);
        let NetworkCommand::Serve { operator, .. } = cli.cmd else {
            panic!("{:?}", cli.cmd)
        };
        assert_eq!(operator.transfer_ttl, 120);
        let cli = Cli::parse_from(["simlab", "serve"]);
        let NetworkCommand::Serve { operator, .. } = cli.cmd else {
            panic!("{:?}", cli.cmd)
        };
        assert_eq!(
            operator.transfer_ttl,
            server::DEFAULT_TRANSFER_TTL.as_secs()
        );
        assert!(Cli::try_parse_from(["simlab", "serve", "--transfer-ttl", "-1"]).is_err());
    }

    #[test]
    fn the_boss_es2_endpoint_is_free_when_the_operator_port_is() {
        let es2 = |args: &[&str]| {
            let mut all = vec!["simlab", "serve"];
            all.extend_from_slice(args);
            let NetworkCommand::Serve { operator, .. } = Cli::parse_from(all).cmd else {
                panic!()
            };
            operator.es2_listen().unwrap().to_string()
        };
        assert_eq!(es2(&[]), server::DEFAULT_OPERATOR_ES2_LISTEN);
        assert_eq!(es2(&["--operator-listen", "127.0.0.1:0"]), "127.0.0.1:0");
        assert_eq!(
            es2(&[
                "--operator-listen",
                "127.0.0.1:0",
                "--operator-es2-listen",
                "127.0.0.1:9445"
            ]),
            "127.0.0.1:9445"
        );
        assert_eq!(
            es2(&["--operator-listen", "127.0.0.1:8081"]),
            server::DEFAULT_OPERATOR_ES2_LISTEN
        );
    }

    #[test]
    fn serve_takes_a_remote_smdp_with_its_address() {
        let cli = Cli::parse_from([
            "simlab",
            "serve",
            "--smdp",
            "https://127.0.0.1:9444",
            "--smdp-address",
            "127.0.0.1:9443",
        ]);
        let NetworkCommand::Serve { operator, db, .. } = cli.cmd else {
            panic!()
        };
        let remote = operator.remote_smdp(&Files::pki(), db).unwrap().unwrap();
        assert_eq!(remote.es2_url, "https://127.0.0.1:9444");
        assert_eq!(remote.address, "127.0.0.1:9443");
        assert_eq!(
            remote.ca_cert_der,
            crate::defaults::ci_certificate().unwrap()
        );
        // Not without the ES9+ address; not with the options of an SM-DP+ of its own.
        for args in [
            &["--smdp", "https://h:1"][..],
            &["--smdp-address", "h:1"][..],
            &[
                "--smdp",
                "https://h:1",
                "--smdp-address",
                "h:2",
                "--es2-callback",
                "https://x",
            ][..],
            &[
                "--smdp",
                "https://h:1",
                "--smdp-address",
                "h:2",
                "--listen",
                "127.0.0.1:0",
            ][..],
        ] {
            let mut all = vec!["simlab", "serve"];
            all.extend_from_slice(args);
            assert!(Cli::try_parse_from(&all).is_err(), "{args:?}");
        }
        // ES2+ is HTTPS only; an address is host:port.
        for (args, why) in [
            (["http://h:1", "h:2"], "https://host:port"),
            (["https://h:1", "https://h:2/x"], "expected host:port"),
        ] {
            let cli = Cli::parse_from([
                "simlab",
                "serve",
                "--smdp",
                args[0],
                "--smdp-address",
                args[1],
            ]);
            let NetworkCommand::Serve { operator, .. } = cli.cmd else {
                panic!()
            };
            let e = operator.remote_smdp(&Files::pki(), None).unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
        }
    }

    #[test]
    fn refuses_server_and_db_together() {
        assert!(Cli::try_parse_from([
            "simlab",
            "order",
            "--template",
            "T",
            "--server",
            "x",
            "--db",
            "f"
        ])
        .is_err());
    }

    #[test]
    fn orders_into_a_database_file_and_prints_an_activation_code() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let db = dir.path().join("smdp.sqlite");
        run(
            NetworkCommand::Order {
                template: "TS48v4_SAIP2.3_BERTLV".into(),
                eid: None,
                confirmation_code: None,
                server: None,
                db: Some(db.clone()),
                address: DEFAULT_LISTEN.into(),
                pki: Some(root.join("vectors/pki")),
                templates: None,
            },
            Output::new(true),
        )
        .unwrap();
        let store = smdp::Store::open(Some(&db)).unwrap();
        let orders = store.orders().unwrap();
        assert_eq!(orders.len(), 1);
        assert_eq!(orders[0].state, smdp::OrderState::Released);
    }
}
