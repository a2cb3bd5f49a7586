//! Issue 13, "Install in one command": an installed binary (copied alone into
//! an empty directory) runs the demo with its built-in examples and writes
//! them out; the completion scripts and the man page come from the clap
//! definition; the Dockerfile is linted structurally (no container daemon on
//! the test machines: `docker build -t wi .` where one is).

use std::path::{Path, PathBuf};

use crate::harness::command::{clean_command, run};
use crate::harness::{Output, wi_binary};

/// Every subcommand, as README's Commands table lists them.
const SUBCOMMANDS: &[&str] = &[
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
];

/// A temporary directory holding nothing but a copy of the built `wi`, as
/// `cargo install` or a release download leaves it.
fn installed() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = dir.path().join("wi");
    // A hard link opens no file for writing; a copy (across file systems)
    // can be "busy" for a moment while another test forks (see `wi_in`).
    if std::fs::hard_link(wi_binary(), &bin).is_err() {
        std::fs::copy(wi_binary(), &bin).expect("copy wi");
    }
    (dir, bin)
}

/// Runs the installed copy in `cwd` with a clean environment and a fresh HOME.
async fn wi_in(bin: &Path, cwd: &Path, args: &[&str]) -> Output {
    let home = tempfile::tempdir().expect("temp HOME");
    let mut attempts = 0;
    loop {
        match run(clean_command(bin, home.path()).current_dir(cwd).args(args)).await {
            // A freshly written binary whose write descriptor a concurrently
            // forked child still holds (until its exec) is "text file busy".
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            result => return result.expect("run wi"),
        }
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn the_installed_binary_runs_the_demo_in_an_empty_directory() {
    let (dir, bin) = installed();
    let out = wi_in(&bin, dir.path(), &["demo", "--operation-duration", "50ms"])
        .await
        .expect(0);
    let (_, again) = out
        .stdout
        .split_once("--detailed-exitcode\n")
        .expect("the second plan");
    assert!(again.trim_start().starts_with("No changes."), "{again}");
    // The demo leaves nothing behind in the working directory.
    assert_eq!(entries(dir.path()), ["wi"]);
    insta::with_settings!({filters => crate::harness::command::filters()}, {
        insta::assert_snapshot!("install_demo_stdout", out.stdout);
    });
}

#[tokio::test]
async fn write_examples_saves_the_built_in_pair_and_keeps_existing_files() {
    let (dir, bin) = installed();
    let out = wi_in(&bin, dir.path(), &["demo", "--write-examples", "ex"])
        .await
        .expect(0);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ["quickstart.yaml", "quickstart.seed.yaml"] {
        let written = std::fs::read_to_string(dir.path().join("ex").join(name)).expect(name);
        let source = std::fs::read_to_string(root.join("examples").join(name)).expect(name);
        assert_eq!(written, source, "{name}");
    }
    // The saved spec is the one the demo plans; the saved seed starts the emulator.
    wi_in(&bin, dir.path(), &["validate", "-f", "ex/quickstart.yaml"])
        .await
        .expect(0);
    wi_in(
        &bin,
        dir.path(),
        &[
            "demo",
            "-f",
            "ex/quickstart.yaml",
            "--seed",
            "ex/quickstart.seed.yaml",
            "--operation-duration",
            "50ms",
        ],
    )
    .await
    .expect(0);
    // An edited file is never overwritten.
    std::fs::write(dir.path().join("ex/quickstart.yaml"), "# mine\n").unwrap();
    let again = wi_in(&bin, dir.path(), &["demo", "--write-examples", "ex"])
        .await
        .expect(0);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ex/quickstart.yaml")).unwrap(),
        "# mine\n"
    );
    insta::assert_snapshot!(
        "install_write_examples",
        format!("{}\n--- again\n{}", out.stdout, again.stdout)
    );
}

#[tokio::test]
async fn completions_for_every_shell_and_bash_accepts_its_script() {
    let (dir, bin) = installed();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = wi_in(&bin, dir.path(), &["completions", shell])
            .await
            .expect(0);
        for command in SUBCOMMANDS {
            assert!(out.stdout.contains(command), "{shell} lacks {command}");
        }
        assert!(out.stdout.contains("detailed-exitcode"), "{shell}");
    }
    let script = dir.path().join("wi.bash");
    let bash = wi_in(&bin, dir.path(), &["completions", "bash"])
        .await
        .expect(0);
    std::fs::write(&script, &bash.stdout).unwrap();
    let checked = tokio::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .await
        .expect("run bash -n");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    // Sourced, it registers the completion function for `wi`.
    let sourced = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(format!(". {} && complete -p wi", script.display()))
        .output()
        .await
        .expect("run bash");
    let registered = String::from_utf8_lossy(&sourced.stdout);
    assert!(registered.contains("_wi"), "{registered}");
    wi_in(&bin, dir.path(), &["completions", "tcsh"])
        .await
        .expect(1);
}

#[tokio::test]
async fn the_man_page_is_roff_and_names_every_subcommand() {
    let (dir, bin) = installed();
    let out = wi_in(&bin, dir.path(), &["man"]).await.expect(0);
    // The first macro after roff's quote-character preamble is the title.
    let first = out
        .stdout
        .lines()
        .find(|l| !l.starts_with(".ie") && !l.starts_with(".el"))
        .expect("a line");
    assert!(first.starts_with(".TH wi 1"), "{first}");
    for command in SUBCOMMANDS {
        assert!(
            out.stdout.contains(&format!("wi\\-{command}(1)")),
            "the man page lacks {command}"
        );
    }
    insta::assert_snapshot!("install_man_page", out.stdout);

    let pages = wi_in(&bin, dir.path(), &["man", "--dir", "man1"])
        .await
        .expect(0);
    assert!(pages.stdout.contains("man1"), "{}", pages.stdout);
    let mut expected: Vec<String> = SUBCOMMANDS.iter().map(|c| format!("wi-{c}.1")).collect();
    expected.push("wi.1".into());
    expected.sort();
    assert_eq!(entries(&dir.path().join("man1")), expected);
}

/// The Dockerfile, linted: a multi-stage build whose builder compiles the
/// locked dependency set in release mode, and whose runtime stage copies
/// only the binary, runs as a non-root user and has `wi` as its entrypoint.
/// The context leaves out build output and history.
#[test]
fn the_dockerfile_is_multi_stage_locked_and_non_root() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("Dockerfile")).expect("Dockerfile");
    // Instructions, with continuation lines joined and comments dropped.
    let joined = text.replace("\\\n", " ");
    let instructions: Vec<(&str, &str)> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once(' ').unwrap_or((l, "")))
        .collect();
    let stages: Vec<&str> = instructions
        .iter()
        .filter(|(i, _)| *i == "FROM")
        .map(|(_, a)| *a)
        .collect();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert!(stages[0].starts_with("rust:") && stages[0].ends_with(" AS build"));
    let runtime_index = instructions
        .iter()
        .rposition(|(i, _)| *i == "FROM")
        .unwrap();
    let (builder, runtime) = instructions.split_at(runtime_index);
    assert!(
        builder
            .iter()
            .any(|(i, a)| *i == "RUN" && a.contains("cargo build --release --locked")),
        "{builder:?}"
    );
    assert!(
        runtime
            .iter()
            .any(|(i, a)| *i == "COPY" && a.starts_with("--from=build ")),
        "{runtime:?}"
    );
    assert!(
        !runtime.iter().any(|(i, _)| *i == "RUN"),
        "the runtime stage only copies the binary"
    );
    let user = runtime
        .iter()
        .rev()
        .find(|(i, _)| *i == "USER")
        .map(|(_, a)| *a)
        .expect("USER in the runtime stage");
    assert!(
        !["root", "0", "root:root", "0:0"].contains(&user),
        "USER {user}"
    );
    assert_eq!(
        runtime.iter().find(|(i, _)| *i == "ENTRYPOINT"),
        Some(&("ENTRYPOINT", r#"["wi"]"#))
    );

    let ignore = std::fs::read_to_string(root.join(".dockerignore")).expect(".dockerignore");
    let ignored: Vec<&str> = ignore.lines().map(str::trim).collect();
    for path in ["target", ".git"] {
        assert!(ignored.contains(&path), ".dockerignore lacks {path}");
    }
    // The build needs the sources and the built-in examples in its context.
    for path in ["src", "examples", "Cargo.lock"] {
        assert!(!ignored.contains(&path), ".dockerignore drops {path}");
    }
}
