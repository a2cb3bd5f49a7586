//! What was typed, then what it means: the global flags ([`GlobalArgs`]) and
//! one snapshot of the environment are resolved once, before any command
//! runs, into [`Settings`]. Every value is validated here with an error that
//! names the flag or variable, so commands never re-read the environment or
//! fall back silently to a default when a value is garbage. The one colour
//! decision (flag, `NO_COLOR`, terminal) is made here for stdout, stderr, the
//! logs and the error reports alike.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use crate::render::Style;
use crate::spec::SpecSource;

/// The environment, as a map: a snapshot of the process's, or the demo's
/// emulator settings handed to the engine without touching the real one.
pub(crate) type Environment = BTreeMap<String, String>;

/// A snapshot of the process environment, taken once (variables that are not
/// UTF-8 are left out rather than aborting the run).
pub(crate) fn process_environment() -> Environment {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// `--color`: when stdout and stderr get ANSI colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ColorChoice {
    /// Colour on a terminal, unless `NO_COLOR` is set.
    Auto,
    /// Always colour, even into pipes and files.
    Always,
    /// Never colour.
    Never,
}

/// Flags every command accepts, before or after the subcommand.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Global options")]
pub(crate) struct GlobalArgs {
    /// A spec file, a directory (every *.yaml, *.yml and *.toml under it), or
    /// `-` for standard input; repeat to load several as one spec set
    /// (default: $WI_SPEC, else wi.yaml, wi.yml or wi.toml in the current
    /// directory; `wi demo`: examples/quickstart.yaml).
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        global = true,
        action = clap::ArgAction::Append
    )]
    pub file: Vec<PathBuf>,
    /// When to use colours [default: auto: a terminal, unless NO_COLOR is
    /// set; CLICOLOR_FORCE=1 colours pipes too, CLICOLOR=0 nothing].
    #[arg(long, value_enum, value_name = "WHEN", global = true)]
    pub color: Option<ColorChoice>,
    /// Plain output without colour (the same as --color never; also: NO_COLOR).
    #[arg(long, global = true, conflicts_with = "color")]
    pub no_color: bool,
    /// More logs on stderr: -v wi's own calls (Google and Kubernetes: method,
    /// resource, status, time), -vv HTTP, -vvv the libraries (h2, hyper,
    /// rustls, kube). Tokens and keys are never logged.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only wi's errors in the logs on stderr (WI_LOG overrides both -v and -q).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// The most API calls in flight per Google API and project, and apply
    /// steps at once. Each API starts at 16 calls and widens while its calls
    /// succeed; a 429 narrows it and paces it to the quota.
    #[arg(long, default_value_t = 64, value_name = "N", global = true)]
    pub parallelism: usize,
    /// plan, apply, verify: make only the changes this names, and what they
    /// depend on: a resource address (`node_pool["p/l/c/pool"]`), a cluster
    /// (`project/location/name` or `name`), a cluster group (`group:NAME`)
    /// or a project; `*` matches any run of characters. Repeatable.
    #[arg(long, value_name = "PATTERN", global = true, action = clap::ArgAction::Append)]
    pub target: Vec<String>,
    /// plan, apply, verify: leave out the changes this names (as --target).
    /// Repeatable.
    #[arg(long, value_name = "PATTERN", global = true, action = clap::ArgAction::Append)]
    pub exclude: Vec<String>,
}

/// A flag or environment value that cannot be used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub(crate) enum SettingsError {
    /// Not a duration at all.
    #[error("{var}={value:?} is not a duration like 500ms: {reason}")]
    #[diagnostic(code(wi::settings::duration), help("{help}"))]
    NotADuration {
        var: &'static str,
        value: String,
        reason: String,
        help: &'static str,
    },
    /// A duration below what makes sense.
    #[error("{var}={value:?} is too short: it must be at least {min}")]
    #[diagnostic(code(wi::settings::duration), help("{help}"))]
    TooShort {
        var: &'static str,
        value: String,
        min: &'static str,
        help: &'static str,
    },
    /// `WI_LOG` is not a tracing filter.
    #[error("WI_LOG={value:?} is not a log filter: {reason}")]
    #[diagnostic(
        code(wi::settings::log_filter),
        help("use a level (error, warn, info, debug, trace) or directives like `warn,wi=debug`")
    )]
    LogFilter { value: String, reason: String },
    /// `--parallelism 0` would never start a step.
    #[error("--parallelism must be at least 1")]
    #[diagnostic(code(wi::settings::parallelism))]
    Parallelism,
    /// `-f` both before and after the subcommand: the parser keeps only one
    /// side, and a spec set missing a file would plan removals for it.
    #[error(
        "-f is given {typed} times but only {kept} would be read: some come before the subcommand and some after it"
    )]
    #[diagnostic(
        code(wi::settings::file_flags_split),
        help(
            "put every -f after the subcommand (`wi plan -f a.yaml -f b.yaml`), or every one before it"
        )
    )]
    FileFlagsSplit { typed: usize, kept: usize },
    /// `--target ""` or `--exclude ""` names nothing.
    #[error("{flag} needs a pattern, not an empty string")]
    #[diagnostic(
        code(wi::settings::empty_pattern),
        help("name a resource address, a cluster (project/location/name or name) or a project")
    )]
    EmptyPattern { flag: &'static str },
}

/// How many `-f`/`--file` flags the command line holds (`-f X`, `-fX`,
/// `--file X`, `--file=X`, `-vf X`), up to a bare `--`.
fn count_file_flags<I: IntoIterator<Item = std::ffi::OsString>>(argv: I) -> usize {
    let mut count = 0;
    let mut skip_value = false;
    for arg in argv.into_iter().skip(1) {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        let arg = arg.to_string_lossy();
        if arg == "--" {
            break;
        }
        if arg == "--file" {
            count += 1;
            skip_value = true;
        } else if arg.starts_with("--file=") {
            count += 1;
        } else if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.starts_with('-')) {
            // Flags without a value (-v, -q) may come before f in one token.
            for (i, c) in shorts.char_indices() {
                match c {
                    'v' | 'q' => continue,
                    'f' => {
                        count += 1;
                        skip_value = i + 1 == shorts.len();
                    }
                    _ => {}
                }
                break;
            }
        }
    }
    count
}

/// The tracing filter of `-q`, nothing, `-v`, `-vv` and `-vvv`.
///
/// - `-q`: wi's errors only.
/// - default: wi's warnings; dependencies say nothing (gcp_auth's WARN lines
///   about the credential sources it tried came before wi's own message,
///   which names what to do).
/// - `-v`: wi's own calls, one line each on Google and Kubernetes (method,
///   resource, status, time), and the dependencies' warnings.
/// - `-vv`: HTTP: connections and requests of reqwest, hyper and kube.
/// - `-vvv`: what the libraries log at debug (h2 frames, rustls handshakes,
///   kube's own request lines).
///
/// kube's client logs every failed request as an ERROR line of its own; wi
/// reports the error once, typed (a partial plan shows an unreachable
/// cluster as unknown), so that line is off until `-vvv`. Tokens and keys
/// are never logged: the call lines carry no headers.
fn log_filter(quiet: bool, verbose: u8) -> &'static str {
    match (quiet, verbose) {
        (true, _) => "off,wi=error",
        (false, 0) => "off,wi=warn",
        (false, 1) => "warn,wi=debug,kube_client::client::builder=off",
        (false, 2) => {
            "info,wi=trace,reqwest=debug,hyper_util=debug,kube_client=debug,kube_client::client::builder=off"
        }
        (false, _) => "debug,wi=trace",
    }
}

/// A duration-valued variable, its lower bound and what to say about it.
struct DurationVar {
    var: &'static str,
    min: Duration,
    min_text: &'static str,
    help: &'static str,
}

/// `WI_POLL_INTERVAL`: how often to poll long-running operations (default
/// 3 s growing to 15 s, right for GKE; the emulator exports a shorter one).
/// Zero would poll in a tight loop (thousands of requests a second).
const POLL_INTERVAL: DurationVar = DurationVar {
    var: "WI_POLL_INTERVAL",
    min: Duration::from_millis(10),
    min_text: "10ms",
    help: "unset WI_POLL_INTERVAL for the default (3s growing to 15s), or give a duration like 500ms",
};

/// `WI_STEP_TIMEOUT`: the deadline of one apply step (default 10 minutes).
const STEP_TIMEOUT: DurationVar = DurationVar {
    var: "WI_STEP_TIMEOUT",
    min: Duration::from_millis(1),
    min_text: "1ms",
    help: "unset WI_STEP_TIMEOUT for the default (10m), or give a duration like 90s",
};

/// The default deadline of one apply step.
const DEFAULT_STEP_DEADLINE: Duration = Duration::from_secs(600);

impl DurationVar {
    /// The value in `env`, validated; `None` when unset or empty.
    fn read(&self, env: &Environment) -> Result<Option<Duration>, SettingsError> {
        let Some(value) = env.get(self.var).filter(|v| !v.trim().is_empty()) else {
            return Ok(None);
        };
        let parsed =
            humantime::parse_duration(value.trim()).map_err(|e| SettingsError::NotADuration {
                var: self.var,
                value: value.clone(),
                reason: e.to_string(),
                help: self.help,
            })?;
        if parsed < self.min {
            return Err(SettingsError::TooShort {
                var: self.var,
                value: value.clone(),
                min: self.min_text,
                help: self.help,
            });
        }
        Ok(Some(parsed))
    }
}

/// The colour decision for each stream, made before anything can fail so
/// that even a settings error is rendered the way the user asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Styles {
    /// Plans and summaries.
    pub stdout: Style,
    /// Progress, logs and error reports.
    pub stderr: Style,
}

impl Styles {
    /// One decision: `--color`/`--no-color`, else `NO_COLOR`, else whether
    /// the stream is a terminal.
    pub(crate) fn decide(args: &GlobalArgs, env: &Environment) -> Styles {
        let choice = match (args.no_color, args.color) {
            (true, _) => ColorChoice::Never,
            (false, Some(c)) => c,
            (false, None) => ColorChoice::Auto,
        };
        let for_stream = |is_terminal: bool| match choice {
            ColorChoice::Always => Style::COLOR,
            ColorChoice::Never => Style::PLAIN,
            ColorChoice::Auto => auto_color(is_terminal, env),
        };
        Styles {
            stdout: for_stream(std::io::stdout().is_terminal()),
            stderr: for_stream(std::io::stderr().is_terminal()),
        }
    }
}

/// `--color auto`: the environment's conventions, in order. `NO_COLOR`
/// (non-empty: <https://no-color.org>) turns colour off, and wins over
/// `CLICOLOR_FORCE` (set and not `0`: <https://bixense.com/clicolors>), which
/// turns it on even into a pipe or file (CI logs that render ANSI);
/// `CLICOLOR=0` turns it off; else colour on a terminal only. The flags
/// (`--color always|never`, `--no-color`) override all of them.
fn auto_color(is_terminal: bool, env: &Environment) -> Style {
    let var = |name: &str| env.get(name).map(String::as_str).filter(|v| !v.is_empty());
    if var("NO_COLOR").is_some() {
        Style::PLAIN
    } else if var("CLICOLOR_FORCE").is_some_and(|v| v != "0") {
        Style::COLOR
    } else if var("CLICOLOR") == Some("0") {
        Style::PLAIN
    } else {
        Style::decide(is_terminal, None, false)
    }
}

/// What the engine is tuned with: resolved from an environment, so the demo
/// can resolve them again from its emulator's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EngineSettings {
    /// `WI_POLL_INTERVAL`, when set: the first poll interval of long-running
    /// operations (the longest is four times it).
    pub poll_interval: Option<Duration>,
    /// `WI_STEP_TIMEOUT`, else 10 minutes: the deadline of one apply step.
    pub step_deadline: Duration,
    /// `--parallelism`: API calls at once.
    pub parallelism: usize,
}

impl EngineSettings {
    fn resolve(env: &Environment, parallelism: usize) -> Result<Self, SettingsError> {
        if parallelism == 0 {
            return Err(SettingsError::Parallelism);
        }
        Ok(Self {
            poll_interval: POLL_INTERVAL.read(env)?,
            step_deadline: STEP_TIMEOUT.read(env)?.unwrap_or(DEFAULT_STEP_DEADLINE),
            parallelism,
        })
    }
}

/// Everything a command needs to know about how it was invoked.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The environment the engine's clients are configured from.
    pub env: Environment,
    /// Every `-f/--file`, in order, exactly as typed (`-` is standard input).
    pub file_flag: Vec<SpecSource>,
    /// The `-f/--file` sources, else `WI_SPEC` (one file or directory);
    /// `None`: discover in the current directory.
    pub spec_file: Option<Vec<SpecSource>>,
    /// Colours of stdout and stderr.
    pub styles: Styles,
    /// The tracing filter: `WI_LOG`, else from `-v`/`-q`.
    pub log_filter: String,
    /// Poll interval, step deadline, parallelism.
    pub engine: EngineSettings,
    /// What plan and apply plan with: `--target` and `--exclude` (the
    /// commands add their own flags, `--prune` and `--force-conflicts`).
    pub plan_options: crate::plan::PlanOptions,
}

impl Settings {
    /// Resolves and validates everything once.
    pub(crate) fn resolve(
        args: &GlobalArgs,
        env: Environment,
        styles: Styles,
    ) -> Result<Settings, SettingsError> {
        let log_filter = match env.get("WI_LOG").filter(|v| !v.trim().is_empty()) {
            Some(value) => {
                tracing_subscriber::EnvFilter::try_new(value).map_err(|e| {
                    SettingsError::LogFilter {
                        value: value.clone(),
                        reason: e.to_string(),
                    }
                })?;
                value.clone()
            }
            None => log_filter(args.quiet, args.verbose).to_string(),
        };
        let engine = EngineSettings::resolve(&env, args.parallelism)?;
        // clap keeps one side of a global flag given both before and after
        // the subcommand: refuse rather than load a set missing files.
        let typed = count_file_flags(std::env::args_os());
        if typed > args.file.len() {
            return Err(SettingsError::FileFlagsSplit {
                typed,
                kept: args.file.len(),
            });
        }
        for (flag, patterns) in [("--target", &args.target), ("--exclude", &args.exclude)] {
            if patterns.iter().any(|p| p.trim().is_empty()) {
                return Err(SettingsError::EmptyPattern { flag });
            }
        }
        let plan_options = crate::plan::PlanOptions {
            target: args.target.clone(),
            exclude: args.exclude.clone(),
            ..Default::default()
        };
        let file_flag: Vec<SpecSource> =
            args.file.iter().map(|p| SpecSource::from_arg(p)).collect();
        let spec_file = if file_flag.is_empty() {
            env.get("WI_SPEC")
                .filter(|v| !v.is_empty())
                .map(|v| vec![SpecSource::from_arg(std::path::Path::new(v))])
        } else {
            Some(file_flag.clone())
        };
        Ok(Settings {
            file_flag,
            spec_file,
            styles,
            log_filter,
            engine,
            plan_options,
            env,
        })
    }

    /// The same settings, with the engine pointed at another environment
    /// (the demo's in-process emulator) and its values resolved from it.
    pub(crate) fn with_environment(&self, env: Environment) -> Result<Settings, SettingsError> {
        Ok(Settings {
            engine: EngineSettings::resolve(&env, self.engine.parallelism)?,
            env,
            ..self.clone()
        })
    }

    /// Logs (tracing) on stderr, once, for every command. Tokens and keys are
    /// never logged by the engine; the filter decides how much else is.
    pub(crate) fn init_logging(&self) {
        let filter = tracing_subscriber::EnvFilter::try_new(&self.log_filter)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(self.styles.stderr.color)
            .try_init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Environment {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn auto_colour_follows_no_color_then_clicolor_force_then_the_terminal() {
        let auto = |tty: bool, pairs: &[(&str, &str)]| auto_color(tty, &env(pairs)).color;
        assert!(auto(true, &[]));
        assert!(!auto(false, &[]));
        assert!(
            auto(false, &[("CLICOLOR_FORCE", "1")]),
            "forced into a pipe"
        );
        assert!(!auto(false, &[("CLICOLOR_FORCE", "0")]));
        assert!(!auto(false, &[("CLICOLOR_FORCE", "")]));
        assert!(
            !auto(true, &[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")]),
            "NO_COLOR wins"
        );
        assert!(auto(false, &[("NO_COLOR", ""), ("CLICOLOR_FORCE", "1")]));
        assert!(!auto(true, &[("CLICOLOR", "0")]));
        assert!(auto(true, &[("CLICOLOR", "1")]));
    }

    #[test]
    fn each_verbosity_is_a_valid_filter() {
        for (quiet, verbose) in [(true, 0), (false, 0), (false, 1), (false, 2), (false, 3)] {
            tracing_subscriber::EnvFilter::try_new(log_filter(quiet, verbose))
                .unwrap_or_else(|e| panic!("-q {quiet} -v {verbose}: {e}"));
        }
    }

    /// gcp_auth's WARN lines (the credential sources it tried) came before
    /// wi's own message without credentials; they show from `-v` on.
    #[test]
    fn dependency_warnings_show_only_from_one_v() {
        use std::sync::{Arc, Mutex};
        let printed = |filter: &str| {
            let buffer = Arc::new(Mutex::new(Vec::<u8>::new()));
            let writer = buffer.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_writer(move || WriterOf(writer.clone()))
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                tracing::warn!(target: "gcp_auth::provider", "a dependency warning");
                tracing::warn!(target: "wi::live", "a wi warning");
                tracing::debug!(target: "wi::gcp::transport", "google api");
            });
            String::from_utf8(buffer.lock().unwrap().clone()).unwrap()
        };
        let default = printed(log_filter(false, 0));
        assert!(!default.contains("dependency"), "{default}");
        assert!(default.contains("a wi warning"), "{default}");
        assert!(!default.contains("google api"), "{default}");
        let one = printed(log_filter(false, 1));
        assert!(
            one.contains("dependency") && one.contains("google api"),
            "{one}"
        );
        let quiet = printed(log_filter(true, 0));
        assert!(quiet.is_empty(), "{quiet}");
    }

    struct WriterOf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for WriterOf {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn poll_interval_is_validated() {
        assert_eq!(POLL_INTERVAL.read(&env(&[])).unwrap(), None);
        assert_eq!(
            POLL_INTERVAL
                .read(&env(&[("WI_POLL_INTERVAL", "50ms")]))
                .unwrap(),
            Some(Duration::from_millis(50))
        );
        assert!(matches!(
            POLL_INTERVAL.read(&env(&[("WI_POLL_INTERVAL", "0s")])),
            Err(SettingsError::TooShort { .. })
        ));
        assert!(matches!(
            POLL_INTERVAL.read(&env(&[("WI_POLL_INTERVAL", "fast")])),
            Err(SettingsError::NotADuration { .. })
        ));
    }

    #[test]
    fn file_flags_are_counted_as_typed() {
        let n = |args: &[&str]| {
            count_file_flags(
                std::iter::once("wi")
                    .chain(args.iter().copied())
                    .map(std::ffi::OsString::from),
            )
        };
        assert_eq!(n(&["plan", "-f", "a.yaml", "-f", "-"]), 2);
        assert_eq!(
            n(&[
                "-f", "a", "plan", "--file", "b", "--file=c", "-fd", "-vf", "e"
            ]),
            5
        );
        assert_eq!(n(&["plan", "-f", "-f"]), 1, "the value of -f is not a flag");
        assert_eq!(n(&["plan", "--", "-f", "x"]), 0);
        assert_eq!(n(&["plan", "--format", "json", "-v"]), 0);
    }

    #[test]
    fn step_timeout_defaults_only_when_unset() {
        let e = EngineSettings::resolve(&env(&[]), 16).unwrap();
        assert_eq!(e.step_deadline, DEFAULT_STEP_DEADLINE);
        let e = EngineSettings::resolve(&env(&[("WI_STEP_TIMEOUT", "90s")]), 16).unwrap();
        assert_eq!(e.step_deadline, Duration::from_secs(90));
        assert!(EngineSettings::resolve(&env(&[("WI_STEP_TIMEOUT", "soon")]), 16).is_err());
        assert!(EngineSettings::resolve(&env(&[]), 0).is_err());
    }
}
