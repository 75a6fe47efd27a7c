//! The command line (clap).

use crate::view::{MountFlag, ViewFlag};
use crate::{changes, policy_cmd, run};
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use policies::{AllowRule, InterfaceAddress, NetMode};
use std::path::PathBuf;

/// The policy `cloister run` uses without `--policy`. It stays `default` (no filesystem view)
/// until the kernel serves the view; then this becomes `untrusted`.
pub const DEFAULT_POLICY: &str = "untrusted";

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
    /// 124 if --timeout ran out, 125 if cloister failed, 126 if PROGRAM cannot be executed, 127
    /// if it is not found.
    Run(Box<RunArgs>),
    /// List, show and check policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Show which protections and capabilities this host offers a sandbox (seccomp,
    /// namespaces, Landlock, subreaper, the processes limit, TSC and CPUID faulting, vDSO), one
    /// line each.
    Doctor,
    /// List the system calls the kernel serves, and when each is redirected.
    Syscalls {
        /// Print a Markdown document (docs/syscalls.md).
        #[arg(long)]
        markdown: bool,
    },
    /// Run a virtual Ethernet switch on the unix socket PATH, which sandboxes started with
    /// `cloister run --net wire:PATH --ip ADDR/LEN` join: a private LAN between them, with no
    /// host interface. Runs until SIGINT or SIGTERM, then removes PATH. See docs/network.md.
    Hub {
        /// The socket to listen at (a stale one is replaced; a live hub's is refused).
        path: PathBuf,
    },
    /// Look at or apply the changes a run kept with `cloister run --changes DIR`.
    #[command(subcommand)]
    Changes(ChangesCommand),
    /// Removes a large discarded state directory after `cloister run` returned (started by
    /// `cloister run` itself; not for users).
    #[command(name = "__discard", hide = true)]
    Discard {
        /// The directory, renamed aside by the run.
        dir: PathBuf,
    },
}

/// `cloister changes ...`.
#[derive(Subcommand, Debug)]
pub enum ChangesCommand {
    /// Print the changes as a tree: what was created, modified and deleted, with sizes.
    Show {
        /// The directory given to `cloister run --changes`.
        dir: PathBuf,
        /// Add unified diffs of text files (against the host's files as they are now).
        #[arg(long)]
        diff: bool,
    },
    /// Apply the changes to the host's files. Refuses (exit 1, changing nothing) when a file
    /// changed on the host since the run, or a created path now exists.
    Apply {
        /// The directory given to `cloister run --changes`.
        dir: PathBuf,
        /// Print what would be done, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply even over host files that changed since the run.
        #[arg(long)]
        force: bool,
    },
}

/// Options of `cloister run`. Each flag overrides the equal key of the policy.
#[derive(clap::Args, Debug, Default)]
pub struct RunArgs {
    /// Built-in policy name or policy file.
    #[arg(long, value_name = "NAME|FILE", default_value = DEFAULT_POLICY)]
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
    /// Give the program a terminal of its own: a pseudo-terminal, its controlling terminal in a
    /// session of its own, which cloister relays to yours (raw mode while it runs, restored at
    /// the end; window size kept in step). Standard streams that are your terminal go to it,
    /// redirected ones stay as they are; fails (exit 125) when none is a terminal (policy: tty).
    /// See docs/limits.md (The terminal).
    #[arg(long)]
    pub tty: bool,
    /// Show the host tree HOST read-only at GUEST (default: the same path) (policy:
    /// filesystem.ro). Any of --ro, --rw, --overlay, --tmpfs and --hide makes a filesystem
    /// view; a view where no entry says what `/` is shows the host's root read-only. Paths
    /// are absolute or start with ~ (your home); HOST cannot contain ':'. Later entries for
    /// the same GUEST win, and flags win over the policy. See docs/filesystem.md.
    #[arg(long, value_name = "HOST[:GUEST]", help_heading = "Filesystem view")]
    pub ro: Vec<String>,
    /// Show HOST at GUEST, writable: the program changes the host's files (policy:
    /// filesystem.rw).
    #[arg(long, value_name = "HOST[:GUEST]", help_heading = "Filesystem view")]
    pub rw: Vec<String>,
    /// Show HOST at GUEST through a private layer that takes the program's writes; what changed
    /// is reported at exit (policy: filesystem.overlay).
    #[arg(long, value_name = "HOST[:GUEST]", help_heading = "Filesystem view")]
    pub overlay: Vec<String>,
    /// An empty directory at GUEST, thrown away after the run (policy: filesystem.tmpfs).
    #[arg(long, value_name = "GUEST", help_heading = "Filesystem view")]
    pub tmpfs: Vec<String>,
    /// Show GUEST as an empty, read-only directory or file (policy: filesystem.hide).
    #[arg(long, value_name = "GUEST", help_heading = "Filesystem view")]
    pub hide: Vec<String>,
    /// Start the program in the guest directory GUEST (policy: filesystem.cwd).
    #[arg(long, value_name = "GUEST", help_heading = "Filesystem view")]
    pub cwd: Option<String>,
    /// Keep the overlay's changes in DIR (new or empty), with a manifest, for `cloister
    /// changes show|apply DIR`; without it they are discarded at exit.
    #[arg(long, value_name = "DIR", help_heading = "Filesystem view")]
    pub changes: Option<PathBuf>,
    /// Do not print the line that sums up the overlay's changes at exit.
    #[arg(long, help_heading = "Filesystem view")]
    pub quiet: bool,
    /// How redirected calls reach cloister's kernel. `inproc` (default): the kernel runs in the
    /// program's process, in `cloister-rt`. `ptrace`: the supervisor traces the program and runs
    /// the kernel in its own process, out of the program's reach; slower. See
    /// docs/architecture.md (Backends).
    #[arg(long, value_enum, default_value_t = Backend::Inproc)]
    pub backend: Backend,
    /// A Docker or OCI seccomp profile (JSON) added to the floor: the calls it denies are denied
    /// to the program (and to cloister's runtime in its process). See docs/threat-model.md.
    #[arg(long, value_name = "FILE")]
    pub seccomp_profile: Option<PathBuf>,
    /// The network the program gets (policy: network.mode; the untrusted policy says none,
    /// default and reproducible say host). `none`: only the sandbox's own loopback (127.0.0.1
    /// and ::1), nothing reaches the host's network. `host`: the host's network as it is, with
    /// NO isolation. `nat`: a NAT gateway (10.0.2.2, the host's loopback; DNS at 10.0.2.3) that
    /// lets out only what --allow names. `wire:PATH`: a port on the virtual switch `cloister hub
    /// PATH` runs, with `eth0` at --ip. `tap:IFNAME`: `eth0` at --ip, its frames relayed to the
    /// existing host TAP device IFNAME (as root, or the device's owner). See docs/network.md.
    #[arg(long, value_name = "MODE", value_parser = parse_net_mode, help_heading = "Network")]
    pub net: Option<NetMode>,
    /// Set a resource limit, overriding the policy's (policy: limits.NAME): processes,
    /// memory_bytes (each process's private writable memory, RLIMIT_DATA), cpu_seconds (each
    /// process's), file_size_bytes, open_files, wall_seconds, overlay_bytes (the private
    /// layer's total, on a tmpfs instead of the host's disk). VALUE is a whole number (bytes
    /// also 512K, 64M, 4G, 1T) or `unlimited`. Repeatable. See docs/limits.md.
    #[arg(long, value_name = "NAME=VALUE", help_heading = "Limits")]
    pub limit: Vec<String>,
    /// Kill the whole sandbox after SECONDS of wall-clock time (fractions allowed) and exit
    /// 124, like timeout(1) (policy: limits.wall_seconds).
    #[arg(long, value_name = "SECONDS", value_parser = crate::limits::parse_timeout, help_heading = "Limits")]
    pub timeout: Option<std::time::Duration>,
    /// The sandbox's IPv4 address and prefix length on a wire or a host TAP device's network,
    /// such as 10.9.0.2/24 (policy: network.address); required by --net wire:PATH and --net
    /// tap:IFNAME.
    #[arg(long, value_name = "ADDR/LEN", value_parser = parse_address, help_heading = "Network")]
    pub ip: Option<InterfaceAddress>,
    /// Let a --net nat sandbox reach SPEC: HOST:PORT, CIDR:PORT, NAME:PORT (a DNS name, looked
    /// up through the gateway) or *:PORT (anywhere but the host's loopback, which is 10.0.2.2
    /// and needs an entry of its own, such as 10.0.2.2:8000). IPv6 in brackets. Repeatable;
    /// added to the policy's network.allow. Anything else is refused (RST, ICMP unreachable,
    /// NXDOMAIN) and recorded in the --trace file.
    #[arg(long, value_name = "SPEC", value_parser = parse_allow, help_heading = "Network")]
    pub allow: Vec<AllowRule>,
    /// --ro, --rw, --overlay, --tmpfs and --hide in the order they were given, which decides
    /// which of two entries for the same guest path wins. Filled in by [`main`] (clap keeps
    /// each flag's values apart); whoever builds a [`RunArgs`] by hand fills it in too.
    #[arg(skip)]
    pub view_flags: Vec<ViewFlag>,
    /// The program and its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "PROGRAM")]
    pub command: Vec<std::ffi::OsString>,
}

impl RunArgs {
    /// The view's mount flags in command-line order: [`RunArgs::view_flags`] when [`main`]
    /// filled it in, else the flags of each kind in turn (`--ro`, `--rw`, `--overlay`,
    /// `--tmpfs`, `--hide`), so that a [`RunArgs`] parsed some other way loses none of them.
    pub fn ordered_view_flags(&self) -> Vec<ViewFlag> {
        if !self.view_flags.is_empty() {
            return self.view_flags.clone();
        }
        let lists = [&self.ro, &self.rw, &self.overlay, &self.tmpfs, &self.hide];
        MountFlag::ALL
            .into_iter()
            .zip(lists)
            .flat_map(|(kind, values)| {
                values.iter().map(move |value| ViewFlag { kind, value: value.clone() })
            })
            .collect()
    }
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
    // Before any thread exists: reading the umask means setting it for a moment.
    crate::view::state::record_umask();
    let parsed = Cli::command().try_get_matches().and_then(|matches| {
        let mut cli = Cli::from_arg_matches(&matches)?;
        if let (Command::Run(args), Some(("run", run_matches))) = (&mut cli.command, matches.subcommand()) {
            args.view_flags = view_flags_in_order(run_matches);
        }
        Ok(cli)
    });
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Changes(cmd) => changes::run(&cmd),
        Command::Policy(cmd) => policy_cmd::run(&cmd),
        Command::Doctor => crate::doctor::run(),
        Command::Hub { path } => crate::net::hub::run(&path),
        Command::Discard { dir } => crate::view::state::discard_command(&dir),
        Command::Syscalls { markdown } => {
            print!("{}", crate::syscalls_cmd::render(markdown));
            0
        }
    }
}

/// `--net MODE`, read as a policy's `network.mode` is; clap prints the error (exit 125).
fn parse_net_mode(written: &str) -> Result<NetMode, String> {
    written.parse().map_err(|e: policies::NetModeError| format!("{e}; {}", e.fix()))
}

/// `--allow SPEC`, read as an entry of a policy's `network.allow` is.
fn parse_allow(written: &str) -> Result<AllowRule, String> {
    written.parse().map_err(|e: policies::AllowError| format!("{e}; {}", e.fix()))
}

/// `--ip ADDR/LEN`, read as a policy's `network.address` is.
fn parse_address(written: &str) -> Result<InterfaceAddress, String> {
    written.parse().map_err(|e: policies::AddressError| format!("{e}; {}", e.fix()))
}

/// The view's mount flags of `cloister run` in command-line order.
fn view_flags_in_order(matches: &ArgMatches) -> Vec<ViewFlag> {
    let mut flags: Vec<(usize, ViewFlag)> = Vec::new();
    for kind in MountFlag::ALL {
        let id = kind.flag().trim_start_matches('-');
        let (Some(values), Some(indices)) = (matches.get_many::<String>(id), matches.indices_of(id)) else {
            continue;
        };
        for (value, index) in values.zip(indices) {
            flags.push((index, ViewFlag { kind, value: value.clone() }));
        }
    }
    flags.sort_by_key(|&(index, _)| index);
    flags.into_iter().map(|(_, flag)| flag).collect()
}

/// Where cloister's kernel runs (`--backend`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// In the program's process: `cloister-rt` serves redirected calls from a SIGSYS handler.
    #[default]
    Inproc,
    /// In the supervisor, which traces the program (`SECCOMP_RET_TRACE`).
    Ptrace,
}
