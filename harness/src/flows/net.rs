//! The devices' view of the operator network (docs/network.md): the only module of the flows
//! that knows the network's client, so a flow reads as the seed's steps. The network is the
//! embedded one (a fresh one per scenario, in this process, state in SQLite) or a running
//! deployment reached by URL; nothing else differs.

use super::engine::{Env, NetworkSpec};
use super::scenario::{Auth, RingMode, Scenario};
use crate::device::{Device, Recorder};
use crate::network::client::{self as nc, NetworkClient};
use crate::network::{db, service, ts43};
use crate::output::CodedError;
use anyhow::{anyhow, bail, Context as _};
use serde_json::Value;
use simlab_emulator::CardDefinition;

/// A line of the user's, as the entitlement request names it (TS.43 parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineId {
    Iccid(String),
    Msisdn(String),
    Imsi(String),
    Eid(String),
}

/// What a device asks the entitlement server for (docs/network.md §1, "Operations").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Authenticate; the answer carries a token and the line.
    Acquire,
    /// A profile for a companion eUICC (Fig. 4 404), with the binding (Fig. 5 504).
    Companion { eid: String, shared_number: bool },
    /// A profile for the device's own eUICC (Fig. 14 1402, Fig. 15 1502).
    OwnEuicc { eid: String, bind: bool },
    /// Multi-IMSI single-MSISDN activation (410, 1104, 6110).
    Bind {
        primary: Option<LineId>,
        secondary: LineId,
        ring_mode: Option<RingMode>,
    },
    /// Unbinding (1304).
    Unbind {
        primary: Option<LineId>,
        secondary: LineId,
    },
    /// Upgrade (Fig. 16) or migration (Fig. 17) of `msisdn` to the eUICC `eid`.
    Transfer {
        msisdn: String,
        eid: String,
        migration: bool,
    },
}

/// The entitlement document's parts the flows use (TS.43 names, docs/network.md §1).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Doc {
    pub token: Option<String>,
    pub subscription_result: Option<String>,
    pub service_status: Option<String>,
    pub activation_code: Option<String>,
    pub iccid: Option<String>,
    pub operation_id: Option<String>,
    pub contract_url: Option<String>,
    pub msisdn: Option<String>,
    pub imsi: Option<String>,
    pub group: Vec<String>,
    pub raw: Value,
}

/// TS.43 SubscriptionResult values.
pub const CONTINUE_TO_WEBSHEET: &str = "1";
pub const DOWNLOAD_PROFILE: &str = "2";
pub const DONE: &str = "3";
pub const DISMISS: &str = "5";
pub const REQUIRES_USER_INPUT: &str = "8";

impl Doc {
    pub fn from_raw(raw: Value) -> Doc {
        let app = &raw["APPLICATION"];
        let s = |v: &Value| v.as_str().map(str::to_owned);
        Doc {
            token: s(&raw["Token"]["token"]),
            subscription_result: s(&app["SubscriptionResult"]),
            service_status: s(&app["ServiceStatus"]),
            activation_code: s(&app["DownloadInfo"]["ProfileActivationCode"]),
            iccid: s(&app["DownloadInfo"]["ProfileIccid"]),
            operation_id: s(&app["OperationId"]),
            contract_url: s(&app["SubscriptionServiceURL"]),
            msisdn: s(&app["Line"]["MSISDN"]),
            imsi: s(&app["Line"]["IMSI"]),
            group: app["MultiImsi"]["Members"]
                .as_array()
                .map(|m| m.iter().filter_map(|x| s(&x["IMSI"])).collect())
                .unwrap_or_default(),
            raw,
        }
    }

    /// The activation code, or why there is none.
    pub fn activation_code(&self) -> anyhow::Result<String> {
        self.activation_code.clone().ok_or_else(|| {
            anyhow!(
                "the answer has no DownloadInfo (SubscriptionResult {:?})",
                self.subscription_result
            )
        })
    }

    pub fn operation_id(&self) -> anyhow::Result<String> {
        self.operation_id
            .clone()
            .ok_or_else(|| anyhow!("the answer has no OperationId"))
    }
}

/// The stable network code of an error (a `ClientError::Network` in the chain).
pub fn code_of(e: &anyhow::Error) -> Option<String> {
    e.chain()
        .find_map(|c| c.downcast_ref::<nc::ClientError>())
        .and_then(|c| c.code().map(str::to_owned))
}

struct Embedded {
    running: Option<crate::network::server::RunningNetwork>,
    options: crate::network::server::NetworkOptions,
    _db_dir: Option<tempfile::TempDir>,
}

/// The network a scenario runs against.
pub struct Net {
    pub client: NetworkClient,
    /// TLS roots for the SM-DP+ (ES9+).
    pub roots: Vec<Vec<u8>>,
    embedded: Option<Embedded>,
    rec: Recorder,
    ask_codes: bool,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net").finish_non_exhaustive()
    }
}

fn observe(client: NetworkClient, rec: &Recorder) -> NetworkClient {
    if rec.transcript().is_none() {
        return client;
    }
    let rec = rec.clone();
    client.with_observer(std::sync::Arc::new(move |x: &nc::Exchange| {
        rec.push(crate::transcript::Entry::Http {
            method: x.method.clone(),
            path: x.path.clone(),
            body: x.request.clone(),
        });
        rec.push(crate::transcript::Entry::HttpResponse {
            status: x.status,
            body: x.response.clone(),
        });
    }))
}

impl Net {
    /// Starts the embedded network (a fresh one; on a file database when the scenario
    /// restarts it) or connects to the one `env` names.
    pub fn open(env: &Env, scenario: &Scenario, rec: &Recorder) -> anyhow::Result<Net> {
        match &env.network {
            NetworkSpec::Embedded => {
                let mut options = crate::network::server::NetworkOptions::embedded(&env.vectors);
                let db_dir = if scenario.params.restart_network {
                    let dir = tempfile::tempdir()?;
                    options.smdp.db = Some(dir.path().join("network.sqlite"));
                    Some(dir)
                } else {
                    None
                };
                if scenario.params.expire_code {
                    options.code_ttl = super::transfer::SHORT_CODE_TTL;
                }
                let running = crate::network::server::start(options.clone())
                    .context("starting the embedded network")?;
                // A restart comes back on the same ports: activation codes name the SM-DP+'s.
                if let Some(a) = address_of(running.operator_url()) {
                    options.listen = a;
                }
                if let Some(a) = address_of(running.smdp_address()) {
                    options.smdp.listen = a;
                }
                if let Some(a) = address_of(running.operator_url()) {
                    rec.secret("OPERATOR", a.to_string());
                }
                let client = observe(NetworkClient::new(running.operator_url()), rec);
                let roots = vec![running.smdp_ca_cert_der().to_vec()];
                Ok(Net {
                    client,
                    roots,
                    embedded: Some(Embedded {
                        running: Some(running),
                        options,
                        _db_dir: db_dir,
                    }),
                    rec: rec.clone(),
                    ask_codes: env.ask_codes,
                })
            }
            NetworkSpec::Url(url) => {
                let trust = if env.trust.is_empty() {
                    vec![env
                        .vectors
                        .join("pki/CertificateIssuer/CERT_CI_ECDSA_NIST.der")]
                } else {
                    env.trust.clone()
                };
                let roots = trust
                    .iter()
                    .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                Ok(Net {
                    client: observe(NetworkClient::new(url), rec),
                    roots,
                    embedded: None,
                    rec: rec.clone(),
                    ask_codes: env.ask_codes,
                })
            }
        }
    }

    pub fn stop(&mut self) {
        if let Some(e) = &mut self.embedded {
            if let Some(r) = e.running.take() {
                r.stop();
            }
        }
    }

    /// Stops the embedded network process and starts it again on the same database.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        let Some(e) = &mut self.embedded else {
            bail!(CodedError::new(
                "usage",
                "restarting the network needs the embedded network (--network embedded)"
            ));
        };
        if let Some(r) = e.running.take() {
            r.stop();
        }
        let running = crate::network::server::start(e.options.clone())
            .context("restarting the embedded network on its database")?;
        self.client = observe(NetworkClient::new(running.operator_url()), &self.rec);
        self.roots = vec![running.smdp_ca_cert_der().to_vec()];
        e.running = Some(running);
        self.rec.note("NETWORK restarted on the same database");
        Ok(())
    }

    /// Registers a UICC's subscription from the definition the operator holds for the card
    /// (the seed: the user "has already accessed the network"); a line already there is kept.
    pub fn provision_uicc(
        &self,
        def: &CardDefinition,
        policy: db::Policy,
        ring_mode: Option<RingMode>,
        account: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut sub = service::Provision::from_card_definition(def, None)?;
        sub.policy = policy;
        sub.account = account.map(str::to_owned);
        if let Some(r) = ring_mode {
            sub.ring_mode = match r {
                RingMode::Fa => db::RingMode::Fa,
                RingMode::Mah => db::RingMode::Mah,
            };
        }
        match self.client.provision(&sub) {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("imsi-exists") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn request(req: &Request) -> nc::EntitlementRequest {
        let line = |l: &LineId| match l {
            LineId::Iccid(x) => ts43::LineId::Iccid(x.clone()),
            LineId::Msisdn(x) => ts43::LineId::Msisdn(x.clone()),
            LineId::Imsi(x) => ts43::LineId::Imsi(x.clone()),
            LineId::Eid(x) => ts43::LineId::Eid(x.clone()),
        };
        match req {
            Request::Acquire => nc::EntitlementRequest::acquire_configuration(),
            Request::Companion { eid, shared_number } => {
                nc::EntitlementRequest::companion_subscribe(eid, *shared_number)
            }
            Request::OwnEuicc { eid, bind } => {
                nc::EntitlementRequest::own_euicc_subscribe(eid, *bind)
            }
            Request::Bind {
                primary,
                secondary,
                ring_mode,
            } => nc::EntitlementRequest::activate_multi_imsi(
                primary.as_ref().map(line).as_ref(),
                &line(secondary),
                ring_mode.map(RingMode::as_str),
            ),
            Request::Unbind { primary, secondary } => {
                nc::EntitlementRequest::deactivate_multi_imsi(
                    primary.as_ref().map(line).as_ref(),
                    &line(secondary),
                )
            }
            Request::Transfer {
                msisdn,
                eid,
                migration,
            } => nc::EntitlementRequest::transfer(
                msisdn,
                eid,
                Some(if *migration { "migration" } else { "upgrade" }),
            ),
        }
    }

    /// `req` authenticated by EAP-AKA through `device`'s own card (RAND/AUTN relayed to its
    /// USIM with AUTHENTICATE; RFC 4187 via the TS.43 relay).
    pub fn eap_aka(&self, device: &mut Device, req: &Request) -> anyhow::Result<Doc> {
        let sub = device.subscription()?;
        let mnc_len = device
            .access_slot()?
            .definition
            .as_ref()
            .and_then(|d| d.usim.as_ref().map(|u| usize::from(u.mnc_length)))
            .unwrap_or(2);
        let identity = crate::eap_aka::permanent_identity(&sub.imsi, mnc_len);
        let doc = self.client.authenticate_eap_aka(
            &Self::request(req),
            &identity,
            &mut |request: &[u8]| {
                self.rec.secret("EAP", request);
                let answer = device
                    .eap_aka_answer(&identity, request)
                    .map_err(|e| nc::ClientError::Device(format!("{e:#}")))?;
                self.rec.secret("EAP", &answer);
                Ok(answer)
            },
        )?;
        Ok(self.doc(doc.raw))
    }

    /// `req` with a token from an earlier authentication.
    pub fn with_token(&self, token: &str, req: &Request) -> anyhow::Result<Doc> {
        let doc = self
            .client
            .entitlement_document(&Self::request(req), &nc::Auth::Token(token.to_owned()))?;
        Ok(self.doc(doc.raw))
    }

    /// `req` authenticated by a one-time code sent to `msisdn`: the answer asks for the code.
    pub fn by_code(&self, msisdn: &str, req: &Request) -> anyhow::Result<Doc> {
        let doc = self.client.entitlement_document(
            &Self::request(req),
            &nc::Auth::Otp {
                msisdn: msisdn.to_owned(),
            },
        )?;
        Ok(self.doc(doc.raw))
    }

    /// Continues an operation (after a contract page, or with the one-time code).
    pub fn continue_op(
        &self,
        operation_id: &str,
        otp: Option<&str>,
        token: Option<&str>,
    ) -> anyhow::Result<Doc> {
        if let Some(code) = otp {
            self.rec.secret("CODE", code);
        }
        let doc = self.client.continue_operation(operation_id, otp, token)?;
        Ok(self.doc(doc.raw))
    }

    fn doc(&self, raw: Value) -> Doc {
        let d = Doc::from_raw(raw);
        if let Some(t) = &d.token {
            self.rec.secret("TOKEN", t);
        }
        if let Some(o) = &d.operation_id {
            self.rec.secret("OPERATION", o);
        }
        if let Some(ac) = &d.activation_code {
            if let Some(m) = ac.rsplit('$').next() {
                self.rec.secret("MATCHING-ID", m);
            }
        }
        if let Some(u) = &d.contract_url {
            if let Some(id) = u.rsplit('/').next() {
                self.rec.secret("CONTRACT", id);
            }
        }
        d
    }

    /// Authenticates `device` (the seed's step 403 / 1401 / 1500) with `auth`: EAP-AKA with
    /// its card, or the code the network sends to its number, read from its own inbox.
    pub fn authenticate(
        &self,
        device: &mut Device,
        auth: Auth,
        req: &Request,
    ) -> anyhow::Result<Doc> {
        match auth {
            Auth::EapAka => self.eap_aka(device, req),
            Auth::Sms => {
                let sub = device.subscription()?;
                let msisdn = sub
                    .msisdn
                    .clone()
                    .context("the card has no MSISDN in EF.MSISDN to receive the code")?;
                let asked = self.by_code(&msisdn, req)?;
                let op = asked.operation_id()?;
                let code = self.code_for(device)?;
                self.continue_op(&op, Some(&code), None)
            }
        }
    }

    /// The newest one-time code in `device`'s inbox (its access card's IMSI); on a network
    /// whose SMS the harness cannot read, asked for on the terminal.
    pub fn code_for(&self, device: &mut Device) -> anyhow::Result<String> {
        let imsi = device.subscription()?.imsi;
        match self.client.inbox(&imsi, None) {
            Ok(messages) => {
                let code = messages
                    .iter()
                    .rev()
                    .filter(|m| m.kind == "text")
                    .find_map(|m| nc::extract_code(&m.text))
                    .ok_or_else(|| anyhow!("no one-time code in the inbox of IMSI {imsi}"))?;
                self.rec.secret("CODE", &code);
                self.rec.note(format!("SMS {} ← code {code}", device.name));
                Ok(code)
            }
            Err(e) if self.ask_codes => {
                let prompt = format!(
                    "The network sent a code by SMS to {} (its inbox cannot be read: {e}). Code: ",
                    device.name
                );
                let code = ask(&prompt)?;
                self.rec.secret("CODE", &code);
                Ok(code)
            }
            Err(e) => Err(e).context(format!("reading the SMS inbox of IMSI {imsi}")),
        }
    }

    /// Every one-time code in `device`'s inbox, newest first.
    pub fn codes_for(&self, device: &mut Device) -> anyhow::Result<Vec<String>> {
        let imsi = device.subscription()?.imsi;
        let codes: Vec<String> = self
            .client
            .inbox(&imsi, None)?
            .iter()
            .rev()
            .filter(|m| m.kind == "text")
            .filter_map(|m| nc::extract_code(&m.text))
            .collect();
        for c in &codes {
            self.rec.secret("CODE", c);
        }
        Ok(codes)
    }

    /// SMS-PP messages (OTA) waiting for `imsi`.
    pub fn sms_pp(&self, imsi: &str) -> anyhow::Result<Vec<(i64, Vec<u8>)>> {
        let mut out = Vec::new();
        for m in self.client.inbox(imsi, None)? {
            if m.kind != "sms-pp" {
                continue;
            }
            // The text of an OTA message names the network's job id, drawn per run.
            self.rec.secret("OTA-JOB", &m.text);
            if let Some(tpdu) = m.user_data.as_deref().and_then(|h| hex::decode(h).ok()) {
                out.push((m.id, tpdu));
            }
        }
        Ok(out)
    }

    /// The contract page (6030): opened, then accepted or declined with the form.
    pub fn answer_contract(&self, url: &str, accept: bool) -> anyhow::Result<String> {
        let page = self.client.open_contract(url)?;
        if !page.html.contains("decision") {
            bail!("the contract page at {url} has no decision form");
        }
        Ok(self.client.answer_contract(url, accept)?)
    }

    /// Network attach of `device`'s access card (HLR: AKA with a fresh vector).
    pub fn attach(&self, device: &mut Device) -> anyhow::Result<String> {
        let imsi = device.subscription()?.imsi;
        let challenge = self.client.attach(&imsi)?;
        self.rec.secret("ATTACH", &challenge.session);
        let rand: [u8; 16] = hex_array(&challenge.rand)?;
        let autn: [u8; 16] = hex_array(&challenge.autn)?;
        match device.aka(&rand, &autn)? {
            crate::device::usim::AkaOutcome::Success { res, ck, ik, .. } => {
                let card = crate::eap_aka::CardAnswer::Success { res, ck, ik };
                match self.client.attach_answer(&challenge.session, &card)? {
                    nc::AttachStep::Attached(a) if a.attached => Ok(a.msisdn),
                    other => bail!("the network did not attach the card: {other:?}"),
                }
            }
            other => bail!("the card answered the network's AUTHENTICATE with {other:?}"),
        }
    }

    /// `POST /calls`: who rings, in which order.
    pub fn call(&self, to: &str) -> anyhow::Result<service::CallResult> {
        Ok(self.client.call(to, Some(&[]))?)
    }

    pub fn line(&self, imsi: &str) -> anyhow::Result<db::LineView> {
        Ok(self.client.line(imsi)?)
    }

    /// Active IMSIs of `msisdn`, sorted.
    pub fn active_imsis(&self, msisdn: &str) -> anyhow::Result<Vec<String>> {
        let sub = self.client.subscriber(msisdn)?;
        let mut v: Vec<String> = sub
            .imsis
            .iter()
            .filter(|l| l.state == db::LineState::Active)
            .map(|l| l.imsi.clone())
            .collect();
        v.sort();
        Ok(v)
    }

    pub fn orders(&self) -> anyhow::Result<Vec<service::OrderView>> {
        Ok(self.client.orders()?)
    }
}

/// The socket address in `http://127.0.0.1:PORT/…` or `127.0.0.1:PORT`.
fn address_of(url: &str) -> Option<std::net::SocketAddr> {
    let rest = url.split("://").last()?;
    rest.split('/').next()?.parse().ok()
}

fn hex_array<const N: usize>(h: &str) -> anyhow::Result<[u8; N]> {
    hex::decode(h)?
        .try_into()
        .map_err(|_| anyhow!("expected {N} bytes in {h}"))
}

/// Asks on the terminal.
fn ask(prompt: &str) -> anyhow::Result<String> {
    use std::io::{BufRead as _, Write as _};
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let code = line.trim().to_owned();
    if code.is_empty() {
        bail!("no code entered");
    }
    Ok(code)
}
