//! What the global flags and the settings resolved once mean to a user: the
//! real `wi` binary, a clean environment and a temporary HOME, full stdout,
//! stderr and exit code snapshotted where people read them.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::harness::TestWorld;
use crate::harness::command::{clean_command, run, wi_binary, wi_offline, wi_offline_env};

const SPEC: &str = "examples/quickstart.yaml";
const SEED: &str = "examples/quickstart.seed.yaml";

#[tokio::test]
async fn global_flags_work_before_and_after_the_subcommand() {
    let spellings: &[&[&str]] = &[
        &["validate", "-f", SPEC],
        &["-f", SPEC, "validate"],
        &["--no-color", "validate", "--file", SPEC],
        &["validate", "-f", SPEC, "--color", "never", "-v"],
        &["--color=auto", "-q", "validate", "-f", SPEC],
        &["validate", "-f", SPEC, "--parallelism", "4"],
    ];
    let first = wi_offline(spellings[0]).await.expect(0);
    for args in &spellings[1..] {
        let run = wi_offline(args).await.expect(0);
        assert_eq!(run.stdout, first.stdout, "{args:?}");
        assert_eq!(run.stderr, "", "{args:?}");
    }
    // `WI_SPEC` stands in for `-f`, as it did.
    let from_env = wi_offline_env(&[("WI_SPEC", SPEC)], &["validate"])
        .await
        .expect(0);
    assert_eq!(from_env.stdout, first.stdout);
    // The output itself is snapshotted once, by `spec::cli::validate_quickstart`.
    assert!(
        first
            .stdout
            .starts_with("✓ examples/quickstart.yaml is valid"),
        "{}",
        first.stdout
    );
    assert_eq!(first.stderr, "");
}

#[tokio::test]
async fn no_color_and_color_never_cannot_disagree() {
    // A usage error: exit 1, like every error (2 means "changes present").
    let run = wi_offline(&["plan", "--no-color", "--color", "always"])
        .await
        .expect(1);
    assert!(run.stderr.contains("cannot be used with"), "{}", run.stderr);
}

#[tokio::test]
async fn color_always_colours_error_reports_even_into_a_pipe() {
    let coloured = wi_offline(&["--color", "always", "validate", "-f", "no-such-file.yaml"])
        .await
        .expect(1);
    assert!(coloured.stderr.contains("\u{1b}["), "{}", coloured.stderr);
    // Without NO_COLOR too: stderr is a pipe, so `auto` means plain.
    let home = tempfile::tempdir().expect("temp HOME");
    let plain = run(clean_command(wi_binary(), home.path())
        .env_remove("NO_COLOR")
        .args(["validate", "-f", "no-such-file.yaml"]))
    .await
    .expect("run wi")
    .expect(1);
    assert!(!plain.stderr.contains('\u{1b}'), "{}", plain.stderr);
}

/// `WI_POLL_INTERVAL=0s` used to be accepted and polled in a tight loop
/// (about 7,000 requests in 10 s); it is refused before any request.
#[tokio::test]
async fn a_zero_poll_interval_is_refused_before_any_request() {
    let run = wi_offline_env(&[("WI_POLL_INTERVAL", "0s")], &["plan", "-f", SPEC])
        .await
        .expect(1);
    insta::assert_snapshot!(run.snapshot());
}

/// A garbage `WI_STEP_TIMEOUT` used to become 600 s silently.
#[tokio::test]
async fn a_garbage_step_timeout_is_an_error() {
    let run = wi_offline_env(
        &[("WI_STEP_TIMEOUT", "soon")],
        &["apply", "-f", SPEC, "--auto-approve"],
    )
    .await
    .expect(1);
    insta::assert_snapshot!(run.snapshot());
}

/// `wi emulator` logs its own error lines (here: the kubeconfig it cannot
/// write because a directory is in the way) on stderr; they used to vanish
/// because the command never set up logging.
#[tokio::test]
async fn wi_emulator_logs_its_own_error_lines() {
    let home = tempfile::tempdir().expect("home");
    let work = home.path().join("work");
    std::fs::create_dir_all(work.join("kubeconfig")).expect("a directory in the way");
    std::fs::write(work.join("kubeconfig").join("keep"), "").expect("non-empty");
    let mut child = clean_command(wi_binary(), home.path())
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

#[tokio::test]
async fn plan_format_markdown_is_for_pull_request_comments() {
    let world = TestWorld::start(SEED).await;
    let markdown = world
        .wi(&[
            "plan",
            "-f",
            SPEC,
            "--format",
            "markdown",
            "--detailed-exitcode",
        ])
        .await
        .expect(2);
    assert!(markdown.stdout.len() <= wi::render::GITHUB_COMMENT_MAX_BYTES);
    insta::assert_snapshot!(markdown.snapshot());

    // `--json` stays an alias of `--format json`.
    let json = world.wi(&["plan", "-f", SPEC, "--json"]).await.expect(0);
    let format_json = world
        .wi(&["plan", "-f", SPEC, "--format", "json"])
        .await
        .expect(0);
    assert_eq!(json.stdout, format_json.stdout);
    assert!(json.stdout.starts_with('{'), "{}", json.stdout);
    world.stop().await;
}

/// <https://bixense.com/clicolors>: `CLICOLOR_FORCE` colours output that is
/// not a terminal (CI logs render ANSI); `NO_COLOR` wins over it
/// (<https://no-color.org>), and the flags win over both.
#[tokio::test]
async fn clicolor_force_colours_a_pipe_unless_no_color_says_otherwise() {
    let args = ["validate", "-f", "no-such-file.yaml"];
    let home = tempfile::tempdir().expect("temp HOME");
    let with = |set: &[(&str, &str)], extra: &[&str]| {
        let mut cmd = clean_command(wi_binary(), home.path());
        cmd.env_remove("NO_COLOR")
            .envs(set.iter().copied())
            .args(extra)
            .args(args);
        cmd
    };
    let forced = run(&mut with(&[("CLICOLOR_FORCE", "1")], &[]))
        .await
        .expect("run wi")
        .expect(1);
    assert!(forced.stderr.contains("\u{1b}["), "{}", forced.stderr);
    for (set, extra) in [
        (&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")][..], &[][..]),
        (&[("CLICOLOR_FORCE", "0")], &[]),
        (&[("CLICOLOR_FORCE", "1")], &["--color", "never"]),
        (&[("CLICOLOR_FORCE", "1")], &["--no-color"]),
    ] {
        let plain = run(&mut with(set, extra)).await.expect("run wi").expect(1);
        assert!(
            !plain.stderr.contains('\u{1b}'),
            "{set:?} {extra:?}: {}",
            plain.stderr
        );
    }
}

/// The lines `-v` adds: one per call wi makes, on Google and on Kubernetes
/// (method, resource, status, time), sorted (calls run in parallel), with
/// times and ports filtered. Nothing at the default level; never a token.
#[tokio::test]
async fn verbose_shows_one_line_per_google_and_kubernetes_call() {
    let world = TestWorld::start(SEED).await;
    let quiet = world.wi(&["plan", "-f", SPEC]).await.expect(0);
    assert_eq!(quiet.stderr, "", "no logs by default");
    let verbose = world.wi(&["plan", "-f", SPEC, "-v"]).await.expect(0);
    assert_eq!(verbose.stdout, quiet.stdout, "logs go to stderr only");
    let mut calls: Vec<String> = verbose
        .stderr
        .lines()
        .filter(|l| l.contains("google api") || l.contains("kubernetes api"))
        .map(|l| without_time(l).to_string())
        .collect();
    calls.sort();
    calls.dedup();
    assert!(calls.iter().any(|l| l.contains("google api")), "{calls:?}");
    assert!(
        calls.iter().any(|l| l.contains("kubernetes api")),
        "{calls:?}"
    );
    insta::with_settings!({filters => vec![
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
        (r"elapsed_ms=\d+", "elapsed_ms=[MS]"),
    ]}, {
        insta::assert_snapshot!(calls.join("\n"));
    });
    // Not a token at any level, the libraries' included.
    let token_file = world
        .env
        .iter()
        .find(|(k, _)| k == "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE")
        .map(|(_, v)| v.clone())
        .expect("the emulator's token file");
    let token = std::fs::read_to_string(token_file).expect("token");
    let token = token.trim();
    assert!(token.len() > 8);
    let loudest = world.wi(&["plan", "-f", SPEC, "-vvv"]).await.expect(0);
    assert!(
        loudest.stderr.lines().count() > calls.len(),
        "-vvv shows the libraries"
    );
    for run in [&verbose, &loudest] {
        assert!(!run.stderr.contains(token), "a token in the logs");
        assert!(
            !run.stderr.contains("Bearer"),
            "an Authorization header in the logs"
        );
    }
    world.stop().await;
}
