//! `simlab pki`: generate a test PKI (SGP.26 layout) with a card definition of an eUICC that
//! uses it, or export the built-in one.

use super::{cert_path, curves_from_arg, generate, Curve, PkiOptions, Role};
use crate::defaults::Files;
use crate::output::{CodedError, Output};
use clap::{Args, Subcommand};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// File name of the card definition `pki generate` writes next to the PKI.
pub const CARD_FILE: &str = "euicc.toml";

#[derive(Subcommand, Debug)]
pub enum PkiCommand {
    /// Write a complete test PKI (CI, EUM, eUICC, DPauth, DPpb, DPtls, with keys) and an eUICC
    /// card definition (DIR/euicc.toml) that uses it; the SM-DP+ takes it with --pki DIR.
    Generate(GenerateArgs),
    /// Write the built-in test PKI (the one every command uses by default) to a directory,
    /// e.g. to give its CI certificate to another TLS client.
    Export(ExportArgs),
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// nist, brainpool or both.
    #[arg(long, default_value = "nist")]
    pub curve: String,
    /// SM-DP+ host name for the TLS certificate (and the card's default SM-DP+ address).
    #[arg(long, default_value = super::DEFAULT_SMDP_HOST)]
    pub smdp_host: String,
    /// EID of the eUICC certificate (32 digits, valid check digits).
    #[arg(long)]
    pub eid: Option<String>,
    /// Replace a PKI or card definition already in --out.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace files already there.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CurveReport {
    curve: &'static str,
    ci_ski: String,
    files: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateReport {
    out: String,
    eid: String,
    smdp_host: String,
    card_definition: String,
    sets: Vec<CurveReport>,
}

/// The card definition of an eUICC using the PKI in its own directory: the eUICC certificate
/// and key of `curves[0]`, every curve's CI as trusted.
fn card_definition(curves: &[Curve], eid: &str, smdp_host: &str) -> String {
    let first = curves.first().copied().unwrap_or_default();
    let rel = |p: PathBuf| p.display().to_string();
    let cis: Vec<String> = curves
        .iter()
        .map(|c| format!("{:?}", rel(cert_path(Role::Ci, *c))))
        .collect();
    format!(
        "# An eUICC using the test PKI of this directory, written by `simlab pki generate`.\n\
         # TEST KEYS ONLY. Paths are relative to this file's directory.\n\n\
         [card]\nname = \"simlab eUICC (generated test PKI)\"\n\n\
         [euicc]\neid = {eid:?}\ncertificate = {:?}\nprivate_key = {:?}\n\
         eum_certificate = {:?}\nci_certificates = [{}]\ndefault_smdp_address = {smdp_host:?}\n",
        rel(cert_path(Role::Euicc, first)),
        rel(super::key_path(Role::Euicc, first)),
        rel(cert_path(Role::Eum, first)),
        cis.join(", "),
    )
}

fn refuse_overwrite(path: &Path) -> anyhow::Error {
    CodedError::new(
        "would-overwrite",
        format!(
            "{} exists: pass --force to replace it, or choose another --out",
            path.display()
        ),
    )
    .into()
}

/// Runs a `simlab pki` command.
pub fn run(cmd: PkiCommand, out: Output) -> anyhow::Result<()> {
    match cmd {
        PkiCommand::Generate(a) => {
            let mut opts = PkiOptions {
                curves: curves_from_arg(&a.curve)?,
                smdp_host: a.smdp_host,
                ..PkiOptions::default()
            };
            if let Some(eid) = a.eid {
                opts.eid = eid;
            }
            let card_path = a.out.join(CARD_FILE);
            if !a.force {
                let existing = opts
                    .curves
                    .iter()
                    .map(|c| a.out.join(cert_path(Role::Ci, *c)))
                    .chain([card_path.clone()])
                    .find(|p| p.exists());
                if let Some(p) = existing {
                    return Err(refuse_overwrite(&p));
                }
            }
            let summary = generate(&a.out, &opts)?;
            std::fs::write(
                &card_path,
                card_definition(&opts.curves, &opts.eid, &opts.smdp_host),
            )
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", card_path.display()))?;
            // The definition must load: it is the proof that card and PKI fit together.
            crate::cards::load_card(&card_path, None)?;
            let report = GenerateReport {
                out: summary.out.display().to_string(),
                eid: summary.eid.clone(),
                smdp_host: summary.smdp_host.clone(),
                card_definition: card_path.display().to_string(),
                sets: summary
                    .sets
                    .iter()
                    .map(|s| CurveReport {
                        curve: s.curve.suffix(),
                        ci_ski: hex::encode_upper(&s.ci_ski),
                        files: s.files.iter().map(|f| f.display().to_string()).collect(),
                    })
                    .collect(),
            };
            out.result(&report, || {
                format!(
                    "{summary}card definition {} (simlab card serve --card {0}; SM-DP+: simlab \
                     network serve --pki {})",
                    card_path.display(),
                    a.out.display()
                )
            })
        }
        PkiCommand::Export(a) => {
            let written = Files::pki()
                .export(&a.out, a.force)
                .map_err(|e| CodedError::new("would-overwrite", format!("{e:#}")))?;
            let files: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
            out.result(
                &serde_json::json!({"out": a.out.display().to_string(), "files": files}),
                || {
                    format!(
                        "built-in test PKI written to {} ({} files; TLS root: {})",
                        a.out.display(),
                        files.len(),
                        a.out
                            .join(cert_path(Role::Ci, Curve::Nist))
                            .with_extension("pem")
                            .display()
                    )
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_card_definition_loads_and_uses_the_generated_pki() {
        let dir = tempfile::tempdir().unwrap();
        run(
            PkiCommand::Generate(GenerateArgs {
                out: dir.path().to_owned(),
                curve: "both".into(),
                smdp_host: "smdp.example.org".into(),
                eid: None,
                force: false,
            }),
            Output::new(true),
        )
        .unwrap();
        let def = simlab_emulator::CardDefinition::load(&dir.path().join(CARD_FILE)).unwrap();
        let euicc = def.euicc.as_ref().unwrap();
        assert_eq!(euicc.ci_certificates.len(), 2);
        assert_eq!(
            euicc.default_smdp_address.as_deref(),
            Some("smdp.example.org")
        );
        def.build().unwrap();
    }

    #[test]
    fn generate_refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let args = |force| {
            PkiCommand::Generate(GenerateArgs {
                out: dir.path().to_owned(),
                curve: "nist".into(),
                smdp_host: super::super::DEFAULT_SMDP_HOST.into(),
                eid: None,
                force,
            })
        };
        run(args(false), Output::new(true)).unwrap();
        let before = std::fs::read(dir.path().join(cert_path(Role::Ci, Curve::Nist))).unwrap();
        let e = run(args(false), Output::new(true)).unwrap_err();
        assert!(e.to_string().contains("pass --force"), "{e}");
        assert_eq!(
            std::fs::read(dir.path().join(cert_path(Role::Ci, Curve::Nist))).unwrap(),
            before,
            "nothing replaced"
        );
        run(args(true), Output::new(true)).unwrap();
        assert_ne!(
            std::fs::read(dir.path().join(cert_path(Role::Ci, Curve::Nist))).unwrap(),
            before
        );
    }
}
