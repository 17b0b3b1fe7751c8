//! `simlab card selftest`: the read-back session a terminal runs against a fresh card —
//! ICCID, PIN1, USIM selection, IMSI, AUTHENTICATE with a vector the network side computes
//! from the card's keys, and resynchronisation — once in-process and once over the vpcd
//! wire protocol (card side and reader side on loopback). Every step checks the card's
//! answer against the definition; the first mismatch is an error.

use crate::adapter::VpcdCard;
use crate::defaults::{self, Files};
use crate::transport::{split_sw, InProcess, Transport, VpcdReader};
use anyhow::{bail, ensure, Context as _};
use simlab_emulator::aka::{self, ts_31_102::AuthenticateResponse, AkaAlgorithm};
use simlab_emulator::saip::{decode_imsi, encode_iccid_ef};
use simlab_emulator::Uicc;
use simlab_vpcd::reader::ReaderListener;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the session checks the card against.
#[derive(Debug, Clone)]
pub struct Expected {
    pub iccid: String,
    pub imsi: String,
    pub aid: Vec<u8>,
    pub pin1: String,
    pub algorithm: AkaAlgorithm,
}

/// Loads a definition (a file or a built-in card's name; default: the built-in UICC) and the
/// values to expect from it.
pub fn load(card: Option<&Path>) -> anyhow::Result<(Uicc, Expected)> {
    let def = crate::defaults::card_definition(card.unwrap_or(Path::new(defaults::UICC)))?;
    let (atr, state) = def.build()?;
    let algorithm = state
        .usim
        .as_ref()
        .map(|u| u.algorithm.clone())
        .context("card has no USIM")?;
    let usim = def
        .usim
        .as_ref()
        .context("the self-test needs a card with a [usim] section")?;
    let expected = Expected {
        iccid: def
            .card
            .iccid
            .clone()
            .context("the self-test needs card.iccid")?,
        imsi: usim.imsi.clone(),
        aid: hex::decode(&usim.aid)?,
        pin1: def.pins.pin1.clone(),
        algorithm,
    };
    Ok((Uicc::new(atr, state), expected))
}

/// Runs the session in-process and over vpcd; returns the transcript.
pub fn run(card: Option<&Path>) -> anyhow::Result<String> {
    let mut out = String::new();
    let (uicc, expected) = load(card)?;
    writeln!(out, "== in-process")?;
    session(&mut InProcess::new(uicc), &expected, &mut out)?;

    let (uicc, expected) = load(card)?;
    let listener = ReaderListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let card_thread = simlab_vpcd::card::spawn(VpcdCard::new(uicc), addr, Default::default())?;
    writeln!(out, "== over the vpcd wire protocol ({addr})")?;
    let conn = listener.accept_timeout(Duration::from_secs(10))?;
    let result = session(&mut VpcdReader::start(conn)?, &expected, &mut out);
    card_thread.stop()?;
    result?;
    writeln!(out, "selftest: PASS")?;
    Ok(out)
}

fn exchange(t: &mut dyn Transport, apdu: &str, out: &mut String) -> anyhow::Result<(Vec<u8>, u16)> {
    let bytes = hex::decode(apdu.replace(' ', ""))?;
    let answer = t.transmit(&bytes)?;
    writeln!(
        out,
        "> {}\n< {}",
        hex::encode_upper(&bytes),
        hex::encode_upper(&answer)
    )?;
    let (data, sw) = split_sw(&answer);
    Ok((data.to_vec(), sw))
}

fn expect_ok(t: &mut dyn Transport, apdu: &str, out: &mut String) -> anyhow::Result<Vec<u8>> {
    let (data, sw) = exchange(t, apdu, out)?;
    ensure!(
        sw == 0x9000,
        "{apdu}: card answered {sw:04X}, expected 9000"
    );
    Ok(data)
}

/// One terminal session; `out` receives the transcript.
pub fn session(t: &mut dyn Transport, e: &Expected, out: &mut String) -> anyhow::Result<()> {
    writeln!(out, "ATR {}", hex::encode_upper(t.atr()?))?;
    expect_ok(t, "00A4000C023F00", out)?;
    expect_ok(t, "00A4000C022FE2", out)?;
    let iccid = expect_ok(t, "00B000000A", out)?;
    let want = encode_iccid_ef(&e.iccid)?.to_vec();
    ensure!(
        iccid == want,
        "EF.ICCID holds {}, expected {}",
        hex::encode_upper(&iccid),
        hex::encode_upper(&want)
    );
    writeln!(out, "   ICCID {} ok", e.iccid)?;

    let pin = simlab_emulator::pin::pad(&e.pin1).map_err(|err| anyhow::anyhow!("PIN1: {err}"))?;
    expect_ok(t, &format!("0020000108{}", hex::encode(pin)), out)?;
    expect_ok(
        t,
        &format!("00A4040C{:02X}{}", e.aid.len(), hex::encode(&e.aid)),
        out,
    )?;
    expect_ok(t, "00A4000C026F07", out)?;
    let imsi = expect_ok(t, "00B0000009", out)?;
    let got = decode_imsi(&imsi).context("EF.IMSI is not an IMSI")?;
    ensure!(got == e.imsi, "EF.IMSI holds {got}, expected {}", e.imsi);
    writeln!(out, "   IMSI {got} ok")?;

    // The network side: a fresh vector from the card's own keys (TS 33.102 §6.3.2).
    let rand: [u8; 16] = rand::random();
    let sqn = 0x20 + u64::from(rand[0]);
    let v = aka::generate_vector(&e.algorithm, sqn, [0x80, 0x00], &rand);
    let auth = format!(
        "0088008122 10{} 10{} 00",
        hex::encode(v.rand),
        hex::encode(v.autn)
    );
    let data = expect_ok(t, &auth, out)?;
    match AuthenticateResponse::parse(0x81, &data) {
        Ok(AuthenticateResponse::Success3g { res, ck, ik, .. }) => {
            ensure!(
                res == v.xres && ck == v.ck && ik == v.ik,
                "RES/CK/IK differ from the network's XRES/CK/IK"
            );
        }
        other => bail!("AUTHENTICATE answer {other:?}, expected success"),
    }
    writeln!(out, "   AUTHENTICATE: RES = XRES, CK and IK match")?;

    // Replaying the same AUTN must fail with AUTS, which resynchronises the network.
    let data = expect_ok(t, &auth, out)?;
    match AuthenticateResponse::parse(0x81, &data) {
        Ok(AuthenticateResponse::SyncFailure { auts }) => {
            let sqn_ms = aka::resynchronise(&e.algorithm, &v.rand, &auts)?;
            ensure!(
                sqn_ms == sqn,
                "AUTS carries SQN_MS {sqn_ms}, expected {sqn}"
            );
        }
        other => bail!("replayed AUTHENTICATE answered {other:?}, expected a sync failure"),
    }
    writeln!(out, "   replay refused; AUTS resynchronises to SQN {sqn}")?;
    Ok(())
}

/// The eUICC part: simlab's SM-DP+ on loopback HTTPS, the eUICC of `vectors/cards/euicc.toml`
/// over the vpcd wire protocol, and simlab's LPA between them (all built in; with `vectors`,
/// a directory holding `cards/euicc.toml`, `pki` and `profiles` instead). An operator order with a
/// confirmation code is downloaded (a wrong code first), enabled, and the card then
/// authenticates with the order's fresh key; notifications move the order to "enabled";
/// finally the profile is disabled and deleted. Returns the transcript.
pub fn run_euicc(vectors: Option<&Path>) -> anyhow::Result<String> {
    use crate::lpa::{self, ActivationCode, DeviceInfo, Es10Client};
    use crate::smdp::{self, store::OrderState, SmdpOptions};

    let mut out = String::new();
    let (pki, templates, card) = match vectors {
        Some(v) => (
            Files::Disk(v.join("pki")),
            Files::Disk(v.join("profiles")),
            v.join("cards/euicc.toml"),
        ),
        None => (
            Files::pki(),
            Files::templates(),
            PathBuf::from(defaults::EUICC),
        ),
    };
    let server = smdp::start(SmdpOptions::new(pki, templates))?;
    let roots = vec![server.ca_cert_der.clone()];
    writeln!(
        out,
        "== eUICC download from the SM-DP+ at https://{}",
        server.address
    )?;
    let euicc = crate::cards::load_card(&card, None)?;
    let listener = ReaderListener::bind("127.0.0.1:0")?;
    let card_thread = simlab_vpcd::card::spawn(
        VpcdCard::new(euicc),
        listener.local_addr()?,
        Default::default(),
    )?;
    let result = (|| -> anyhow::Result<()> {
        let reader = VpcdReader::start(listener.accept_timeout(Duration::from_secs(10))?)?;
        let mut es10 = Es10Client::open(reader)?;
        let eid = es10.eid()?;
        writeln!(out, "   EID {eid}")?;
        let (order, code) = server.smdp().order_activation_code(
            "TS48V2-SAIP2-3-BERTLV-UNIQUE",
            Some(&eid),
            Some("4711"),
        )?;
        writeln!(
            out,
            "   ES2+ order: ICCID {}, IMSI {}, activation code {code}",
            order.iccid,
            order.imsi.as_deref().unwrap_or("?")
        )?;
        let mut ac: ActivationCode = code.parse()?;
        ac.confirmation_code_required = true;
        let device = DeviceInfo::default();
        match lpa::download(&mut es10, &ac, Some("0000"), &roots, &device, &mut |_| {}) {
            Err(e) => writeln!(out, "   wrong confirmation code refused: {e}")?,
            Ok(_) => bail!("a wrong confirmation code was accepted"),
        }
        ensure!(
            es10.profiles()?.is_empty(),
            "a refused download left a profile behind"
        );
        let done = lpa::download(&mut es10, &ac, Some("4711"), &roots, &device, &mut |s| {
            let _ = writeln!(out, "   {s}");
        })?;
        ensure!(
            done.iccid.as_deref() == Some(order.iccid.as_str()),
            "installed {:?}, ordered {}",
            done.iccid,
            order.iccid
        );
        es10.enable(&order.iccid)?;
        let sent = lpa::process_notifications(&mut es10, &roots, &mut |_| {})?;
        writeln!(
            out,
            "   profile {} installed and enabled; {sent} notification(s) delivered",
            order.iccid
        )?;
        let state = server
            .smdp()
            .order_by_iccid(&order.iccid)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .map(|o| o.state);
        ensure!(
            state == Some(OrderState::Enabled),
            "SM-DP+ order state {state:?}, expected Enabled"
        );
        writeln!(out, "   SM-DP+ order state: enabled")?;

        // REFRESH: the enabled profile's USIM appears after a reset.
        let mut t = es10.close();
        t.reset()?;
        let k = order.k.context("a personalised order has a K")?;
        let expected = Expected {
            iccid: order.iccid.clone(),
            imsi: order
                .imsi
                .clone()
                .context("a personalised order has an IMSI")?,
            aid: hex::decode("A0000000871002FF49FF0589")?,
            pin1: "0000".into(),
            algorithm: AkaAlgorithm::XorTest { k },
        };
        session(&mut t, &expected, &mut out)?;

        let mut es10 = Es10Client::open(t)?;
        es10.disable(&order.iccid)?;
        es10.delete(&order.iccid)?;
        let sent = lpa::process_notifications(&mut es10, &roots, &mut |_| {})?;
        let state = server
            .smdp()
            .order_by_iccid(&order.iccid)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .map(|o| o.state);
        ensure!(
            state == Some(OrderState::Deleted),
            "SM-DP+ order state {state:?}, expected Deleted"
        );
        writeln!(out, "   disabled and deleted; {sent} notification(s) delivered; SM-DP+ order state: deleted")?;
        Ok(())
    })();
    card_thread.stop()?;
    server.stop();
    result?;
    writeln!(out, "selftest (eUICC): PASS")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_builtin_card_passes_its_selftest() {
        let report = super::run(None).unwrap();
        assert!(report.ends_with("selftest: PASS\n"), "{report}");
        assert!(report.contains("== over the vpcd wire protocol"));
    }
}
