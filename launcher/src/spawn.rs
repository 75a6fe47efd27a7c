//! Starting the program: fork, set up the floor and the redirect filter in the child, and
//! exec `cloister-rt`.
//!
//! Once the redirect filter is in place, an `execve` from the launcher's own code would trap,
//! and the child has no handler yet. So the child maps the runtime's code at its fixed address
//! first and makes its final `execve` through the runtime's gate, whose `syscall` the filter
//! trusts. Between fork and exec the child only makes raw system calls (async-signal-safe);
//! a failure is reported through a close-on-exec pipe and ends the child with status 125.
//! With a filesystem view the child first lays out the sandbox's own mount namespace (the host
//! tree read-only, hidden paths covered); in reproducible mode it is also init (pid 1) of the
//! sandbox's own pid namespace, and forks the program (pid 2) just before the redirect filter:
//! see [`crate::namespaces`]. With `--net none` it makes the sandbox's network namespace too, or
//! where the host refuses one installs the network's fallback floor: see [`crate::net`]. With
//! `--net wire:PATH` it makes the wire's TAP device there and sends its descriptor to the
//! launcher over a socket made for each attempt, read once the child has exec'd.
//! Every sandbox's first process stays behind as its keeper when it forks the program, so that
//! nothing the program starts outlives it or the supervisor ([`crate::keeper`]); the program's
//! process sets the resource limits ([`crate::limits`]) just before the redirect filter. When
//! the launcher's standard input is not a terminal, the sandbox gets a session of its own
//! (`setsid`), and with it no controlling terminal; with `--tty` it gets a session of its own
//! whose controlling terminal is a pty the supervisor relays ([`crate::tty`]).

use crate::failure::Failure;
use crate::keeper::Keeper;
use crate::limits::Rlimits;
use crate::namespaces::{self, Namespaces};
use crate::net::NetPlan;
use crate::view::mounts::MountPlan;
use interposer::RtImage;
use seccompiler::BpfProgram;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use kernel_host::config::{SHARED_FD, TRACE_FD};

/// Everything the child needs, prepared before the fork (the child must not allocate).
pub struct Launch {
    /// The runtime.
    pub rt: RtImage,
    /// Its argument vector.
    pub argv: Vec<CString>,
    /// Its environment.
    pub envp: Vec<CString>,
    /// Floor programs, installed first.
    pub floor: Vec<BpfProgram>,
    /// The redirect filter, installed last.
    pub redirect: Vec<interposer::SockFilter>,
    /// The write end of the trace pipe, if tracing.
    pub trace: Option<OwnedFd>,
    /// The sandbox's shared memory, if a subsystem needs it.
    pub shared: Option<OwnedFd>,
    /// Turn address-space randomisation off (reproducible mode: stack and mmap addresses
    /// leak into programs' output, e.g. through hash seeds and temporary names).
    pub fixed_addresses: bool,
    /// Give the sandbox its own pid namespace (and a mount namespace for its fresh `/proc`),
    /// when the host allows them (reproducible mode; see [`crate::namespaces`]).
    pub namespaces: bool,
    /// In those namespaces, an empty tmpfs on `/tmp`.
    pub fresh_tmp: bool,
    /// With a filesystem view: the sandbox's mount namespace, when the host allows one (see
    /// [`crate::view::mounts`]).
    pub mounts: Option<MountPlan>,
    /// The host directory the program starts in (`--cwd`, mapped through the view); `None`
    /// keeps the launcher's.
    pub cwd: Option<CString>,
    /// The Landlock floor, prepared: the child only enforces it. With a view it is prepared
    /// from [`Launch::landlock_source`] only when the sandbox goes without its mount namespace.
    pub landlock: Option<crate::landlock::PreparedFloor>,
    /// What the view's whole floor (reads confined too) is made from, until it is made: its
    /// hundreds of rules cost a millisecond or more, which a sandbox that gets its mount
    /// namespace does not need.
    pub landlock_source: Option<(crate::landlock::FsFloor, crate::landlock::FloorOptions)>,
    /// The Landlock floor used instead when the sandbox got its own mount namespace, which
    /// hides what the view hides: writes only.
    pub landlock_under_mounts: Option<crate::landlock::PreparedFloor>,
    /// The network: a namespace of the sandbox's own, and the floor's part for it.
    pub net: NetPlan,
    /// The pid namespace (see `namespaces`) is for isolation, a view's sandbox, rather than for
    /// reproducible mode's ids.
    pub pid_isolation: bool,
    /// `pid_max` of the pid namespace: root's processes limit (see [`crate::limits::pid_max`]).
    pub pid_max: Option<u64>,
    /// The resource limits the program's process sets before it execs.
    pub rlimits: Rlimits,
    /// `cgroup.procs` of the sandbox's pids cgroup, which its first process joins (root with
    /// a `processes` limit; see [`crate::limits::cgroup`]).
    pub cgroup_procs: Option<RawFd>,
    /// Start the sandbox in a session of its own, without a controlling terminal (when the
    /// launcher's standard input is not a terminal), or with [`Launch::terminal`] as its
    /// controlling terminal.
    pub new_session: bool,
    /// `--tty`: the pty that becomes the session's controlling terminal and replaces the
    /// standard streams that were the user's terminal (see [`crate::tty`]).
    pub terminal: Option<crate::tty::ChildTerminal>,
    /// The ruleset of the program's extra Landlock layer, which keeps it from signalling its
    /// keeper (see [`crate::keeper`]).
    pub signal_scope: Option<OwnedFd>,
    /// With `overlay_bytes`: the tmpfs the private layer lives on, mounted over the state
    /// directory in the view's mount namespace (see [`crate::limits::disk`]).
    pub disk: Option<crate::limits::disk::PrivateDisk>,
    /// Bound the capabilities of root's programs to a container's (with a view: see
    /// [`crate::view::floor::drop_capabilities`]).
    pub container_capabilities: bool,
    /// The ptrace backend: the program to exec directly, instead of `cloister-rt` (`argv` and
    /// `envp` are then the program's own).
    pub program: Option<CString>,
}

/// Steps of the child's set-up, named in the error it reports.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Step {
    OpenRuntime = 1,
    MapRuntime,
    ReservedFd,
    NoNewPrivs,
    Floor,
    Redirect,
    Exec,
    Chdir,
    Landlock,
    Limits,
    Cgroup,
    /// The sandbox went without its mount namespace, and the whole Landlock floor that then
    /// applies was not made yet: the parent makes it and starts again.
    FloorPending,
    /// Mounting the private layer's tmpfs (`overlay_bytes`) or handing it to the supervisor.
    Disk,
    /// `prctl(PR_SET_TSC)` for the ptrace backend's reproducible mode.
    Tsc,
    /// Making the pty the session's controlling terminal and the program's streams (`--tty`).
    Terminal,
}

impl Step {
    fn describe(code: u8) -> &'static str {
        if let Some(step) = namespaces::Step::from_code(code) {
            return step.describe();
        }
        match code {
            1 => "cannot open the runtime",
            2 => "cannot map the runtime's code at its fixed address",
            3 => "cannot set up the runtime's reserved descriptors (1022, 1023)",
            4 => "cannot set no_new_privs",
            5 => "cannot install the seccomp floor",
            6 => "cannot install the redirect filter",
            8 => "cannot change to the working directory (--cwd)",
            9 => "cannot enforce the Landlock floor",
            10 => "cannot set the sandbox's resource limits (policy: limits, --limit)",
            11 => "cannot move the sandbox into its pids cgroup (for the processes limit)",
            12 => "the Landlock floor for a sandbox without its mount namespace is not ready",
            13 => "cannot mount the private layer's tmpfs (limits.overlay_bytes) over the state directory",
            14 => "cannot make rdtsc fault (prctl PR_SET_TSC), which reproducible mode needs under --backend ptrace",
            15 => "cannot give the sandbox its terminal (--tty, policy: tty)",
            _ => "cannot execute the runtime",
        }
    }
}

fn sock_fprog(p: &[seccompiler::sock_filter]) -> libc::sock_fprog {
    libc::sock_fprog { len: p.len() as u16, filter: p.as_ptr() as *mut libc::sock_filter }
}

/// A started sandbox.
pub struct Started {
    /// The sandbox's first process.
    pub pid: libc::pid_t,
    /// The wire's TAP device, which the sandbox's first process made (with `--net wire`).
    pub tap: Option<OwnedFd>,
    /// The root of the private layer's tmpfs (with `overlay_bytes` and a mount namespace).
    pub disk: Option<OwnedFd>,
}

/// Starts the program. With `tracer` (the ptrace backend) the sandbox's first process waits
/// until the tracer has seized it, and the tracer serves its stops until the program runs.
pub fn spawn(mut launch: Launch, mut tracer: Option<&mut crate::ptrace::Tracer>) -> Result<Started, Failure> {
    // Namespaces: a set-up step the host refuses is tried again without them.
    let net = launch.net.wants_namespace().then(|| launch.net.without_namespace_note());
    let mut ns = Namespaces::new(launch.namespaces, launch.fresh_tmp, launch.mounts.take(), net)
        .with_tap(launch.net.tap().copied());
    ns = ns.with_pids(launch.pid_isolation, launch.pid_max);
    loop {
        if !ns.view_active() && launch.landlock.is_none() {
            if let Some((fs, options)) = launch.landlock_source.take() {
                let floor = crate::landlock::prepare(&fs, &options)
                    .map_err(|e| Failure::Setup(format!("cannot prepare the Landlock floor: {e}")))?;
                launch.landlock = Some(floor);
            }
        }
        if let Some(started) = start(&launch, &mut ns, tracer.as_deref_mut())? {
            return Ok(started);
        }
    }
}

/// One attempt of [`spawn`]: `None` when it should be made again without namespaces.
fn start(
    launch: &Launch,
    ns: &mut Namespaces,
    tracer: Option<&mut crate::ptrace::Tracer>,
) -> Result<Option<Started>, Failure> {
    let setup = |what: &str, e: std::io::Error| Failure::Setup(format!("{what}: {e}"));
    let rt_path = CString::new(launch.rt.path.as_os_str().as_encoded_bytes())
        .map_err(|_| Failure::Setup("the runtime's path contains a NUL byte".into()))?;
    let exec_path = launch.program.as_ref().unwrap_or(&rt_path);
    // The ptrace backend's start line: the child reads one byte once it is traced.
    let sync = match tracer {
        Some(_) => Some(socket_pair().map_err(|e| setup("cannot create a socket pair", e))?),
        None => None,
    };
    let sync_fd = sync.as_ref().map_or(-1, |(_, theirs)| theirs.as_raw_fd());
    let mut argv: Vec<*const libc::c_char> = launch.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = launch.envp.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    let redirect: Vec<seccompiler::sock_filter> = launch
        .redirect
        .iter()
        .map(|f| seccompiler::sock_filter { code: f.code, jt: f.jt, jf: f.jf, k: f.k })
        .collect();
    let floor: Vec<libc::sock_fprog> = launch.floor.iter().map(|p| sock_fprog(p)).collect();
    // Both, since which one applies is known in the child: whether it made its namespace.
    let net_floor: [Vec<libc::sock_fprog>; 2] =
        [false, true].map(|in_ns| launch.net.programs(in_ns).iter().map(|p| sock_fprog(p)).collect());
    let redirect_prog = sock_fprog(&redirect);
    let code_start = launch.rt.code.start & !4095;
    let code_len = launch.rt.code.end - code_start;
    let code_offset = launch.rt.code_file_offset - (launch.rt.code.start - code_start);
    let gate = launch.rt.gate;
    let trace_fd = launch.trace.as_ref().map(|fd| fd.as_raw_fd());
    let shared_fd = launch.shared.as_ref().map(|fd| fd.as_raw_fd());
    let fixed_addresses = launch.fixed_addresses;
    // In a new mount namespace the working directory inherited from the launcher is the copy
    // of its mount made by `clone`, under any bind laid on top of it since: going there again
    // by name finds a writable `rw` mount where the path has one.
    let rechdir = match &launch.cwd {
        None if ns.mounts_active() => std::env::current_dir()
            .ok()
            .and_then(|dir| CString::new(dir.into_os_string().into_encoded_bytes()).ok()),
        _ => None,
    };

    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two descriptors for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(setup("cannot create a pipe", std::io::Error::last_os_error()));
    }
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    let (err_r, err_w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let parent = std::process::id() as libc::pid_t;
    let keeper = Keeper {
        pid_ns: false,
        new_session: launch.new_session || launch.terminal.is_some(),
        supervisor: parent,
        signal_scope: None,
        program_session: launch.terminal.is_some(),
    };
    let scope_fd = launch.signal_scope.as_ref().map(|fd| fd.as_raw_fd()).filter(|_| !ns.pid_active());
    // The TAP device's way to the launcher: one socket pair per attempt, so that a device an
    // attempt made before it failed is never taken for the next one's.
    let tap_channel = match launch.net.tap() {
        Some(_) => {
            let mut pair = [0; 2];
            // SAFETY: `pair` is a valid array of two descriptors for socketpair to fill.
            let r = unsafe {
                libc::socketpair(
                    libc::AF_UNIX,
                    libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                    0,
                    pair.as_mut_ptr(),
                )
            };
            if r != 0 {
                return Err(setup("cannot create a socket pair", std::io::Error::last_os_error()));
            }
            // SAFETY: socketpair returned two fresh descriptors that nothing else owns.
            let pair = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
            ns.set_tap_channel(pair.1.as_raw_fd());
            Some(pair)
        }
        None => None,
    };

    // The private layer's way to the supervisor: one socket pair per attempt, as for the TAP.
    let disk_channel = match (&launch.disk, ns.view_active()) {
        (Some(_), true) => Some(socket_pair().map_err(|e| setup("cannot create a socket pair", e))?),
        _ => None,
    };

    // The child runs only raw system calls on data prepared above, then execs or exits.
    let pid = ns.fork()?;
    if pid == 0 {
        // SAFETY: in the child of a fork: every call below is async-signal-safe and every
        // pointer refers to memory prepared before the fork.
        unsafe {
            let report = |code: u8| -> ! {
                let errno = *libc::__errno_location();
                let msg = [code, errno as u8, (errno >> 8) as u8];
                libc::write(err_w.as_raw_fd(), msg.as_ptr().cast(), 3);
                libc::_exit(125)
            };
            let fail = |step: Step| -> ! { report(step as u8) };
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if sync_fd >= 0 {
                let mut go = 0u8;
                if libc::read(sync_fd, (&mut go as *mut u8).cast(), 1) != 1 {
                    libc::_exit(125);
                }
            }
            // The supervisor's own dispositions are not the program's: an ignored SIGINT
            // would survive exec.
            for sig in SUPERVISOR_SIGNALS {
                libc::signal(sig, libc::SIG_DFL);
            }
            // The launcher may have died before PR_SET_PDEATHSIG; in a new pid namespace
            // getppid() says 0 and `enter` checks otherwise.
            if !ns.pid_active() && libc::getppid() != parent {
                libc::_exit(125);
            }
            // First, so that every process of the sandbox is counted.
            if let Some(procs) = launch.cgroup_procs {
                if !crate::limits::cgroup::join(procs) {
                    fail(Step::Cgroup);
                }
            }
            // No controlling terminal, so nothing to inject into or to read a password from
            // (with `--tty`, the program's own session takes the pty later): see docs/limits.md
            // ("The terminal"). Cannot fail: a fresh child leads no group.
            if launch.new_session || launch.terminal.is_some() {
                libc::setsid();
            }
            // --- namespaces: this process is the first of the sandbox's namespaces (init, pid
            // 1, in reproducible mode); with `--net none` it makes the network namespace.
            if ns.active() {
                if let Err(step) = ns.enter(err_r.as_raw_fd(), err_w.as_raw_fd()) {
                    report(step as u8);
                }
            }
            // After the view's mounts, before anything of the program's: its private layer.
            if let (Some(disk), Some((_, theirs))) = (&launch.disk, &disk_channel) {
                if disk.mount() != 0 || !disk.send(theirs.as_raw_fd()) {
                    fail(Step::Disk);
                }
            }
            for (fd, reserved) in [(trace_fd, TRACE_FD), (shared_fd, SHARED_FD)] {
                if let Some(fd) = fd {
                    if libc::dup2(fd, reserved) < 0 {
                        fail(Step::ReservedFd);
                    }
                }
            }
            if let Some(dir) = &launch.cwd {
                if libc::chdir(dir.as_ptr()) != 0 {
                    fail(Step::Chdir);
                }
            }
            // Best effort: where it fails, the old working directory is the same directory.
            if let Some(dir) = &rechdir {
                libc::chdir(dir.as_ptr());
            }
            let rt_fd = libc::open(rt_path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if rt_fd < 0 {
                fail(Step::OpenRuntime);
            }
            let at = libc::mmap(
                code_start as *mut libc::c_void,
                code_len as usize,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_FIXED_NOREPLACE,
                rt_fd,
                code_offset as libc::off_t,
            );
            if at as u64 != code_start {
                fail(Step::MapRuntime);
            }
            libc::close(rt_fd);
            // Before the floor, which refuses this personality to the program itself.
            if fixed_addresses && libc::personality(libc::ADDR_NO_RANDOMIZE as libc::c_ulong) < 0 {
                fail(Step::NoNewPrivs);
            }
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                fail(Step::NoNewPrivs);
            }
            if !ns.pid_active() {
                crate::keeper::open_children_list();
            }
            // After the namespaces' mounts (Landlock refuses mounts once applied) and before
            // the seccomp floor.
            let landlock = match &launch.landlock_under_mounts {
                Some(light) if ns.view_active() => Some(light),
                _ if launch.landlock.is_none() && launch.landlock_source.is_some() => {
                    fail(Step::FloorPending)
                }
                _ => launch.landlock.as_ref(),
            };
            if let Some(landlock) = landlock {
                // The pid namespace's fresh /proc is not the host's, which the rules name.
                if ns.pid_active() && landlock.allow_read_beneath(c"/proc").is_err() {
                    fail(Step::Landlock);
                }
                // The private layer's tmpfs, which the state directory's rule does not reach.
                if let (Some(disk), Some(_)) = (&launch.disk, &disk_channel) {
                    if landlock.allow_all_beneath(disk.state()).is_err() {
                        fail(Step::Landlock);
                    }
                }
                if landlock.enforce().is_err() {
                    fail(Step::Landlock);
                }
            }
            // --- network: a layer of its own, so the view's floor stays as it was.
            if !ns.net_active() {
                if let Some(landlock) = launch.net.landlock_without_namespace() {
                    if landlock.enforce().is_err() {
                        fail(Step::Landlock);
                    }
                }
            }
            launch.net.drop_capabilities();
            if launch.container_capabilities {
                crate::view::floor::drop_capabilities();
            }
            for prog in floor.iter().chain(&net_floor[usize::from(ns.net_active())]) {
                if libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    prog as *const libc::sock_fprog,
                ) != 0
                {
                    fail(Step::Floor);
                }
            }
            // --- the keeper (init, in a pid namespace) forks the program, which goes on from
            // here under the limits.
            let keeper = Keeper { pid_ns: ns.pid_active(), signal_scope: scope_fd, ..keeper };
            if let Err(step) = crate::keeper::start_program(&keeper) {
                report(step as u8);
            }
            // `--tty`: the program leads the pty's session, as a login shell leads its
            // terminal's, so its process group is orphaned (its parent, the keeper, is in
            // another session) and a Ctrl-Z cannot stop a program that has no shell to take over.
            if let Some(terminal) = &launch.terminal {
                if !terminal.take() {
                    fail(Step::Terminal);
                }
            }
            if launch.rlimits.apply().is_err() {
                fail(Step::Limits);
            }
            // The ptrace backend's reproducible mode: `rdtsc` faults, and the tracer answers it
            // from the virtual clock (cloister-rt does this itself under inproc).
            if fixed_addresses
                && launch.program.is_some()
                && libc::prctl(libc::PR_SET_TSC, libc::PR_TSC_SIGSEGV, 0, 0, 0) != 0
            {
                fail(Step::Tsc);
            }
            if libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &redirect_prog as *const libc::sock_fprog,
            ) != 0
            {
                fail(Step::Redirect);
            }
            let r = exec_through_gate(gate, exec_path.as_ptr(), argv.as_ptr(), envp.as_ptr());
            *libc::__errno_location() = -r as i32;
            fail(Step::Exec);
        }
    }
    drop(err_w);
    let mut tracer = tracer;
    if let (Some(tracer), Some((ours, _))) = (tracer.as_deref_mut(), &sync) {
        if let Err(e) = tracer.seize(pid) {
            // SAFETY: killing and reaping our own child, which waits for the byte.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            return Err(setup("cannot trace the sandbox (--backend ptrace)", e));
        }
        // SAFETY: writing one byte from a local to our own socket.
        unsafe { libc::write(ours.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
        // Until the program runs (or the set-up failed), its stops need the tracer.
        loop {
            let mut pfd = libc::pollfd { fd: err_r.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: polling one local pollfd.
            if unsafe { libc::poll(&mut pfd, 1, 2) } > 0 || tracer.pump().is_some() {
                break;
            }
        }
    }
    let tap_r = tap_channel.map(|(ours, _theirs)| ours);
    let mut msg = [0u8; 3];
    // SAFETY: reading into a 3-byte buffer from our own pipe.
    let n = unsafe { libc::read(err_r.as_raw_fd(), msg.as_mut_ptr().cast(), 3) };
    if n == 3 {
        match tracer {
            // A traced process's end is reported to its tracer before its parent (the
            // keeper, which waits for the program) can reap it: serve stops until the end.
            Some(tracer) => {
                tracer.run();
            }
            None => {
                let mut status = 0;
                // SAFETY: reaping our own child.
                unsafe { libc::waitpid(pid, &mut status, 0) };
            }
        }
        let errno = i32::from(msg[1]) | (i32::from(msg[2]) << 8);
        if msg[0] == Step::FloorPending as u8 || ns.retry_without(msg[0], errno) {
            return Ok(None);
        }
        return Err(Failure::Setup(format!(
            "{}: {}",
            Step::describe(msg[0]),
            std::io::Error::from_raw_os_error(errno)
        )));
    }
    // Sent before the exec that closed the error pipe, so already there.
    let tap = match tap_r {
        Some(channel) => match crate::fdpass::receive(channel.as_raw_fd()) {
            Some(tap) => Some(tap),
            None => {
                // SAFETY: killing and reaping our own child, which has no wire.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
                return Err(Failure::Setup("the sandbox did not hand over its TAP device eth0".into()));
            }
        },
        None => None,
    };
    let disk = disk_channel.and_then(|(ours, _theirs)| crate::fdpass::receive(ours.as_raw_fd()));
    Ok(Some(Started { pid, tap, disk }))
}

/// A connected pair of close-on-exec unix datagram sockets.
fn socket_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut pair = [0; 2];
    // SAFETY: `pair` is a valid array of two descriptors for socketpair to fill.
    let r = unsafe {
        libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, pair.as_mut_ptr())
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: socketpair returned two fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) })
}

/// `execve` made from the runtime's gate: the gate's `syscall` is trusted by the redirect
/// filter; on failure the gate returns here with the error in `rax`.
///
/// # Safety
/// The runtime's code must be mapped at its fixed address, so that `gate` points at its
/// `syscall; mov rcx, [rsp]; mov rsp, [rsp + 8]; jmp rcx` sequence.
unsafe fn exec_through_gate(
    gate: u64,
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> i64 {
    let ret: i64;
    // SAFETY: the gate returns to label 2 with the stack pointer saved in r12 (its return
    // slots are written below the current stack pointer, past the red zone); it clobbers
    // only rax, rcx and r11 like any system call.
    unsafe {
        core::arch::asm!(
            "mov r12, rsp",
            "sub rsp, 256",
            "and rsp, -16",
            "mov [rsp + 8], r12",
            "lea rcx, [rip + 2f]",
            "mov [rsp], rcx",
            "jmp r8",
            "2:",
            in("r8") gate,
            inlateout("rax") 59i64 => ret,
            in("rdi") path,
            in("rsi") argv,
            in("rdx") envp,
            out("rcx") _,
            out("r11") _,
            out("r12") _,
        );
    }
    ret
}

/// Signals the supervisor handles: termination requests it passes on, and the terminal's
/// interrupt and quit, which it ignores when they reach the program directly and passes on
/// when the program is in a session of its own.
const SUPERVISOR_SIGNALS: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGQUIT];

/// Installs the supervisor's signal handling. Called before the program starts, so that a
/// termination request that arrives meanwhile is kept and passed on, not fatal to the
/// supervisor alone. With `new_session` the terminal's interrupt and quit cannot reach the
/// program, which is in a session of its own, so the supervisor passes them on too.
pub fn handle_signals(new_session: bool) {
    // SAFETY: the handler only touches atomics and calls kill(2), which is async-signal-safe.
    unsafe {
        for sig in [libc::SIGTERM, libc::SIGHUP] {
            libc::signal(sig, forward as *const () as libc::sighandler_t);
        }
        for sig in [libc::SIGINT, libc::SIGQUIT] {
            let action = if new_session { forward as *const () as libc::sighandler_t } else { libc::SIG_IGN };
            libc::signal(sig, action);
        }
    }
}

/// Waits for the child, forwarding termination requests to it, and maps its end to an exit
/// status: its own code, or 128 + the signal that killed it. `None` when `wall` passed first;
/// the child is still running then.
pub fn wait(pid: libc::pid_t, wall: Option<std::time::Duration>) -> Option<i32> {
    watch(pid);
    let deadline = wall.map(|w| std::time::Instant::now() + w);
    loop {
        match crate::timeout::wait_until(pid, deadline) {
            Ok(Some(status)) if libc::WIFEXITED(status) => return Some(libc::WEXITSTATUS(status)),
            Ok(Some(status)) if libc::WIFSIGNALED(status) => return Some(128 + libc::WTERMSIG(status)),
            Ok(Some(_)) => continue,
            Ok(None) => return None,
            Err(_) => return Some(125),
        }
    }
}

/// Makes `pid` the process termination requests are forwarded to, and forwards one that came
/// before it started.
pub fn watch(pid: libc::pid_t) {
    CHILD.store(pid, Ordering::SeqCst);
    let early = PENDING.swap(0, Ordering::SeqCst);
    if early != 0 {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid, early) };
    }
}

/// The program's pid, once started.
static CHILD: AtomicI32 = AtomicI32::new(0);
/// A termination request that came before the program was started.
static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    } else {
        PENDING.store(sig, Ordering::SeqCst);
    }
}
