//! `cargo bench --bench fleet -- [--mappings 100,1000,10000] [--latency-ms 50]`:
//! the fleet benchmark of issue 14 (see BENCHMARKS.md).
//!
//! A `cargo bench` target (`harness = false`) rather than a `src/bin`: it is
//! built with the optimised bench profile like the `wi` a user runs, Cargo
//! hands it the path of that `wi` (`CARGO_BIN_EXE_wi`), and it never ships
//! with the package nor links into the test suite.
//!
//! For each size it generates the synthetic fleet (`world.rs`), starts the
//! emulator in-process with that seed and a latency per request, and runs the
//! real `wi` binary as a user would (`wi validate`, `wi plan`, `wi apply`,
//! `wi plan` again) as a child whose wall time, CPU time and peak RSS it
//! measures (getrusage of the child, through a re-executed copy of itself so
//! each measurement has exactly one child). The emulator counts the calls by
//! method. In the same run it reads the same world with the two reference
//! patterns (`patterns.rs`) and prints ratios. `--quota RPS` adds an apply
//! under an emulated quota of RPS requests per second per Google API and
//! project.

mod patterns;
mod world;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use wi::emulator::{Emulator, EmulatorConfig, Stats};

use patterns::{PatternRun, Target};
use world::{Fleet, Shape};

#[derive(Debug, Parser)]
#[command(name = "fleet", about = "The fleet benchmark of issue 14")]
struct Args {
    /// Fleet sizes, in mappings (each places one KSA on 3 clusters).
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    mappings: Vec<usize>,
    /// Latency the emulator adds to every request, in milliseconds.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// Calls in flight the round-trip floor is stated for.
    #[arg(long, default_value_t = 32)]
    floor_in_flight: usize,
    /// Calls in flight of the Terraform pattern (Terraform's default -parallelism).
    #[arg(long, default_value_t = 10)]
    terraform_in_flight: usize,
    /// Skip the two reference patterns.
    #[arg(long)]
    no_reference: bool,
    /// Also apply under a quota of RPS requests per second per Google API and project.
    #[arg(long, value_name = "RPS")]
    quota: Option<f64>,
    /// Mappings of the fleet applied under the quota.
    #[arg(long, default_value_t = 1000)]
    quota_mappings: usize,
    /// Write spec.yaml and seed.yaml of the (first) size to DIR and stop.
    #[arg(long, value_name = "DIR")]
    write: Option<PathBuf>,
    /// Internal: run the command after `--` as the one measured child.
    #[arg(long, hide = true)]
    measure: bool,
    /// Internal: where the measured child's stdout and stderr go.
    #[arg(long, hide = true)]
    measure_out: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    #[arg(last = true, hide = true)]
    command: Vec<String>,
}

/// One measured run of a child.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    wall: Duration,
    cpu: Duration,
    max_rss_kb: u64,
    code: i32,
}

fn main() {
    let args = Args::parse();
    if !args.bench && std::env::args().len() == 1 {
        // `cargo test --all-targets` runs bench targets without arguments:
        // the benchmark takes minutes, CI's call counts are bench_calls'.
        eprintln!("the fleet benchmark runs with `cargo bench --bench fleet`");
        return;
    }
    if args.measure {
        measure_child(&args);
        return;
    }
    if let Some(dir) = &args.write {
        let fleet = Fleet::generate(Shape::for_mappings(args.mappings[0]));
        std::fs::create_dir_all(dir).expect("create DIR");
        std::fs::write(dir.join("spec.yaml"), fleet.spec()).expect("write spec");
        std::fs::write(dir.join("seed.yaml"), fleet.seed()).expect("write seed");
        eprintln!("wrote {}/spec.yaml and seed.yaml", dir.display());
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let large = validate_large_spec();
    let mut rows = Vec::new();
    for &n in &args.mappings {
        rows.push(rt.block_on(run_size(&args, n)));
    }
    let quota = args.quota.map(|rps| rt.block_on(run_quota(&args, rps)));
    println!("\n{}", table(&args, &rows));
    println!(
        "wi validate of the spec of tests/spec/model.rs `a_large_fleet_loads` (300 clusters, 500 accounts, 2,000 mappings = 120,000 placements): {} wall, {} CPU, {} peak RSS\n",
        secs(large.wall),
        secs(large.cpu),
        mb(large.max_rss_kb)
    );
    if let Some(q) = quota {
        println!("{q}");
    }
}

/// The spec `tests/spec/model.rs::a_large_fleet_loads` loads (its timing lives
/// here: tests are not timed): 300 clusters in 3 projects and 10 groups, 500
/// accounts, 2,000 mappings of 2 KSAs on a group of 30 clusters each.
fn validate_large_spec() -> Usage {
    let mut src = String::from("version: 1\ndefaults: {location: us-central1}\nclusters:\n");
    for i in 0..300 {
        src.push_str(&format!(
            "  - {{name: c{i}, project: proj-{}, groups: [g{}]}}\n",
            i % 3,
            i % 10
        ));
    }
    src.push_str("serviceAccounts:\n");
    for i in 0..500 {
        src.push_str(&format!("  - {{name: account-{i}, project: proj-0}}\n"));
    }
    src.push_str("mappings:\n");
    for i in 0..2_000 {
        src.push_str(&format!(
            "  - {{serviceAccount: account-{}, clusters: [g{}], namespace: ns-{i}, ksas: [a, b]}}\n",
            i % 500,
            i % 10
        ));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = dir.path().join("large.yaml");
    std::fs::write(&spec, src).expect("spec");
    let u = measured_wi(
        &[],
        dir.path(),
        "validate-large",
        &["validate", "-f", &spec.display().to_string()],
    );
    assert_eq!(
        u.code,
        0,
        "wi validate of the large spec:\n{}",
        tail(&dir.path().join("validate-large").join("stderr"))
    );
    eprintln!(
        "wi validate of the 120,000-placement spec: {} wall",
        secs(u.wall)
    );
    u
}

/// `--measure -- PROG ARGS`: runs PROG as the only child, prints its usage as `wall cpu maxrss code`.
fn measure_child(args: &Args) {
    let (prog, rest) = args.command.split_first().expect("a command after --");
    let out = args.measure_out.clone().unwrap_or_else(std::env::temp_dir);
    let file = |name: &str| std::fs::File::create(out.join(name)).expect("output file");
    let started = Instant::now();
    let status = Command::new(prog)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(file("stdout"))
        .stderr(file("stderr"))
        .status()
        .expect("spawn the measured command");
    let wall = started.elapsed();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    let cpu = tv(usage.user_time()) + tv(usage.system_time());
    println!(
        "{} {} {} {}",
        wall.as_micros(),
        cpu.as_micros(),
        usage.max_rss(),
        status.code().unwrap_or(-1)
    );
}

/// Runs `wi ARGS` with `env` under the measuring copy of this binary.
fn measured_wi(env: &[(String, String)], dir: &Path, name: &str, wi_args: &[&str]) -> Usage {
    let out = dir.join(name);
    std::fs::create_dir_all(&out).expect("output dir");
    let me = std::env::current_exe().expect("current exe");
    let output = Command::new(me)
        .arg("--measure")
        .arg("--measure-out")
        .arg(&out)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_wi"))
        .args(wi_args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stderr(Stdio::inherit())
        .output()
        .expect("run the measuring copy");
    let text = String::from_utf8_lossy(&output.stdout);
    let f: Vec<i64> = text
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(-1))
        .collect();
    let [wall, cpu, rss, code] = f[..] else {
        panic!("measuring copy printed {text:?}");
    };
    Usage {
        wall: Duration::from_micros(wall as u64),
        cpu: Duration::from_micros(cpu as u64),
        max_rss_kb: rss as u64,
        code: code as i32,
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// The unavoidable reads of a fleet and their critical path.
#[derive(Debug, Clone, Copy)]
struct Floor {
    calls: u64,
    /// Longest chain of dependent round trips (pages follow pages; Kubernetes
    /// lists follow the project's cluster list).
    chain: u64,
}

impl Floor {
    fn of(fleet: &Fleet) -> Floor {
        let pages = |n: usize, size: usize| n.div_ceil(size).max(1) as u64;
        let mut calls = 0;
        let mut chain = 1;
        for p in &fleet.projects {
            // The project's policy (the owned accounts' project-role grants),
            // the account list (pages of 100), then each account's policy.
            // Not counted: the service check (no call is needed to plan).
            // And its `clusters.list`, which holds every cluster's endpoint
            // and CA (declared or not: undeclared ones share the workload pool).
            let n = fleet.gsas.iter().filter(|(gp, _)| gp == p).count();
            calls += 1 + pages(n, 100) + n as u64 + 1;
            chain = chain.max(pages(n, 100) + 1);
        }
        for (ci, _) in fleet.clusters.iter().enumerate() {
            // 4 system namespaces with a `default` account each.
            let ksas = 4 + fleet
                .mappings
                .iter()
                .filter(|m| m.clusters.contains(&ci) && !m.ksa_missing)
                .count();
            // After the project's cluster list: namespaces, service accounts
            // (pages of 500), host-network pods.
            calls += 1 + pages(ksas, 500) + 1;
            chain = chain.max(1 + pages(ksas, 500));
        }
        Floor { calls, chain }
    }

    /// The round-trip floor with `in_flight` calls at once and `latency` each.
    fn wall(&self, in_flight: usize, latency: Duration) -> Duration {
        let rounds = self.chain.max(self.calls.div_ceil(in_flight as u64));
        latency * rounds as u32
    }
}

struct Row {
    shape: Shape,
    seed_bytes: usize,
    emulator_start: Duration,
    validate: Usage,
    plan: Usage,
    plan_calls: BTreeMap<String, u64>,
    apply: Usage,
    apply_calls: BTreeMap<String, u64>,
    replan: Usage,
    floor: Floor,
    terraform: Option<PatternRun>,
    sequential: Option<PatternRun>,
}

fn total(calls: &BTreeMap<String, u64>) -> u64 {
    calls.values().sum()
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn mb(kb: u64) -> String {
    format!("{} MB", kb / 1024)
}

async fn start_emulator(
    dir: &Path,
    seed: &Path,
    latency: Duration,
    quota: Option<String>,
) -> (Emulator, Duration) {
    let started = Instant::now();
    let emulator = Emulator::start(EmulatorConfig {
        seed: Some(seed.to_path_buf()),
        work_dir: dir.join("emulator"),
        latency: Some(latency),
        quota,
        operation_duration: Duration::from_millis(200),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("emulator: {e}"));
    (emulator, started.elapsed())
}

fn target(emulator: &Emulator) -> Target {
    Target {
        base: emulator.base_url(),
        ca_pem: std::fs::read_to_string(emulator.ca_file().expect("CA file")).expect("CA"),
        token: emulator.admin_token(),
    }
}

fn calls_between(before: &Stats, after: &Stats) -> BTreeMap<String, u64> {
    after.calls_since(before)
}

async fn run_size(args: &Args, n: usize) -> Row {
    let shape = Shape::for_mappings(n);
    let fleet = Fleet::generate(shape);
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = dir.path().join("spec.yaml");
    let seed = dir.path().join("seed.yaml");
    let seed_text = fleet.seed();
    std::fs::write(&spec, fleet.spec()).expect("spec");
    std::fs::write(&seed, &seed_text).expect("seed");
    eprintln!(
        "== {} mappings: {} projects, {} clusters x {} pools, {} accounts, {} placements; seed {} KB",
        shape.mappings,
        shape.projects,
        shape.clusters,
        shape.pools,
        shape.gsas,
        shape.placements(),
        seed_text.len() / 1024
    );
    let latency = Duration::from_millis(args.latency_ms);
    let (emulator, emulator_start) = start_emulator(dir.path(), &seed, latency, None).await;
    eprintln!("emulator started in {}", secs(emulator_start));
    let env = emulator.env();
    let spec_arg = spec.display().to_string();
    let run = |name: &str, wi_args: &[&str], want: i32| {
        let u = measured_wi(&env, dir.path(), name, wi_args);
        if u.code != want {
            panic!(
                "wi {name} exited {} (expected {want}):\n{}",
                u.code,
                tail(&dir.path().join(name).join("stderr"))
            );
        }
        eprintln!(
            "wi {name}: {} wall, {} CPU, {} peak RSS",
            secs(u.wall),
            secs(u.cpu),
            mb(u.max_rss_kb)
        );
        u
    };
    let validate = run("validate", &["validate", "-f", &spec_arg], 0);

    let before = emulator.stats();
    let plan = run("plan", &["plan", "-f", &spec_arg, "--detailed-exitcode"], 2);
    let plan_calls = calls_between(&before, &emulator.stats());

    let (terraform, sequential) = if args.no_reference {
        (None, None)
    } else {
        // Side by side: each pattern counts its own calls and time; the
        // emulator answers both at once well below its capacity (a round
        // trip is the latency it adds), and the run takes the longer one's
        // time instead of both.
        let (t, s) = tokio::join!(
            patterns::terraform_refresh(&fleet, target(&emulator), args.terraform_in_flight),
            patterns::sequential_script(&fleet, target(&emulator)),
        );
        eprintln!("terraform pattern: {} calls in {}", t.calls, secs(t.wall));
        eprintln!("sequential script: {} calls in {}", s.calls, secs(s.wall));
        (Some(t), Some(s))
    };

    let before = emulator.stats();
    let apply = run("apply", &["apply", "-f", &spec_arg, "--auto-approve"], 0);
    let apply_calls = calls_between(&before, &emulator.stats());
    let replan = run(
        "replan",
        &["plan", "-f", &spec_arg, "--detailed-exitcode"],
        0,
    );
    eprintln!("plan calls by method:\n{}", by_method(&plan_calls));
    eprintln!("apply calls by method:\n{}", by_method(&apply_calls));
    emulator.shutdown().await;
    Row {
        shape,
        seed_bytes: seed_text.len(),
        emulator_start,
        validate,
        plan,
        plan_calls,
        apply,
        apply_calls,
        replan,
        floor: Floor::of(&fleet),
        terraform,
        sequential,
    }
}

fn by_method(calls: &BTreeMap<String, u64>) -> String {
    let mut rows: Vec<_> = calls.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    rows.iter().map(|(k, n)| format!("{n:>8}  {k}\n")).collect()
}

async fn run_quota(args: &Args, rps: f64) -> String {
    let fleet = Fleet::generate(Shape::for_mappings(args.quota_mappings));
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = dir.path().join("spec.yaml");
    let seed = dir.path().join("seed.yaml");
    std::fs::write(&spec, fleet.spec()).expect("spec");
    std::fs::write(&seed, fleet.seed()).expect("seed");
    let latency = Duration::from_millis(args.latency_ms);
    let (emulator, _) = start_emulator(dir.path(), &seed, latency, Some(format!("*={rps}"))).await;
    let env = emulator.env();
    let spec_arg = spec.display().to_string();
    let before = emulator.stats();
    let apply = measured_wi(
        &env,
        dir.path(),
        "apply",
        &["apply", "-f", &spec_arg, "--auto-approve"],
    );
    let after = emulator.stats();
    let calls = calls_between(&before, &after);
    let refused = after.throttled - before.throttled;
    let iam: u64 = calls
        .iter()
        .filter(|(k, _)| k.starts_with("iam."))
        .map(|(_, n)| n)
        .sum();
    let iam_refused = after.throttled_by_api.get("iam").copied().unwrap_or(0)
        - before.throttled_by_api.get("iam").copied().unwrap_or(0);
    let accepted = (iam - iam_refused) as f64;
    // What the quota lets through in the run: its rate for the whole wall
    // time plus the one second of requests each full bucket holds at start.
    let capacity = rps * fleet.projects.len() as f64 * (apply.wall.as_secs_f64() + 1.0);
    let stderr = tail(&dir.path().join("apply").join("stderr"));
    emulator.shutdown().await;
    format!(
        "Quota run: {} mappings, quota {rps} requests/s per Google API and project, {} ms latency\n\
         wi apply: exit {}, {} wall, {} calls ({} refused with 429)\n\
         IAM: {} accepted in {} = {:.1} requests/s, {:.0}% of what the quota's {} projects x {rps}/s let through (its rate over the wall time, plus each full bucket's second at start)\n{}",
        fleet.shape.mappings,
        args.latency_ms,
        apply.code,
        secs(apply.wall),
        total(&calls),
        refused,
        accepted,
        secs(apply.wall),
        accepted / apply.wall.as_secs_f64(),
        100.0 * accepted / capacity,
        fleet.projects.len(),
        if apply.code == 0 {
            String::new()
        } else {
            stderr
        }
    )
}

fn table(args: &Args, rows: &[Row]) -> String {
    let latency = Duration::from_millis(args.latency_ms);
    let k = args.floor_in_flight;
    let mut s = format!(
        "Fleet benchmark: {} ms per request; floor = unavoidable reads, wall floor = max(chain, calls / {k}) round trips\n\n",
        args.latency_ms
    );
    s += "| mappings | seed | emulator start | wi validate | wi plan wall / CPU / peak RSS | plan calls | floor calls | calls / floor | floor wall | wall / floor | wi apply wall / CPU / peak RSS | apply calls | re-plan | Terraform pattern | wi faster | sequential script | wi faster |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for r in rows {
        let floor_wall = r.floor.wall(k, latency);
        let plan_calls = total(&r.plan_calls);
        let pattern = |p: &Option<PatternRun>| match p {
            Some(p) => (
                format!("{}, {} calls", secs(p.wall), p.calls),
                format!("{:.1}x", p.wall.as_secs_f64() / r.plan.wall.as_secs_f64()),
            ),
            None => ("-".into(), "-".into()),
        };
        let (tf, tf_x) = pattern(&r.terraform);
        let (sq, sq_x) = pattern(&r.sequential);
        s += &format!(
            "| {} | {} KB | {} | {} | {} / {} / {} | {} | {} | {:.3} | {} | {:.2} | {} / {} / {} | {} | {} | {} | {} | {} | {} |\n",
            r.shape.mappings,
            r.seed_bytes / 1024,
            secs(r.emulator_start),
            secs(r.validate.wall),
            secs(r.plan.wall),
            secs(r.plan.cpu),
            mb(r.plan.max_rss_kb),
            plan_calls,
            r.floor.calls,
            plan_calls as f64 / r.floor.calls as f64,
            secs(floor_wall),
            r.plan.wall.as_secs_f64() / floor_wall.as_secs_f64(),
            secs(r.apply.wall),
            secs(r.apply.cpu),
            mb(r.apply.max_rss_kb),
            total(&r.apply_calls),
            secs(r.replan.wall),
            tf,
            tf_x,
            sq,
            sq_x,
        );
    }
    s
}
