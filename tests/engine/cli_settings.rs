//! What the global flags and the settings resolved once mean to a user: the
//! real `wi` binary, a clean environment and a temporary HOME, full stdout,
//! stderr and exit code snapshotted where people read them.
//!
//! Self-contained on purpose (its own tiny runner) until it joins the shared
//! harness.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use wi::emulator::{Emulator, EmulatorConfig};

const SPEC: &str = "examples/quickstart.yaml";
const SEED: &str = "examples/quickstart.seed.yaml";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What one run printed and how it ended.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit code {} (wanted {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// The form the snapshots keep: exit code, stdout, stderr.
    fn transcript(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// `wi` with nothing from the developer's environment but PATH, a fresh HOME
/// and the given variables.
fn wi_command(home: &Path, env: &[(String, String)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_wi"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(root())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

async fn wi(env: &[(&str, &str)], args: &[&str]) -> Run {
    let home = tempfile::tempdir().expect("home");
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let out = wi_command(home.path(), &env)
        .args(args)
        .output()
        .await
        .expect("run wi");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The quickstart world, in-process on loopback, and the variables that
/// point `wi` at it.
async fn quickstart_world(dir: &Path) -> (Emulator, Vec<(String, String)>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let emulator = Emulator::start(EmulatorConfig {
        seed: Some(root().join(SEED)),
        work_dir: dir.join("emulator"),
        operation_duration: Duration::from_millis(200),
        ..Default::default()
    })
    .await
    .expect("emulator starts");
    let mut env = emulator.env();
    env.push(("NO_COLOR".into(), "1".into()));
    (emulator, env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_flags_work_before_and_after_the_subcommand() {
    let spellings: &[&[&str]] = &[
        &["validate", "-f", SPEC],
        &["-f", SPEC, "validate"],
        &["--no-color", "validate", "--file", SPEC],
        &["validate", "-f", SPEC, "--color", "never", "-v"],
        &["--color=auto", "-q", "validate", "-f", SPEC],
        &["validate", "-f", SPEC, "--parallelism", "4"],
    ];
    let first = wi(&[("NO_COLOR", "1")], spellings[0]).await.expect(0);
    for args in &spellings[1..] {
        let run = wi(&[("NO_COLOR", "1")], args).await.expect(0);
        assert_eq!(run.stdout, first.stdout, "{args:?}");
        assert_eq!(run.stderr, "", "{args:?}");
    }
    // `WI_SPEC` stands in for `-f`, as it did.
    let from_env = wi(&[("WI_SPEC", SPEC)], &["validate"]).await.expect(0);
    assert_eq!(from_env.stdout, first.stdout);
    insta::assert_snapshot!(first.transcript());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_color_and_color_never_cannot_disagree() {
    let run = wi(&[], &["plan", "--no-color", "--color", "always"])
        .await
        .expect(2);
    assert!(run.stderr.contains("cannot be used with"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn color_always_colours_error_reports_even_into_a_pipe() {
    let run = wi(
        &[("NO_COLOR", "1")],
        &["--color", "always", "validate", "-f", "no-such-file.yaml"],
    )
    .await
    .expect(1);
    assert!(run.stderr.contains("\u{1b}["), "{}", run.stderr);
    let plain = wi(&[], &["validate", "-f", "no-such-file.yaml"])
        .await
        .expect(1);
    assert!(!plain.stderr.contains('\u{1b}'), "{}", plain.stderr);
}

/// `WI_POLL_INTERVAL=0s` used to be accepted and polled in a tight loop
/// (about 7,000 requests in 10 s); it is refused before any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_poll_interval_is_refused_before_any_request() {
    let run = wi(
        &[("NO_COLOR", "1"), ("WI_POLL_INTERVAL", "0s")],
        &["plan", "-f", SPEC],
    )
    .await
    .expect(1);
    insta::assert_snapshot!(run.transcript());
}

/// A garbage `WI_STEP_TIMEOUT` used to become 600 s silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_step_timeout_is_an_error() {
    let run = wi(
        &[("NO_COLOR", "1"), ("WI_STEP_TIMEOUT", "soon")],
        &["apply", "-f", SPEC, "--auto-approve"],
    )
    .await
    .expect(1);
    insta::assert_snapshot!(run.transcript());
}

/// `wi emulator` logs its own error lines (here: the kubeconfig it cannot
/// write because a directory is in the way) on stderr; they used to vanish
/// because the command never set up logging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wi_emulator_logs_its_own_error_lines() {
    let home = tempfile::tempdir().expect("home");
    let work = home.path().join("work");
    std::fs::create_dir_all(work.join("kubeconfig")).expect("a directory in the way");
    std::fs::write(work.join("kubeconfig").join("keep"), "").expect("non-empty");
    let mut child = wi_command(home.path(), &[("NO_COLOR".into(), "1".into())])
        .args(["emulator", "--seed", SEED, "--work-dir"])
        .arg(&work)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wi emulator");
    let stderr = child.stderr.take().expect("stderr");
    // Read until the emulator says it is up, then stop it.
    let read = async move {
        let mut lines = Vec::new();
        let mut reader = BufReader::new(stderr).lines();
        while let Some(line) = reader.next_line().await.expect("utf-8 stderr") {
            let up = line.contains("wi emulator listening on");
            lines.push(line);
            if up {
                break;
            }
        }
        lines
    };
    let lines = tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .expect("the emulator comes up within 2 minutes");
    child.kill().await.expect("stop wi emulator");
    // The emulator retries the write at every rewrite (once per cluster API
    // started, once at the end): the line matters, not how often it repeats.
    let mut lines = lines;
    lines.dedup_by(|a, b| without_time(a) == without_time(b));
    let text = lines.join("\n");
    insta::with_settings!({filters => vec![
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", "[TIME]"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
        (r"wi::emulator::[a-z_:]+", "[EMULATOR MODULE]"),
    ]}, {
        insta::assert_snapshot!(text);
    });
}

/// A log line without its leading RFC 3339 timestamp.
fn without_time(line: &str) -> &str {
    match line.split_once(' ') {
        Some((time, rest)) if time.ends_with('Z') && time.contains('T') => rest,
        _ => line,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_format_markdown_is_for_pull_request_comments() {
    let dir = tempfile::tempdir().expect("dir");
    let (emulator, env) = quickstart_world(dir.path()).await;
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    let markdown = wi(
        &env,
        &[
            "plan",
            "-f",
            SPEC,
            "--format",
            "markdown",
            "--detailed-exitcode",
        ],
    )
    .await
    .expect(2);
    assert!(markdown.stdout.len() <= wi::render::GITHUB_COMMENT_MAX_BYTES);
    insta::assert_snapshot!(markdown.transcript());

    // `--json` stays an alias of `--format json`.
    let json = wi(&env, &["plan", "-f", SPEC, "--json"]).await.expect(0);
    let format_json = wi(&env, &["plan", "-f", SPEC, "--format", "json"])
        .await
        .expect(0);
    assert_eq!(json.stdout, format_json.stdout);
    assert!(json.stdout.starts_with('{'), "{}", json.stdout);
    emulator.shutdown().await;
}
