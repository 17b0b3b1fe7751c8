//! Shared by the end-to-end lanes: the card of `vectors/cards/uicc.toml`, APDU scripts that
//! read it back (ICCID, PIN1, USIM, IMSI, AUTHENTICATE), and a script runner that works over
//! any raw transmit function (pcscd, vpcd, in-process).
//!
//! Scripts are one exchange a line: `> C-APDU` then `< R-APDU` (hex, spaces anywhere);
//! `*` in an answer matches any bytes. Expected answers come from ETSI TS 102 221 / 3GPP
//! TS 31.102 and the card definition; the AUTHENTICATE vector is 3GPP TS 35.208 test set 1.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use simlab_emulator::{CardDefinition, Uicc};
use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The vpcd slot the pcscd lane uses (docs/vpcd.md), from the environment so that a shared
/// host can give each user or CI job its own slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneSlot {
    /// Where the card side connects: `SIMLAB_VPCD` (host:port), default 127.0.0.1:35963.
    pub vpcd: String,
    /// The PC/SC reader of that slot: `SIMLAB_VPCD_READER`, default "Virtual PCD 00 NN" with
    /// NN = port − 35963 (vpcd's slot number).
    pub reader: String,
    /// A loopback port whose listener marks the slot as taken by one process: 35960 − NN.
    pub lock: String,
}

/// vpcd's slot `n` listens on this port + n.
const VPCD_BASE_PORT: u16 = simlab_vpcd::VPCD_BASE_PORT;
/// The slot lock of slot `n` is this port − n (just below vpcd's ports).
const SLOT_LOCK_BASE_PORT: u16 = 35960;

impl LaneSlot {
    /// The slot `vpcd` and `reader` (the environment's values) name.
    pub fn new(vpcd: Option<&str>, reader: Option<&str>) -> Result<Self, String> {
        let vpcd = vpcd.unwrap_or(simlab_vpcd::DEFAULT_VPCD_ADDR).to_owned();
        let port: u16 = vpcd
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .ok_or_else(|| format!("SIMLAB_VPCD={vpcd:?}: expected host:port"))?;
        let slot = port
            .checked_sub(VPCD_BASE_PORT)
            .filter(|n| *n < 100)
            .ok_or_else(|| {
                format!("SIMLAB_VPCD={vpcd:?}: vpcd's slots listen on {VPCD_BASE_PORT} + N")
            })?;
        Ok(Self {
            reader: reader.map_or_else(|| format!("Virtual PCD 00 {slot:02}"), str::to_owned),
            lock: format!("127.0.0.1:{}", SLOT_LOCK_BASE_PORT - slot),
            vpcd,
        })
    }
}

/// The lane's slot, read from the environment once.
pub fn lane_slot() -> &'static LaneSlot {
    static SLOT: OnceLock<LaneSlot> = OnceLock::new();
    SLOT.get_or_init(|| {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        LaneSlot::new(
            var("SIMLAB_VPCD").as_deref(),
            var("SIMLAB_VPCD_READER").as_deref(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    })
}

/// One setting of [`lane_slot`], usable in format strings (`{READER:?}`) like a constant.
pub struct LaneSetting(fn(&'static LaneSlot) -> &'static str);

impl LaneSetting {
    pub fn as_str(&self) -> &'static str {
        (self.0)(lane_slot())
    }
}

impl fmt::Display for LaneSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for LaneSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

fn slot_vpcd(s: &'static LaneSlot) -> &'static str {
    &s.vpcd
}
fn slot_reader(s: &'static LaneSlot) -> &'static str {
    &s.reader
}
fn slot_lock(s: &'static LaneSlot) -> &'static str {
    &s.lock
}

/// Where the lane's card connects (vpcd's slot).
pub static VPCD_ADDR: LaneSetting = LaneSetting(slot_vpcd);
/// The PC/SC name of that slot.
pub static READER: LaneSetting = LaneSetting(slot_reader);
/// Held (listening) by the process whose test uses the slot. Not vpcd's port.
pub static SLOT_LOCK_ADDR: LaneSetting = LaneSetting(slot_lock);

/// The default card definition of the repository.
pub fn card_definition() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../vectors/cards/uicc.toml"
    ))
}

/// A fresh card (state in memory only) and its ATR.
pub fn fresh_card() -> (Vec<u8>, Uicc) {
    let def = CardDefinition::load(&card_definition()).expect("vectors/cards/uicc.toml loads");
    let (atr, state) = def.build().expect("vectors/cards/uicc.toml builds");
    (atr.clone(), Uicc::new(atr, state))
}

/// SELECT MF by FID, no FCP asked (TS 102 221 §11.1.1, P2 = '0C').
pub const SELECT_MF: &str = "> 00 A4 00 0C 02 3F00\n< 9000";

/// EF.ICCID (TS 102 221 §13.2): ICCID 8949001010000000016 in swapped BCD, 'F' padded.
pub const READ_ICCID: &str = "> 00 A4 00 0C 02 2FE2\n< 9000\n\
     > 00 B0 00 00 0A\n< 98 94 00 01 01 00 00 00 10 F6 9000";

/// VERIFY PIN1 = "0000" padded with 'FF' (TS 102 221 §11.1.9, §9.5.1).
pub const VERIFY_PIN1: &str = "> 00 20 00 01 08 30303030FFFFFFFF\n< 9000";

/// SELECT ADF.USIM by its full AID as case 3 (no Le): a T=0 card says '61 xx' and the
/// terminal fetches the FCP with GET RESPONSE (TS 102 221 §7.3.1.1.4; Le '00' = all).
pub const SELECT_USIM_T0: &str = "> 00 A4 04 04 0C A0000000871002FF49FF0589\n< 61 *\n\
     > 00 C0 00 00 00\n< 62 * 84 0C A0000000871002FF49FF0589 * 9000";

/// EF.IMSI (TS 31.102 §4.2.2): length 08, then 001010123456063 in swapped BCD with the
/// parity nibble '9'. Needs PIN1.
pub const READ_IMSI: &str = "> 00 A4 00 0C 02 6F07\n< 9000\n\
     > 00 B0 00 00 09\n< 08 09 10 10 10 32 54 06 36 9000";

/// AUTHENTICATE, 3G context (TS 31.102 §7.1.2): RAND, AUTN = (SQN ⊕ AK) ‖ AMF ‖ MAC-A of
/// TS 35.208 test set 1.
pub const AUTHENTICATE_SET1: &str =
    "> 00 88 00 81 22 10 23553cbe9637a89d218ae64dae47bf35 10 55f328b43577b9b94a9ffac354dfafb3 00";

/// Its answer: 'DB' then RES, CK, IK and Kc = c3(CK, IK) of TS 35.208 test set 1.
pub const AUTHENTICATE_SET1_OK: &str =
    "< DB 08 a54211d5e3ba50bf 10 b40ba9a3c58b2a05bbf0d987b21bf8cb \
     10 f769bcd751044604127672711c6d3441 08 eae4be823af9a08b 9000";

/// The same challenge a second time: SQN is not fresh, so synchronisation failure, 'DC'
/// with AUTS (14 bytes) (TS 33.102 §6.3.3, TS 31.102 §7.1.2).
pub const AUTHENTICATE_SET1_REPLAYED: &str = "< DC 0E * 9000";

/// PIN1 status without data (TS 102 221 §11.1.9): '63 C3' = not verified, 3 tries left.
pub const PIN1_NOT_VERIFIED: &str = "> 00 20 00 01\n< 63C3";

/// Everything a terminal does to attach: ICCID, PIN1, USIM, IMSI, AKA.
pub fn read_back_script() -> String {
    [
        SELECT_MF,
        READ_ICCID,
        VERIFY_PIN1,
        SELECT_USIM_T0,
        READ_IMSI,
        AUTHENTICATE_SET1,
        AUTHENTICATE_SET1_OK,
    ]
    .join("\n")
}

/// Hex with any whitespace to bytes.
pub fn bytes(hex_text: &str) -> Vec<u8> {
    let clean: String = hex_text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(&clean).unwrap_or_else(|e| panic!("bad hex {hex_text:?}: {e}"))
}

#[allow(unused_imports)] // used by the pcscd lane only
pub use simlab_emulator::script::matches;

/// Runs `script` through `transmit` (raw: no GET RESPONSE added), asserting every answer.
/// `lane` names the path in failure messages.
pub fn run_script(lane: &str, transmit: &mut dyn FnMut(&[u8]) -> Vec<u8>, script: &str) {
    if let Err(e) = simlab_emulator::script::run(transmit, script) {
        panic!("[{lane}] {e}");
    }
}

#[cfg(test)]
mod slot_tests {
    use super::LaneSlot;

    #[test]
    fn the_slot_follows_the_vpcd_port() {
        let s = LaneSlot::new(None, None).unwrap();
        assert_eq!(
            (s.vpcd.as_str(), s.reader.as_str(), s.lock.as_str()),
            ("127.0.0.1:35963", "Virtual PCD 00 00", "127.0.0.1:35960")
        );
        let s = LaneSlot::new(Some("127.0.0.1:35964"), None).unwrap();
        assert_eq!(
            (s.reader.as_str(), s.lock.as_str()),
            ("Virtual PCD 00 01", "127.0.0.1:35959")
        );
        let s = LaneSlot::new(Some("10.0.0.2:35963"), Some("My vpcd")).unwrap();
        assert_eq!(s.reader, "My vpcd");
        assert!(LaneSlot::new(Some("localhost"), None).is_err());
        assert!(LaneSlot::new(Some("127.0.0.1:8080"), None).is_err());
    }
}
