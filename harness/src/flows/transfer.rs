//! A new eUICC device takes over the user's number and the OLD card is disabled: the upgrade
//! from a UICC (JP7540673B2 Fig. 16) and the migration from an eUICC (Fig. 17); the granted
//! claims 1 and 9 (the code received by the old device from the short message centre, used
//! by the new one; the old card disabled when the new eUICC is activated).
//!
//! The old card's disabling is proven three ways (issue 9 §2): in the network (its IMSI is
//! refused, calls ring only the new device); on an old eUICC (GetProfilesInfo shows its
//! profile disabled and the SM-DP+'s order follows the disable notification); on an old UICC
//! (the network's RFM command deactivated its USIM: SELECT ADF.USIM answers `62 83` and
//! AUTHENTICATE no longer answers `DB`).

use super::common::{self, Policy};
use super::companion::dev;
use super::engine::{error_code, Attempt, Ctx, Failure};
use super::net::{self, Request};
use super::scenario::{CodeEntry, RingMode};
use crate::device::link::{Link, LinkMessage, Medium};
use crate::device::Device;
use anyhow::{anyhow, bail, ensure};
use std::time::{Duration, Instant};

/// A code's lifetime in the `expired-code` variant (the embedded network's code TTL: the
/// network keeps a millisecond deadline beside the whole seconds TS.43 shows), and how long the
/// user then waits before typing it.
pub const SHORT_CODE_TTL: Duration = Duration::from_millis(200);
const PAST_TTL: Duration = Duration::from_millis(300);
/// Beyond the network's SQN_HE: the next sequence number with any IND (TS 33.102 Annex C.1.1.2,
/// 5 IND bits).
const SQN_STEP: u64 = 1 << 5;
/// How long the old device waits for the network's OTA message.
const OTA_WAIT: Duration = Duration::from_secs(3);

pub fn euicc_upgrade(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    transfer(ctx, false)
}

pub fn euicc_migration(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    transfer(ctx, true)
}

fn transfer(ctx: &mut Ctx<'_>, migration: bool) -> Result<(), Failure> {
    let p = ctx.scenario.params.clone();
    let fig = if migration { "17" } else { "16" };
    let s = |n: u32| format!("{fig}{n:02}");
    let mut old = dev(ctx, "old")?;
    let mut new = dev(ctx, "new")?;

    // The old device already uses the network. An old eUICC got its line the way Fig. 16
    // gives one: the user's earlier phone (a UICC) was upgraded to it.
    let old_line = if migration {
        let mut first = ctx
            .extra_device("first-phone", "uicc-2")
            .map_err(setup_failure)?;
        let first_line = common::provision(ctx, &mut first, Policy::default(), None)?;
        let number = first_line.msisdn.clone().unwrap_or_default();
        let eid = ctx.step("setup", "the old eUICC's EID", |_| old.eid())?;
        let asked = ctx.step(
            "setup",
            "earlier, the user upgraded the number to the old eUICC (Fig. 16)",
            |c| {
                c.net.by_code(
                    &number,
                    &Request::Transfer {
                        msisdn: number.clone(),
                        eid: eid.clone(),
                        migration: false,
                    },
                )
            },
        )?;
        let op = ctx.step("setup", "the code", |_| asked.operation_id())?;
        let code = ctx.step("setup", "the first phone receives the code", |c| {
            c.net.code_for(&mut first)
        })?;
        let doc = ctx.step("setup", "the code is typed on the old eUICC device", |c| {
            c.net.continue_op(&op, Some(&code), None)
        })?;
        let ac = ctx.step("setup", "activation code", |_| doc.activation_code())?;
        common::download_enable(ctx, "setup", &mut old, &ac)?;
        let line = ctx.step("setup", "the old device reads its USIM", |_| {
            old.subscription()
        })?;
        ctx.step("setup", "the number is on the old eUICC", |c| {
            wait_until(|| Ok(c.net.active_imsis(&number)? == vec![line.imsi.clone()]))
        })?;
        (line, number)
    } else {
        let line = common::provision(ctx, &mut old, Policy::default(), None)?;
        let number = line.msisdn.clone().unwrap_or_default();
        (line, number)
    };
    let (old_line, msisdn) = old_line;
    let old_iccid = old_line.iccid.clone();

    if p.stranger {
        return stranger(ctx, &s, &msisdn, &old_line.imsi, &mut old, migration);
    }
    if p.concurrent {
        return concurrent(ctx, &s, &msisdn, &mut old, &mut new, migration);
    }

    let medium = p.medium.unwrap_or(Medium::Nfc);
    let mut link = Link::new(medium, &old.name, &new.name, &ctx.rec);
    ctx.step("pair", "the user's old and new devices pair", |_| {
        Ok(link.pair(&new.name)?)
    })?;
    let eid = ctx.step(&s(1), "the new device reads its EID", |_| new.eid())?;
    let asked = ctx.step(
        &s(1),
        &format!(
            "the new device asks to {} {msisdn} to its EID",
            if migration { "migrate" } else { "upgrade" }
        ),
        |c| {
            c.net.by_code(
                &msisdn,
                &Request::Transfer {
                    msisdn: msisdn.clone(),
                    eid: eid.clone(),
                    migration,
                },
            )
        },
    )?;
    let op = ctx.step(
        &s(2),
        &format!(
            "the operator generates a code and sends it ({}–{})",
            s(2),
            s(3)
        ),
        |_| {
            ensure!(
                asked.subscription_result.as_deref() == Some(net::REQUIRES_USER_INPUT),
                "expected SubscriptionResult 8 (a code was sent), got {:?}",
                asked.subscription_result
            );
            asked.operation_id()
        },
    )?;
    let code = ctx.step(&s(3), "the OLD device receives the code by SMS", |c| {
        c.net.code_for(&mut old)
    })?;
    if p.restart_network {
        ctx.step(
            "restart",
            "the network process restarts (state in SQLite)",
            |c| c.net.restart(),
        )?;
    }
    let code = ctx.step(&s(4), "the code gets from the old device to the new one", |c| {
        match p.code_entry.unwrap_or(CodeEntry::Typed) {
            CodeEntry::Typed => {
                c.rec.note("USER reads the code on the old device and types it on the new one");
                Ok(code.clone())
            }
            CodeEntry::Nfc => {
                link.send(&old.name, LinkMessage::VerificationCode { code: code.clone() })?;
                let got = link.receive(&new.name)?;
                Ok(crate::expect_link!(new.name, got, LinkMessage::VerificationCode { code } => code, "a code")?)
            }
        }
    })?;
    for n in 0..p.wrong_codes.unwrap_or(0) {
        let wrong = other_code(&code, n);
        let last = n + 1 == p.wrong_codes.unwrap_or(0) && p.wrong_codes.unwrap_or(0) >= 3;
        let refusal = ctx.step(&s(4), "the user types a wrong code", |c| {
            match c.net.continue_op(&op, Some(&wrong), None) {
                Ok(_) => bail!("a wrong code was accepted"),
                Err(e) => Ok(error_code(&e)),
            }
        })?;
        let want = if last {
            &["code-wrong", "code-locked"][..]
        } else {
            &["code-wrong"][..]
        };
        ctx.check(
            format!("wrong code {} refused", n + 1),
            refusal.as_deref().is_some_and(|r| want.contains(&r)),
            format!("{refusal:?}"),
        )?;
    }
    if p.expire_code {
        ctx.step(&s(4), "the user waits past the code's lifetime", |_| {
            std::thread::sleep(PAST_TTL);
            Ok(())
        })?;
    }
    let doc = match ctx.attempt(
        &s(4),
        &format!("the new device sends the code ({})", s(4)),
        |c| c.net.continue_op(&op, Some(&code), None),
    )? {
        Attempt::Done(d) => d,
        Attempt::Refused(_) => return nothing_changed(ctx, &msisdn, &old_line.imsi, &mut new),
    };
    let ac = ctx.step(
        &s(8),
        &format!(
            "the operator answers the activation code ({}–{})",
            s(5),
            s(8)
        ),
        |_| doc.activation_code(),
    )?;
    if p.reuse_code {
        if let Attempt::Refused(_) = ctx.attempt(&s(4), "the same code is sent once more", |c| {
            c.net.continue_op(&op, Some(&code), None)
        })? {
            let orders = ctx.step("proof", "read the BOSS's orders (admin API)", |c| {
                c.net.orders()
            })?;
            ctx.check_eq("exactly one profile was ordered", orders.len(), 1)?;
        }
    }
    let iccid = common::download_enable(ctx, &s(9), &mut new, &ac)?;
    // What follows has no step number in the seed: "after the second device downloads the
    // profile and successfully activates it, … the old card is disabled".
    let after = format!("{}+", s(9));
    let new_imsi = ctx.step("proof", "the new device reads its USIM", |_| {
        Ok(new.subscription()?.imsi)
    })?;

    // The new eUICC is active: the old card must be disabled (claims 1 and 9).
    ctx.step(
        &after,
        "the network moves the number to the new IMSI",
        |c| wait_until(|| Ok(c.net.active_imsis(&msisdn)? == vec![new_imsi.clone()])),
    )?;
    common::prove_refused(ctx, &mut old, &old_line.imsi)?;
    let view = ctx.step("proof", "the old line in the BOSS (admin API)", |c| {
        c.net.line(&old_line.imsi)
    })?;
    ctx.check_eq("the old IMSI is disabled", view.state.as_str(), "disabled")?;
    common::forward(
        ctx,
        &after,
        &mut link,
        &new,
        &old,
        LinkMessage::ServiceResult {
            service: if migration {
                "eUICC migration".into()
            } else {
                "eUICC upgrade".into()
            },
            result: "the new eUICC is active".into(),
        },
    )?;
    if migration {
        disable_old_euicc(ctx, &after, &mut old, &old_iccid)?;
    } else {
        disable_old_uicc(ctx, &after, &mut old, &old_line.imsi)?;
    }
    common::prove_enabled(ctx, &mut new, &iccid)?;
    common::prove_attach(ctx, &mut new, &msisdn)?;
    common::prove_imsis(ctx, &msisdn, &[&new_imsi])?;
    common::prove_calls(ctx, &msisdn, RingMode::Fa, &[&new_imsi], &[&old_line.imsi])
}

/// Fig. 17 end: the old device's LPA disables its profile (ES10c) and the disable
/// notification reaches the SM-DP+.
fn disable_old_euicc(
    ctx: &mut Ctx<'_>,
    id: &str,
    old: &mut Device,
    iccid: &str,
) -> Result<(), Failure> {
    ctx.step(
        id,
        "the old device disables its profile (ES10c.DisableProfile) and notifies the SM-DP+",
        |c| {
            old.disable(iccid)?;
            old.process_notifications(&c.net.roots)?;
            Ok(())
        },
    )?;
    let profiles = ctx.step(
        "proof",
        "read the old eUICC back (ES10c.GetProfilesInfo)",
        |_| old.profiles(),
    )?;
    let state = profiles
        .iter()
        .find(|p| p.iccid == iccid)
        .map(|p| p.state.clone());
    ctx.check_eq(
        &format!("the old eUICC shows profile {iccid}"),
        state.as_deref(),
        Some("disabled"),
    )?;
    let order = ctx.step(
        "proof",
        "the old profile's order at the SM-DP+ (admin API)",
        |c| Ok(c.net.orders()?.into_iter().find(|o| o.order.iccid == iccid)),
    )?;
    ctx.check_eq(
        "the SM-DP+'s order follows the disable notification",
        order.and_then(|o| o.smdp_state).as_deref(),
        Some("disabled"),
    )
}

/// Fig. 16 end: the network's RFM command (SCP80 over SMS-PP, TS 102 225/226) reaches the old
/// UICC through its device; read directly afterwards, the USIM is deactivated.
fn disable_old_uicc(
    ctx: &mut Ctx<'_>,
    id: &str,
    old: &mut Device,
    imsi: &str,
) -> Result<(), Failure> {
    let messages = ctx.step(
        id,
        "the old device receives the network's OTA message (SMS-PP)",
        |c| {
            let deadline = Instant::now() + OTA_WAIT;
            loop {
                let m = c.net.sms_pp(imsi)?;
                if !m.is_empty() {
                    return Ok(m);
                }
                if Instant::now() > deadline {
                    if !c.net.line(imsi)?.ota_keys {
                        bail!(
                            "the operator holds no OTA keys for the old UICC (IMSI {imsi}), so \
                             the network cannot deactivate its USIM (RFM, TS 102 226): give the \
                             old card a definition with [[ota.keyset]] (--card-def old=FILE)"
                        );
                    }
                    bail!("no SMS-PP (OTA) message reached IMSI {imsi} within {OTA_WAIT:?}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        },
    )?;
    ctx.step(
        id,
        "the old device hands it to its UICC (ENVELOPE SMS-PP download)",
        |c| {
            for (_, tpdu) in &messages {
                if let Some(por) = old.deliver_sms_pp(tpdu)? {
                    c.rec.note(format!("POR {}", hex::encode_upper(&por)));
                }
            }
            Ok(())
        },
    )?;
    let sw = ctx.step(
        "proof",
        "read the old UICC directly: SELECT ADF.USIM",
        |_| old.uicc_usim_select_status(),
    )?;
    ctx.check_eq(
        "the old UICC's USIM selects with 62 83 (deactivated)",
        format!("{sw:04X}"),
        "6283".to_owned(),
    )?;
    // A vector the old card would accept if its USIM were active: the next sequence number
    // after the network's SQN_HE for the line.
    let answer = ctx.step(
        "proof",
        "AUTHENTICATE on the old UICC with a valid vector",
        |c| {
            let sqn = c.net.line(imsi)?.sqn_he + SQN_STEP;
            old.authenticate_directly(sqn)
        },
    )?;
    ctx.check(
        "the old UICC no longer answers AUTHENTICATE with DB",
        !(answer.ends_with(&[0x90, 0x00]) && answer.first() == Some(&0xDB)),
        hex::encode_upper(&answer),
    )?;
    Ok(())
}

/// A stranger's device asks for the number: the code goes to the real owner's device; the
/// stranger's guess is refused and nothing changes.
fn stranger(
    ctx: &mut Ctx<'_>,
    s: &dyn Fn(u32) -> String,
    msisdn: &str,
    old_imsi: &str,
    old: &mut Device,
    migration: bool,
) -> Result<(), Failure> {
    let mut thief = dev(ctx, "outsider")?;
    let eid = ctx.step(&s(1), "a stranger's new device reads its EID", |_| {
        thief.eid()
    })?;
    let asked = ctx.step(&s(1), &format!("the stranger asks for {msisdn}"), |c| {
        c.net.by_code(
            msisdn,
            &Request::Transfer {
                msisdn: msisdn.to_owned(),
                eid: eid.clone(),
                migration,
            },
        )
    })?;
    let op = ctx.step(
        &s(2),
        "the operator sends the code to the number's owner",
        |_| asked.operation_id(),
    )?;
    // Only to be sure the guess is wrong: the stranger never sees this.
    let real = ctx.step(&s(3), "the owner's old device receives the code", |c| {
        c.net.code_for(old)
    })?;
    let guess = other_code(&real, 0);
    if let Attempt::Refused(_) = ctx.attempt(&s(4), "the stranger guesses a code", |c| {
        c.net.continue_op(&op, Some(&guess), None)
    })? {
        nothing_changed(ctx, msisdn, old_imsi, &mut thief)?;
        common::prove_attach(ctx, old, msisdn)?;
    }
    Ok(())
}

/// After a refused transfer: the number still has only the old IMSI, nothing was ordered, the
/// new eUICC holds nothing.
fn nothing_changed(
    ctx: &mut Ctx<'_>,
    msisdn: &str,
    old_imsi: &str,
    new: &mut Device,
) -> Result<(), Failure> {
    common::prove_imsis(ctx, msisdn, &[old_imsi])?;
    let new_eid = ctx.step("proof", &format!("{}'s EID", new.name), |_| new.eid())?;
    let orders = ctx.step("proof", "read the BOSS's orders (admin API)", |c| {
        c.net.orders()
    })?;
    let transfer_orders: Vec<_> = orders
        .iter()
        .filter(|o| {
            o.order.msisdn == msisdn && o.order.purpose == "transfer" && o.order.eid == new_eid
        })
        .collect();
    ctx.check(
        "no profile was ordered for the transfer",
        transfer_orders.is_empty(),
        format!("{transfer_orders:?}"),
    )?;
    let profiles = ctx.step("proof", &format!("read {}'s eUICC back", new.name), |_| {
        new.profiles()
    })?;
    ctx.check(
        format!("{}'s eUICC holds no profile", new.name),
        profiles.is_empty(),
        format!("{profiles:?}"),
    )
}

/// Two new devices migrate the same number at once: exactly one wins.
fn concurrent(
    ctx: &mut Ctx<'_>,
    s: &dyn Fn(u32) -> String,
    msisdn: &str,
    old: &mut Device,
    new: &mut Device,
    migration: bool,
) -> Result<(), Failure> {
    let mut other = dev(ctx, "outsider")?;
    let old_imsi = ctx.step("setup", "the old device's line", |_| {
        Ok(old.subscription()?.imsi)
    })?;
    let eids = ctx.step(&s(1), "two new devices read their EIDs", |_| {
        Ok((new.eid()?, other.eid()?))
    })?;
    let results = ctx.step(
        &s(1),
        "both ask for the number at the same moment (1701–1704 each)",
        |c| {
            let net = &c.net;
            let run = |eid: &str| -> anyhow::Result<String> {
                let asked = net.by_code(
                    msisdn,
                    &Request::Transfer {
                        msisdn: msisdn.to_owned(),
                        eid: eid.to_owned(),
                        migration,
                    },
                )?;
                asked.operation_id()
            };
            let (a, b) = std::thread::scope(|scope| {
                let a = scope.spawn(|| run(&eids.0));
                let b = scope.spawn(|| run(&eids.1));
                (a.join(), b.join())
            });
            let a = a.map_err(|_| anyhow!("a request thread panicked"))?;
            let b = b.map_err(|_| anyhow!("a request thread panicked"))?;
            Ok((
                a.map_err(|e| error_code(&e).unwrap_or_else(|| format!("{e:#}"))),
                b.map_err(|e| error_code(&e).unwrap_or_else(|| format!("{e:#}"))),
            ))
        },
    )?;
    // Each pending request sent its code to the old device; the user types what they got on
    // both new devices at once. Whichever the network accepts first wins.
    let ops: Vec<(usize, String)> = [&results.0, &results.1]
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().ok().map(|op| (i, op.clone())))
        .collect();
    let codes = ctx.step(&s(3), "the old device receives the codes", |c| {
        c.net.codes_for(old)
    })?;
    let answers = ctx.step(
        &s(4),
        "both new devices send a code at the same moment",
        |c| {
            let net = &c.net;
            let send = |op: &str| -> Result<super::net::Doc, String> {
                let mut last = String::from("no code");
                for code in &codes {
                    match net.continue_op(op, Some(code), None) {
                        Ok(doc) => return Ok(doc),
                        Err(e) => {
                            last = error_code(&e).unwrap_or_else(|| format!("{e:#}"));
                            if last != "code-wrong" {
                                break;
                            }
                        }
                    }
                }
                Err(last)
            };
            let answers: Vec<(usize, Result<super::net::Doc, String>)> =
                std::thread::scope(|scope| {
                    let handles: Vec<_> = ops
                        .iter()
                        .map(|(i, op)| (*i, scope.spawn(move || send(op))))
                        .collect();
                    handles
                        .into_iter()
                        .map(|(i, h)| {
                            (
                                i,
                                h.join().unwrap_or_else(|_| Err("thread panicked".into())),
                            )
                        })
                        .collect()
                });
            Ok(answers)
        },
    )?;
    let mut winners = Vec::new();
    let mut losers: Vec<(usize, String)> = [&results.0, &results.1]
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().err().map(|e| (i, e.clone())))
        .collect();
    for (i, a) in answers {
        match a {
            Ok(doc) => winners.push((i, doc)),
            Err(code) => losers.push((i, code)),
        }
    }
    ctx.check_eq("exactly one migration wins", winners.len(), 1)?;
    ctx.check(
        "the other is refused because a transfer is in progress",
        losers.len() == 1 && losers[0].1 == "transfer-in-progress",
        format!("{losers:?}"),
    )?;
    let (w, doc) = winners.remove(0);
    let ac = ctx.step(&s(8), "the winner gets the activation code", |_| {
        doc.activation_code()
    })?;
    let (winner, loser) = if w == 0 {
        (new, &mut other)
    } else {
        (&mut other, new)
    };
    common::download_enable(ctx, &s(9), winner, &ac)?;
    let imsi = ctx.step("proof", "the winner reads its USIM", |_| {
        Ok(winner.subscription()?.imsi)
    })?;
    ctx.step(
        &format!("{}+", s(9)),
        "the network moves the number to the winner",
        |c| wait_until(|| Ok(c.net.active_imsis(msisdn)? == vec![imsi.clone()])),
    )?;
    common::prove_imsis(ctx, msisdn, &[&imsi])?;
    let left = ctx.step("proof", "read the loser's eUICC back", |_| loser.profiles())?;
    ctx.check(
        "the loser's eUICC holds no profile",
        left.is_empty(),
        format!("{left:?}"),
    )?;
    common::prove_calls(ctx, msisdn, RingMode::Fa, &[&imsi], &[&old_imsi])
}

/// A six-digit code other than `code`.
fn other_code(code: &str, n: u32) -> String {
    let v: u32 = code.parse().unwrap_or(0);
    format!("{:06}", (v + 1 + n) % 1_000_000)
}

/// Polls `cond` until it holds (the network applies the SM-DP+'s report in its own time).
fn wait_until(mut cond: impl FnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
    let deadline = Instant::now() + super::engine::SETTLE;
    loop {
        if cond()? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the network did not get there within {:?}",
                super::engine::SETTLE
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn setup_failure(e: anyhow::Error) -> Failure {
    Failure {
        step: Some("setup".into()),
        code: error_code(&e),
        message: format!("{e:#}"),
    }
}
