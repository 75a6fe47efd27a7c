//! The command line (clap).

use crate::{policy_cmd, run};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// cloister: run unmodified Linux programs with chosen system calls served by a library-OS
/// kernel inside their own process.
#[derive(Parser, Debug)]
#[command(name = "cloister", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run PROGRAM in a sandbox. Exit status: the program's, 128+N if signal N killed it,
    /// 125 if cloister failed, 126 if PROGRAM cannot be executed, 127 if it is not found.
    Run(RunArgs),
    /// List, show and check policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Show which protections and capabilities this host offers a sandbox (seccomp,
    /// namespaces, Landlock, TSC and CPUID faulting, vDSO), one line each.
    Doctor,
    /// List the system calls the kernel serves, and when each is redirected.
    Syscalls {
        /// Print a Markdown document (docs/syscalls.md).
        #[arg(long)]
        markdown: bool,
    },
}

/// Options of `cloister run`. Each flag overrides the equal key of the policy.
#[derive(clap::Args, Debug, Default)]
pub struct RunArgs {
    /// Built-in policy name or policy file.
    #[arg(long, value_name = "NAME|FILE", default_value = "default")]
    pub policy: String,
    /// Host name the program sees (policy: identity.hostname).
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// Seconds added to every realtime clock the program reads (policy: time.offset_seconds).
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub time_offset: Option<i64>,
    /// Seed for getrandom and AT_RANDOM: the same seed gives the same bytes (policy: random.seed).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Reproducible mode: virtual, seeded time, randomness, ids, host name and directory
    /// order, so that two runs print the same bytes (policy: reproducible).
    #[arg(long)]
    pub reproducible: bool,
    /// Reproducible mode: the virtual clock's start, in seconds since 1970 (default
    /// 946684800, 2000-01-01T00:00:00Z) (policy: time.epoch_seconds).
    #[arg(long, value_name = "SECONDS")]
    pub epoch: Option<i64>,
    /// Reproducible mode: sleeps advance the virtual clock without waiting (policy:
    /// time.fast_sleep).
    #[arg(long)]
    pub fast_sleep: bool,
    /// Write one JSON line per redirected call to FILE.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// The program and its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "PROGRAM")]
    pub command: Vec<std::ffi::OsString>,
}

/// `cloister policy ...`.
#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// List the built-in policies.
    List,
    /// Print a built-in policy (or a policy file) as JSON.
    Show {
        /// Built-in name or file.
        name: String,
    },
    /// Validate a policy file.
    Check {
        /// The file.
        file: PathBuf,
    },
}

/// Runs the command line; returns the process exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Policy(cmd) => policy_cmd::run(&cmd),
        Command::Doctor => crate::doctor::run(),
        Command::Syscalls { markdown } => {
            print!("{}", crate::syscalls_cmd::render(markdown));
            0
        }
    }
}
