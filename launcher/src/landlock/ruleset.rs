//! Building the Landlock ruleset before the fork ([`prepare`]) and enforcing it in the child
//! ([`PreparedFloor::enforce`]).
//!
//! The ruleset is built with the `landlock` crate in best-effort mode (rights the host's ABI
//! lacks are dropped, and [`FloorStatus`] names them), then kept as a bare descriptor: the
//! crate's own `restrict_self` consumes the ruleset and allocates, which a forked child of a
//! multi-threaded supervisor must not do, and a launch may fork more than once.

use super::paths::{plan, FsFloor, PlannedRule, TARGET};
use super::status::{abi, FloorStatus};
use ::landlock::{
    Access, AccessFs, AccessNet, BitFlags, NetPort, PathBeneath, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, RulesetError, Scope, ABI,
};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// The parts of the floor beyond the filesystem; all off by default.
#[derive(Clone, Debug, Default)]
pub struct FloorOptions {
    /// Refuse signals to processes outside the sandbox (`LANDLOCK_SCOPE_SIGNAL`).
    pub scope_signals: bool,
    /// Refuse connections to abstract unix sockets created outside the sandbox
    /// (`LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET`).
    pub scope_abstract_unix: bool,
    /// Confine TCP `bind` and `connect` to these ports; `None` leaves TCP alone.
    pub net: Option<NetFloor>,
}

/// The TCP ports the sandbox may use, when TCP is confined. UDP is not confined by Landlock
/// ABI 7.
#[derive(Clone, Debug, Default)]
pub struct NetFloor {
    /// Ports it may `bind` (0 allows an ephemeral port chosen by the kernel).
    pub bind_tcp: Vec<u16>,
    /// Ports it may `connect` to, on any address.
    pub connect_tcp: Vec<u16>,
}

/// Why the floor could not be prepared.
#[derive(Debug)]
pub enum PrepareError {
    /// A `read`, `write` or `hidden` path cannot be resolved, or a path cannot be opened.
    Path {
        /// The path, as the floor named it or as it was resolved.
        path: PathBuf,
        /// What the host said.
        source: std::io::Error,
    },
    /// A directory on the way to a hidden path cannot be listed, so its entries cannot be
    /// allowed one by one.
    List {
        /// The directory.
        dir: PathBuf,
        /// What the host said.
        source: std::io::Error,
    },
    /// The kernel refused the ruleset or one of its rules.
    Ruleset(RulesetError),
}

impl fmt::Display for PrepareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrepareError::Path { path, source } => {
                write!(
                    f,
                    "cannot resolve {} for the Landlock floor (check the policy's paths): {source}",
                    path.display()
                )
            }
            PrepareError::List { dir, source } => write!(
                f,
                "cannot list {}, which holds a hidden path, for the Landlock floor: {source}",
                dir.display()
            ),
            PrepareError::Ruleset(e) => write!(f, "cannot build the Landlock ruleset: {e}"),
        }
    }
}

impl std::error::Error for PrepareError {}

impl From<RulesetError> for PrepareError {
    fn from(e: RulesetError) -> Self {
        PrepareError::Ruleset(e)
    }
}

/// Why the floor could not be enforced; each carries the errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnforceError {
    /// `prctl(PR_SET_NO_NEW_PRIVS)` failed.
    NoNewPrivs(i32),
    /// `landlock_restrict_self` failed.
    RestrictSelf(i32),
    /// A rule added in the child ([`PreparedFloor::allow_read_beneath`]) was refused.
    AddRule(i32),
}

impl fmt::Display for EnforceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, errno) = match self {
            EnforceError::NoNewPrivs(errno) => ("cannot set no_new_privs", errno),
            EnforceError::RestrictSelf(errno) => ("cannot enforce the Landlock floor", errno),
            EnforceError::AddRule(errno) => ("cannot add a Landlock rule in the sandbox", errno),
        };
        write!(f, "{what}: {}", std::io::Error::from_raw_os_error(*errno))
    }
}

impl std::error::Error for EnforceError {}

/// The floor, ready to be enforced in a forked child.
#[derive(Debug)]
pub struct PreparedFloor {
    /// The ruleset (close-on-exec, like every Landlock ruleset descriptor); `None` when the
    /// host has no Landlock.
    ruleset: Option<OwnedFd>,
    status: FloorStatus,
    /// The read rights this host's ruleset handles, for rules added in the child.
    read_bits: u64,
    /// Every right this host's ruleset handles, for a tree the child mounted for the sandbox
    /// to write ([`PreparedFloor::allow_all_beneath`]).
    all_bits: u64,
}

impl PreparedFloor {
    /// What [`PreparedFloor::enforce`] will enforce on this host.
    pub fn status(&self) -> &FloorStatus {
        &self.status
    }

    /// Grants reading beneath `path`, a directory the child mounted itself after the fork (a
    /// fresh `/proc` in its own namespaces: the ruleset's rules name the host's). Raw system
    /// calls on a stack structure, no allocation: safe in a forked child, before
    /// [`PreparedFloor::enforce`]. Nothing to do when the floor confines no reading.
    pub fn allow_read_beneath(&self, path: &std::ffi::CStr) -> Result<(), EnforceError> {
        self.allow_beneath(path, self.read_bits)
    }

    /// Grants every handled right beneath `path`, a tmpfs the child mounted over the state
    /// directory (`limits.overlay_bytes`): Landlock skips mount points when it walks a path up,
    /// so the state directory's own rule does not reach into a tmpfs mounted on it. Safe in a
    /// forked child, before [`PreparedFloor::enforce`].
    pub fn allow_all_beneath(&self, path: &std::ffi::CStr) -> Result<(), EnforceError> {
        self.allow_beneath(path, self.all_bits)
    }

    fn allow_beneath(&self, path: &std::ffi::CStr, bits: u64) -> Result<(), EnforceError> {
        let Some(ruleset) = self.ruleset.as_ref().filter(|_| bits != 0) else { return Ok(()) };
        /// `struct landlock_path_beneath_attr`, packed as the kernel declares it.
        #[repr(C, packed)]
        struct PathBeneathAttr {
            allowed_access: u64,
            parent_fd: i32,
        }
        const LANDLOCK_RULE_PATH_BENEATH: libc::c_long = 1;
        // SAFETY: `path` is a valid C string; the attribute lives on this stack for the call;
        // the descriptors are ours.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(EnforceError::AddRule(errno()));
            }
            let attr = PathBeneathAttr { allowed_access: bits, parent_fd: fd };
            let r = libc::syscall(
                libc::SYS_landlock_add_rule,
                ruleset.as_raw_fd(),
                LANDLOCK_RULE_PATH_BENEATH,
                &attr as *const PathBeneathAttr,
                0,
            );
            let e = errno();
            libc::close(fd);
            if r != 0 {
                return Err(EnforceError::AddRule(e));
            }
        }
        Ok(())
    }

    /// Restricts the calling thread, and every process it starts from now on, to the floor;
    /// does nothing when the host has no Landlock ([`PreparedFloor::status`] says so).
    ///
    /// Async-signal-safe: two system calls on data prepared before, no allocation, so it may
    /// run in the forked child of a multi-threaded process. It restricts the calling thread
    /// only: call it where there is no other (after fork, before exec). It sets
    /// `no_new_privs`, which an unprivileged caller needs, and which the floor sets anyway.
    /// Landlock refuses `mount` to a restricted process: set up namespaces first.
    pub fn enforce(&self) -> Result<(), EnforceError> {
        let Some(ruleset) = &self.ruleset else { return Ok(()) };
        // SAFETY: prctl and landlock_restrict_self take integers only; the descriptor is owned
        // by `self`, which outlives the calls.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(EnforceError::NoNewPrivs(errno()));
            }
            if libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0) != 0 {
                return Err(EnforceError::RestrictSelf(errno()));
            }
        }
        Ok(())
    }
}

fn errno() -> i32 {
    // SAFETY: reading this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Resolves the floor's paths, lists the directories it carves and builds its ruleset: all
/// the work that allocates or may fail slowly, done before the fork.
pub fn prepare(fs: &FsFloor, options: &FloorOptions) -> Result<PreparedFloor, PrepareError> {
    // Planned even without Landlock, so that a bad path is the same error on every host.
    let rules = plan(fs)?;
    let status = FloorStatus::of(abi(), options);
    if let FloorStatus::Unsupported { .. } = status {
        return Ok(PreparedFloor { ruleset: None, status, read_bits: 0, all_bits: 0 });
    }
    let host_abi = match abi() {
        Ok(1) => ABI::V1,
        Ok(2) => ABI::V2,
        Ok(3) => ABI::V3,
        Ok(4) => ABI::V4,
        Ok(5) => ABI::V5,
        Ok(6) => ABI::V6,
        _ => TARGET,
    };
    let read_bits = (handled_reads(fs) & AccessFs::from_all(host_abi)).bits();
    // A floor that confines no reading leaves reads, listings and executions unchecked: Landlock
    // then does not walk the path of every file opened for reading up to the root.
    let handled = (AccessFs::from_all(TARGET) & !AccessFs::from_read(TARGET)) | handled_reads(fs);
    let all_bits = (handled & AccessFs::from_all(host_abi)).bits();
    let mut ruleset = Ruleset::default().handle_access(handled)?;
    if options.net.is_some() {
        ruleset = ruleset.handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)?;
    }
    if options.scope_signals {
        ruleset = ruleset.scope(Scope::Signal)?;
    }
    if options.scope_abstract_unix {
        ruleset = ruleset.scope(Scope::AbstractUnixSocket)?;
    }
    let mut ruleset = ruleset.create()?;
    for rule in &rules {
        ruleset = add_path(ruleset, rule, handled)?;
    }
    if let Some(net) = &options.net {
        let ports = net.bind_tcp.iter().map(|&p| (p, AccessNet::BindTcp));
        for (port, access) in ports.chain(net.connect_tcp.iter().map(|&p| (p, AccessNet::ConnectTcp))) {
            ruleset = ruleset.add_rule(NetPort::new(port, access))?;
        }
    }
    let ruleset: Option<OwnedFd> = ruleset.into();
    match ruleset {
        Some(fd) => Ok(PreparedFloor { ruleset: Some(fd), status, read_bits, all_bits }),
        None => Ok(PreparedFloor {
            ruleset: None,
            read_bits,
            all_bits,
            status: FloorStatus::Unsupported { why: "the kernel would not create a Landlock ruleset".into() },
        }),
    }
}

/// The reading rights `fs` confines: all or none.
fn handled_reads(fs: &FsFloor) -> BitFlags<AccessFs> {
    if fs.confines_reads() {
        AccessFs::from_read(TARGET)
    } else {
        BitFlags::EMPTY
    }
}

/// A layer of TCP rules alone, with no filesystem rules: stacked on whatever else confines the
/// sandbox (the view's floor, or nothing), it allows TCP `bind` and `connect` only on `net`'s
/// ports. On a host whose ABI predates TCP rules (4) it enforces nothing, and its status says
/// why.
pub fn prepare_net(net: &NetFloor) -> Result<PreparedFloor, PrepareError> {
    let unsupported = |why: String| PreparedFloor {
        ruleset: None,
        status: FloorStatus::Unsupported { why },
        read_bits: 0,
        all_bits: 0,
    };
    let abi = match abi() {
        Ok(abi) if abi >= 4 => abi,
        Ok(abi) => return Ok(unsupported(format!("TCP rules need Landlock ABI 4; this host has ABI {abi}"))),
        Err(errno) => {
            let why = match FloorStatus::of(Err(errno), &FloorOptions::default()) {
                FloorStatus::Unsupported { why } => why,
                other => other.to_string(),
            };
            return Ok(unsupported(why));
        }
    };
    let mut ruleset =
        Ruleset::default().handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)?.create()?;
    let ports = net.bind_tcp.iter().map(|&p| (p, AccessNet::BindTcp));
    for (port, access) in ports.chain(net.connect_tcp.iter().map(|&p| (p, AccessNet::ConnectTcp))) {
        ruleset = ruleset.add_rule(NetPort::new(port, access))?;
    }
    let ruleset: Option<OwnedFd> = ruleset.into();
    Ok(match ruleset {
        Some(fd) => PreparedFloor {
            ruleset: Some(fd),
            status: FloorStatus::Enforced { abi },
            read_bits: 0,
            all_bits: 0,
        },
        None => unsupported("the kernel would not create a Landlock ruleset".into()),
    })
}

/// Adds `rule`, with only the rights that apply to what the path is now.
fn add_path(
    ruleset: RulesetCreated,
    rule: &PlannedRule,
    handled: BitFlags<AccessFs>,
) -> Result<RulesetCreated, PrepareError> {
    // O_NOFOLLOW: planned paths are canonical, so a link here was put there since, and must
    // not lend its target the rule.
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&rule.path);
    let file: File = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(libc::ELOOP) => {
            return Ok(ruleset)
        }
        Err(source) => return Err(PrepareError::Path { path: rule.path.clone(), source }),
    };
    let kind = file.metadata().map_err(|source| PrepareError::Path { path: rule.path.clone(), source })?;
    let access: BitFlags<AccessFs> =
        handled & if kind.is_dir() { rule.access } else { rule.access & AccessFs::from_file(TARGET) };
    if access.is_empty() || kind.file_type().is_symlink() {
        return Ok(ruleset);
    }
    Ok(ruleset.add_rule(PathBeneath::new(file, access))?)
}

/// Why [`restrict_self`] failed.
#[derive(Debug)]
pub enum RestrictError {
    /// Preparing the floor failed.
    Prepare(PrepareError),
    /// Enforcing it failed.
    Enforce(EnforceError),
}

impl fmt::Display for RestrictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestrictError::Prepare(e) => e.fmt(f),
            RestrictError::Enforce(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RestrictError {}

/// [`prepare`] and [`PreparedFloor::enforce`] in one step, for a process that restricts
/// itself and has a single thread (other threads would stay unrestricted). After a fork use
/// the two steps, so that the child does not allocate.
pub fn restrict_self(fs: &FsFloor, options: &FloorOptions) -> Result<FloorStatus, RestrictError> {
    let floor = prepare(fs, options).map_err(RestrictError::Prepare)?;
    floor.enforce().map_err(RestrictError::Enforce)?;
    Ok(floor.status)
}
