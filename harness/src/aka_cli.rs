//! `simlab aka vector`: an authentication vector as the network (AuC) computes it (3GPP TS
//! 33.102 §6.3.2: RAND, AUTN = SQN ⊕ AK ‖ AMF ‖ MAC, XRES, CK, IK; Kc = c3(CK, IK), §6.8.1.2)
//! from a card definition or from K and OPc/OP, and the USIM AUTHENTICATE APDU that sends it
//! (TS 31.102 §7.1.2.1), for testers who authenticate a card by hand: the text output is an
//! APDU script `simlab apdu --script -` runs against the card.

use crate::output::{CodedError, Output};
use clap::Args;
use serde::Serialize;
use simlab_emulator::aka::{self, AkaAlgorithm, RAND_LEN, SQN_MAX};
use std::path::PathBuf;

/// TS 33.102 Annex C.3.2 with the default IND length of 5 bits: SEQ 1, IND 0 — the first
/// sequence number a fresh USIM accepts.
const DEFAULT_SQN: u64 = 32;

#[derive(clap::Subcommand, Debug)]
pub enum AkaCommand {
    /// Compute an authentication vector and the AUTHENTICATE APDU that sends it.
    Vector(VectorArgs),
}

#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("keys").required(true).args(["card", "k"]))]
pub struct VectorArgs {
    /// Take the algorithm and keys from this card definition (file or built-in name).
    #[arg(long, value_name = "FILE|NAME", conflicts_with_all = ["k", "opc", "op", "xor"])]
    pub card: Option<PathBuf>,
    /// Subscriber key K (16 bytes hex).
    #[arg(long, value_name = "HEX")]
    pub k: Option<String>,
    /// MILENAGE operator variant OPc (16 bytes hex).
    #[arg(long, value_name = "HEX", conflicts_with_all = ["op", "xor"])]
    pub opc: Option<String>,
    /// MILENAGE operator variant OP (16 bytes hex); OPc is derived from it.
    #[arg(long, value_name = "HEX", conflicts_with = "xor")]
    pub op: Option<String>,
    /// The XOR test algorithm of TS 34.108 §8.1.2 (test USIMs, GSMA TS.48 profiles).
    #[arg(long)]
    pub xor: bool,
    /// Sequence number (48 bits; a fresh card accepts 32 = SEQ 1, IND 0).
    #[arg(long, default_value_t = DEFAULT_SQN)]
    pub sqn: u64,
    /// RAND (16 bytes hex); default: random.
    #[arg(long, value_name = "HEX")]
    pub rand: Option<String>,
    /// Authentication management field (2 bytes hex; bit 0 is the E-UTRAN separation bit).
    #[arg(long, value_name = "HEX", default_value = "8000")]
    pub amf: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct VectorReport {
    algorithm: &'static str,
    sqn: u64,
    amf: String,
    rand: String,
    autn: String,
    xres: String,
    ck: String,
    ik: String,
    kc: String,
    /// The AUTHENTICATE command (3G context, P2 '81').
    authenticate_apdu: String,
    /// What a card holding these keys answers (`*` = Kc, present when GSM access is on).
    expected_answer: String,
}

fn hex_arg<const N: usize>(name: &str, value: &str) -> anyhow::Result<[u8; N]> {
    let bytes = hex::decode(value.replace(' ', "")).ok();
    bytes.and_then(|b| b.try_into().ok()).ok_or_else(|| {
        CodedError::new(
            "usage",
            format!("--{name} {value:?}: expected {N} bytes of hex"),
        )
        .into()
    })
}

fn algorithm(a: &VectorArgs) -> anyhow::Result<AkaAlgorithm> {
    if let Some(card) = &a.card {
        let def = crate::defaults::card_definition(card)?;
        let (_, state) = def.build()?;
        return state.usim.map(|u| u.algorithm).ok_or_else(|| {
            CodedError::new(
                "usage",
                format!(
                    "{} has no USIM keys (an eUICC's come with its profile: use --k and --opc)",
                    card.display()
                ),
            )
            .into()
        });
    }
    let k = hex_arg::<16>("k", a.k.as_deref().unwrap_or_default())?;
    match (&a.opc, &a.op, a.xor) {
        (_, _, true) => Ok(AkaAlgorithm::XorTest { k }),
        (Some(opc), None, false) => Ok(AkaAlgorithm::Milenage {
            k,
            opc: hex_arg("opc", opc)?,
        }),
        (None, Some(op), false) => Ok(AkaAlgorithm::milenage_from_op(k, hex_arg("op", op)?)),
        _ => Err(CodedError::new(
            "usage",
            "with --k give --opc or --op (MILENAGE), or --xor (TS 34.108 test algorithm)",
        )
        .into()),
    }
}

/// Runs `simlab aka`.
pub fn run(cmd: AkaCommand, out: Output) -> anyhow::Result<()> {
    let AkaCommand::Vector(a) = cmd;
    let alg = algorithm(&a)?;
    if a.sqn > SQN_MAX {
        return Err(CodedError::new(
            "usage",
            format!(
                "--sqn {}: a sequence number has 48 bits (at most {SQN_MAX})",
                a.sqn
            ),
        )
        .into());
    }
    let rand: [u8; RAND_LEN] = match &a.rand {
        Some(r) => hex_arg("rand", r)?,
        None => rand::random(),
    };
    let amf = hex_arg::<2>("amf", &a.amf)?;
    let v = aka::generate_vector(&alg, a.sqn, amf, &rand);
    fn h(b: impl AsRef<[u8]>) -> String {
        hex::encode_upper(b)
    }
    let report = VectorReport {
        algorithm: match alg {
            AkaAlgorithm::Milenage { .. } => "milenage",
            AkaAlgorithm::XorTest { .. } => "xor",
        },
        sqn: a.sqn,
        amf: h(amf),
        rand: h(v.rand),
        autn: h(v.autn),
        xres: h(&v.xres),
        ck: h(v.ck),
        ik: h(v.ik),
        kc: h(v.kc),
        authenticate_apdu: format!("0088008122 10{} 10{} 00", h(v.rand), h(v.autn)),
        expected_answer: format!(
            "DB {:02X}{} 10{} 10{} * 9000",
            v.xres.len(),
            h(&v.xres),
            h(v.ck),
            h(v.ik)
        ),
    };
    out.result(&report, || {
        format!(
            "# {} vector, SQN {} (TS 33.102 §6.3.2)\n# RAND {}\n# AUTN {}\n# XRES {}\n# CK   {}\n\
             # IK   {}\n# Kc   {}\n# AUTHENTICATE (select ADF.USIM and verify PIN1 first):\n\
             > {}\n< {}",
            report.algorithm,
            report.sqn,
            report.rand,
            report.autn,
            report.xres,
            report.ck,
            report.ik,
            report.kc,
            report.authenticate_apdu,
            report.expected_answer
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: AkaCommand,
    }

    fn args(line: &[&str]) -> VectorArgs {
        let mut all = vec!["simlab", "vector"];
        all.extend_from_slice(line);
        let AkaCommand::Vector(a) = Cli::try_parse_from(all).unwrap().cmd;
        a
    }

    /// TS 35.208 test set 1 (vectors/milenage): the built-in UICC holds its K and OPc.
    #[test]
    fn the_built_in_card_and_explicit_keys_give_test_set_1() {
        let rand = "23553cbe9637a89d218ae64dae47bf35";
        for a in [
            args(&["--card", "uicc", "--rand", rand]),
            args(&[
                "--k",
                "465b5ce8b199b49faa5f0a2ee238a6bc",
                "--opc",
                "cd63cb71954a9f4e48a5994e37a02baf",
                "--rand",
                rand,
            ]),
        ] {
            let alg = algorithm(&a).unwrap();
            let v = aka::generate_vector(&alg, a.sqn, [0x80, 0], &hex_arg("rand", rand).unwrap());
            assert_eq!(hex::encode(&v.xres), "a54211d5e3ba50bf");
            assert_eq!(hex::encode(v.ck), "b40ba9a3c58b2a05bbf0d987b21bf8cb");
        }
    }

    #[test]
    fn keys_are_required_and_checked() {
        assert!(Cli::try_parse_from(["simlab", "vector"]).is_err());
        let e = algorithm(&args(&["--k", "00", "--opc", "00"])).unwrap_err();
        assert!(e.to_string().contains("expected 16 bytes"), "{e}");
        let e = algorithm(&args(&["--k", "465b5ce8b199b49faa5f0a2ee238a6bc"])).unwrap_err();
        assert!(e.to_string().contains("--opc or --op"), "{e}");
    }
}
