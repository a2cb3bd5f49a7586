//! The CI contract of the real binary: the exit code of every command for
//! success, errors and usage errors (README "Exit codes"), a closed stdout
//! that ends the command quietly with its own exit code, and plan paths that
//! are not regular files refused instead of blocking.

use std::process::Stdio;
use std::time::Duration;

use crate::harness::command::{run, wi_offline};
use crate::harness::{Output, TestWorld, wi_binary};

const SPEC: &str = "examples/quickstart.yaml";
const SEED: &str = "examples/quickstart.seed.yaml";
const BAD_SPEC: &str = "tests/fixtures/specs/invalid/many_problems.yaml";

/// A hang guard only: every command here ends in seconds; this fails the
/// test instead of hanging CI if one ever blocks.
const HANG_GUARD: Duration = Duration::from_secs(120);

async fn guarded(cmd: &mut tokio::process::Command) -> Output {
    tokio::time::timeout(HANG_GUARD, run(cmd))
        .await
        .expect("wi did not end (hang guard)")
        .expect("run wi")
}

fn no_panic(out: &Output) {
    for text in [&out.stdout, &out.stderr] {
        assert!(
            !text.contains("panicked") && !text.contains("RUST_BACKTRACE"),
            "{}",
            out.snapshot()
        );
    }
}

/// Usage errors exit 1 for every command (clap's own 2 would read as
/// "changes present"); `--help` and `--version` exit 0.
#[tokio::test]
async fn usage_errors_exit_1_for_every_command_and_help_exits_0() {
    for command in [
        "validate",
        "schema",
        "plan",
        "apply",
        "verify",
        "audit",
        "import",
        "show",
        "emulator",
        "demo",
        "drift",
        "completions",
        "man",
    ] {
        let out = wi_offline(&[command, "--paralelism", "4"]).await;
        assert_eq!(out.code, 1, "{command}: {}", out.snapshot());
        assert!(
            out.stderr.contains("unexpected argument '--paralelism'"),
            "{command}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{command}: {}", out.stdout);
        let help = wi_offline(&[command, "--help"]).await.expect(0);
        assert!(
            help.stdout.contains("Usage: wi"),
            "{command}: {}",
            help.stdout
        );
    }
    for argv in [
        &["plan", "--parallelism", "abc"][..],
        &["plan", "--out"],
        &["plan", "--format", "yaml"],
        &["show"],
        &[],
        &["frobnicate"],
    ] {
        let out = wi_offline(argv).await;
        assert_eq!(out.code, 1, "{argv:?}: {}", out.snapshot());
        no_panic(&out);
    }
    let version = wi_offline(&["--version"]).await.expect(0);
    assert_eq!(version.stdout, format!("wi {}\n", wi::VERSION));
    let mistyped = wi_offline(&["plan", "--paralelism", "4"]).await;
    assert_output_snapshot!("usage_error_mistyped_flag", mistyped);
}

/// The README's gate `wi plan --detailed-exitcode --out wi.plan || [ $? -eq 2 ]`
/// must fail on a mistyped flag.
#[tokio::test]
async fn the_readme_ci_gate_fails_on_a_mistyped_flag() {
    let dir = tempfile::tempdir().unwrap();
    let gate = format!(
        "{} plan --paralelism 4 --detailed-exitcode --out wi.plan || [ $? -eq 2 ]",
        wi_binary()
    );
    let out = guarded(
        tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&gate)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default()),
    )
    .await;
    assert_ne!(out.code, 0, "{}", out.snapshot());
    assert!(!dir.path().join("wi.plan").exists());
}

#[tokio::test]
async fn offline_commands_exit_0_on_success_and_1_on_error() {
    wi_offline(&["validate", "-f", SPEC]).await.expect(0);
    wi_offline(&["validate", "-f", BAD_SPEC]).await.expect(1);
    wi_offline(&["schema"]).await.expect(0);
    wi_offline(&["schema", "--plan"]).await.expect(0);
    wi_offline(&["show", "absent.plan"]).await.expect(1);
    // No credentials, no emulator: plan and apply end with an error.
    wi_offline(&["plan", "-f", SPEC]).await.expect(1);
    wi_offline(&["apply", "-f", SPEC, "--auto-approve"])
        .await
        .expect(1);
    wi_offline(&["verify", "-f", SPEC]).await.expect(1);
    wi_offline(&["audit", "-f", SPEC]).await.expect(1);
    wi_offline(&["plan", "-f", "absent.yaml"]).await.expect(1);
    wi_offline(&["emulator", "--seed", "absent.seed.yaml"])
        .await
        .expect(1);
    wi_offline(&["demo", "-f", "absent.yaml"]).await.expect(1);
}

#[tokio::test]
async fn plan_apply_and_show_exit_codes_against_the_emulator() {
    let world = TestWorld::start(SEED).await;
    let plan_file = world.path("pr.plan");
    let plan_file = plan_file.to_str().unwrap();
    world.wi(&["plan", "-f", SPEC]).await.expect(0);
    world
        .wi(&[
            "plan",
            "-f",
            SPEC,
            "--detailed-exitcode",
            "--out",
            plan_file,
        ])
        .await
        .expect(2);
    world.wi(&["show", plan_file]).await.expect(0);
    // Nothing applied yet: the chains are broken.
    world.wi(&["verify", "-f", SPEC]).await.expect(1);
    // Without a terminal and without --auto-approve: refused, exit 1.
    world.wi(&["apply", "-f", SPEC]).await.expect(1);
    world.wi(&["apply", "-f", SPEC, plan_file]).await.expect(0);
    world
        .wi(&["plan", "-f", SPEC, "--detailed-exitcode"])
        .await
        .expect(0);
    world
        .wi(&["apply", "-f", SPEC, "--auto-approve"])
        .await
        .expect(0);
    world.wi(&["verify", "-f", SPEC]).await.expect(0);
    world.wi(&["audit", "-f", SPEC]).await.expect(0);
    world
        .wi(&["plan", "-f", SPEC, "--check-permissions"])
        .await
        .expect(0);
    world.stop().await;
}

#[tokio::test]
async fn demo_exits_0() {
    let home = tempfile::tempdir().unwrap();
    let out = guarded(
        crate::harness::command::clean_command(wi_binary(), home.path()).args([
            "demo",
            "--operation-duration",
            "50ms",
        ]),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.snapshot());
}

/// stdout is a pipe whose reader has already gone: the first write fails
/// with EPIPE, every time.
fn closed_stdout() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    Stdio::from(writer)
}

#[tokio::test]
async fn a_closed_stdout_ends_every_command_quietly_with_its_own_exit_code() {
    let home = tempfile::tempdir().unwrap();
    let offline = |args: &[&str]| {
        let mut cmd = crate::harness::command::clean_command(wi_binary(), home.path());
        cmd.args(args).stdout(closed_stdout());
        cmd
    };
    for (args, code) in [
        (&["validate", "-f", SPEC, "--print-model"][..], 0),
        (&["validate", "-f", SPEC], 0),
        (&["schema"], 0),
        (&["schema", "--plan"], 0),
        (&["--help"], 0),
        (&["plan", "--help"], 0),
    ] {
        let out = guarded(&mut offline(args)).await;
        assert_eq!(out.code, code, "{args:?}: {}", out.snapshot());
        no_panic(&out);
        assert!(out.stderr.is_empty(), "{args:?}: {}", out.stderr);
    }
    // The demo's apply progress is on stderr; it converges as usual.
    let out = guarded(&mut offline(&["demo", "--operation-duration", "50ms"])).await;
    assert_eq!(out.code, 0, "{}", out.snapshot());
    no_panic(&out);

    let world = TestWorld::start(SEED).await;
    let plan_file = world.path("pr.plan");
    let plan_file = plan_file.to_str().unwrap();
    let with_world = |args: &[&str]| {
        let mut cmd = world.command(wi_binary());
        cmd.args(args).stdout(closed_stdout());
        cmd
    };
    for (args, code) in [
        (&["plan", "-f", SPEC][..], 0),
        (&["plan", "-f", SPEC, "--json"], 0),
        (&["plan", "-f", SPEC, "--format", "markdown"], 0),
        // The exit code is the command's own, and --out is still written.
        (
            &[
                "plan",
                "-f",
                SPEC,
                "--detailed-exitcode",
                "--out",
                plan_file,
            ],
            2,
        ),
        (&["show", plan_file], 0),
        (&["show", "--json", plan_file], 0),
        (&["verify", "-f", SPEC], 1),
        (&["audit", "-f", SPEC], 0),
    ] {
        let out = guarded(&mut with_world(args)).await;
        assert_eq!(out.code, code, "{args:?}: {}", out.snapshot());
        no_panic(&out);
        // A failing command's error is on stderr; nothing else is.
        if code != 1 {
            assert!(out.stderr.is_empty(), "{args:?}: {}", out.stderr);
        }
    }
    // Apply runs its steps with stdout gone; progress stays on stderr.
    let out = guarded(&mut with_world(&["apply", "-f", SPEC, plan_file])).await;
    assert_eq!(out.code, 0, "{}", out.snapshot());
    no_panic(&out);
    world
        .wi(&["plan", "-f", SPEC, "--detailed-exitcode"])
        .await
        .expect(0);
    world.stop().await;
}

/// What the issue reported, as a CI shell runs it.
#[tokio::test]
async fn plan_piped_into_head_does_not_panic() {
    let world = TestWorld::start(SEED).await;
    let script = format!("{} plan -f {SPEC} | head -1", wi_binary());
    let out = guarded(
        world
            .command("bash")
            .args(["-o", "pipefail", "-c", &script]),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.snapshot());
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    no_panic(&out);
    world.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_fifo_as_plan_file_is_refused_instead_of_blocking() {
    let world = TestWorld::start(SEED).await;
    let fifo = world.path("pr.plan");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let fifo = fifo.to_str().unwrap();
    for args in [&["show", fifo][..], &["apply", "-f", SPEC, fifo]] {
        let out = guarded(world.command(wi_binary()).args(args)).await;
        assert_eq!(out.code, 1, "{args:?}: {}", out.snapshot());
        assert!(
            out.stderr
                .contains("is a named pipe (FIFO), not a regular file"),
            "{args:?}: {}",
            out.stderr
        );
    }
    // `--out` onto the FIFO: refused too, the FIFO stays a FIFO.
    let out = guarded(
        world
            .command(wi_binary())
            .args(["plan", "-f", SPEC, "--out", fifo]),
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    world.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn out_onto_a_symlink_is_refused_and_nothing_is_replaced() {
    let world = TestWorld::start(SEED).await;
    let target = world.write("precious.txt", "keep me");
    let link = world.path("wi.plan");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = world
        .wi(&["plan", "-f", SPEC, "--out", link.to_str().unwrap()])
        .await
        .expect(1);
    assert_output_snapshot!("out_onto_a_symlink", out);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    world.stop().await;
}

/// stderr without miette's line wrapping, for `contains` checks.
fn flat(text: &str) -> String {
    text.replace(['│', '╰', '─', '▶', '×'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A loopback listener that accepts every connection and never says a word
/// (the connections are held open until the test ends).
async fn silent_listener() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (addr, task)
}

/// A loopback port nothing listens on.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    addr
}

const CONTAINER: &str = "CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER";

async fn plan_with(world: &TestWorld, set: &[(&str, &str)], unset: &[&str]) -> Output {
    let mut cmd = world.command(wi_binary());
    for k in unset {
        cmd.env_remove(k);
    }
    cmd.envs(set.iter().copied()).args(["plan", "-f", SPEC]);
    let out = guarded(&mut cmd).await;
    assert_eq!(out.code, 1, "{}", out.snapshot());
    no_panic(&out);
    out
}

/// Errors resending cannot heal end the run at once (or after one connect
/// timeout), each with a message that names the cause; the hang guard is
/// the only clock here.
#[tokio::test]
async fn endpoints_that_cannot_answer_end_the_run_with_a_clear_message() {
    let world = TestWorld::start(SEED).await;

    let refused = format!("https://{}/container/", closed_port().await);
    let out = plan_with(&world, &[(CONTAINER, &refused)], &[]).await;
    assert!(
        flat(&out.stderr).contains("connection refused: nothing listens there"),
        "{}",
        out.stderr
    );

    let (silent, task) = silent_listener().await;
    let https = format!("https://{silent}/container/");
    let out = plan_with(&world, &[(CONTAINER, &https)], &[]).await;
    assert!(
        flat(&out.stderr).contains("the server accepts connections but does not answer"),
        "{}",
        out.stderr
    );
    let http = format!("http://{silent}/container/");
    let out = plan_with(&world, &[(CONTAINER, &http)], &[]).await;
    assert!(
        flat(&out.stderr).contains("of sending the request")
            && flat(&out.stderr).contains("does the server expect https://?"),
        "{}",
        out.stderr
    );
    task.abort();

    // The emulator speaks https only: plain http to it is retried briefly,
    // then reported with the likely cause.
    let emulator = world
        .env
        .iter()
        .find(|(k, _)| k == CONTAINER)
        .map(|(_, v)| v.replacen("https://", "http://", 1))
        .expect("the emulator exports a container endpoint");
    let out = plan_with(&world, &[(CONTAINER, &emulator)], &[]).await;
    assert!(
        flat(&out.stderr).contains("does the server expect https://?"),
        "{}",
        out.stderr
    );
    world.stop().await;
}

#[tokio::test]
async fn malformed_credentials_end_the_run_at_once_without_showing_them() {
    let world = TestWorld::start(SEED).await;
    let token = world.write("token", "ya29.first-half\nya29.second half\n");
    let out = plan_with(
        &world,
        &[("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", token.to_str().unwrap())],
        &[],
    )
    .await;
    assert!(
        flat(&out.stderr)
            .contains("does not hold an access token: it contains spaces, line breaks"),
        "{}",
        out.stderr
    );
    assert!(!flat(&out.stderr).contains("second half"), "{}", out.stderr);

    let key_as_token = world.write("key-as-token", "{\n  \"type\": \"service_account\"\n}\n");
    let out = plan_with(
        &world,
        &[(
            "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE",
            key_as_token.to_str().unwrap(),
        )],
        &[],
    )
    .await;
    assert!(
        flat(&out.stderr).contains("it looks like a JSON key file"),
        "{}",
        out.stderr
    );

    let key = world.write(
        "key.json",
        "{\"type\": \"service_account\", \"private_key\": 7}",
    );
    let out = plan_with(
        &world,
        &[("GOOGLE_APPLICATION_CREDENTIALS", key.to_str().unwrap())],
        &["CLOUDSDK_AUTH_ACCESS_TOKEN_FILE"],
    )
    .await;
    assert!(
        flat(&out.stderr).contains("service-account key file"),
        "{}",
        out.stderr
    );
    world.stop().await;
}

/// The apply log as CI stores it, reduced to what does not depend on timing:
/// operation ids read `operation-[ID]`, and the "Still" lines (how many, and
/// between which lines, is timing) are left out; the caller checks them.
fn ci_log(stderr: &str) -> (String, Vec<String>) {
    let mut log: Vec<String> = Vec::new();
    let mut still = Vec::new();
    for line in stderr.lines() {
        if line.contains(": Still ") {
            still.push(line.to_string());
            continue;
        }
        let words: Vec<String> = line
            .split(' ')
            .map(|w| match w.strip_prefix("operation-") {
                Some(rest) => {
                    let id = rest.trim_end_matches([',', ')', ';']);
                    format!("operation-[ID]{}", &rest[id.len()..])
                }
                None => w.to_string(),
            })
            .collect();
        log.push(words.join(" "));
    }
    (log.join("\n") + "\n", still)
}

/// Beta only, so that with `--parallelism 1` its node pools are the first
/// long steps and find the foreign operation still running.
const BETA_SPEC: &str = "version: 1
defaults:
  project: wi-demo
clusters:
  - name: beta
    location: europe-west1-b
    workloadIdentity: true
    metadataServer: all
serviceAccounts:
  - name: reports-reader
    displayName: Reports reader
mappings:
  - serviceAccount: reports-reader
    clusters: [beta]
    namespace: reports
    ksa: reader
";

/// A full apply log: one line when each step starts and ends with an n/N
/// counter; a steady "Still modifying" line for long operations; a node
/// pool that finds someone else's cluster operation running says it waits
/// for it and names it, instead of calling it its own.
#[tokio::test]
async fn the_apply_log_counts_steps_and_names_the_operations_it_waits_for() {
    let world = TestWorld::start_with(SEED, |c| {
        c.operation_duration = Duration::from_secs(11);
    })
    .await;
    let spec = world.write("beta.yaml", BETA_SPEC);
    // Someone else enables Workload Identity on beta just before the apply.
    let pool = format!("{}.svc.id.goog", world.project);
    world
        .gcloud(&[
            "container",
            "clusters",
            "update",
            "beta",
            "--zone",
            "europe-west1-b",
            "--workload-pool",
            &pool,
            "--async",
        ])
        .await
        .expect(0);
    let out = guarded(world.command(wi_binary()).args([
        "apply",
        "-f",
        spec.to_str().unwrap(),
        "--auto-approve",
        "--parallelism",
        "1",
    ]))
    .await;
    assert_eq!(out.code, 0, "{}", out.snapshot());
    let (log, still) = ci_log(&out.stderr);
    assert!(
        log.contains(
            "node_pool beta/batch: waits for operation-[ID] (UPDATE_CLUSTER of cluster beta) to finish"
        ),
        "{log}"
    );
    assert!(!still.is_empty(), "{}", out.stderr);
    for line in &still {
        assert!(line.contains(": Still modifying... ["), "{line}");
        assert!(line.chars().count() <= 120, "{line}");
    }
    for line in log.lines() {
        // Start and end lines carry the full address; the rest stay short.
        if !line.ends_with("...") && !line.contains(" complete after ") {
            assert!(line.chars().count() <= 120, "{line}");
        }
    }
    // One step at a time: the n/N counters are deterministic, keep them.
    let filters: Vec<_> = crate::harness::command::filters()
        .into_iter()
        .filter(|(pattern, _)| !pattern.contains("/\\d+\\]"))
        .collect();
    insta::with_settings!({filters => filters}, {
        insta::assert_snapshot!("apply_log_for_ci", log);
    });
    world.stop().await;
}
