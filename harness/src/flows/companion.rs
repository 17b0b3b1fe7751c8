//! A primary device with a UICC gets a profile for a secondary device's eUICC (JP7540673B2
//! Fig. 4, 9, 10), with the binding in the same request (Fig. 5), and with the operator's
//! contract page first (Fig. 6A–6C).

use super::common::{self, Policy};
use super::engine::{Attempt, Ctx, Failure};
use super::net::{self, LineId, Request};
use super::scenario::RingMode;
use crate::device::link::LinkMessage;
use anyhow::{anyhow, ensure};

/// `companion-download` (Fig. 4 steps 401–410; Fig. 9 and 10 are the two devices' sides).
pub fn companion_download(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let p = ctx.scenario.params.clone();
    let mut primary = dev(ctx, "primary")?;
    let mut secondaries = vec![dev(ctx, "secondary")?];
    if p.secondaries.unwrap_or(1) >= 2 {
        secondaries.push(dev(ctx, "secondary2")?);
    }
    let line = common::provision(ctx, &mut primary, Policy::default(), None)?;
    let msisdn = line.msisdn.clone().unwrap_or_default();

    // Step 403 may come before 401–402 (the seed's note on Fig. 4): authenticate first.
    let token = common::authenticate(ctx, "403", &mut primary)?;
    let mut bound: Vec<String> = Vec::new(); // IMSIs
    let mut others = Vec::new();
    for mut sec in secondaries {
        let (mut link, eid) =
            common::pair_and_get_eid(ctx, ("401", "402"), &mut primary, &mut sec)?;
        let doc = ctx.step(
            "404",
            "the primary asks the operator for a profile for the secondary's EID (404–407)",
            |c| {
                c.net.with_token(
                    &token,
                    &Request::Companion {
                        eid: eid.clone(),
                        shared_number: false,
                    },
                )
            },
        )?;
        let ac = ctx.step("407", "the operator answers the activation code", |_| {
            doc.activation_code()
        })?;

        if p.download_by_other_eid {
            // A profile ordered for EID A fetched by EID B: refused; the order stays for A.
            let mut thief = dev(ctx, "secondary2")?;
            let thief_eid = ctx.step("setup", "another eUICC (EID B)", |_| thief.eid())?;
            if let Attempt::Refused(_) = common::try_download(ctx, "409", &mut thief, &ac)? {
                let left = ctx.step("proof", "read EID B's eUICC back", |_| thief.profiles())?;
                ctx.check(
                    format!("EID B ({thief_eid}) has no profile after the refusal"),
                    left.is_empty(),
                    format!("{left:?}"),
                )?;
            }
        }

        common::send_activation_code(ctx, "408", &mut link, &primary, &sec, &ac)?;
        let iccid = common::download_enable(ctx, "409", &mut sec, &ac)?;

        if p.reuse_activation_code {
            // The same activation code once more: the SM-DP+ refuses it, nothing changes.
            if let Attempt::Refused(_) = common::try_download(ctx, "409", &mut sec, &ac)? {
                let profiles = ctx.step("proof", "read the secondary's eUICC back", |_| {
                    sec.profiles()
                })?;
                ctx.check_eq(
                    "the secondary still has exactly one profile",
                    profiles.len(),
                    1,
                )?;
                return Ok(());
            }
        }
        common::forward(
            ctx,
            "6100",
            &mut link,
            &sec,
            &primary,
            LinkMessage::DownloadResult {
                iccid: Some(iccid.clone()),
                ok: true,
            },
        )?;
        let imsi = ctx.step("proof", "the secondary reads its new USIM", |_| {
            Ok(sec.subscription()?.imsi)
        })?;
        common::prove_enabled(ctx, &mut sec, &iccid)?;
        let doc = common::bind(ctx, "410", &token, LineId::Eid(eid.clone()))?;
        ctx.check(
            "the binding answer lists the secondary's IMSI",
            doc.group.contains(&imsi),
            format!("{:?}", doc.group),
        )?;
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
        bound.push(imsi);
        others.push(sec);
    }

    let mut imsis: Vec<&str> = vec![line.imsi.as_str()];
    imsis.extend(bound.iter().map(String::as_str));
    common::prove_imsis(ctx, &msisdn, &imsis)?;
    for s in &mut others {
        common::prove_attach(ctx, s, &msisdn)?;
    }
    let mode = p.ring_mode.unwrap_or(RingMode::Fa);
    common::prove_calls(ctx, &msisdn, mode, &imsis, &[])
}

/// `bind-with-download` (Fig. 5 steps 501–510): the binding request carries the EID and
/// triggers the download; the result goes back to the primary.
pub fn bind_with_download(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let mut primary = dev(ctx, "primary")?;
    let mut sec = dev(ctx, "secondary")?;
    let line = common::provision(ctx, &mut primary, Policy::default(), None)?;
    let msisdn = line.msisdn.clone().unwrap_or_default();
    let token = common::authenticate(ctx, "503", &mut primary)?;
    let (mut link, eid) = common::pair_and_get_eid(ctx, ("501", "502"), &mut primary, &mut sec)?;
    let doc = ctx.step(
        "504",
        "the primary asks for the multi-IMSI service with the secondary's EID (504–507)",
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
    let ac = ctx.step("507", "the operator answers the activation code", |_| {
        doc.activation_code()
    })?;
    common::send_activation_code(ctx, "508", &mut link, &primary, &sec, &ac)?;
    let iccid = common::download_enable(ctx, "509", &mut sec, &ac)?;
    let imsi = ctx.step("proof", "the secondary reads its new USIM", |_| {
        Ok(sec.subscription()?.imsi)
    })?;
    let result = ctx.step(
        "510",
        "the operator tells the primary the subscription result",
        |c| {
            // The network binds when the SM-DP+ reports the installation (ES2+).
            let deadline = std::time::Instant::now() + super::engine::SETTLE;
            loop {
                let doc = c.net.with_token(&token, &Request::Acquire)?;
                if doc.group.contains(&imsi) {
                    return Ok(doc.group);
                }
                ensure!(
                    std::time::Instant::now() < deadline,
                    "the primary's line shows no group with the secondary's IMSI {imsi}: {:?}",
                    doc.raw["APPLICATION"]
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        },
    )?;
    common::forward(
        ctx,
        "510",
        &mut link,
        &primary,
        &sec,
        LinkMessage::ServiceResult {
            service: "multi-IMSI single MSISDN".into(),
            result: format!("activated: {}", result.join(", ")),
        },
    )?;
    common::prove_enabled(ctx, &mut sec, &iccid)?;
    common::prove_imsis(ctx, &msisdn, &[&line.imsi, &imsi])?;
    common::prove_attach(ctx, &mut sec, &msisdn)?;
    common::prove_calls(ctx, &msisdn, RingMode::Fa, &[&line.imsi, &imsi], &[])
}

/// `contract` (Fig. 6A–6C, steps 6010–6170).
pub fn contract(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let p = ctx.scenario.params.clone();
    let mut primary = dev(ctx, "primary")?;
    let mut sec = dev(ctx, "secondary")?;
    let policy = Policy {
        contract: true,
        binding_contract: p.binding_contract,
        second_device_code: p.second_device_code,
    };
    let line = common::provision(ctx, &mut primary, policy, None)?;
    let msisdn = line.msisdn.clone().unwrap_or_default();
    let token = common::authenticate(ctx, "6000", &mut primary)?;
    let (mut link, eid) = common::pair_and_get_eid(ctx, ("pair", "eid"), &mut primary, &mut sec)?;
    let asked = ctx.step(
        "6010",
        "the primary asks for a profile for the secondary's EID",
        |c| {
            c.net.with_token(
                &token,
                &Request::Companion {
                    eid: eid.clone(),
                    shared_number: false,
                },
            )
        },
    )?;
    let url = ctx.step(
        "6020",
        "the operator answers the contract page's address",
        |_| {
            ensure!(
                asked.subscription_result.as_deref() == Some(net::CONTINUE_TO_WEBSHEET),
                "expected SubscriptionResult 1 (contract page), got {:?}",
                asked.subscription_result
            );
            asked
                .contract_url
                .clone()
                .ok_or_else(|| anyhow!("no SubscriptionServiceURL"))
        },
    )?;
    let op = asked.operation_id.clone().unwrap_or_default();
    let accept = !p.decline;
    ctx.step(
        "6030",
        if accept {
            "the user accepts the contract on the web page"
        } else {
            "the user declines the contract"
        },
        |c| c.net.answer_contract(&url, accept),
    )?;
    let doc = ctx.step(
        "6040",
        "the primary continues the request (6040–6070)",
        |c| c.net.continue_op(&op, None, Some(&token)),
    )?;
    if !accept {
        ctx.check_eq(
            "the operation ends dismissed",
            doc.subscription_result.as_deref(),
            Some(net::DISMISS),
        )?;
        let orders = ctx.step("proof", "read the BOSS's orders (admin API)", |c| {
            c.net.orders()
        })?;
        ctx.check(
            "no profile was ordered",
            orders.is_empty(),
            format!("{orders:?}"),
        )?;
        common::prove_imsis(ctx, &msisdn, &[&line.imsi])?;
        let profiles = ctx.step("proof", "read the secondary's eUICC back", |_| {
            sec.profiles()
        })?;
        return ctx.check(
            "the secondary has no profile",
            profiles.is_empty(),
            format!("{profiles:?}"),
        );
    }
    let ac = ctx.step("6070", "the operator answers the activation code", |_| {
        doc.activation_code()
    })?;
    common::send_activation_code(ctx, "6080", &mut link, &primary, &sec, &ac)?;
    let iccid = common::download_enable(ctx, "6090", &mut sec, &ac)?;
    common::forward(
        ctx,
        "6100",
        &mut link,
        &sec,
        &primary,
        LinkMessage::DownloadResult {
            iccid: Some(iccid.clone()),
            ok: true,
        },
    )?;
    let imsi = ctx.step("proof", "the secondary reads its new USIM", |_| {
        Ok(sec.subscription()?.imsi)
    })?;
    let mut doc = common::bind(ctx, "6110", &token, LineId::Eid(eid.clone()))?;
    if p.binding_contract {
        let url = ctx.step(
            "6120",
            "the binding needs a second contract: the operator answers its page",
            |_| {
                doc.contract_url
                    .clone()
                    .ok_or_else(|| anyhow!("no second contract page (6120): {:?}", doc.raw))
            },
        )?;
        let op = doc.operation_id.clone().unwrap_or_default();
        ctx.step("6120", "the user accepts the second contract", |c| {
            c.net.answer_contract(&url, true)
        })?;
        doc = ctx.step("6120", "the primary continues the binding", |c| {
            c.net.continue_op(&op, None, Some(&token))
        })?;
    }
    if p.second_device_code {
        let op = ctx.step(
            "6130",
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
        let code = ctx.step("6130", "the second device receives the code by SMS", |c| {
            c.net.code_for(&mut sec)
        })?;
        doc = ctx.step("6130", "the user types the code on the primary", |c| {
            c.net.continue_op(&op, Some(&code), Some(&token))
        })?;
    }
    ctx.step(
        "6160",
        "the operator answers the binding result (6140–6160)",
        |_| {
            ensure!(
                doc.group.contains(&imsi),
                "the result lists {:?}, not the secondary's IMSI {imsi}",
                doc.group
            );
            Ok(())
        },
    )?;
    common::forward(
        ctx,
        "6170",
        &mut link,
        &primary,
        &sec,
        LinkMessage::ServiceResult {
            service: "multi-IMSI single MSISDN".into(),
            result: "activated".into(),
        },
    )?;
    common::prove_enabled(ctx, &mut sec, &iccid)?;
    common::prove_imsis(ctx, &msisdn, &[&line.imsi, &imsi])?;
    common::prove_calls(ctx, &msisdn, RingMode::Fa, &[&line.imsi, &imsi], &[])
}

pub(super) fn dev(ctx: &Ctx<'_>, name: &str) -> Result<crate::device::Device, Failure> {
    ctx.device(name).map_err(|e| Failure {
        step: Some("setup".into()),
        code: super::engine::error_code(&e),
        message: format!("{e:#}"),
    })
}
