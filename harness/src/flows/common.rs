//! Steps and proofs several flows share: provisioning the user's existing line, pairing,
//! authenticating, downloading into an eUICC, and the outcome checks read back from the cards
//! (APDUs) and from the network (its admin API, attach, calls).

use super::engine::{Attempt, Ctx, Failure};
use super::net::{Doc, Request};
use super::scenario::RingMode;
use crate::device::link::{Link, LinkMessage};
use crate::device::{Device, Subscription};
use anyhow::{anyhow, Context as _};

/// The operator's policies for the user's line (docs/network.md §4).
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    pub contract: bool,
    pub binding_contract: bool,
    pub second_device_code: bool,
}

/// Registers `device`'s UICC line from the definition the operator holds (the user already
/// uses the network), and reads the card's subscription.
pub fn provision(
    ctx: &mut Ctx<'_>,
    device: &mut Device,
    policy: Policy,
    account: Option<&str>,
) -> Result<Subscription, Failure> {
    let ring = ctx.scenario.params.ring_mode;
    let name = device.name.clone();
    ctx.step(
        "setup",
        &format!("the operator holds {name}'s line (BOSS)"),
        |c| {
            let def = device.access_slot()?.definition.clone().with_context(|| {
                format!(
                    "the network needs the card definition of {name}'s card (its IMSI and keys): \
                     give --card-def {name}=FILE"
                )
            })?;
            c.net.provision_uicc(
                &def,
                crate::network::db::Policy {
                    contract: policy.contract,
                    binding_contract: policy.binding_contract,
                    second_device_code: policy.second_device_code,
                },
                ring,
                account,
            )?;
            device.subscription()
        },
    )
}

/// The device authenticates (403 / 1103 / 1401 / 1500) by the scenario's method; the token.
pub fn authenticate(ctx: &mut Ctx<'_>, id: &str, device: &mut Device) -> Result<String, Failure> {
    let auth = ctx.scenario.params.auth();
    let title = format!(
        "{} authenticates to the network ({})",
        device.name,
        match auth {
            super::scenario::Auth::EapAka => "EAP-AKA with its card",
            super::scenario::Auth::Sms => "SMS code",
        }
    );
    ctx.step(id, &title, |c| {
        let doc = c.net.authenticate(device, auth, &Request::Acquire)?;
        doc.token
            .ok_or_else(|| anyhow!("the entitlement document carries no token"))
    })
}

/// Pairing (401) and the secondary's EID over the link (402).
pub fn pair_and_get_eid(
    ctx: &mut Ctx<'_>,
    ids: (&str, &str),
    primary: &mut Device,
    secondary: &mut Device,
) -> Result<(Link, String), Failure> {
    let medium = ctx
        .scenario
        .params
        .medium
        .unwrap_or(super::catalog::DEFAULT_MEDIUM);
    let mut link = Link::new(medium, &primary.name, &secondary.name, &ctx.rec);
    ctx.step(
        ids.0,
        &format!("{} pairs with {}", primary.name, secondary.name),
        |_| Ok(link.pair(&primary.name)?),
    )?;
    let eid = ctx.step(
        ids.1,
        &format!("{} sends its EID to {}", secondary.name, primary.name),
        |_| {
            let eid = secondary.eid()?;
            link.send(&secondary.name, LinkMessage::Eid { eid })?;
            let got = link.receive(&primary.name)?;
            Ok(crate::expect_link!(primary.name, got, LinkMessage::Eid { eid } => eid, "an EID")?)
        },
    )?;
    Ok((link, eid))
}

/// The activation code travels over the link (408 / 6080).
pub fn send_activation_code(
    ctx: &mut Ctx<'_>,
    id: &str,
    link: &mut Link,
    from: &Device,
    to: &Device,
    ac: &str,
) -> Result<(), Failure> {
    ctx.step(id, &format!("{} sends the activation code to {}", from.name, to.name), |_| {
        link.send(
            &from.name,
            LinkMessage::ActivationCode {
                activation_code: ac.to_owned(),
                confirmation_code: None,
            },
        )?;
        let got = link.receive(&to.name)?;
        let ac = crate::expect_link!(to.name, got,
            LinkMessage::ActivationCode { activation_code, .. } => activation_code, "an activation code")?;
        Ok(ac)
    })
    .map(|_| ())
}

/// Download (SGP.22 §3.1.3) into `device`'s eUICC, enable, deliver the notifications: the
/// installed ICCID.
pub fn download_enable(
    ctx: &mut Ctx<'_>,
    id: &str,
    device: &mut Device,
    ac: &str,
) -> Result<String, Failure> {
    ctx.step(
        id,
        &format!(
            "{} downloads the profile from the SM-DP+ and enables it",
            device.name
        ),
        |c| {
            let done = device.download(ac, None, &c.net.roots)?;
            let iccid = done
                .iccid
                .context("the installation result names no ICCID")?;
            device.enable(&iccid)?;
            device.process_notifications(&c.net.roots)?;
            Ok(iccid)
        },
    )
}

/// A download the scenario may expect refused (`activation-code-twice`, `other-eid`).
pub fn try_download(
    ctx: &mut Ctx<'_>,
    id: &str,
    device: &mut Device,
    ac: &str,
) -> Result<Attempt<Option<String>>, Failure> {
    ctx.attempt(
        id,
        &format!("{} tries to download with the activation code", device.name),
        |c| {
            let done = device.download(ac, None, &c.net.roots)?;
            Ok(done.iccid)
        },
    )
}

/// Result forwarding over the link (6100, 6170, 1106, 1306, 510).
pub fn forward(
    ctx: &mut Ctx<'_>,
    id: &str,
    link: &mut Link,
    from: &Device,
    to: &Device,
    message: LinkMessage,
) -> Result<(), Failure> {
    ctx.step(
        id,
        &format!("{} tells {} the result", from.name, to.name),
        |_| {
            link.send(&from.name, message)?;
            link.receive(&to.name)?;
            Ok(())
        },
    )
}

/// Proof on the card: GetProfilesInfo lists `iccid` enabled, and the card's USIM is now that
/// profile's (EF.ICCID read back after the refresh).
pub fn prove_enabled(ctx: &mut Ctx<'_>, device: &mut Device, iccid: &str) -> Result<(), Failure> {
    let name = device.name.clone();
    let profiles = ctx.step(
        "proof",
        &format!("read {name}'s eUICC back (ES10c)"),
        |_| device.profiles(),
    )?;
    let state = profiles
        .iter()
        .find(|p| p.iccid == iccid)
        .map(|p| p.state.clone());
    ctx.check_eq(
        &format!("{name}'s eUICC shows profile {iccid} (GetProfilesInfo)"),
        state.as_deref(),
        Some("enabled"),
    )
}

/// Proof in the network: the card attaches (HLR AKA through the card) under `msisdn`.
pub fn prove_attach(ctx: &mut Ctx<'_>, device: &mut Device, msisdn: &str) -> Result<(), Failure> {
    let name = device.name.clone();
    let got = ctx.step(
        "proof",
        &format!("{name} attaches to the network with its card"),
        |c| c.net.attach(device),
    )?;
    ctx.check_eq(
        &format!("{name} attaches as {msisdn}"),
        got.as_str(),
        msisdn,
    )
}

/// Proof in the network: `msisdn`'s active IMSIs are exactly `imsis`.
pub fn prove_imsis(ctx: &mut Ctx<'_>, msisdn: &str, imsis: &[&str]) -> Result<(), Failure> {
    let got = ctx.step(
        "proof",
        &format!("read {msisdn} from the BOSS (admin API)"),
        |c| c.net.active_imsis(msisdn),
    )?;
    let want: Vec<String> = imsis.iter().map(|s| (*s).to_owned()).collect();
    same_members(
        ctx,
        &format!("{msisdn} maps to the active IMSIs"),
        got,
        want,
    )
}

/// A check that two lists hold the same members, shown in the expected (flow) order so the
/// transcript does not depend on how random IMSIs sort.
fn same_members(
    ctx: &mut Ctx<'_>,
    what: &str,
    got: Vec<String>,
    want: Vec<String>,
) -> Result<(), Failure> {
    let (mut a, mut b) = (got.clone(), want.clone());
    a.sort();
    b.sort();
    let detail = if a == b {
        format!("{want:?}")
    } else {
        format!("got {got:?}, expected {want:?}")
    };
    ctx.check(what, a == b, detail)
}

/// Proof of call delivery: FA rings every member at step 1; MAH one per step, in order; a
/// single line rings alone. `silent` IMSIs (disabled lines) must not ring, and the network
/// says why.
pub fn prove_calls(
    ctx: &mut Ctx<'_>,
    msisdn: &str,
    mode: RingMode,
    in_order: &[&str],
    silent: &[&str],
) -> Result<(), Failure> {
    let call = ctx.step("proof", &format!("a call to {msisdn}"), |c| {
        c.net.call(msisdn)
    })?;
    if in_order.len() > 1 {
        ctx.check_eq(
            &format!("call delivery of {msisdn}"),
            call.mode.as_str(),
            mode.as_str(),
        )?;
    }
    let all: Vec<String> = in_order.iter().map(|s| (*s).to_owned()).collect();
    match (mode, in_order.len()) {
        (RingMode::Fa, _) | (_, 1) => {
            // One step, everyone at once.
            ctx.check_eq(&format!("{msisdn} rings in one step"), call.rings.len(), 1)?;
            let rung = call
                .rings
                .first()
                .map(|r| r.imsis.clone())
                .unwrap_or_default();
            same_members(ctx, &format!("who rings for {msisdn}"), rung, all)?;
        }
        (RingMode::Mah, _) => {
            let steps: Vec<Vec<String>> = call.rings.iter().map(|r| r.imsis.clone()).collect();
            let want: Vec<Vec<String>> = all.iter().map(|s| vec![s.clone()]).collect();
            ctx.check_eq(
                &format!("who rings for {msisdn}, one step each in ring order"),
                steps,
                want,
            )?;
        }
    }
    for imsi in silent {
        let why = call.not_ringing.iter().find(|n| n.imsi == *imsi);
        ctx.check(
            format!("{imsi} does not ring"),
            why.is_some(),
            why.map_or_else(|| format!("{:?}", call.not_ringing), |n| n.reason.clone()),
        )?;
    }
    Ok(())
}

/// Proof the network refuses an IMSI: attach answers `imsi-disabled` (with the reason).
pub fn prove_refused(ctx: &mut Ctx<'_>, device: &mut Device, imsi: &str) -> Result<(), Failure> {
    let name = device.name.clone();
    let refusal = ctx.step(
        "proof",
        &format!("{name}'s IMSI {imsi} tries to attach"),
        |c| {
            Ok(match c.net.attach(device) {
                Ok(m) => Err(format!("attached as {m}")),
                Err(e) => Ok((super::engine::error_code(&e), format!("{e:#}"))),
            })
        },
    )?;
    match refusal {
        Ok((code, message)) => ctx.check(
            format!("the network refuses IMSI {imsi}"),
            code.as_deref() == Some("imsi-disabled"),
            message,
        ),
        Err(attached) => ctx.check(format!("the network refuses IMSI {imsi}"), false, attached),
    }
}

/// The binding request (410 / 6110 / 1104).
pub fn bind(
    ctx: &mut Ctx<'_>,
    id: &str,
    token: &str,
    secondary: super::net::LineId,
) -> Result<Doc, Failure> {
    let ring_mode = ctx.scenario.params.ring_mode;
    ctx.step(
        id,
        "the primary asks for the multi-IMSI single-MSISDN service",
        |c| {
            c.net.with_token(
                token,
                &Request::Bind {
                    primary: None,
                    secondary,
                    ring_mode,
                },
            )
        },
    )
}
