//! The user's devices in the seed's flows (JP7540673B2 Fig. 1–3, 7, 8, 14, 16, 17): a primary
//! device with a UICC, secondary devices with an eUICC, a third device with both, and the old
//! and new devices of an upgrade or migration.
//!
//! A device holds card slots ([`slot`]; each any [`crate::transport::Transport`]), reaches the
//! network through its own card ([`usim`]: RAND/AUTN relayed with AUTHENTICATE), manages its
//! eUICC with simlab's LPA ([`crate::lpa`]) and talks to the user's other devices over a
//! short-range [`link`]. Everything it exchanges goes to one [`Recorder`]: the run's
//! transcript, one line per APDU (prefixed by the card that answered), HTTP exchange, SMS and
//! link message, in order.

pub mod identity;
pub mod link;
pub mod slot;
pub mod usim;

use crate::lpa::{self, ActivationCode, DeviceInfo, Downloaded, Es10Client, ProfileSummary};
use crate::transcript::{Entry, Recording, RecordingEs9, Transcript};
use crate::transport::{Transport, TransportError};
use anyhow::Context as _;
use simlab_emulator::CardDefinition;
use slot::{Borrowed, CardTransport};
use std::sync::{Arc, Mutex, PoisonError};
use usim::{AkaOutcome, Usim, UsimError};

/// Where a run's events go: a shared transcript (or nowhere, for load runs), and which card
/// spoke last, so that each card's APDUs are headed by its name.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    transcript: Option<Transcript>,
    speaker: Arc<Mutex<String>>,
}

impl Recorder {
    pub fn new(transcript: &Transcript) -> Self {
        Self {
            transcript: Some(transcript.clone()),
            speaker: Arc::default(),
        }
    }

    /// Records nothing (the load benchmark).
    pub fn off() -> Self {
        Self::default()
    }

    pub fn transcript(&self) -> Option<&Transcript> {
        self.transcript.as_ref()
    }

    pub fn push(&self, entry: Entry) {
        if let Some(t) = &self.transcript {
            t.push(entry);
        }
    }

    /// A context line (step heading, link message, SMS).
    pub fn note(&self, text: impl Into<String>) {
        self.push(Entry::Note { text: text.into() });
        self.set_speaker("");
    }

    /// A value drawn at random (masked when normalising).
    pub fn secret(&self, label: &str, value: impl AsRef<[u8]>) {
        self.push(Entry::Secret {
            label: label.to_owned(),
            value: value.as_ref().to_vec(),
        });
    }

    /// Heads the next APDUs with `card` unless it spoke last.
    fn set_speaker(&self, card: &str) {
        let mut last = self.speaker.lock().unwrap_or_else(PoisonError::into_inner);
        if *last != card {
            if !card.is_empty() {
                if let Some(t) = &self.transcript {
                    t.push(Entry::Note {
                        text: format!("[{card}]"),
                    });
                }
            }
            card.clone_into(&mut last);
        }
    }
}

/// A slot's transport, recording each exchange under the slot's name.
struct Labelled {
    label: String,
    inner: Recording<CardTransport>,
    recorder: Recorder,
}

impl Transport for Labelled {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.recorder.set_speaker(&self.label);
        self.inner.transmit_raw(apdu)
    }

    fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
        self.recorder.set_speaker(&self.label);
        self.inner.reset()
    }

    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        self.inner.atr()
    }
}

/// Nothing recorded: load runs.
struct Quiet(CardTransport);

impl Transport for Quiet {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.0.transmit_raw(apdu)
    }
    fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
        self.0.reset()
    }
    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        self.0.atr()
    }
}

/// A card in a device: its connection, where it is, and the definition the operator holds
/// for it (IMSI, keys, MSISDN) when the network must provision it.
pub struct Slot {
    /// `primary.uicc`, `new.euicc`, …
    pub label: String,
    /// Where the card is (`file:…`, `reader:…`, `vpcd:…`), for reports.
    pub place: String,
    pub definition: Option<CardDefinition>,
    transport: Box<dyn Transport + Send>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("label", &self.label)
            .field("place", &self.place)
            .finish_non_exhaustive()
    }
}

impl Slot {
    pub fn new(
        label: &str,
        place: &str,
        transport: CardTransport,
        definition: Option<CardDefinition>,
        recorder: &Recorder,
    ) -> Self {
        let transport: Box<dyn Transport + Send> = match recorder.transcript() {
            Some(t) => Box::new(Labelled {
                label: label.to_owned(),
                inner: Recording::new(transport, t),
                recorder: recorder.clone(),
            }),
            None => Box::new(Quiet(transport)),
        };
        Self {
            label: label.to_owned(),
            place: place.to_owned(),
            definition,
            transport,
        }
    }

    pub fn transport(&mut self) -> &mut (dyn Transport + Send + 'static) {
        &mut *self.transport
    }

    /// An ES10 session on the card's ISD-R (a logical channel, closed afterwards).
    pub fn lpa<R>(
        &mut self,
        f: impl FnOnce(&mut Es10Client<Borrowed<'_>>) -> Result<R, lpa::LpaError>,
    ) -> Result<R, lpa::LpaError> {
        let mut es10 = Es10Client::open(Borrowed(&mut *self.transport))?;
        let result = f(&mut es10);
        es10.close();
        result
    }

    /// PIN1 as the user knows it: the operator's definition, else the TS.48 default.
    fn pin1(&self) -> String {
        self.definition
            .as_ref()
            .map_or_else(|| "0000".to_owned(), |d| d.pins.pin1.clone())
    }
}

/// What a UICC (or an eUICC's enabled profile) says about its subscription.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub iccid: String,
    pub imsi: String,
    pub msisdn: Option<String>,
}

/// A user's device.
#[derive(Debug)]
pub struct Device {
    /// The role: `primary`, `secondary`, `third`, `old`, `new`, …
    pub name: String,
    pub uicc: Option<Slot>,
    pub euicc: Option<Slot>,
    pub recorder: Recorder,
    /// What the LPA tells SM-DP+s about the device (SGP.22 §4.2).
    pub info: DeviceInfo,
    /// The access card's subscription as last read (the modem reads it once per card
    /// session); forgotten whenever the card changes (enable, disable, OTA, reset).
    known: Option<Subscription>,
}

impl Device {
    pub fn new(name: &str, uicc: Option<Slot>, euicc: Option<Slot>, recorder: &Recorder) -> Self {
        Self {
            name: name.to_owned(),
            uicc,
            euicc,
            recorder: recorder.clone(),
            info: DeviceInfo::default(),
            known: None,
        }
    }

    fn uicc_slot(&mut self) -> anyhow::Result<&mut Slot> {
        let name = &self.name;
        self.uicc
            .as_mut()
            .with_context(|| format!("device {name} has no UICC slot"))
    }

    fn euicc_slot(&mut self) -> anyhow::Result<&mut Slot> {
        let name = &self.name;
        self.euicc
            .as_mut()
            .with_context(|| format!("device {name} has no eUICC"))
    }

    /// The slot the device's modem uses for network access: its UICC, else its eUICC (whose
    /// enabled profile is the USIM).
    pub fn access_slot(&mut self) -> anyhow::Result<&mut Slot> {
        let name = self.name.clone();
        self.uicc
            .as_mut()
            .or(self.euicc.as_mut())
            .with_context(|| format!("device {name} has no card"))
    }

    /// Reads the subscription of the access card: ICCID, then the USIM's IMSI and MSISDN
    /// (PIN1 verified when the card asks for it).
    pub fn subscription(&mut self) -> anyhow::Result<Subscription> {
        if let Some(known) = &self.known {
            return Ok(known.clone());
        }
        let from_profile = self.uicc.is_none();
        let slot = self.access_slot()?;
        let sub = read_subscription(slot).with_context(|| format!("reading {}", slot.label))?;
        if from_profile {
            // A downloaded profile's IMSI is drawn by the SM-DP+ for the order.
            self.recorder.secret("PROFILE-IMSI", &sub.imsi);
            if let Ok(ef) = simlab_emulator::saip::encode_imsi(&sub.imsi) {
                self.recorder.secret("PROFILE-IMSI", ef);
            }
            if let Some(m) = &sub.msisdn {
                self.recorder.secret("PROFILE-MSISDN", m);
                if let Some(bcd) = msisdn_bcd(m) {
                    self.recorder.secret("PROFILE-MSISDN", bcd);
                }
            }
        }
        self.known = Some(sub.clone());
        Ok(sub)
    }

    /// The UICC's subscription (a device with both cards, Fig. 14).
    pub fn uicc_subscription(&mut self) -> anyhow::Result<Subscription> {
        let slot = self.uicc_slot()?;
        read_subscription(slot).with_context(|| format!("reading {}", slot.label))
    }

    /// Relays the network's RAND/AUTN to the access card (TS 33.102 §6.3.3). RAND, AUTN and
    /// what the card derives are secrets of the run.
    pub fn aka(&mut self, rand: &[u8; 16], autn: &[u8; 16]) -> anyhow::Result<AkaOutcome> {
        self.recorder.secret("RAND", rand);
        self.recorder.secret("AUTN", autn);
        let slot = self.access_slot()?;
        let outcome = usim_session(slot, |u| u.authenticate(rand, autn))?;
        match &outcome {
            AkaOutcome::Success { res, ck, ik, data } => {
                // The whole answer first: with the XOR test algorithm CK and IK are rotations
                // of one value, so their parts could match across field boundaries.
                self.recorder.secret("AKA-ANSWER", data);
                self.recorder.secret("RES", res);
                self.recorder.secret("CK", ck);
                self.recorder.secret("IK", ik);
            }
            AkaOutcome::SyncFailure { auts } => self.recorder.secret("AUTS", auts),
            _ => {}
        }
        Ok(outcome)
    }

    /// The EAP-Response to an EAP-Request/AKA-Challenge (RFC 4187 §9.3–§9.6): RAND and AUTN
    /// go to the access card with AUTHENTICATE; its answer (RES/CK/IK, AUTS, or a MAC
    /// failure) becomes AT_RES + AT_MAC, AT_AUTS, or Authentication-Reject. `identity` is the
    /// one sent in EAP_ID (it is part of MK).
    pub fn eap_aka_answer(&mut self, identity: &str, request: &[u8]) -> anyhow::Result<Vec<u8>> {
        use crate::eap_aka::{CardAnswer, Challenge};
        let challenge = Challenge::parse(request)?;
        let card = match self.aka(&challenge.rand, &challenge.autn)? {
            AkaOutcome::Success { res, ck, ik, .. } => CardAnswer::Success { res, ck, ik },
            AkaOutcome::SyncFailure { auts } => CardAnswer::SyncFailure { auts },
            AkaOutcome::MacFailure => CardAnswer::MacFailure,
            AkaOutcome::Refused { sw } => {
                anyhow::bail!("the card refused AUTHENTICATE with status {sw:04X}")
            }
        };
        Ok(challenge
            .answer(identity.as_bytes(), card)
            .response()
            .to_vec())
    }

    /// Hands an SMS-PP download (TS 31.111 §7.1.1.2; an OTA secured packet, TS 102 225) to the
    /// UICC with ENVELOPE, as the device's modem does; answers the card's PoR, if it sent one.
    pub fn deliver_sms_pp(&mut self, tpdu: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        self.known = None;
        let slot = self.uicc_slot()?;
        Ok(crate::ota::deliver_sms_pp(slot.transport(), tpdu)?)
    }

    /// AUTHENTICATE (3G context) on the UICC, read directly after a reset (SELECT ADF.USIM
    /// attempted first, PIN1 verified), with a vector valid for the card: built from the keys of the
    /// operator's definition with sequence number `sqn` (TS 33.102 §6.3.2), as the HLR would.
    /// The raw answer: an active USIM answers `DB …` (or `DC …` if `sqn` is stale); a
    /// deactivated one must not.
    pub fn authenticate_directly(&mut self, sqn: u64) -> anyhow::Result<Vec<u8>> {
        self.known = None;
        let recorder = self.recorder.clone();
        let slot = self.uicc_slot()?;
        let def = slot.definition.clone().with_context(|| {
            format!(
                "{} needs the operator's card definition to build a vector",
                slot.label
            )
        })?;
        let algorithm = def
            .build()?
            .1
            .usim
            .map(|u| u.algorithm)
            .context("the card definition has no [usim]")?;
        let rand: [u8; 16] = rand::random();
        let v = simlab_emulator::aka::generate_vector(&algorithm, sqn, [0x80, 0x00], &rand);
        recorder.secret("RAND", v.rand);
        recorder.secret("AUTN", v.autn);
        let pin = slot.pin1();
        let t = slot.transport();
        t.reset()?;
        let mut u = Usim::new(&mut *t);
        let aid = u.usim_aid()?;
        let _ = u.select(&aid)?;
        // As a modem does: PIN1 first (a deactivated USIM must not answer even then).
        u.verify_pin1_if_needed(&pin)?;
        let answer = t.transmit(&crate::eap_aka::peer::authenticate_apdu(&v.rand, &v.autn))?;
        if answer.len() > 2 {
            recorder.secret("AKA-ANSWER", &answer[..answer.len() - 2]);
        }
        Ok(answer)
    }

    /// The status word of SELECT ADF.USIM on the UICC, read directly: `90 00` while active,
    /// `62 83` once deactivated (TS 102 221 §11.1.1.3).
    pub fn uicc_usim_select_status(&mut self) -> anyhow::Result<u16> {
        self.known = None;
        let slot = self.uicc_slot()?;
        let t = slot.transport();
        t.reset()?;
        let mut u = Usim::new(t);
        let aid = u.usim_aid()?;
        Ok(u.select(&aid)?)
    }

    /// The EID (ES10c.GetEID).
    pub fn eid(&mut self) -> anyhow::Result<String> {
        Ok(self.euicc_slot()?.lpa(|e| e.eid())?)
    }

    /// The eUICC's profiles (ES10c.GetProfilesInfo).
    pub fn profiles(&mut self) -> anyhow::Result<Vec<ProfileSummary>> {
        Ok(self.euicc_slot()?.lpa(|e| e.profiles())?)
    }

    /// Downloads the profile an activation code names into the eUICC (SGP.22 §3.1.3), ES9+
    /// over HTTPS trusting `roots`, every call recorded.
    pub fn download(
        &mut self,
        activation_code: &str,
        confirmation_code: Option<&str>,
        roots: &[Vec<u8>],
    ) -> anyhow::Result<Downloaded> {
        let ac: ActivationCode = activation_code
            .parse()
            .with_context(|| format!("activation code {activation_code:?}"))?;
        let info = self.info.clone();
        let recorder = self.recorder.clone();
        let slot = self.euicc_slot()?;
        let es9 = crate::es9p::Es9pClient::new(&ac.smdp_address, roots)?;
        let result = match recorder.transcript() {
            Some(t) => {
                let rec = RecordingEs9::new(&es9, t);
                slot.lpa(|e| lpa::download_via(e, &rec, &ac, confirmation_code, &info, &mut |_| {}))
            }
            None => {
                slot.lpa(|e| lpa::download_via(e, &es9, &ac, confirmation_code, &info, &mut |_| {}))
            }
        };
        Ok(result?)
    }

    /// Enables a profile (ES10c.EnableProfile with refresh); the card is reset so its USIM is
    /// the profile's, as a device does after the REFRESH.
    pub fn enable(&mut self, iccid: &str) -> anyhow::Result<()> {
        self.known = None;
        let slot = self.euicc_slot()?;
        slot.lpa(|e| e.enable(iccid))?;
        slot.transport().reset()?;
        Ok(())
    }

    /// Disables a profile (ES10c.DisableProfile).
    pub fn disable(&mut self, iccid: &str) -> anyhow::Result<()> {
        self.known = None;
        let slot = self.euicc_slot()?;
        slot.lpa(|e| e.disable(iccid))?;
        slot.transport().reset()?;
        Ok(())
    }

    /// Deletes a profile (ES10c.DeleteProfile).
    pub fn delete(&mut self, iccid: &str) -> anyhow::Result<()> {
        Ok(self.euicc_slot()?.lpa(|e| e.delete(iccid))?)
    }

    /// Sends the eUICC's pending notifications to their SM-DP+ (SGP.22 §3.5), recorded.
    pub fn process_notifications(&mut self, roots: &[Vec<u8>]) -> anyhow::Result<usize> {
        use crate::es9p::{Es9Plus, HandleNotificationRequest};
        let recorder = self.recorder.clone();
        let slot = self.euicc_slot()?;
        let sent = slot.lpa(|e| {
            let mut sent = 0;
            for n in e.list_notifications()? {
                let pending = e.retrieve_notification(n.seq_number)?;
                let es9 = crate::es9p::Es9pClient::new(&n.notification_address, roots)?;
                let req = HandleNotificationRequest {
                    header: None,
                    pending_notification: pending,
                };
                match recorder.transcript() {
                    Some(t) => RecordingEs9::new(&es9, t).handle_notification(&req)?,
                    None => es9.handle_notification(&req)?,
                }
                e.remove_notification(n.seq_number)?;
                sent += 1;
            }
            Ok(sent)
        })?;
        Ok(sent)
    }
}

fn usim_session<R>(
    slot: &mut Slot,
    f: impl FnOnce(&mut Usim<'_, dyn Transport + Send>) -> Result<R, UsimError>,
) -> anyhow::Result<R> {
    let pin = slot.pin1();
    let t = slot.transport();
    let mut u = Usim::new(t);
    let aid = u.usim_aid()?;
    match u.select(&aid)? {
        usim::SW_OK => {}
        usim::SW_DEACTIVATED => return Err(UsimError::Deactivated.into()),
        sw => {
            return Err(UsimError::Status {
                command: "SELECT ADF.USIM",
                sw,
            }
            .into())
        }
    }
    u.verify_pin1_if_needed(&pin)?;
    Ok(f(&mut u)?)
}

/// EF.MSISDN's number part as stored (TS 31.102 §4.2.26, TS 24.008 §10.5.4.7): length of
/// BCD number/SSC contents, TON/NPI ('91' international when the number starts with '+'),
/// then the digits in swapped-nibble BCD padded with 'F'.
fn msisdn_bcd(msisdn: &str) -> Option<Vec<u8>> {
    let (ton, digits) = match msisdn.strip_prefix('+') {
        Some(d) => (0x91, d),
        None => (0x81, msisdn),
    };
    let nibbles: Vec<u8> = digits
        .chars()
        .map(|c| c.to_digit(10).map(|d| d as u8))
        .collect::<Option<_>>()?;
    let mut out = vec![0, ton];
    for pair in nibbles.chunks(2) {
        out.push(pair[0] | pair.get(1).map_or(0xF0, |d| d << 4));
    }
    out[0] = (out.len() - 1) as u8;
    Some(out)
}

/// The subscription of one slot's card (ICCID, and its USIM's IMSI and MSISDN).
pub fn read_subscription_of(slot: &mut Slot) -> anyhow::Result<Subscription> {
    read_subscription(slot)
}

fn read_subscription(slot: &mut Slot) -> anyhow::Result<Subscription> {
    let iccid = Usim::new(slot.transport()).iccid()?;
    let (imsi, msisdn) = usim_session(slot, |u| Ok((u.imsi()?, u.msisdn()?)))?;
    Ok(Subscription {
        iccid,
        imsi,
        msisdn,
    })
}
