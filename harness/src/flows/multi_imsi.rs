//! Multi-IMSI single-MSISDN service between two UICC devices (JP7540673B2 Fig. 11, 12A–12B)
//! and its unbinding (Fig. 13).

use super::common::{self, Policy};
use super::companion::dev;
use super::engine::{Attempt, Ctx, Failure};
use super::net::{self, LineId, Request};
use super::scenario::RingMode;
use crate::device::link::{Link, LinkMessage};
use anyhow::ensure;

/// `multi-imsi-uicc` (Fig. 11 steps 1101–1106; Fig. 12 step 1250 for the code check).
pub fn multi_imsi_uicc(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let p = ctx.scenario.params.clone();
    let mut primary = dev(ctx, "primary")?;
    let mut sec = dev(ctx, "secondary")?;
    let policy = Policy {
        second_device_code: p.second_device_code,
        ..Policy::default()
    };
    let line = common::provision(ctx, &mut primary, policy, None)?;
    let msisdn = line.msisdn.clone().unwrap_or_default();
    // Fig. 11: one user, two UICC devices: both lines are the primary holder's account.
    let second = common::provision(ctx, &mut sec, Policy::default(), Some(&msisdn))?;
    // Step 1103 comes before 1101–1102 (the seed's note on Fig. 11).
    let token = common::authenticate(ctx, "1103", &mut primary)?;
    let medium = p.medium.unwrap_or(super::catalog::DEFAULT_MEDIUM);
    let mut link = Link::new(medium, &primary.name, &sec.name, &ctx.rec);
    ctx.step(
        "1101",
        "the primary pairs with the second UICC device",
        |_| Ok(link.pair(&primary.name)?),
    )?;
    let ids = ctx.step(
        "1102",
        "the second device sends its identifiers (ICCID, IMSI, MSISDN)",
        |_| {
            link.send(
                &sec.name,
                LinkMessage::Identifiers {
                    iccid: second.iccid.clone(),
                    imsi: second.imsi.clone(),
                    msisdn: second.msisdn.clone(),
                },
            )?;
            Ok(link.receive(&primary.name)?)
        },
    )?;
    let iccid = match ids {
        LinkMessage::Identifiers { iccid, .. } => iccid,
        _ => second.iccid.clone(),
    };
    let mut doc = common::bind(ctx, "1104", &token, LineId::Iccid(iccid))?;
    if p.second_device_code {
        let op = ctx.step(
            "1250",
            "the operator sends a code to the second device",
            |_| {
                ensure!(
                    doc.subscription_result.as_deref() == Some(net::REQUIRES_USER_INPUT),
                    "expected SubscriptionResult 8 (a code was sent), got {:?}",
                    doc.subscription_result
                );
                doc.operation_id()
            },
        )?;
        let code = ctx.step("1250", "the second device receives the code by SMS", |c| {
            c.net.code_for(&mut sec)
        })?;
        doc = ctx.step("1250", "the user sends the code with the primary", |c| {
            c.net.continue_op(&op, Some(&code), Some(&token))
        })?;
    }
    ctx.step("1105", "the operator answers the activation result", |_| {
        ensure!(
            doc.group.contains(&second.imsi),
            "the result lists {:?}, not {}",
            doc.group,
            second.imsi
        );
        Ok(())
    })?;
    common::forward(
        ctx,
        "1106",
        &mut link,
        &primary,
        &sec,
        LinkMessage::ServiceResult {
            service: "multi-IMSI single MSISDN".into(),
            result: "activated".into(),
        },
    )?;
    common::prove_imsis(ctx, &msisdn, &[&line.imsi, &second.imsi])?;
    common::prove_calls(ctx, &msisdn, RingMode::Fa, &[&line.imsi, &second.imsi], &[])
}

/// `unbind` (Fig. 13 steps 1301–1308), after the secondary was bound as in Fig. 5.
pub fn unbind(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let p = ctx.scenario.params.clone();
    let mut primary = dev(ctx, "primary")?;
    let mut sec = dev(ctx, "secondary")?;
    let line = common::provision(ctx, &mut primary, Policy::default(), None)?;
    let msisdn = line.msisdn.clone().unwrap_or_default();
    let token = common::authenticate(ctx, "1303", &mut primary)?;
    let (mut link, eid) = common::pair_and_get_eid(ctx, ("1301", "1302"), &mut primary, &mut sec)?;
    // The binding the unbinding undoes (Fig. 5 in one request).
    let doc = ctx.step(
        "setup",
        "the secondary is bound to the primary's number (as Fig. 5)",
        |c| {
            c.net.with_token(
                &token,
                &Request::Companion {
                    eid: eid.clone(),
                    shared_number: true,
                },
            )
        },
    )?;
    let ac = ctx.step("setup", "activation code", |_| doc.activation_code())?;
    let iccid = common::download_enable(ctx, "setup", &mut sec, &ac)?;
    let imsi = ctx.step("setup", "the secondary reads its new USIM", |_| {
        Ok(sec.subscription()?.imsi)
    })?;
    common::prove_imsis(ctx, &msisdn, &[&line.imsi, &imsi])?;

    if p.unbind_by_outsider {
        let mut outsider = dev(ctx, "outsider")?;
        common::provision(ctx, &mut outsider, Policy::default(), None)?;
        let their = common::authenticate(ctx, "1303", &mut outsider)?;
        let attempt = ctx.attempt(
            "1304",
            "a device outside the group asks to unbind the secondary",
            |c| {
                c.net.with_token(
                    &their,
                    &Request::Unbind {
                        primary: Some(LineId::Msisdn(msisdn.clone())),
                        secondary: LineId::Eid(eid.clone()),
                    },
                )
            },
        )?;
        if let Attempt::Refused(_) = attempt {
            common::prove_imsis(ctx, &msisdn, &[&line.imsi, &imsi])?;
            return common::prove_calls(ctx, &msisdn, RingMode::Fa, &[&line.imsi, &imsi], &[]);
        }
        return Ok(());
    }

    let doc = ctx.step(
        "1304",
        "the primary asks to unbind the secondary (1304–1305)",
        |c| {
            c.net.with_token(
                &token,
                &Request::Unbind {
                    primary: None,
                    secondary: LineId::Eid(eid.clone()),
                },
            )
        },
    )?;
    ctx.check_eq(
        "the service is deactivated (ServiceStatus 3)",
        doc.service_status.as_deref(),
        Some("3"),
    )?;
    common::forward(
        ctx,
        "1306",
        &mut link,
        &primary,
        &sec,
        LinkMessage::ServiceResult {
            service: "multi-IMSI single MSISDN".into(),
            result: "unbound".into(),
        },
    )?;
    if !p.remove_profile {
        // The unbound IMSI is disabled in the network (its line ends with the binding).
        common::prove_refused(ctx, &mut sec, &imsi)?;
    } else {
        ctx.step("1307", "the secondary removes its profile (ES10c disable + delete, notifications to the SM-DP+)", |c| {
            sec.disable(&iccid)?;
            sec.delete(&iccid)?;
            sec.process_notifications(&c.net.roots)?;
            Ok(())
        })?;
        let order = ctx.step(
            "1308",
            "the profile's order at the SM-DP+ (admin API)",
            |c| Ok(c.net.orders()?.into_iter().find(|o| o.order.iccid == iccid)),
        )?;
        ctx.check_eq(
            "the SM-DP+ shows the profile deleted",
            order.and_then(|o| o.smdp_state).as_deref(),
            Some("deleted"),
        )?;
        let profiles = ctx.step("proof", "read the secondary's eUICC back (ES10c)", |_| {
            sec.profiles()
        })?;
        ctx.check(
            "the secondary's eUICC holds no profile",
            profiles.is_empty(),
            format!("{profiles:?}"),
        )?;
    }
    common::prove_imsis(ctx, &msisdn, &[&line.imsi])?;
    let groups = ctx.step("proof", "read the groups (admin API)", |c| {
        Ok(c.net.client.groups()?)
    })?;
    let bound: Vec<String> = groups
        .iter()
        .filter(|g| g.msisdn == msisdn)
        .flat_map(|g| g.members.iter())
        .filter(|m| m.state == crate::network::db::LineState::Active)
        .map(|m| m.imsi.clone())
        .collect();
    ctx.check(
        format!("{msisdn} has no multi-IMSI group left (at most one active member)"),
        bound.len() < 2,
        format!("active members: {bound:?}"),
    )?;
    common::prove_calls(ctx, &msisdn, RingMode::Fa, &[&line.imsi], &[&imsi])
}
