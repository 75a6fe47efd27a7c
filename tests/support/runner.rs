//! Running a program natively or under `cloister run`, with a timeout, and looking at what it
//! printed.
//!
//! Every run gets the same small environment in both modes ([`SYSTEM_PATH`], `HOME`, `LC_ALL=C`,
//! and any `CLOISTER_*` and `RUST_*` variables of the test process), its standard output and
//! error go to files (so a grandchild that keeps a descriptor open cannot hang the test), and
//! it runs in a process group of its own, killed whole if it outlives its timeout.
//!
//! A native run maps what a shell would report onto the same exit statuses cloister promises:
//! the program's own status, 128+N for a death by signal N, 127 when `execve` says `ENOENT` and
//! there is no such file, 126 for every other `execve` failure, with one line on stderr. So one
//! scenario can check both modes with the same assertions.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::backend;
use super::paths::{cloister_bin, temp_dir, SYSTEM_PATH};

/// How long a program may run before it is killed and its test fails (overridden by the
/// `CLOISTER_TEST_TIMEOUT` environment variable, in seconds). Generous because the machine
/// has two cores shared with other builds; a deadlock is what this is for.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

fn default_timeout() -> Duration {
    static TIMEOUT: OnceLock<Duration> = OnceLock::new();
    *TIMEOUT.get_or_init(|| {
        std::env::var("CLOISTER_TEST_TIMEOUT")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs)
    })
}

/// Where a scenario runs its programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Directly on the host, as the reference: cloister's options are ignored.
    Native,
    /// Under `cloister run [options] -- PROGRAM`.
    Cloister,
}

impl Mode {
    /// A builder for running `program` in this mode.
    pub fn command(self, program: impl AsRef<OsStr>) -> Invocation {
        Invocation {
            mode: self,
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            cloister_args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            stdin: None,
            timeout: default_timeout(),
        }
    }

    /// Whether programs run under cloister.
    pub fn is_cloister(self) -> bool {
        self == Mode::Cloister
    }

    /// The host name a program should report when run with `--hostname virtual_name`: that name
    /// under cloister, the host's real one natively.
    pub fn hostname(self, virtual_name: &str) -> String {
        match self {
            Mode::Native => super::paths::real_hostname(),
            Mode::Cloister => virtual_name.to_owned(),
        }
    }

    /// How far a program's realtime clock should be from the host's when run with
    /// `--time-offset seconds`: `seconds` under cloister, 0 natively.
    pub fn offset(self, seconds: i64) -> i64 {
        match self {
            Mode::Native => 0,
            Mode::Cloister => seconds,
        }
    }
}

/// One program to run, natively or under cloister (see [`Mode::command`]).
#[derive(Clone, Debug)]
pub struct Invocation {
    mode: Mode,
    program: OsString,
    args: Vec<OsString>,
    cloister_args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    cwd: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

impl Invocation {
    /// Appends one argument for the program.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Appends arguments for the program.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Appends an option for `cloister run` (before `--`); ignored natively.
    pub fn cloister_arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.cloister_args.push(arg.as_ref().to_owned());
        self
    }

    /// `--backend NAME` (ignored natively): which backend serves the redirected calls.
    pub fn backend(self, name: &str) -> Self {
        self.cloister_arg("--backend").cloister_arg(name)
    }

    /// `--hostname NAME` (ignored natively).
    pub fn hostname(self, name: &str) -> Self {
        self.cloister_arg("--hostname").cloister_arg(name)
    }

    /// `--time-offset SECONDS` (ignored natively).
    pub fn time_offset(self, seconds: i64) -> Self {
        self.cloister_arg("--time-offset").cloister_arg(seconds.to_string())
    }

    /// `--seed N` (ignored natively).
    pub fn seed(self, seed: u64) -> Self {
        self.cloister_arg("--seed").cloister_arg(seed.to_string())
    }

    /// `--policy NAME|FILE` (ignored natively).
    pub fn policy(self, policy: impl AsRef<OsStr>) -> Self {
        self.cloister_arg("--policy").cloister_arg(policy)
    }

    /// `--trace FILE` (ignored natively).
    pub fn trace(self, file: impl AsRef<OsStr>) -> Self {
        self.cloister_arg("--trace").cloister_arg(file)
    }

    /// Sets an environment variable for the program (and, under cloister, for cloister).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable from the program's environment.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Runs the program in `dir` (default: the test's working directory).
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// Feeds `input` on the program's standard input (default: `/dev/null`).
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// Kills the program and fails the test after `timeout` instead of the default.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The command line, shell-quoted, for messages.
    pub fn describe(&self) -> String {
        let mut words: Vec<OsString> = Vec::new();
        if self.mode == Mode::Cloister {
            words.push(cloister_bin().into_os_string());
            words.push("run".into());
            if let (false, Some(backend)) =
                (self.cloister_args.iter().any(|a| a == "--backend"), backend::chosen())
            {
                words.extend(["--backend".into(), backend]);
            }
            words.extend(self.cloister_args.iter().cloned());
            words.push("--".into());
        }
        words.push(self.program.clone());
        words.extend(self.args.iter().cloned());
        shell_words(&words)
    }

    /// Runs the program to completion and returns what it did. Panics (failing the test) if it
    /// runs longer than its timeout, or if cloister itself cannot be started.
    pub fn output(&self) -> Outcome {
        let mut cmd = match self.mode {
            Mode::Native => Command::new(&self.program),
            Mode::Cloister => {
                let mut cmd = Command::new(cloister_bin());
                cmd.arg("run");
                add_backend(&mut cmd, &self.cloister_args);
                cmd.args(&self.cloister_args).arg("--").arg(&self.program);
                cmd
            }
        };
        cmd.args(&self.args);
        apply_env(&mut cmd, &self.env);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        let native_program = (self.mode == Mode::Native).then_some(self.program.as_os_str());
        execute(
            cmd,
            self.describe(),
            self.stdin.as_deref(),
            self.timeout,
            native_program,
            self.cwd.as_deref(),
        )
    }
}

/// What a finished run did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The command line that ran (shell-quoted).
    pub command: String,
    /// How it ended. For a native program that could not be started this is a synthesized
    /// exit status of 126 or 127, like a shell's.
    pub status: ExitStatus,
    /// Its standard output (lossily decoded as UTF-8).
    pub stdout: String,
    /// Its standard error (lossily decoded as UTF-8).
    pub stderr: String,
    /// Its standard output, raw.
    pub stdout_bytes: Vec<u8>,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
}

impl Outcome {
    /// The exit status as a shell reports it: the exit code, or 128+N for a death by signal N.
    pub fn code(&self) -> i32 {
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => code,
            (None, Some(signal)) => 128 + signal,
            (None, None) => -1,
        }
    }

    /// Panics with the whole outcome unless the exit status is 0; returns `self`.
    #[track_caller]
    pub fn success(&self) -> &Self {
        self.expect_code(0)
    }

    /// Panics with the whole outcome unless the (shell-style) exit status is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code(), code, "unexpected exit status\n{self}");
        self
    }

    /// The standard output's lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// The value of the first `key=value` line of standard output; panics if there is none.
    #[track_caller]
    pub fn field(&self, key: &str) -> &str {
        self.stdout
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no `{key}=` line in the output\n{self}"))
    }

    /// Like [`Outcome::field`], parsed as an integer.
    #[track_caller]
    pub fn int_field(&self, key: &str) -> i64 {
        let value = self.field(key);
        value.parse().unwrap_or_else(|e| panic!("`{key}={value}` is not an integer ({e})\n{self}"))
    }

    /// Checks the failure contract: exit status `code`, nothing on standard output, and exactly
    /// one line on standard error, which mentions `mention` (the program or file at fault).
    #[track_caller]
    pub fn expect_failure_line(&self, code: i32, mention: &str) -> &Self {
        self.expect_code(code);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected exactly one line on stderr\n{self}");
        assert!(self.stderr.ends_with('\n'), "the stderr line is not terminated\n{self}");
        assert!(lines[0].contains(mention), "the stderr line does not name {mention:?}\n{self}");
        assert!(self.stdout.is_empty(), "unexpected stdout\n{self}");
        self
    }

    /// Converts into the standard library's [`Output`].
    pub fn into_output(self) -> Output {
        Output { status: self.status, stdout: self.stdout_bytes, stderr: self.stderr.into_bytes() }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.command)?;
        writeln!(
            f,
            "status: {} (shell: {}) after {:.3}s",
            self.status,
            self.code(),
            self.elapsed.as_secs_f64()
        )?;
        writeln!(f, "--- stdout ---\n{}", clip(&self.stdout))?;
        write!(f, "--- stderr ---\n{}", clip(&self.stderr))
    }
}

/// Keeps the first and last lines of a long text for messages.
fn clip(text: &str) -> String {
    const KEEP: usize = 4000;
    if text.len() <= 2 * KEEP {
        return text.to_owned();
    }
    let mut head = KEEP;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - KEEP;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}\n[... {} bytes ...]\n{}", &text[..head], tail - head, &text[tail..])
}

/// Adds `--backend` for the whole test run ([`backend::chosen`]) to a `cloister run` whose
/// options (`options`, up to any `--`) do not choose one.
fn add_backend<S: AsRef<OsStr>>(cmd: &mut Command, options: &[S]) {
    let chosen = options.iter().map(AsRef::as_ref).take_while(|a| *a != "--").any(|a| a == "--backend");
    if let (false, Some(backend)) = (chosen, backend::chosen()) {
        cmd.arg("--backend").arg(backend);
    }
}

/// Runs `cloister run <args>` (the caller writes the `--`) and returns its output.
pub fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(cloister_bin());
    cmd.arg("run");
    add_backend(&mut cmd, args);
    cmd.args(args);
    apply_env(&mut cmd, &[]);
    let words: Vec<OsString> = std::iter::once(cloister_bin().into_os_string())
        .chain(std::iter::once("run".into()))
        .chain(args.iter().map(OsString::from))
        .collect();
    execute(cmd, shell_words(&words), None, default_timeout(), None, None).into_output()
}

/// Runs `program args` natively, with the same environment, timeout and exit-status mapping as
/// a [`Mode::Native`] run.
pub fn run_native(program: &str, args: &[&str]) -> Output {
    Mode::Native.command(program).args(args).output().into_output()
}

/// Runs `cloister <args>` (any subcommand, e.g. `policy list`).
pub fn cloister(args: &[&str]) -> Outcome {
    let mut cmd = Command::new(cloister_bin());
    cmd.args(args);
    apply_env(&mut cmd, &[]);
    let words: Vec<OsString> =
        std::iter::once(cloister_bin().into_os_string()).chain(args.iter().map(OsString::from)).collect();
    execute(cmd, shell_words(&words), None, default_timeout(), None, None)
}

/// Seconds since the epoch on the host's clock.
pub fn now_unix() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).expect("the host clock is before 1970");
    i64::try_from(since.as_secs()).expect("the host clock is too far in the future")
}

/// Gives `cmd` the tests' environment, then the invocation's changes.
fn apply_env(cmd: &mut Command, changes: &[(OsString, Option<OsString>)]) {
    cmd.env_clear();
    cmd.env("PATH", SYSTEM_PATH)
        .env("HOME", std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
        .env("LC_ALL", "C");
    for (key, value) in std::env::vars_os() {
        let keep = key.to_str().is_some_and(|k| k.starts_with("CLOISTER_") || k.starts_with("RUST_"));
        if keep && key != "CLOISTER_BIN" && key != "CLOISTER_TEST_TIMEOUT" && key != backend::VARIABLE {
            cmd.env(key, value);
        }
    }
    for (key, value) in changes {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
}

/// Spawns `cmd` with its output going to files, waits at most `timeout`, and collects the
/// outcome. `native_program` is set for a native run: a failure to start it then becomes a
/// shell-like exit status instead of a panic.
fn execute(
    mut cmd: Command,
    command: String,
    stdin: Option<&[u8]>,
    timeout: Duration,
    native_program: Option<&OsStr>,
    cwd: Option<&Path>,
) -> Outcome {
    let dir = temp_dir("run");
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let create =
        |path: &Path| File::create(path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    cmd.stdout(create(&out_path)).stderr(create(&err_path));
    match stdin {
        Some(input) => {
            let in_path = dir.join("stdin");
            fs::write(&in_path, input).unwrap_or_else(|e| panic!("cannot write {}: {e}", in_path.display()));
            cmd.stdin(File::open(&in_path).expect("cannot reopen the stdin file"));
        }
        None => {
            cmd.stdin(Stdio::null());
        }
    }
    cmd.process_group(0);

    let started = Instant::now();
    let spawned = cmd.spawn();
    let mut child = match (spawned, native_program) {
        (Ok(child), _) => child,
        (Err(e), Some(program)) => return exec_failure(command, program, cwd, &e),
        (Err(e), None) => panic!(
            "cannot start `{command}`: {e} (build the workspace first: \
             `cargo build --workspace`, or set CLOISTER_BIN)"
        ),
    };
    let pid = i32::try_from(child.id()).expect("pid out of range");

    let mut pause = Duration::from_millis(1);
    let timed_out = loop {
        if has_exited(pid) {
            break false;
        }
        if started.elapsed() > timeout {
            break true;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(25));
    };
    // The leader is a zombie (or still running) here, so its pid, which is also the process
    // group's id, cannot have been reused: killing the group hits only its leftovers.
    kill_group(pid);
    if timed_out {
        kill_descendants(pid);
    }
    let status = child.wait().expect("cannot wait for the child");
    let elapsed = started.elapsed();
    let stdout_bytes = fs::read(&out_path).unwrap_or_default();
    let outcome = Outcome {
        command,
        status,
        stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
        stderr: String::from_utf8_lossy(&fs::read(&err_path).unwrap_or_default()).into_owned(),
        stdout_bytes,
        elapsed,
    };
    assert!(
        !timed_out,
        "timed out after {}s and was killed (a deadlock or a hang)\n{outcome}",
        timeout.as_secs()
    );
    outcome
}

/// What a shell reports when `execve` of `program` fails: 127 and "not found" when no such file
/// exists, 126 otherwise, with one line on stderr.
fn exec_failure(command: String, program: &OsStr, cwd: Option<&Path>, e: &io::Error) -> Outcome {
    let exists = resolve(program, cwd).is_some();
    let code = if e.kind() == io::ErrorKind::NotFound && !exists { 127 } else { 126 };
    Outcome {
        command,
        status: ExitStatus::from_raw(code << 8),
        stdout: String::new(),
        stderr: format!("native: {}: {e}\n", program.to_string_lossy()),
        stdout_bytes: Vec::new(),
        elapsed: Duration::ZERO,
    }
}

/// Finds `program` like a shell: as a path if it has a slash, else in [`SYSTEM_PATH`].
fn resolve(program: &OsStr, cwd: Option<&Path>) -> Option<PathBuf> {
    let path = Path::new(program);
    if program.to_string_lossy().contains('/') {
        let full = match cwd {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_owned(),
        };
        return full.exists().then_some(full);
    }
    SYSTEM_PATH.split(':').map(|dir| Path::new(dir).join(path)).find(|candidate| candidate.is_file())
}

/// Whether the process `pid` (our child) has exited, without reaping it.
fn has_exited(pid: i32) -> bool {
    let pid = libc::id_t::try_from(pid).expect("negative pid");
    // SAFETY: siginfo_t is plain old data that waitid fills in; an all-zero value is valid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a live, writable siginfo_t; WNOWAIT leaves the child reapable by
    // std's Child::wait later, and WNOHANG makes the call return at once.
    let rc =
        unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT | libc::WNOHANG) };
    // SAFETY: waitid succeeded, so si_pid is initialised (0 when the child is still running).
    rc == 0 && unsafe { info.si_pid() } != 0
}

/// Sends SIGKILL to the process group `pgid`; a group that is already gone is fine.
fn kill_group(pgid: i32) {
    // SAFETY: kill(2) has no memory effects; a negative pid names the group we created for
    // the child, whose leader is not reaped yet.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// Sends SIGKILL to every descendant of `pid` (found through /proc), for programs that moved
/// themselves out of the process group before hanging.
fn kill_descendants(pid: i32) {
    let mut parents = vec![pid];
    let mut seen = Vec::new();
    while let Some(parent) = parents.pop() {
        for child in children_of(parent) {
            if !seen.contains(&child) {
                seen.push(child);
                parents.push(child);
            }
        }
    }
    for victim in seen {
        // SAFETY: kill(2) has no memory effects; the victims were our descendants a moment ago.
        unsafe {
            libc::kill(victim, libc::SIGKILL);
        }
    }
}

/// The pids whose parent is `parent`, from /proc/<pid>/stat.
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|stat| {
                // The command name is in parentheses and may contain spaces.
                let rest = &stat[stat.rfind(')')? + 1..];
                rest.split_whitespace().nth(1)?.parse::<i32>().ok()
            }) == Some(parent)
        })
        .collect()
}

/// Joins words into a shell-quoted command line.
fn shell_words(words: &[OsString]) -> String {
    words
        .iter()
        .map(|w| {
            let w = w.to_string_lossy();
            let plain =
                !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+%@".contains(c));
            if plain {
                w.into_owned()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
