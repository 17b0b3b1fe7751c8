//! The seed's flows and their variants, as data: names (stable: scripts, scenario files and
//! JUnit reports use them), the figures of JP7540673B2 each replays, the device roles it needs,
//! what it proves at the end, and what each variant changes. `simlab flows list` prints this.

use super::scenario::{Auth, CodeEntry, Expect, Params, RingMode};
use crate::device::link::Medium;
use serde::Serialize;

/// What kind of card a role's device holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CardKind {
    Uicc,
    Euicc,
}

/// A device slot a flow uses: `--card ROLE=SPEC` names it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Role {
    pub name: &'static str,
    pub kind: CardKind,
    /// The in-process card used when `--card` does not name one (under `vectors/cards/`).
    pub default_card: &'static str,
}

/// One variant of a flow: what it changes and what it must end with.
#[derive(Debug, Clone, Serialize)]
pub struct Variant {
    pub name: &'static str,
    pub summary: &'static str,
    #[serde(skip)]
    pub params: fn() -> Params,
    #[serde(skip)]
    pub expect: fn() -> Expect,
}

/// A flow of the seed.
#[derive(Debug, Clone, Serialize)]
pub struct Flow {
    pub name: &'static str,
    pub figures: &'static str,
    pub summary: &'static str,
    /// What the flow shows at the end (issue 9 §3).
    pub proves: &'static str,
    pub roles: &'static [Role],
    pub variants: &'static [Variant],
}

impl Flow {
    pub fn variant(&self, name: &str) -> Option<&'static Variant> {
        self.variants.iter().find(|v| v.name == name)
    }

    pub fn role(&self, name: &str) -> Option<&'static Role> {
        self.roles.iter().find(|r| r.name == name)
    }
}

pub fn find(name: &str) -> Option<&'static Flow> {
    FLOWS.iter().find(|f| f.name == name)
}

const fn role(name: &'static str, kind: CardKind, default_card: &'static str) -> Role {
    Role {
        name,
        kind,
        default_card,
    }
}

const PRIMARY: Role = role("primary", CardKind::Uicc, "uicc.toml");
const SECONDARY: Role = role("secondary", CardKind::Euicc, "euicc.toml");
const SECONDARY2: Role = role("secondary2", CardKind::Euicc, "euicc-2.toml");
/// A device of someone else (another subscriber), for the security cases.
const OUTSIDER: Role = role("outsider", CardKind::Uicc, "uicc-3.toml");
const OUTSIDER_EUICC: Role = role("outsider", CardKind::Euicc, "euicc-3.toml");

fn none() -> Params {
    Params::default()
}
fn pass() -> Expect {
    Expect::default()
}

macro_rules! variant {
    ($name:literal, $summary:literal) => {
        Variant {
            name: $name,
            summary: $summary,
            params: none,
            expect: pass,
        }
    };
    ($name:literal, $summary:literal, params = $p:expr) => {
        Variant {
            name: $name,
            summary: $summary,
            params: $p,
            expect: pass,
        }
    };
    ($name:literal, $summary:literal, params = $p:expr, error = $code:literal) => {
        Variant {
            name: $name,
            summary: $summary,
            params: $p,
            expect: || Expect {
                error: Some($code.to_owned()),
                ..Expect::default()
            },
        }
    };
}

pub static FLOWS: &[Flow] = &[
    Flow {
        name: "companion-download",
        figures: "1-4, 9, 10",
        summary: "the primary (UICC) gets a profile for the secondary's eUICC, then binds both IMSIs to its MSISDN",
        proves: "secondary eUICC has the profile enabled; the primary MSISDN maps to both IMSIs; an FA call rings both, an MAH call rings them in order",
        roles: &[PRIMARY, SECONDARY, SECONDARY2],
        variants: &[
            variant!("fa", "EAP-AKA; flexible alerting"),
            variant!("mah", "SMS code; mobile access hunting", params = || Params {
                auth: Some(Auth::Sms),
                ring_mode: Some(RingMode::Mah),
                ..Params::default()
            }),
            variant!("two-secondaries", "a watch and a band, both bound (Fig. 1: several second devices)", params = || Params {
                secondaries: Some(2),
                ..Params::default()
            }),
            variant!("activation-code-twice", "the activation code used a second time is refused by the SM-DP+", params = || Params {
                reuse_activation_code: true,
                ..Params::default()
            }, error = "matching-id-refused"),
            variant!("other-eid", "a profile ordered for EID A fetched by EID B is refused; A still gets it", params = || Params {
                download_by_other_eid: true,
                ..Params::default()
            }, error = "eid-refused"),
        ],
    },
    Flow {
        name: "bind-with-download",
        figures: "5",
        summary: "one binding request triggers the secondary's download; the result is forwarded to the primary",
        proves: "the binding request triggers the download; the result is forwarded to the primary; the MSISDN maps to both IMSIs",
        roles: &[PRIMARY, SECONDARY],
        variants: &[
            variant!("eap-aka", "the primary authenticates with EAP-AKA"),
            variant!("sms", "the primary authenticates with an SMS code", params = || Params {
                auth: Some(Auth::Sms),
                ..Params::default()
            }),
        ],
    },
    Flow {
        name: "contract",
        figures: "6A-6C",
        summary: "the profile request needs the operator's contract signed on its web page first",
        proves: "accept runs 6040-6170; decline ends with nothing created; optional second contract (6120) and second-device code (6130)",
        roles: &[PRIMARY, SECONDARY],
        variants: &[
            variant!("accept", "the user accepts the contract"),
            variant!("decline", "the user declines: nothing is created anywhere", params = || Params {
                decline: true,
                ..Params::default()
            }),
            variant!("second-contract", "the binding needs a second contract (6120)", params = || Params {
                binding_contract: true,
                ..Params::default()
            }),
            variant!("second-device-code", "the second device proves itself with an SMS code (6130)", params = || Params {
                second_device_code: true,
                ..Params::default()
            }),
        ],
    },
    Flow {
        name: "multi-imsi-uicc",
        figures: "11, 12A-12B",
        summary: "two UICC devices share one MSISDN",
        proves: "both IMSIs under one MSISDN; optional code check of the second device (1250)",
        roles: &[PRIMARY, role("secondary", CardKind::Uicc, "uicc-2.toml")],
        variants: &[
            variant!("default", "the primary binds the second UICC device"),
            variant!("code-check", "the second device proves itself with an SMS code (1250)", params = || Params {
                second_device_code: true,
                ..Params::default()
            }),
        ],
    },
    Flow {
        name: "unbind",
        figures: "13",
        summary: "the primary unbinds the secondary from its MSISDN",
        proves: "group gone; optionally the profile removed at the SM-DP+ and deleted on the eUICC",
        roles: &[PRIMARY, SECONDARY, OUTSIDER],
        variants: &[
            variant!("default", "unbinding only"),
            variant!("remove-profile", "and the secondary deletes its profile (1307-1308)", params = || Params {
                remove_profile: true,
                ..Params::default()
            }),
            variant!("outsider", "a device outside the group cannot unbind it", params = || Params {
                unbind_by_outsider: true,
                ..Params::default()
            }, error = "not-owner"),
        ],
    },
    Flow {
        name: "dual-card",
        figures: "14, 15",
        summary: "a device with a UICC and an eUICC gets the eUICC's profile by authenticating with its UICC",
        proves: "UICC-authenticated download to the same device's eUICC; optionally bound to the UICC's MSISDN",
        roles: &[
            role("third.uicc", CardKind::Uicc, "uicc.toml"),
            role("third.euicc", CardKind::Euicc, "euicc.toml"),
        ],
        variants: &[
            variant!("eap-aka", "UICC-based EAP-AKA"),
            variant!("sms", "SMS code to the UICC's number", params = || Params {
                auth: Some(Auth::Sms),
                ..Params::default()
            }),
            variant!("with-binding", "with the multi-IMSI binding (as Fig. 5)", params = || Params {
                bind: true,
                ..Params::default()
            }),
        ],
    },
    Flow {
        name: "euicc-upgrade",
        figures: "16",
        summary: "a new eUICC device takes over the number of an old UICC device, which is disabled",
        proves: "code sent by SMS to the OLD device, typed on the new one; new profile enabled; old UICC disabled: network refuses its IMSI, its USIM deactivated by RFM (SELECT 62 83, no AUTHENTICATE); calls ring only the new device",
        roles: &[
            role("old", CardKind::Uicc, "uicc.toml"),
            role("new", CardKind::Euicc, "euicc.toml"),
            OUTSIDER_EUICC,
        ],
        variants: &[
            variant!("typed", "the user types the old device's code on the new one"),
            variant!("nfc", "the new device reads the code from the old one over NFC", params = || Params {
                code_entry: Some(CodeEntry::Nfc),
                ..Params::default()
            }),
            variant!("wrong-code", "one wrong code, then the right one", params = || Params {
                wrong_codes: Some(1),
                ..Params::default()
            }),
            variant!("lockout", "three wrong codes lock the request; nothing changes", params = || Params {
                wrong_codes: Some(3),
                ..Params::default()
            }, error = "code-locked"),
            variant!("expired-code", "a code typed after its lifetime is refused; nothing changes", params = || Params {
                expire_code: true,
                ..Params::default()
            }, error = "code-expired"),
            variant!("reused-code", "the code used a second time is refused", params = || Params {
                reuse_code: true,
                ..Params::default()
            }, error = "code-used"),
            variant!("someone-else", "a stranger's device asks for the number without the code; nothing changes", params = || Params {
                stranger: true,
                ..Params::default()
            }, error = "code-wrong"),
            variant!("network-restart", "the network process restarts after the code was sent; the flow resumes", params = || Params {
                restart_network: true,
                ..Params::default()
            }),
        ],
    },
    Flow {
        name: "euicc-migration",
        figures: "17",
        summary: "a new eUICC device takes over the number of an old eUICC device, whose profile is disabled",
        proves: "old eUICC's profile disabled (ES10c) and its IMSI refused; calls ring only the new device",
        roles: &[
            role("old", CardKind::Euicc, "euicc-2.toml"),
            role("new", CardKind::Euicc, "euicc.toml"),
            OUTSIDER_EUICC,
        ],
        variants: &[
            variant!("typed", "the user types the old device's code on the new one"),
            variant!("concurrent", "two new devices migrate the number at once: exactly one wins", params = || Params {
                concurrent: true,
                ..Params::default()
            }),
            variant!("someone-else", "a stranger's device asks for the number without the code; nothing changes", params = || Params {
                stranger: true,
                ..Params::default()
            }, error = "code-wrong"),
        ],
    },
];

/// The link's medium unless a scenario says otherwise (the seed's Fig. 4: Bluetooth pairing).
pub const DEFAULT_MEDIUM: Medium = Medium::Bluetooth;

/// Checks the catalog is consistent (names unique, roles known); used by tests.
pub fn validate() -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for f in FLOWS {
        if !seen.insert(f.name) {
            return Err(format!("flow {} twice", f.name));
        }
        let mut vs = std::collections::BTreeSet::new();
        for v in f.variants {
            if !vs.insert(v.name) {
                return Err(format!("variant {}/{} twice", f.name, v.name));
            }
        }
    }
    Ok(())
}
