//! A third device with both a UICC and an eUICC (JP7540673B2 Fig. 14, 15): it authenticates
//! with its UICC and gets a profile for its own eUICC, optionally bound to the UICC's number.

use super::common::{self, Policy};
use super::companion::dev;
use super::engine::{Ctx, Failure};
use super::net::Request;
use super::scenario::RingMode;

/// `dual-card` (Fig. 14 steps 1401–1406; Fig. 15 steps 1500–1516).
pub fn dual_card(ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let bind = ctx.scenario.params.bind;
    let mut third = dev(ctx, "third")?;
    let line = common::provision(ctx, &mut third, Policy::default(), None)?;
    let msisdn = line.msisdn.clone().unwrap_or_default();
    let token = common::authenticate(ctx, "1401", &mut third)?;
    let eid = ctx.step("1402", "the third device reads its own eUICC's EID", |_| {
        third.eid()
    })?;
    let doc = ctx.step(
        "1402",
        "the third device asks for a profile for its eUICC (1402–1405, 1502–1514)",
        |c| {
            c.net.with_token(
                &token,
                &Request::OwnEuicc {
                    eid: eid.clone(),
                    bind,
                },
            )
        },
    )?;
    let ac = ctx.step("1405", "the operator answers the activation code", |_| {
        doc.activation_code()
    })?;
    let iccid = common::download_enable(ctx, "1406", &mut third, &ac)?;
    common::prove_enabled(ctx, &mut third, &iccid)?;
    // The UICC keeps its line: the device now has two subscriptions.
    let uicc_line = ctx.step("proof", "the third device's UICC is still its line", |_| {
        third.uicc_subscription()
    })?;
    ctx.check_eq(
        "the UICC's IMSI",
        uicc_line.imsi.as_str(),
        line.imsi.as_str(),
    )?;
    if bind {
        let imsi = ctx.step("proof", "the eUICC's new USIM", |_| {
            let slot = third
                .euicc
                .as_mut()
                .ok_or_else(|| anyhow::anyhow!("no eUICC"))?;
            crate::device::read_subscription_of(slot).map(|s| s.imsi)
        })?;
        common::prove_imsis(ctx, &msisdn, &[&line.imsi, &imsi])?;
        common::prove_calls(ctx, &msisdn, RingMode::Fa, &[&line.imsi, &imsi], &[])?;
    }
    Ok(())
}
