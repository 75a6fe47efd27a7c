//! `cloister run`: policy and flags → kernel configuration and filesystem view → checked
//! program → sandbox → exit status (and, with a view, the report of the program's changes).

use crate::cli::RunArgs;
use crate::failure::Failure;
use crate::net::relay::{Peer, Relay};
use crate::net::NetPlan;
use crate::spawn::{self, Launch};
use crate::view::{request, table, State, View};
use crate::{changes, floor, program, trace_sink};
use interposer::RtImage;
use kernel_host::config::{SHARED_FD, TRACE_FD};
use kernel_host::shared::Shared;
use kernel_host::Config;
use policies::Policy;
use std::ffi::{CString, OsStr};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Runs `cloister run`; returns the exit status.
pub fn run(args: &RunArgs) -> i32 {
    match run_checked(args) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("cloister: {failure}");
            failure.exit_code()
        }
    }
}

/// The kernel configuration for a run: the policy's, with each flag overriding its key. The
/// filesystem view is not in it: [`plan_view`] makes that, since it creates files.
pub fn config_for(args: &RunArgs) -> Result<Config, Failure> {
    config_from(&load_policy(args)?, args)
}

fn load_policy(args: &RunArgs) -> Result<Policy, Failure> {
    policies::load(&args.policy).map_err(|e| Failure::Setup(e.to_string()))
}

/// The filesystem view of a run (`None` when neither the policy nor a flag asks for one;
/// then no state directory is made), and the host directory the program starts in.
pub fn plan_view(
    policy: &Policy,
    args: &RunArgs,
    keep: &[&str],
) -> Result<(Option<View>, Option<PathBuf>), Failure> {
    let label = policies::label(&args.policy);
    let home = request::home_dir();
    let flags = args.ordered_view_flags();
    let mut requests =
        request::requests(&policy.filesystem, &label, &flags, home.as_deref()).map_err(Failure::Setup)?;
    request::keep_visible(&mut requests, keep);
    let cwd = request::guest_cwd(&policy.filesystem, &label, args.cwd.as_deref(), home.as_deref())
        .map_err(Failure::Setup)?;
    if requests.is_empty() {
        if let Some(dir) = &args.changes {
            return Err(Failure::Setup(format!(
                "--changes {}: this run has no filesystem view, so nothing to keep; add --overlay / \
                 (or use a policy with a filesystem section, such as --policy untrusted)",
                dir.display()
            )));
        }
        let host_cwd = cwd.map(|(guest, origin)| table::cwd_on_host(&[], &guest, &origin)).transpose()?;
        return Ok((None, host_cwd));
    }
    let state = State::create(args.changes.as_deref())?;
    let view = table::build(&requests, state, cwd)?;
    let host_cwd = view.host_cwd.clone();
    Ok((Some(view), host_cwd))
}

fn config_from(policy: &Policy, args: &RunArgs) -> Result<Config, Failure> {
    let mut config = Config::default();
    policy.apply_to(&mut config);
    if let Some(h) = &args.hostname {
        if h.is_empty() || h.len() > policies::MAX_HOSTNAME_LEN || h.bytes().any(|b| b == 0 || b == b'/') {
            return Err(Failure::Setup(format!(
                "--hostname {h:?}: a host name is 1 to {} bytes, without '/' or NUL",
                policies::MAX_HOSTNAME_LEN
            )));
        }
        config.hostname = Some(h.clone());
    }
    if let Some(t) = args.time_offset {
        if t.unsigned_abs() > policies::MAX_OFFSET_SECONDS {
            return Err(Failure::Setup(format!(
                "--time-offset {t}: more than 100 years; give a smaller offset"
            )));
        }
        config.time_offset = Some(t);
    }
    if let Some(s) = args.seed {
        config.seed = Some(s);
    }
    if args.reproducible || args.epoch.is_some() || args.fast_sleep {
        let mut r = config.reproducible.unwrap_or_default();
        if let Some(epoch) = args.epoch {
            if !(0..=policies::MAX_EPOCH_SECONDS).contains(&epoch) {
                return Err(Failure::Setup(format!(
                    "--epoch {epoch}: give seconds since 1970, from 0 to {}",
                    policies::MAX_EPOCH_SECONDS
                )));
            }
            r.epoch = epoch;
        }
        r.fast_sleep |= args.fast_sleep;
        config.reproducible = Some(r);
    }
    if config.reproducible.is_some() {
        // Reproducible mode fixes whatever the policy and flags left to the host.
        config.seed.get_or_insert(0);
        config.hostname.get_or_insert_with(|| "cloister".to_string());
    }
    Ok(config)
}

fn cstring(bytes: &[u8]) -> Result<CString, Failure> {
    CString::new(bytes).map_err(|_| Failure::Setup("an argument or variable contains a NUL byte".into()))
}

fn run_checked(args: &RunArgs) -> Result<i32, Failure> {
    let policy = load_policy(args)?;
    let mut config = config_from(&policy, args)?;
    let name = &args.command[0];
    let mut path = program::resolve(name)?;
    let here = std::env::current_dir().unwrap_or_default();
    let program_dir = std::path::absolute(&path).ok().and_then(|p| p.parent().map(|d| d.to_path_buf()));
    let keep: Vec<&str> = [program_dir.as_deref(), args.cwd.is_none().then_some(here.as_path())]
        .into_iter()
        .flatten()
        .filter_map(|p| p.to_str())
        .collect();
    let (view, host_cwd) = plan_view(&policy, args, &keep)?;
    if let Some(cwd) = &host_cwd {
        // `./prog` is relative to where the program starts, as a shell there would see it.
        if path.is_relative() {
            path = cwd.join(path);
        }
    }
    program::precheck(&path)?;
    if let Some(view) = &view {
        config.mounts = view.mounts.clone();
        config.shared_path = Some(view.state.shared().to_string_lossy().into_owned());
    }

    let rt = RtImage::locate().map_err(|e| Failure::Setup(e.to_string()))?;
    config.rt_path = rt.path.to_string_lossy().into_owned();

    let ptrace = args.backend == crate::cli::Backend::Ptrace;
    if let Some(view) = view.as_ref().filter(|_| !ptrace && !config.mounts.is_empty()) {
        // In process, every image's runtime reads the table where the launcher packed it.
        let table = kernel_host::vfs::mount::MountTable::new(&config.mounts);
        config.mount_table = Some(view.state.write_mount_table(&table)?);
        config.mounts = Vec::new();
    }
    let mut sink = None;
    let mut trace_w = None;
    if let Some(file) = &args.trace {
        let out = std::fs::File::create(file).map_err(|e| {
            Failure::Setup(format!("--trace {}: cannot create the file: {e}", file.display()))
        })?;
        let mut fds = [0; 2];
        // SAFETY: `fds` is a valid array of two descriptors for pipe2 to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(Failure::Setup(format!(
                "cannot create the trace pipe: {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        sink = Some((r, out));
        trace_w = Some(w);
        // Under ptrace the supervisor writes the records itself.
        if !ptrace {
            config.trace_fd = Some(TRACE_FD);
        }
    }

    // The ptrace backend's kernels all live in the supervisor, which shares their memory itself.
    let shared = if !ptrace && config.reproducible.is_some() && config.shared_path.is_none() {
        config.shared_fd = Some(SHARED_FD);
        Some(shared_memory()?)
    } else {
        None
    };

    let redirect = if ptrace {
        crate::ptrace::filter::program(&crate::ptrace::filter::rules(&config))
    } else {
        interposer::redirect_program(&kernel_host::redirect::rules(&config), rt.code.clone())
    };
    let mut floor = floor::programs().map_err(|e| Failure::Setup(e.to_string()))?;
    if let Some(profile) = &args.seccomp_profile {
        floor.extend(crate::seccomp_profile::load(profile)?);
    }

    let mut argv = if ptrace {
        Vec::new()
    } else {
        vec![cstring(b"cloister-rt")?, cstring(path.as_os_str().as_bytes())?]
    };
    for a in &args.command {
        argv.push(cstring(a.as_bytes())?);
    }
    let mut envp = Vec::new();
    for (k, v) in std::env::vars_os() {
        if k == OsStr::new(Config::ENV) {
            continue;
        }
        let mut kv = k.as_bytes().to_vec();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        envp.push(cstring(&kv)?);
    }
    if !ptrace {
        envp.push(cstring(format!("{}={}", Config::ENV, config.encode()).as_bytes())?);
    }
    let program = ptrace.then(|| cstring(path.as_os_str().as_bytes())).transpose()?;
    let mut tracer = ptrace.then(|| crate::ptrace::Tracer::new(config.clone(), trace_w.take()));

    let fixed_addresses = config.reproducible.is_some();
    // A view decides what /tmp is itself (and its state directory may lie in the host's /tmp).
    let fresh_tmp = fixed_addresses
        && view.is_none()
        && may_replace_tmp(&[("the program", &path), ("cloister-rt", &rt.path)]);
    if fixed_addresses && !crate::doctor::cpuid_faulting() {
        eprintln!(
            "cloister: reproducible mode on a host without CPUID faulting: RDRAND and RDSEED stay visible, and programs that use them directly are not reproducible"
        );
    }
    let prepare = |fs: &crate::landlock::FsFloor| {
        crate::landlock::prepare(fs, &crate::view::floor::options())
            .map_err(|e| Failure::Setup(format!("cannot prepare the Landlock floor: {e}")))
    };
    let (landlock_source, landlock_under_mounts) = match &view {
        Some(view) => {
            let floor = prepare(&crate::view::floor::fs_floor_under_mounts(view))?;
            if !matches!(floor.status(), crate::landlock::FloorStatus::Enforced { .. }) {
                eprintln!("cloister: the Landlock floor on this host: {}", floor.status());
            }
            (Some((crate::view::floor::fs_floor(view), crate::view::floor::options())), Some(floor))
        }
        None => (None, None),
    };
    // A view gets a mount namespace too, for what Landlock does not confine.
    let mut mounts = view.as_ref().map(crate::view::mounts::MountPlan::new).transpose()?;
    let mode = args.net.clone().unwrap_or_else(|| policy.network.mode.clone());
    // The policy's address goes with its wire; --ip goes with any mode, to be refused by one
    // that has no interface.
    let address = args.ip.or(policy.network.address.filter(|_| mode.takes_address()));
    // The policy's allow-list goes with its nat mode; --allow adds to it, and is refused by a
    // mode that lets nothing out.
    let mut allow = if mode.takes_allow_list() { policy.network.allow.clone() } else { Vec::new() };
    allow.extend(args.allow.iter().cloned());
    let mut net = NetPlan::prepare(mode, address, allow)?;
    if let (Some(resolv), Some(mounts)) =
        (net.resolv_conf(view.as_ref().map(|v| v.state.dir()))?, mounts.as_mut())
    {
        mounts.cover_file(&resolv, std::path::Path::new("/etc/resolv.conf"));
    }
    let hostname = config.hostname.clone().unwrap_or_else(host_name);
    if let (Some(hosts), Some(mounts)) =
        (net.hosts_file(view.as_ref().map(|v| v.state.dir()), &hostname)?, mounts.as_mut())
    {
        mounts.cover_file(&hosts, std::path::Path::new("/etc/hosts"));
    }
    // Before the sandbox starts, so that a missing hub costs nothing but the line that says so.
    let peer = match net.hub() {
        Some(path) => Some(Peer::hub(path)?),
        None => net.take_host_tap().map(Peer::host_tap),
    };
    let net_allow = net.allow().to_vec();
    let limits = crate::limits::plan(&policy.limits, &args.limit, args.timeout, view.is_some())?;
    let disk = private_disk(view.as_ref(), limits.overlay_bytes)?;
    // A view's sandbox gets a pid namespace of its own too (reproducible mode has one anyway),
    // where root's processes limit is `pid_max` rather than a cgroup that is slow to join.
    let pid_namespace = config.reproducible.is_some() || view.is_some();
    let pid_max = crate::limits::pid_max(limits.processes).filter(|_| pid_namespace);
    let cgroup = if pid_max.is_some() { None } else { pids_cgroup(limits.processes) };
    // Last before the start, so that no other set-up error finds the terminal taken.
    let terminal = match (args.tty, policy.tty) {
        (true, _) => Some(crate::tty::Terminal::open("--tty")?),
        (false, true) => {
            Some(crate::tty::Terminal::open(&format!("the tty key of {}", policies::label(&args.policy)))?)
        }
        (false, false) => None,
    };
    // SAFETY: isatty only asks about descriptor 0.
    let new_session = terminal.is_some() || unsafe { libc::isatty(0) } == 0;
    crate::timeout::become_subreaper();
    spawn::handle_signals(new_session);
    let started = spawn::spawn(
        Launch {
            rt,
            argv,
            envp,
            floor,
            redirect,
            trace: trace_w,
            shared,
            fixed_addresses,
            namespaces: pid_namespace,
            pid_isolation: config.reproducible.is_none(),
            pid_max,
            fresh_tmp,
            mounts,
            cwd: host_cwd.map(|dir| cstring(dir.as_os_str().as_bytes())).transpose()?,
            landlock: None,
            landlock_source,
            landlock_under_mounts,
            net,
            rlimits: limits.rlimits,
            cgroup_procs: cgroup.as_ref().map(|c| c.procs_fd()),
            new_session,
            terminal: terminal.as_ref().map(crate::tty::Terminal::child),
            signal_scope: crate::keeper::signal_scope_ruleset(),
            disk,
            container_capabilities: view.is_some(),
            program,
        },
        tracer.as_mut(),
    )?;
    let mut terminal = terminal.map(crate::tty::Terminal::start).transpose()?;
    let disk_root = started.disk;
    if view.is_some() && limits.overlay_bytes.is_some() && disk_root.is_none() {
        eprintln!("{}", crate::limits::disk::NOT_HELD);
    }
    let mut nat = None;
    let relay = match (peer, started.tap) {
        (Some(peer), Some(tap)) => Some(Relay::start(tap, peer)?),
        (None, Some(tap)) => {
            let events = sink.as_ref().and_then(|(_, out): &(_, std::fs::File)| out.try_clone().ok());
            nat = Some(crate::net::nat::Engine::start(tap, net_allow, events)?);
            None
        }
        _ => None,
    };
    let sink = sink.map(|(r, out)| trace_sink::TraceSink::start(r, out));
    let waited = match tracer.as_mut() {
        Some(tracer) => crate::ptrace::tracer::wait(tracer, started.pid, limits.wall),
        None => spawn::wait(started.pid, limits.wall),
    };
    // Its trace pipe's write end, which the trace sink reads to the end.
    drop(tracer);
    let status = match waited {
        Some(status) => status,
        None => {
            crate::timeout::end_sandbox(started.pid);
            // The user's terminal gets its modes back before the line is printed on it.
            if let Some(relay) = terminal.take() {
                relay.finish();
            }
            eprintln!("{}", crate::timeout::message(limits.wall.unwrap_or_default()));
            crate::timeout::TIMED_OUT
        }
    };
    if let Some(relay) = relay {
        relay.stop();
    }
    if let Some(nat) = nat {
        nat.stop();
    }
    // Anything the keeper could not kill (it was killed itself) is the supervisor's child now.
    crate::timeout::sweep();
    // Once nothing of the sandbox is left to write to the pty.
    if let Some(relay) = terminal.take() {
        relay.finish();
    }
    if let Some(cgroup) = cgroup {
        cgroup.remove();
    }
    if let Some(sink) = sink {
        sink.finish();
    }
    if let Some(mut view) = view {
        if let Some(root) = &disk_root {
            crate::limits::disk::hand_to_report(&mut view, root);
        }
        changes::report::finish(view, args.quiet);
    }
    Ok(status)
}

/// The private layer's tmpfs for `overlay_bytes` (a view's state directory's layout, to be
/// laid out again in it). With `--changes`, the layer is copied out of it after the run.
fn private_disk(
    view: Option<&View>,
    bytes: Option<u64>,
) -> Result<Option<crate::limits::disk::PrivateDisk>, Failure> {
    let (Some(view), Some(bytes)) = (view, bytes) else { return Ok(None) };
    crate::limits::disk::PrivateDisk::new(view.state.dir(), bytes).map(Some)
}

/// The pids cgroup that holds `processes` for root, whom `RLIMIT_NPROC` does not hold; says
/// once on stderr when there can be none.
fn pids_cgroup(processes: Option<u64>) -> Option<crate::limits::cgroup::PidsCgroup> {
    // SAFETY: getuid cannot fail and touches no memory.
    if processes.is_none() || unsafe { libc::getuid() } != 0 {
        return None;
    }
    match crate::limits::cgroup::PidsCgroup::create(processes?) {
        Ok(cgroup) => Some(cgroup),
        Err(why) => {
            eprintln!("{} ({why})", crate::limits::cgroup::NOT_HELD);
            None
        }
    }
}

/// The page the whole sandbox shares (the virtual clock), as a memfd laid out as
/// [`Shared`] expects.
fn shared_memory() -> Result<OwnedFd, Failure> {
    let fail = |what: &str| {
        Failure::Setup(format!(
            "cannot create the sandbox's shared memory: {what}: {}",
            std::io::Error::last_os_error()
        ))
    };
    // SAFETY: the name is a valid C string; the flags ask for a close-on-exec memfd.
    let fd = unsafe { libc::memfd_create(c"cloister-shared".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(fail("memfd_create"));
    }
    // SAFETY: memfd_create returned a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut page = vec![0u8; Shared::SIZE];
    page[..8].copy_from_slice(&Shared::MAGIC.to_ne_bytes());
    let file = std::fs::File::from(fd);
    std::os::unix::fs::FileExt::write_all_at(&file, &page, 0).map_err(|_| fail("write"))?;
    Ok(OwnedFd::from(file))
}

/// Whether the sandbox may get an empty `/tmp`: not when the program, the runtime or the
/// working directory lies under the host's `/tmp` (an empty one would hide them). Says so on
/// stderr when it may not.
fn may_replace_tmp(paths: &[(&str, &std::path::Path)]) -> bool {
    let cwd = std::env::current_dir().unwrap_or_default();
    let under_tmp = |p: &std::path::Path| std::path::absolute(p).is_ok_and(|p| p.starts_with("/tmp"));
    let blocker = paths
        .iter()
        .map(|&(what, p)| (what, p))
        .chain([("the working directory", cwd.as_path())])
        .find(|(_, p)| under_tmp(p));
    match blocker {
        Some((what, p)) => {
            eprintln!(
                "cloister: reproducible mode keeps the host's /tmp: {what} ({}) lies under it",
                p.display()
            );
            false
        }
        None => true,
    }
}

/// The host's name, which the sandbox's own UTS namespace starts with.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into the buffer.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return "localhost".to_string();
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}
