//! `simlab bench --flows`: (1) every flow × variant on the embedded default, one after the
//! other, as `simlab flows run` does — the whole set's time beside a baseline measured in the
//! same run (the embedded network started and stopped once per scenario, no flow); (2) a load
//! run: N companion-download flows at once (each with its own UICC and eUICC) against ONE
//! network process (`simlab network serve` as a child process), with flows/s, p50/p99 flow
//! latency, errors, and a check of every binding in the network afterwards.

use super::engine::{self, Env, NetworkSpec};
use super::scenario::Scenario;
use crate::device::identity;
use anyhow::{anyhow, bail, Context as _};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What the set measurement found.
#[derive(Debug, Clone)]
pub struct SetResult {
    pub scenarios: usize,
    pub passed: usize,
    pub total: Duration,
    /// Starting and stopping the embedded network once per scenario, without flows.
    pub baseline: Duration,
    pub slowest: Vec<(String, Duration)>,
    /// The time of the scenarios that passed, and the names of those that did not.
    pub passed_time: Duration,
    pub failed: Vec<String>,
}

/// Runs every built-in scenario on the embedded default.
pub fn whole_set(vectors: &Path) -> anyhow::Result<SetResult> {
    let mut env = Env::embedded(vectors);
    env.record = false;
    let scenarios = Scenario::all_builtin();
    let start = Instant::now();
    let mut timed = Vec::new();
    let mut passed = 0;
    let mut passed_time = Duration::ZERO;
    let mut failed = Vec::new();
    for s in &scenarios {
        let r = engine::run(s, &env, &|_| {});
        let took = Duration::from_secs_f64(r.millis / 1e3);
        if r.passed {
            passed += 1;
            passed_time += took;
        } else {
            failed.push(r.name.clone());
        }
        timed.push((r.name.clone(), took));
    }
    let total = start.elapsed();
    let start = Instant::now();
    for _ in &scenarios {
        let net = crate::network::server::start(crate::network::server::NetworkOptions::embedded(
            vectors,
        ))?;
        net.stop();
    }
    let baseline = start.elapsed();
    timed.sort_by_key(|t| std::cmp::Reverse(t.1));
    timed.truncate(3);
    Ok(SetResult {
        scenarios: scenarios.len(),
        passed,
        total,
        baseline,
        slowest: timed,
        passed_time,
        failed,
    })
}

/// What the load run found.
#[derive(Debug, Clone)]
pub struct LoadResult {
    pub flows: usize,
    pub errors: Vec<String>,
    pub wall: Duration,
    pub p50: Duration,
    pub p99: Duration,
    /// MSISDNs whose active IMSIs in the network are not exactly {primary, its secondary}.
    pub inconsistent: Vec<String>,
}

impl LoadResult {
    pub fn flows_per_second(&self) -> f64 {
        self.flows as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// A `simlab network serve` child process; killed on drop.
struct NetworkProcess {
    child: Child,
    operator_url: String,
}

impl Drop for NetworkProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_network(vectors: &Path, db: &Path) -> anyhow::Result<NetworkProcess> {
    let exe = std::env::current_exe().context("locating the simlab binary")?;
    let mut child = Command::new(exe)
        .args([
            "network",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--operator-listen",
            "127.0.0.1:0",
        ])
        .arg("--db")
        .arg(db)
        .arg("--pki")
        .arg(vectors.join("pki"))
        .arg("--templates")
        .arg(vectors.join("profiles"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting simlab network serve")?;
    let stdout = child
        .stdout
        .take()
        .context("no stdout from the network process")?;
    let mut process = NetworkProcess {
        child,
        operator_url: String::new(),
    };
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(url) = line.strip_prefix("Operator network listening on ") {
            process.operator_url = url.trim().to_owned();
            return Ok(process);
        }
    }
    bail!("simlab network serve ended without printing its operator URL")
}

/// The card files of flow `n`: a UICC (its own ICCID, IMSI, MSISDN, Milenage keys) and an
/// eUICC minted under the test EUM.
fn cards(
    dir: &Path,
    vectors: &Path,
    pki: &crate::pki::Pki,
    n: usize,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    use rand::RngCore as _;
    let mut k = [0u8; 16];
    let mut opc = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut k);
    rand::thread_rng().fill_bytes(&mut opc);
    let body = format!("89490010300{n:07}");
    let iccid = format!("{body}{}", luhn(&body));
    let uicc = dir.join(format!("uicc-{n}.toml"));
    std::fs::write(
        &uicc,
        format!(
            "[card]\nname = \"load UICC {n}\"\niccid = \"{iccid}\"\n\n[usim]\naid = \"A0000000871002FF49FF0589\"\n\
             imsi = \"00101{n:010}\"\nmsisdn = \"+1666{n:07}\"\nmnc_length = 2\n\n[usim.aka]\n\
             algorithm = \"milenage\"\nk = \"{}\"\nopc = \"{}\"\n\n[pins]\npin1 = \"0000\"\npin1_enabled = false\n\
             puk1 = \"11111111\"\npin2 = \"9999\"\npuk2 = \"22222222\"\nadm1 = \"55555555\"\n",
            hex::encode(k),
            hex::encode(opc)
        ),
    )?;
    let eid = identity::eid_for("89049032", 100_000 + n as u64)?;
    let id = identity::mint(pki, &eid)?;
    let euicc = identity::write_card(
        &id,
        &vectors.join("pki"),
        &dir.join(format!("euicc-{n}")),
        "load eUICC",
    )?;
    Ok((uicc, euicc))
}

fn luhn(body: &str) -> u32 {
    let sum: u32 = body
        .chars()
        .rev()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

/// `n` companion-download flows at once against one network process.
pub fn load(vectors: &Path, n: usize) -> anyhow::Result<LoadResult> {
    let dir = tempfile::tempdir()?;
    let pki = crate::pki::Pki::load(&vectors.join("pki"), crate::pki::Curve::Nist)?;
    let mut envs = Vec::with_capacity(n);
    let net = spawn_network(vectors, &dir.path().join("network.sqlite"))?;
    for i in 0..n {
        let (uicc, euicc) = cards(dir.path(), vectors, &pki, i)?;
        let mut env = Env::embedded(vectors);
        env.network = NetworkSpec::Url(net.operator_url.clone());
        env.record = false;
        env.cards.insert(
            "primary".into(),
            crate::device::slot::CardSpec::File {
                definition: uicc,
                state: None,
            },
        );
        env.cards.insert(
            "secondary".into(),
            crate::device::slot::CardSpec::File {
                definition: euicc,
                state: None,
            },
        );
        envs.push(env);
    }
    let scenario = Scenario::by_name("companion-download/fa")
        .map_err(|e| anyhow!(e))?
        .remove(0);
    let start = Instant::now();
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = envs
            .iter()
            .map(|env| {
                let scenario = &scenario;
                std::thread::Builder::new()
                    .stack_size(1 << 20)
                    .spawn_scoped(scope, move || engine::run(scenario, env, &|_| {}))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().map_err(|_| "a flow thread panicked".to_owned()),
                Err(e) => Err(format!("cannot start a flow thread: {e}")),
            })
            .collect()
    });
    let wall = start.elapsed();
    let mut errors = Vec::new();
    let mut latencies = Vec::new();
    for r in &results {
        match r {
            Ok(r) if r.passed => latencies.push(Duration::from_secs_f64(r.millis / 1e3)),
            Ok(r) => errors.push(format!(
                "{}: {}",
                r.name,
                r.failure
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            )),
            Err(e) => errors.push(e.clone()),
        }
    }
    latencies.sort();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    // Every binding in the network: each primary's number has exactly its two active IMSIs.
    let client = crate::network::client::NetworkClient::new(&net.operator_url);
    let mut inconsistent = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for i in 0..n {
        let msisdn = format!("+1666{i:07}");
        let sub = client.subscriber(&msisdn)?;
        let active: Vec<&str> = sub
            .imsis
            .iter()
            .filter(|l| l.state == crate::network::db::LineState::Active)
            .map(|l| l.imsi.as_str())
            .collect();
        let primary = format!("00101{i:010}");
        let fresh = active
            .iter()
            .filter(|x| **x != primary)
            .all(|x| seen.insert((*x).to_owned()));
        if active.len() != 2 || !active.contains(&primary.as_str()) || !fresh {
            inconsistent.push(format!("{msisdn}: {active:?}"));
        }
    }
    drop(net);
    Ok(LoadResult {
        flows: n,
        errors,
        wall,
        p50: pick(0.5),
        p99: pick(0.99),
        inconsistent,
    })
}

/// The report `simlab bench --flows` prints.
pub fn run(vectors: &Path, load_flows: usize) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let mut out = String::new();
    let set = whole_set(vectors)?;
    writeln!(
        out,
        "flows: every flow × variant on the embedded default ({} scenarios, one after the other)",
        set.scenarios
    )?;
    writeln!(
        out,
        "  whole set           {:>8.0} ms  ({} passed)",
        set.total.as_secs_f64() * 1e3,
        set.passed
    )?;
    writeln!(
        out,
        "  the passing ones    {:>8.0} ms",
        set.passed_time.as_secs_f64() * 1e3
    )?;
    if !set.failed.is_empty() {
        writeln!(out, "  failed: {}", set.failed.join(", "))?;
    }
    writeln!(out, "  baseline            {:>8.0} ms  (embedded network started and stopped {} times, no flow)", set.baseline.as_secs_f64() * 1e3, set.scenarios)?;
    writeln!(
        out,
        "  ratio               {:>8.2}",
        set.total.as_secs_f64() / set.baseline.as_secs_f64().max(1e-9)
    )?;
    for (name, d) in &set.slowest {
        writeln!(out, "  slowest: {name} {:.0} ms", d.as_secs_f64() * 1e3)?;
    }
    if load_flows > 0 {
        let l = load(vectors, load_flows)?;
        writeln!(
            out,
            "load: {} companion-download flows at once against one `simlab network serve` process",
            l.flows
        )?;
        writeln!(
            out,
            "  wall time           {:>8.0} ms",
            l.wall.as_secs_f64() * 1e3
        )?;
        writeln!(out, "  flows/s             {:>8.1}", l.flows_per_second())?;
        writeln!(
            out,
            "  latency p50         {:>8.0} ms",
            l.p50.as_secs_f64() * 1e3
        )?;
        writeln!(
            out,
            "  latency p99         {:>8.0} ms",
            l.p99.as_secs_f64() * 1e3
        )?;
        writeln!(out, "  errors              {:>8}", l.errors.len())?;
        writeln!(out, "  inconsistent bindings {:>6}", l.inconsistent.len())?;
        for e in l.errors.iter().take(5) {
            writeln!(out, "  error: {e}")?;
        }
        for e in l.inconsistent.iter().take(5) {
            writeln!(out, "  inconsistent: {e}")?;
        }
    }
    Ok(out)
}
