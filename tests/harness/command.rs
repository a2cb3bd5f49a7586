//! The real `wi`, `gcloud` and `kubectl` binaries run against a [`TestWorld`]
//! with a clean environment (`env_clear`), a temporary HOME and gcloud
//! config directory, and stdin closed.
//!
//! Commands run through `tokio::process`, so waiting for one does not block
//! the runtime worker the in-process emulator may need to answer it: a plain
//! `#[tokio::test]` works.
//!
//! What a user reads is checked with full snapshots ([`Output::snapshot`]):
//! stdout, stderr and exit code, with the parts that change from run to run
//! (loopback ports, temporary paths, etags, durations) filtered out.

use std::ffi::OsStr;

use tokio::process::Command;

use super::root;
use super::world::TestWorld;

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(o: std::process::Output) -> Self {
        Output {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Output {
    /// Panics with everything printed unless the command exited with `code`.
    #[track_caller]
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "exit code {} (wanted {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// For commands that run steps in parallel (`wi apply`): the order of
    /// the progress lines on stderr, and how often a running operation is
    /// polled, depend on timing; which steps started and finished does not.
    /// Keeps the progress lines sorted, without the operation and "Still"
    /// lines, and with every `[n/N]` counter (start order) read as `[n/N]`.
    pub fn unordered_progress(&self) -> Output {
        let mut lines: Vec<String> = self
            .stderr
            .lines()
            .filter(|l| !l.contains("operation-") && !l.contains(": Still "))
            .map(without_counter)
            .collect();
        lines.sort_unstable();
        let mut stderr = lines.join("\n");
        if !stderr.is_empty() {
            stderr.push('\n');
        }
        Output {
            code: self.code,
            stdout: self.stdout.clone(),
            stderr,
        }
    }

    /// The whole output as one reviewable text: exit code, stdout, stderr.
    pub fn snapshot(&self) -> String {
        format!(
            "exit code: {}\n----- stdout -----\n{}----- stderr -----\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// `[3/12] ADDR: ...` → `[n/N] ADDR: ...`: the counter says in which order
/// steps started, which is timing for parallel steps.
fn without_counter(line: &str) -> String {
    if let Some(rest) = line.strip_prefix('[')
        && let Some((counter, tail)) = rest.split_once("] ")
        && !counter.is_empty()
        && counter.bytes().all(|b| b.is_ascii_digit() || b == b'/')
    {
        return format!("[n/N] {tail}");
    }
    line.to_string()
}

/// Runs `cmd` to the end and collects what it printed.
/// With `WI_TEST_TIMING` set, prints each command and how long it took to
/// stderr (`--nocapture` not needed): where a slow test spends its time.
pub async fn run(cmd: &mut Command) -> std::io::Result<Output> {
    let started = std::time::Instant::now();
    let out = cmd.kill_on_drop(true).output().await.map(Output::from);
    if std::env::var_os("WI_TEST_TIMING").is_some() {
        let std = cmd.as_std();
        let args: Vec<_> = std.get_args().map(|a| a.to_string_lossy()).collect();
        report!(
            "timing {:>7.3}s {} {} [{}]",
            started.elapsed().as_secs_f64(),
            std.get_program().to_string_lossy(),
            args.join(" "),
            std::thread::current().name().unwrap_or("?")
        );
    }
    out
}

/// A command with a clean environment and a temporary HOME (no emulator).
pub fn clean_command(program: impl AsRef<OsStr>, home: &std::path::Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .current_dir(root())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Runs the real `wi` with a clean environment and a fresh temporary HOME,
/// pointed at nothing (for commands that need no cloud: validate, schema).
pub async fn wi_offline(args: &[&str]) -> Output {
    wi_offline_in(&root(), args).await
}

/// [`wi_offline`] with some variables set.
pub async fn wi_offline_env(set: &[(&str, &str)], args: &[&str]) -> Output {
    let home = tempfile::tempdir().expect("temp HOME");
    run(clean_command(wi_binary(), home.path())
        .envs(set.iter().copied())
        .args(args))
    .await
    .expect("run wi")
}

/// [`wi_offline`] in another working directory.
pub async fn wi_offline_in(cwd: &std::path::Path, args: &[&str]) -> Output {
    let home = tempfile::tempdir().expect("temp HOME");
    run(clean_command(wi_binary(), home.path())
        .current_dir(cwd)
        .args(args))
    .await
    .expect("run wi")
}

/// Snapshots the whole output of a command (exit code, stdout, stderr) with
/// the run-to-run parts filtered out (see [`filters`]).
macro_rules! assert_output_snapshot {
    ($name:expr, $output:expr) => {
        insta::with_settings!({filters => $crate::harness::command::filters()}, {
            insta::assert_snapshot!($name, $output.snapshot());
        })
    };
}

/// The `wi` binary cargo built for this test run.
pub fn wi_binary() -> &'static str {
    env!("CARGO_BIN_EXE_wi")
}

/// Filters for insta that replace what changes from run to run (temporary
/// directories, the repository path, loopback ports, etags, durations) by
/// stable placeholders. Apply with `insta::with_settings!({filters => ...})`.
pub fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"/tmp/\.tmp[A-Za-z0-9]+", "[TEMP]"),
        (r"/tmp/[A-Za-z0-9_.-]+", "[TEMP]"),
        (env!("CARGO_MANIFEST_DIR"), "[ROOT]"),
        (r"(127\.0\.0\.1|localhost):\d+", "$1:[PORT]"),
        (r#"(etag"?\s*[:=]\s*"?)[A-Za-z0-9+/=_-]{6,}"#, "$1[ETAG]"),
        (r"operation-\d+-[0-9a-f-]{36}", "operation-[ID]"),
        (r"\b\d+(\.\d+)?(ms|s|m)\b", "[DURATION]"),
        (r"(?m)^\[\d+/\d+\] ", "[n/N] "),
    ]
}

impl TestWorld {
    /// A command with a clean environment pointed at the emulator.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path().join("home"))
            .env("CLOUDSDK_CONFIG", self.dir.path().join("gcloud"))
            .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
            .env("CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK", "1")
            .env("CLOUDSDK_CORE_DISABLE_USAGE_REPORTING", "1")
            .env("NO_COLOR", "1")
            .env("WI_POLL_INTERVAL", "50ms")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(root())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Runs the real `wi` binary.
    pub async fn wi(&self, args: &[&str]) -> Output {
        run(self.command(wi_binary()).args(args))
            .await
            .expect("run wi")
    }

    /// Runs `wi` with extra variables set and some of the emulator's removed.
    pub async fn wi_env(&self, args: &[&str], set: &[(&str, &str)], unset: &[&str]) -> Output {
        let mut cmd = self.command(wi_binary());
        for k in unset {
            cmd.env_remove(k);
        }
        cmd.envs(set.iter().copied()).args(args);
        run(&mut cmd).await.expect("run wi")
    }

    /// Runs the installed gcloud CLI (fails the test if it is missing).
    pub async fn gcloud(&self, args: &[&str]) -> Output {
        run(self.command("gcloud").args(args).arg("--quiet"))
            .await
            .expect("gcloud must be installed: the end-to-end tests use the real CLI")
    }

    /// Runs the installed kubectl against a cluster's context (fails if missing).
    pub async fn kubectl(&self, cluster_context: &str, args: &[&str]) -> Output {
        run(self
            .command("kubectl")
            .arg("--context")
            .arg(cluster_context)
            .args(args))
        .await
        .expect("kubectl must be installed: the end-to-end tests use the real CLI")
    }
}

/// `wi emulator` run as its own process, for the tests that drive it with
/// other tools or kill it. Killed (SIGKILL) and reaped when dropped, however
/// the test ends.
pub struct EmulatorProcess {
    pub child: std::process::Child,
    /// What it exported in its `--env-file` (`export K='V'` lines).
    pub exports: Vec<(String, String)>,
}

impl EmulatorProcess {
    /// Sends SIGTERM and asserts a successful exit within 20 s.
    pub fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "no exit after SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert!(status.success(), "{status}");
    }

    /// Starts `wi emulator ARGS --env-file ENV_FILE` (stdin closed, stderr
    /// inherited) and waits until it has written its exports.
    pub fn spawn(
        args: &[&OsStr],
        env_file: &std::path::Path,
        stdout: std::process::Stdio,
    ) -> EmulatorProcess {
        let _ = std::fs::remove_file(env_file);
        let child = std::process::Command::new(wi_binary())
            .arg("emulator")
            .args(args)
            .arg("--env-file")
            .arg(env_file)
            .stdin(std::process::Stdio::null())
            .stdout(stdout)
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start wi emulator");
        let mut running = EmulatorProcess {
            child,
            exports: Vec::new(),
        };
        let started = std::time::Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(env_file)
                && text.contains("KUBECONFIG")
            {
                running.exports = parse_exports(&text);
                return running;
            }
            if let Ok(Some(status)) = running.child.try_wait() {
                panic!("wi emulator exited early: {status}");
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "emulator did not write its env file"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// An exported variable (empty when not exported).
    pub fn var(&self, key: &str) -> String {
        self.exports
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses the `export K='V'` lines of an env file.
pub fn parse_exports(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').replace("'\\''", "'")))
        .collect()
}
