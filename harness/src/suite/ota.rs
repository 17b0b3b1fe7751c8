//! OTA steps of a case: `ota tar=B00011 keyset=3 apdus="…"` builds an SCP80 secured packet
//! (ETSI TS 102 225 §5.1) from one of the card's keysets, carries it to the card in SMS-PP
//! download ENVELOPEs (3GPP TS 31.111 §7.1.1; several short messages when it is long, TS
//! 31.115 §4) and reads the Proof of Receipt (TS 102 225 §5.2) — with [`crate::ota`], the code
//! `simlab ota send` and the operator network use. Case authors never compute a MAC: they
//! name a keyset, the SPI and the commands, and check what the PoR says (`por …`, `sms N`)
//! and, with `sw`/`data`, the last command's answer in it.
//!
//! Keys: `--ota-keys FILE` (`[[ota.keyset]]` tables, as `simlab ota send --keyset FILE`
//! reads), else the `--card` definition's keysets. Each keyset known gives the capability
//! `ota-keyset-N` (N its KID index), and `ota-keyset-3des` / `ota-keyset-aes` for the first
//! of each kind; a case using `keyset=N`, `keyset=3des` or `keyset=aes` requires it, so a card
//! whose keys the run was not given skips those cases with the reason. Naming the kind
//! rather than the index lets one case run on cards that number their keysets differently.
//!
//! Counters (CNTR, §5.1.1): a packet whose SPI asks the card to check the counter carries
//! `counter=next` by default, a value above any the card can have seen: the run starts from
//! the current time in hundredths of seconds (about 1.8·10^11, below CNTR's 2^40) and counts
//! up, so cases pass against a card that kept its counters from earlier runs. `counter=last`
//! (and `last+N`) repeat the last `next` value (plus N): a replay, or a counter that skips.

use super::case::{CounterChoice, KeysetRef, Mismatch, OtaCall, OtaCheck, Template, Vars};
use crate::ota::{build_sms_pp, deliver_sms_pp, verify_por, OtaError, RemoteCommand};
use crate::transport::{Transport, TransportError};
use simlab_emulator::ota::ts_102_225::{
    CipherAlgorithm, Keyset, MacAlgorithm, PorStatus, COUNTER_MAX,
};
use simlab_emulator::ota::ts_102_226::ScriptFormat;
use simlab_emulator::ota::ts_23_040::Address;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// The arguments an `ota` step takes.
pub const ARGS: &[&str] = &[
    "tar",
    "keyset",
    "spi",
    "counter",
    "format",
    "apdus",
    "kic_key",
    "kid_key",
    "kic_index",
    "kid_index",
];

/// The capability a case using `keyset` requires.
pub fn keyset_capability(keyset: KeysetRef) -> String {
    match keyset {
        KeysetRef::Index(n) => format!("ota-keyset-{n}"),
        KeysetRef::TripleDes => "ota-keyset-3des".into(),
        KeysetRef::Aes => "ota-keyset-aes".into(),
    }
}

/// Whether `k` is what `keyset` names.
pub fn is(keyset: KeysetRef, k: &Keyset) -> bool {
    match keyset {
        KeysetRef::Index(n) => k.kid_index == n,
        KeysetRef::TripleDes => {
            matches!(
                k.kic_algorithm,
                CipherAlgorithm::TripleDesCbc2 | CipherAlgorithm::TripleDesCbc3
            ) && matches!(
                k.kid_algorithm,
                MacAlgorithm::TripleDesCbcMac2 | MacAlgorithm::TripleDesCbcMac3
            )
        }
        KeysetRef::Aes => {
            k.kic_algorithm == CipherAlgorithm::AesCbc && k.kid_algorithm == MacAlgorithm::AesCmac
        }
    }
}

/// The capabilities the run's keysets give: `ota-keyset-N` for each KID index, and
/// `ota-keyset-3des` / `ota-keyset-aes` when one of them is of that kind.
pub fn capabilities(keys: &OtaKeys) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for k in &keys.keysets {
        out.push((
            keyset_capability(KeysetRef::Index(k.kid_index)),
            format!("keyset with KID index {} in {}", k.kid_index, keys.source),
        ));
    }
    for (kind, name) in [
        (KeysetRef::TripleDes, "triple DES"),
        (KeysetRef::Aes, "AES"),
    ] {
        if let Some(k) = keys.keysets.iter().find(|k| is(kind, k)) {
            out.push((
                keyset_capability(kind),
                format!("{name} keyset {} in {}", k.kid_index, keys.source),
            ));
        }
    }
    out
}

/// Reads an `ota` step's arguments (the APDUs already parsed) when the case file is read.
pub fn call_from_args(
    args: &BTreeMap<String, String>,
    apdus: Vec<(usize, Template)>,
) -> Result<OtaCall, String> {
    if let Some(k) = args.keys().find(|k| !ARGS.contains(&k.as_str())) {
        return Err(format!(
            "ota takes {}, got `{k}`",
            ARGS.iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let tar: [u8; 3] = args
        .get("tar")
        .ok_or("ota needs `tar=` (B00010 UICC RFM, B00011 USIM RFM)")
        .map(|t| parse_hex(t))?
        .and_then(|t| t.try_into().ok())
        .ok_or("tar: expected 3 bytes of hex, e.g. B00011")?;
    let keyset = match args
        .get("keyset")
        .ok_or("ota needs `keyset=N` (its KID index), `keyset=3des` or `keyset=aes`")?
        .as_str()
    {
        "3des" => KeysetRef::TripleDes,
        "aes" => KeysetRef::Aes,
        n => KeysetRef::Index(index(n).map_err(|e| format!("keyset: {e}, 3des or aes"))?),
    };
    let spi = match args.get("spi") {
        Some(text) => crate::ota::cli::parse_spi(text)?,
        None => crate::ota::default_spi(),
    };
    let counter = match args.get("counter").map(String::as_str) {
        None if spi.counter == simlab_emulator::ota::ts_102_225::CounterMode::None => {
            CounterChoice::Value(0)
        }
        None | Some("next") => CounterChoice::Next,
        Some("last") => CounterChoice::Last(0),
        Some(v) => match v.strip_prefix("last+") {
            Some(n) => CounterChoice::Last(n.parse().map_err(|_| counter_usage(v))?),
            None => CounterChoice::Value(
                v.parse()
                    .ok()
                    .filter(|n| *n <= COUNTER_MAX)
                    .ok_or_else(|| counter_usage(v))?,
            ),
        },
    };
    let format = match args.get("format").map(String::as_str) {
        None | Some("compact") => ScriptFormat::Compact,
        Some("expanded") => ScriptFormat::Expanded,
        Some(f) => return Err(format!("format: expected compact or expanded, got {f:?}")),
    };
    if apdus.is_empty() {
        return Err("ota needs `apdus=\"HEX, HEX, …\"`".into());
    }
    let key = |name: &str| -> Result<Option<Vec<u8>>, String> {
        args.get(name)
            .map(|v| parse_hex(v).ok_or(format!("{name}: expected hex")))
            .transpose()
    };
    let idx = |name: &str| -> Result<Option<u8>, String> {
        args.get(name)
            .map(|v| index(v).map_err(|e| format!("{name}: {e}")))
            .transpose()
    };
    Ok(OtaCall {
        tar,
        keyset,
        spi,
        counter,
        format,
        apdus,
        kic_key: key("kic_key")?,
        kid_key: key("kid_key")?,
        kic_index: idx("kic_index")?,
        kid_index: idx("kid_index")?,
    })
}

fn counter_usage(v: &str) -> String {
    format!("counter: expected next, last, last+N or a number up to 2^40-1, got {v:?}")
}

/// A key index, 1 to 15 (KIc/KID b8-b5, TS 102 225 §5.1.2).
fn index(v: &str) -> Result<u8, String> {
    v.parse::<u8>()
        .ok()
        .filter(|n| (1..=15).contains(n))
        .ok_or_else(|| format!("expected a key index from 1 to 15, got {v:?}"))
}

fn parse_hex(v: &str) -> Option<Vec<u8>> {
    let clean: String = v.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).ok()
}

/// The PoR status a `por WORD` check names: `ok`, a name of TS 102 225 Table 5 as simlab
/// prints it (`rc-cc-ds-failed`, `cntr-low`, `tar-unknown`, …) or two hex digits.
pub fn por_status(word: &str) -> Option<PorStatus> {
    if word == "ok" {
        return Some(PorStatus::Ok);
    }
    if word.len() == 2 {
        if let Ok(code) = u8::from_str_radix(word, 16) {
            return Some(PorStatus::from_code(code));
        }
    }
    (0u8..=0x0C)
        .map(PorStatus::from_code)
        .find(|s| s.name() == word)
}

/// The keysets a run may secure packets with, and where they came from.
#[derive(Debug, Clone, Default)]
pub struct OtaKeys {
    pub source: String,
    pub keysets: Vec<Keyset>,
}

/// The OTA state of one run: the keys and the counters handed out.
#[derive(Debug, Clone)]
pub struct OtaSession {
    keys: OtaKeys,
    /// The last `counter=next` value.
    last: u64,
    /// The highest counter sent.
    high: u64,
}

impl OtaSession {
    pub fn new(keys: OtaKeys) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() / 10)
            .unwrap_or(0);
        let start = u64::try_from(now).unwrap_or(0).min(COUNTER_MAX / 2);
        Self {
            keys,
            last: start,
            high: start,
        }
    }

    fn counter(&mut self, choice: CounterChoice) -> u64 {
        match choice {
            CounterChoice::Value(n) => n,
            CounterChoice::Next => {
                self.high += 1;
                self.last = self.high;
                self.last
            }
            CounterChoice::Last(plus) => {
                let n = self.last.saturating_add(plus).min(COUNTER_MAX);
                self.high = self.high.max(n);
                n
            }
        }
    }
}

/// What an `ota` step saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtaOutcome {
    /// Short messages the packet travelled in.
    pub messages: usize,
    /// The counter sent.
    pub counter: u64,
    /// The PoR, if one came: its status, whether it was secured as the SPI asked, the
    /// number of commands executed and their reported answers (data, SW).
    pub por: Option<Por>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Por {
    pub status: PorStatus,
    pub secured: bool,
    pub executed: Option<usize>,
    pub answers: Vec<(Vec<u8>, u16)>,
}

impl OtaOutcome {
    /// The last command's answer in the PoR, if it reported one.
    pub fn last_answer(&self) -> Option<(&[u8], u16)> {
        self.por
            .as_ref()
            .and_then(|p| p.answers.last())
            .map(|(d, sw)| (d.as_slice(), *sw))
    }

    /// One line for failure messages.
    pub fn summary(&self) -> String {
        let head = format!("{} message(s), CNTR {}", self.messages, self.counter);
        match &self.por {
            None => format!("{head}, no PoR"),
            Some(p) => {
                let mut s = format!(
                    "{head}, PoR {:02X} ({}), {}",
                    p.status.code(),
                    p.status.name(),
                    if p.secured { "secured" } else { "unsecured" }
                );
                if let Some(n) = p.executed {
                    s.push_str(&format!(", {n} executed"));
                }
                if let Some((data, sw)) = p.answers.last() {
                    s.push_str(&format!(
                        ", last answer {}{sw:04X}",
                        hex::encode_upper(data)
                    ));
                }
                s
            }
        }
    }
}

/// Why an `ota` step could not be carried out.
#[derive(Debug)]
pub enum StepError {
    /// The card or reader is gone.
    Transport(TransportError),
    /// Something to report as the case's failure: expected, got.
    Failed(String, String),
}

/// Sends the step's packet and reads the PoR.
pub fn run(
    t: &mut dyn Transport,
    call: &OtaCall,
    vars: &Vars,
    session: &mut OtaSession,
) -> Result<OtaOutcome, StepError> {
    let card_keys = session
        .keys
        .keysets
        .iter()
        .find(|k| is(call.keyset, k))
        .cloned()
        .ok_or_else(|| {
            StepError::Failed(
                keyset_capability(call.keyset),
                format!("none in {}", session.keys.source),
            )
        })?;
    let mut apdus = Vec::new();
    for (times, template) in &call.apdus {
        let apdu = template
            .bytes(vars)
            .map_err(|e| StepError::Failed("an APDU to send".into(), e.to_string()))?;
        apdus.extend(std::iter::repeat_n(apdu, *times));
    }
    // The packet names the keyset's indexes (or the case's replacements); it is sealed with
    // the keyset's keys or the case's replacements, so a case can send one the card must
    // refuse. The PoR is checked with the card's own keys: the card answers genuinely.
    let mut keyset = card_keys;
    keyset.kic_index = call.kic_index.unwrap_or(keyset.kic_index);
    keyset.kid_index = call.kid_index.unwrap_or(keyset.kid_index);
    let mut signing = keyset.clone();
    if let Some(key) = &call.kic_key {
        signing.kic.clone_from(key);
    }
    if let Some(key) = &call.kid_key {
        signing.kid.clone_from(key);
    }
    let command = RemoteCommand {
        tar: call.tar,
        spi: call.spi,
        counter: session.counter(call.counter),
        format: call.format,
        apdus,
    };
    let tpdus = build_sms_pp(&signing, &command, &Address::isdn("12345678"), 1)
        .map_err(|e| StepError::Failed("a secured packet".into(), e.to_string()))?;
    let mut por = None;
    for tpdu in &tpdus {
        por = match deliver_sms_pp(&mut *t, tpdu) {
            Ok(p) => p,
            Err(OtaError::Transport(e)) => return Err(StepError::Transport(e)),
            Err(e) => {
                return Err(StepError::Failed(
                    "the ENVELOPE (SMS-PP download) taken".into(),
                    e.to_string(),
                ))
            }
        };
    }
    let por = match por {
        None => None,
        Some(raw) => {
            let report = verify_por(&keyset, &command, &raw).map_err(|e| {
                StepError::Failed(
                    "a PoR for this packet (TS 102 225 §5.2)".into(),
                    format!("{e}: {}", hex::encode_upper(&raw)),
                )
            })?;
            Some(Por {
                status: report.status,
                secured: report.secured,
                executed: report.script.as_ref().map(|s| usize::from(s.executed)),
                answers: report
                    .script
                    .map(|s| s.responses.into_iter().map(|r| (r.data, r.sw)).collect())
                    .unwrap_or_default(),
            })
        }
    };
    Ok(OtaOutcome {
        messages: tpdus.len(),
        counter: command.counter,
        por,
    })
}

/// Checks one `por …` / `sms N` line against what the step saw.
pub fn check(c: &OtaCheck, o: &OtaOutcome) -> Result<(), Mismatch> {
    let fail = |expected: String| {
        Err(Mismatch {
            expected,
            got: o.summary(),
        })
    };
    let ok = match (c, &o.por) {
        (OtaCheck::NoPor, por) => por.is_none(),
        (OtaCheck::Messages(n), _) => o.messages == *n,
        (_, None) => false,
        (OtaCheck::Status(s), Some(p)) => p.status == *s,
        (OtaCheck::Executed(n), Some(p)) => p.executed == Some(*n),
        (OtaCheck::Secured(b), Some(p)) => p.secured == *b,
    };
    if ok {
        return Ok(());
    }
    fail(match c {
        OtaCheck::NoPor => "no PoR".into(),
        OtaCheck::Messages(n) => format!("{n} message(s)"),
        OtaCheck::Status(s) => format!("PoR {:02X} ({})", s.code(), s.name()),
        OtaCheck::Executed(n) => format!("PoR with {n} command(s) executed"),
        OtaCheck::Secured(true) => "a PoR secured as the SPI asked".into(),
        OtaCheck::Secured(false) => "an unsecured PoR".into(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn por_statuses_are_named_as_simlab_prints_them_or_in_hex() {
        assert_eq!(por_status("ok"), Some(PorStatus::Ok));
        assert_eq!(por_status("por-ok"), Some(PorStatus::Ok));
        assert_eq!(por_status("cntr-low"), Some(PorStatus::CounterLow));
        assert_eq!(por_status("0A"), Some(PorStatus::InsufficientSecurityLevel));
        assert_eq!(por_status("bogus"), None);
    }

    #[test]
    fn next_counts_up_from_the_clock_and_last_repeats_or_skips() {
        let mut s = OtaSession::new(OtaKeys::default());
        let a = s.counter(CounterChoice::Next);
        assert!(a > 170_000_000_000, "{a}");
        assert!(a < COUNTER_MAX);
        assert_eq!(s.counter(CounterChoice::Last(0)), a);
        assert_eq!(s.counter(CounterChoice::Last(2)), a + 2);
        // `next` stays above everything sent, `last` refers to the last `next`.
        let b = s.counter(CounterChoice::Next);
        assert_eq!(b, a + 3);
        assert_eq!(s.counter(CounterChoice::Last(1)), b + 1);
        assert_eq!(s.counter(CounterChoice::Value(7)), 7);
    }
}
