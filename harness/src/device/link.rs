//! The short-range link between a user's devices (JP7540673B2 Fig. 1 link 110: Bluetooth,
//! Wi-Fi, ZigBee or NFC): pairing (steps 401, 910, 1010), EID transfer (402), activation code
//! transfer (408, 6080), result forwarding (6100, 6170, 1106, 1306) and, in the granted
//! claims, the verification code the old device received, passed to the new one.
//!
//! Modelled as a message channel between two paired devices: typed messages, delivered in
//! order, each one written to the run's transcript as `LINK <medium> <from> → <to> <json>`.
//! A message before pairing, to a device not on the link, or a receive with nothing
//! pending, is an error — as a real link would refuse it.

use super::Recorder;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use thiserror::Error;

/// The radio the seed names for the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Medium {
    Bluetooth,
    WiFi,
    Nfc,
}

impl Medium {
    pub fn as_str(self) -> &'static str {
        match self {
            Medium::Bluetooth => "bluetooth",
            Medium::WiFi => "wi-fi",
            Medium::Nfc => "nfc",
        }
    }
}

/// What travels on the link, by the seed's steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum LinkMessage {
    /// Pairing request and acceptance (401, 910, 1010).
    PairingRequest {
        device: String,
    },
    PairingAccepted {
        device: String,
    },
    /// The secondary device's EID (402, 920).
    Eid {
        eid: String,
    },
    /// A UICC device's identifiers (Fig. 11 step 1102: ICCID, MSISDN, IMSI).
    Identifiers {
        iccid: String,
        imsi: String,
        msisdn: Option<String>,
    },
    /// Profile download information (408, 6080, 940).
    ActivationCode {
        activation_code: String,
        confirmation_code: Option<String>,
    },
    /// The secondary's download result (6100).
    DownloadResult {
        iccid: Option<String>,
        ok: bool,
    },
    /// A service result forwarded to the other device (510, 1106, 1306, 6170).
    ServiceResult {
        service: String,
        result: String,
    },
    /// A verification code received by SMS on this device (claims 1 and 9: the new device
    /// obtains the code the first device received, e.g. by NFC).
    VerificationCode {
        code: String,
    },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum LinkError {
    #[error("{from} and {to} are not paired: pair them first (step 401)")]
    NotPaired { from: String, to: String },
    #[error("{device} is not on the link between {a} and {b}")]
    NotOnLink {
        device: String,
        a: String,
        b: String,
    },
    #[error("{device} expected a message on the link, none is pending")]
    Nothing { device: String },
    #[error("{device} expected {expected} on the link, got {got}")]
    Unexpected {
        device: String,
        expected: &'static str,
        got: String,
    },
}

#[derive(Debug, Clone)]
struct Envelope {
    to: String,
    message: LinkMessage,
}

/// A link between two devices.
#[derive(Debug)]
pub struct Link {
    medium: Medium,
    a: String,
    b: String,
    paired: bool,
    pending: VecDeque<Envelope>,
    recorder: Recorder,
}

impl Link {
    /// A link in range but not yet paired.
    pub fn new(medium: Medium, a: &str, b: &str, recorder: &Recorder) -> Self {
        Self {
            medium,
            a: a.to_owned(),
            b: b.to_owned(),
            paired: false,
            pending: VecDeque::new(),
            recorder: recorder.clone(),
        }
    }

    pub fn medium(&self) -> Medium {
        self.medium
    }

    fn peer(&self, device: &str) -> Result<&str, LinkError> {
        if device == self.a {
            Ok(&self.b)
        } else if device == self.b {
            Ok(&self.a)
        } else {
            Err(LinkError::NotOnLink {
                device: device.to_owned(),
                a: self.a.clone(),
                b: self.b.clone(),
            })
        }
    }

    /// Pairing initiated by `initiator` (step 401 / 910): request and acceptance both travel.
    pub fn pair(&mut self, initiator: &str) -> Result<(), LinkError> {
        let peer = self.peer(initiator)?.to_owned();
        self.record(
            initiator,
            &peer,
            &LinkMessage::PairingRequest {
                device: initiator.to_owned(),
            },
        );
        self.record(
            &peer,
            initiator,
            &LinkMessage::PairingAccepted {
                device: peer.clone(),
            },
        );
        self.paired = true;
        Ok(())
    }

    pub fn is_paired(&self) -> bool {
        self.paired
    }

    /// Sends `message` from `from` to its peer.
    pub fn send(&mut self, from: &str, message: LinkMessage) -> Result<(), LinkError> {
        let to = self.peer(from)?.to_owned();
        if !self.paired {
            return Err(LinkError::NotPaired {
                from: from.to_owned(),
                to,
            });
        }
        self.record(from, &to, &message);
        self.pending.push_back(Envelope { to, message });
        Ok(())
    }

    /// The next message for `device`.
    pub fn receive(&mut self, device: &str) -> Result<LinkMessage, LinkError> {
        self.peer(device)?;
        let at = self
            .pending
            .iter()
            .position(|e| e.to == device)
            .ok_or_else(|| LinkError::Nothing {
                device: device.to_owned(),
            })?;
        self.pending
            .remove(at)
            .map(|e| e.message)
            .ok_or_else(|| LinkError::Nothing {
                device: device.to_owned(),
            })
    }

    fn record(&self, from: &str, to: &str, message: &LinkMessage) {
        let json = serde_json::to_string(message).unwrap_or_default();
        self.recorder.note(format!(
            "LINK {} {from} → {to} {json}",
            self.medium.as_str()
        ));
    }
}

/// Unwraps the expected kind of message, or says what came instead.
#[macro_export]
macro_rules! expect_link {
    ($device:expr, $msg:expr, $pat:pat => $out:expr, $what:literal) => {
        match $msg {
            $pat => Ok($out),
            other => Err($crate::device::link::LinkError::Unexpected {
                device: $device.to_owned(),
                expected: $what,
                got: format!("{other:?}"),
            }),
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::Transcript;

    #[test]
    fn messages_flow_after_pairing_in_order_and_are_recorded() {
        let t = Transcript::new();
        let rec = Recorder::new(&t);
        let mut link = Link::new(Medium::Bluetooth, "primary", "secondary", &rec);
        let eid = LinkMessage::Eid {
            eid: "89049032123451234512345678901235".into(),
        };
        assert_eq!(
            link.send("secondary", eid.clone()),
            Err(LinkError::NotPaired {
                from: "secondary".into(),
                to: "primary".into()
            })
        );
        link.pair("primary").unwrap();
        link.send("secondary", eid.clone()).unwrap();
        assert_eq!(
            link.receive("secondary"),
            Err(LinkError::Nothing {
                device: "secondary".into()
            })
        );
        assert_eq!(link.receive("primary").unwrap(), eid);
        assert!(matches!(
            link.send("watch", eid),
            Err(LinkError::NotOnLink { .. })
        ));
        let text = t.render();
        assert_eq!(
            text,
            "LINK bluetooth primary → secondary {\"type\":\"pairingRequest\",\"device\":\"primary\"}\n\
             LINK bluetooth secondary → primary {\"type\":\"pairingAccepted\",\"device\":\"secondary\"}\n\
             LINK bluetooth secondary → primary {\"type\":\"eid\",\"eid\":\"89049032123451234512345678901235\"}\n"
        );
    }
}
