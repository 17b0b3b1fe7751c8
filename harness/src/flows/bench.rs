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

/// The flows' environment: the built-in defaults, or a `vectors/` directory on disk.
fn base_env(vectors: Option<&Path>) -> Env {
    let mut env = vectors.map_or_else(Env::built_in, Env::with_vectors);
    env.record = false;
    env
}

/// Runs every built-in scenario on the embedded default.
pub fn whole_set(vectors: Option<&Path>) -> anyhow::Result<SetResult> {
    let env = base_env(vectors);
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
        let mut options = crate::network::server::NetworkOptions::built_in();
        options.smdp.pki_dir = env.pki();
        options.smdp.templates_dir = env.templates();
        let net = crate::network::server::start(options)?;
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
    /// CPU time (user, system) of the network process during the flows.
    pub network_cpu: (Duration, Duration),
    /// The network process's CPU time during the flows by thread name, sampled
    /// ([`ThreadSampler`]): `smdp` (the SM-DP+'s runtime, ES9+ and ES2+), `network` (the
    /// operator services), ….
    pub network_threads: Vec<(String, Duration)>,
    /// CPU time of this process (every device: cards, LPAs, HTTP clients) during the flows.
    pub devices_cpu: Duration,
}

impl LoadResult {
    pub fn flows_per_second(&self) -> f64 {
        self.flows as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// CPU time (user + system) of each live thread of process `pid`, with its name
/// (`/proc/PID/task/*/stat`).
fn task_times(pid: u32) -> Vec<(u32, String, Duration)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // proc(5): field 2 is the thread's name in parentheses.
        let name = text
            .split_once('(')
            .and_then(|(_, r)| r.rsplit_once(')'))
            .map(|(n, _)| n.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-'))
            .unwrap_or("?")
            .to_owned();
        let Ok(tid) = task.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok((user, system)) = crate::bench::downloads::proc_times_of(pid, tid) {
            out.push((tid, name, user + system));
        }
    }
    out
}

/// Per-thread CPU of a process during a run, sampled every [`Self::INTERVAL`] so that threads
/// which end before the run does (tokio's blocking pool) are counted too; a thread loses at
/// most the time since its last sample, which stays in the process total.
struct ThreadSampler {
    pid: u32,
    /// At the start: each thread's CPU time so far (only the run's share is counted).
    base: std::collections::BTreeMap<u32, Duration>,
    /// The latest sample of every thread seen: its name and CPU time.
    seen: std::collections::BTreeMap<u32, (String, Duration)>,
}

impl ThreadSampler {
    const INTERVAL: Duration = Duration::from_millis(100);

    fn start(pid: u32) -> Self {
        let base = task_times(pid)
            .into_iter()
            .map(|(tid, _, cpu)| (tid, cpu))
            .collect();
        Self {
            pid,
            base,
            seen: Default::default(),
        }
    }

    fn sample(&mut self) {
        for (tid, name, cpu) in task_times(self.pid) {
            self.seen.insert(tid, (name, cpu));
        }
    }

    /// The run's CPU time by thread name, largest first.
    fn by_name(mut self) -> Vec<(String, Duration)> {
        self.sample();
        let mut by_name = std::collections::BTreeMap::<String, Duration>::new();
        for (tid, (name, cpu)) in &self.seen {
            let before = self.base.get(tid).copied().unwrap_or_default();
            *by_name.entry(name.clone()).or_default() += cpu.saturating_sub(before);
        }
        let mut out: Vec<_> = by_name.into_iter().collect();
        out.sort_by_key(|(_, d)| std::cmp::Reverse(*d));
        out
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

fn spawn_network(vectors: Option<&Path>, db: &Path) -> anyhow::Result<NetworkProcess> {
    let exe = std::env::current_exe().context("locating the simlab binary")?;
    let mut command = Command::new(exe);
    command
        .args([
            "network",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--operator-listen",
            "127.0.0.1:0",
        ])
        .arg("--db")
        .arg(db);
    if let Some(v) = vectors {
        command
            .arg("--pki")
            .arg(v.join("pki"))
            .arg("--templates")
            .arg(v.join("profiles"));
    }
    let mut child = command
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
    pki_files: &crate::defaults::Files,
    pki: &crate::pki::Pki,
    n: usize,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let uicc = identity::write_fresh_uicc(
        dir,
        &format!("load UICC {n}"),
        "89490010300",
        n as u64,
        &format!("00101{n:010}"),
        &format!("+1666{n:07}"),
    )?;
    let eid = identity::eid_for("89049032", 100_000 + n as u64)?;
    let id = identity::mint(pki, &eid)?;
    let euicc = identity::write_card(
        &id,
        pki_files,
        &dir.join(format!("euicc-{n}")),
        "load eUICC",
    )?;
    Ok((uicc, euicc))
}

/// `n` companion-download flows at once against one network process.
pub fn load(vectors: Option<&Path>, n: usize) -> anyhow::Result<LoadResult> {
    let dir = tempfile::tempdir()?;
    let base = base_env(vectors);
    let pki = crate::pki::Pki::load_from(&base.pki(), crate::pki::Curve::Nist)?;
    let mut envs = Vec::with_capacity(n);
    let net = spawn_network(vectors, &dir.path().join("network.sqlite"))?;
    for i in 0..n {
        let (uicc, euicc) = cards(dir.path(), &base.pki(), &pki, i)?;
        let mut env = base.clone();
        env.network = NetworkSpec::Url(net.operator_url.clone());
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
    let pid = net.child.id();
    let network_before = crate::bench::downloads::proc_times(pid)?;
    let devices_before = crate::bench::downloads::process_cpu();
    let mut sampler = ThreadSampler::start(pid);
    let running = std::sync::atomic::AtomicBool::new(true);
    let start = Instant::now();
    let results: Vec<_> = std::thread::scope(|scope| {
        let sampling = scope.spawn(|| {
            while running.load(std::sync::atomic::Ordering::Relaxed) {
                sampler.sample();
                std::thread::sleep(ThreadSampler::INTERVAL);
            }
        });
        let handles: Vec<_> = envs
            .iter()
            .map(|env| {
                let scenario = &scenario;
                std::thread::Builder::new()
                    .stack_size(1 << 20)
                    .spawn_scoped(scope, move || engine::run(scenario, env, &|_| {}))
            })
            .collect();
        let results = handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().map_err(|_| "a flow thread panicked".to_owned()),
                Err(e) => Err(format!("cannot start a flow thread: {e}")),
            })
            .collect();
        running.store(false, std::sync::atomic::Ordering::Relaxed);
        let _ = sampling.join();
        results
    });
    let wall = start.elapsed();
    let devices_cpu = crate::bench::downloads::process_cpu().saturating_sub(devices_before);
    let network_after = crate::bench::downloads::proc_times(pid)?;
    let network_cpu = (
        network_after.0.saturating_sub(network_before.0),
        network_after.1.saturating_sub(network_before.1),
    );
    let network_threads = sampler.by_name();
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
        network_cpu,
        network_threads,
        devices_cpu,
    })
}

/// The report `simlab bench --flows` prints.
pub fn run(vectors: Option<&Path>, load_flows: usize) -> anyhow::Result<String> {
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
        let per_flow = |d: Duration| d.as_secs_f64() * 1e3 / l.flows.max(1) as f64;
        writeln!(
            out,
            "  network process CPU {:>8.2} ms/flow  (user {:.2}, system {:.2})",
            per_flow(l.network_cpu.0 + l.network_cpu.1),
            per_flow(l.network_cpu.0),
            per_flow(l.network_cpu.1)
        )?;
        let mut threads: Vec<String> = l
            .network_threads
            .iter()
            .map(|(name, d)| format!("{name} {:.2}", per_flow(*d)))
            .collect();
        let by_threads: Duration = l.network_threads.iter().map(|(_, d)| *d).sum();
        let rest = (l.network_cpu.0 + l.network_cpu.1).saturating_sub(by_threads);
        threads.push(format!("between samples {:.2}", per_flow(rest)));
        writeln!(
            out,
            "    by thread (during the flows, sampled every {} ms; ms/flow): {}",
            ThreadSampler::INTERVAL.as_millis(),
            threads.join(", ")
        )?;
        writeln!(
            out,
            "  devices' process CPU {:>7.2} ms/flow  (cards, LPAs, HTTP clients: this process)",
            per_flow(l.devices_cpu)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread that ends before the run does still counts (tokio's blocking pool threads do
    /// that under load): its time is the last sample's.
    #[test]
    fn the_sampler_counts_a_thread_that_ended_before_the_run() {
        let mut sampler = ThreadSampler::start(std::process::id());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::Builder::new()
            .name("sampled-worker".into())
            .spawn(move || {
                // Burn 50 ms of this thread's own CPU, then wait to be sampled.
                let mut x = 0u64;
                while crate::bench::downloads::thread_cpu() < Duration::from_millis(50) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
                ready_tx.send(()).unwrap();
                let _ = done_rx.recv();
            })
            .unwrap();
        ready_rx.recv().unwrap();
        sampler.sample();
        done_tx.send(()).unwrap();
        worker.join().unwrap();
        let by_name = sampler.by_name();
        let (_, cpu) = by_name
            .iter()
            .find(|(name, _)| name == "sampled-worker")
            .unwrap_or_else(|| panic!("the ended thread is missing: {by_name:?}"));
        // Linux accounts thread CPU in clock ticks (10 ms): at least 40 of the 50 ms show.
        assert!(*cpu >= Duration::from_millis(40), "{by_name:?}");
    }
}
