//! The tracer loop: one `waitpid(-1, __WALL)` loop in the thread that seized the sandbox's
//! first process, following every process and thread it starts (`PTRACE_O_TRACE{FORK,VFORK,
//! CLONE}` attach them as they are made).
//!
//! - A seccomp stop is a redirected call: the process's kernel decides, and the tracer applies
//!   the disposition: `Return(v)` skips the call (`orig_rax = -1`) with `rax = v`; `Host(call)`
//!   rewrites the call's registers and lets it run, stopping again at its exit
//!   (`PTRACE_SYSCALL`) to put the program's argument registers back, as the in-process gate
//!   does, and for [`AfterHost`] work. Fork and exec are not redirected here: the host makes
//!   them, and their ptrace events give the new process its own kernel.
//! - A wait that a virtual timer cuts into rounds (reproducible mode) runs them in the tracee,
//!   one call each, from the program's call's seccomp stop to its exit stop and back
//!   (`Waiting`): the tracer serves other stops meanwhile.
//! - Signal-delivery stops resume with the signal; group-stops are left stopped with
//!   `PTRACE_LISTEN`, so `SIGSTOP`/`SIGCONT` behave as without a tracer.
//!
//! One [`Kernel`] per process (thread group), as the in-process runtime has one per image.

use super::check;
use super::host::{Deferred, TraceeHost};
use super::image::{exec_call, fill, fix_auxv};
use super::memory::TraceeMemory;
use super::sys::{self, event};
use super::trace::{namespace_id, trace_call, write_record};
use kernel_host::shared::Shared;
use kernel_host::{AfterHost, Config, Disposition, Errno, Kernel, ProcessImage, Syscall, TaskCtx, WaitSlot};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const EXECVE: u32 = syscalls::Sysno::execve.id() as u32;
const WAIT4: u32 = syscalls::Sysno::wait4.id() as u32;
const WAITID: u32 = syscalls::Sysno::waitid.id() as u32;

/// A traced process.
struct Process {
    /// Shared with a parent whose memory this process borrows (`vfork`) until it execs, as
    /// the in-process kernel is.
    kernel: Rc<Kernel>,
    pidfd: i32,
    /// Made for calls of the launcher's code before the first exec, which is the launcher's
    /// start of the program, not an exec of the program's own.
    before_start: bool,
    /// The configuration the kernel planned for the next image (its exec plan's), for the
    /// exec in progress.
    next_config: Option<Config>,
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.pidfd >= 0 {
            sys::close(self.pidfd);
        }
    }
}

/// What a thread stopped at its call's exit must have done.
struct Pending {
    /// The program's own argument registers, to put back.
    args: [u64; 6],
    after: Option<AfterHost>,
    /// A memfd of the supervisor's whose contents go into the memfd the call makes.
    fill: Option<i32>,
    /// The trace record the call's result record joins (`--trace`).
    cookie: Option<u64>,
    /// The launcher's `execve` of the program (its path): should the host refuse it after the
    /// kernel's checks passed (`ETXTBSY`), the tracee ends as cloister-rt would.
    start: Option<Vec<u8>>,
    /// The call is a round of a wait ([`Waiting`]): its result goes to the wait, and the
    /// program's call (this number, with `args`) runs again to its seccomp stop.
    round: Option<u32>,
}

/// A wait that a virtual timer cuts into rounds (`kernel_host::sys::wake`), between them.
///
/// The tracer never waits for a tracee's wait: each round is a call the tracee makes (its
/// arguments in its scratch memory), with a timeout to the next event on the virtual clock.
/// At the round's exit stop `rip` goes back onto the program's `syscall` instruction and
/// `rax` to the program's call, with its own arguments, so that the tracee traps again at
/// that call's seccomp stop, where the kernel takes the round's result and decides: another
/// round, or the end of the wait and the call's disposition, applied as any other. (The
/// filter traps that call again: it trapped it with the same number and arguments.) Every
/// signal stays blocked from the first round to the end, as in cloister-rt's handler, so
/// that none is delivered in between.
struct Waiting {
    /// The program's call that waits.
    call: Syscall,
    /// The round the tracee made.
    round: kernel_host::SuspendedWait,
    /// Its raw result, once its exit stop is seen.
    result: i64,
    /// The program's signal mask, put back when the wait ends.
    mask: u64,
    /// When the call was first served: its trace record is written once, when the wait ends.
    started: std::time::Instant,
}

/// The supervisor's side of the ptrace backend.
pub struct Tracer {
    config: Config,
    shared: &'static Shared,
    /// Processes by thread-group id.
    processes: HashMap<libc::pid_t, Process>,
    /// Threads by id, with their thread-group id.
    threads: HashMap<libc::pid_t, libc::pid_t>,
    pending: HashMap<libc::pid_t, Pending>,
    /// Threads in a wait cut into rounds.
    waits: HashMap<libc::pid_t, Waiting>,
    root: libc::pid_t,
    /// The trace pipe (`--trace`), where the supervisor writes the records cloister-rt would.
    trace: Option<std::os::fd::OwnedFd>,
    trace_seq: u32,
    /// Tasks whose creation was reported (or the first, seized one).
    known: std::collections::HashSet<libc::pid_t>,
    /// New tasks stopped before their parent's fork event: they wait for it, so that their
    /// kernel is their parent's before they make a call.
    held: std::collections::HashSet<libc::pid_t>,
    /// The first process's wait status, once [`Tracer::pump`] reaped it.
    ended: Option<i32>,
}

impl Tracer {
    /// A tracer whose kernels serve `config`.
    pub fn new(config: Config, trace: Option<std::os::fd::OwnedFd>) -> Tracer {
        Tracer {
            trace,
            trace_seq: 0,
            known: Default::default(),
            held: Default::default(),
            ended: None,
            config,
            shared: Shared::private(),
            processes: HashMap::new(),
            threads: HashMap::new(),
            pending: HashMap::new(),
            waits: HashMap::new(),
            root: 0,
        }
    }

    /// Seizes the sandbox's first process, which waits for that before it does anything.
    pub fn seize(&mut self, pid: libc::pid_t) -> std::io::Result<()> {
        self.processes.clear();
        self.threads.clear();
        self.pending.clear();
        self.waits.clear();
        self.known.clear();
        self.held.clear();
        self.ended = None;
        sys::seize(pid)?;
        self.known.insert(pid);
        self.root = pid;
        self.threads.insert(pid, pid);
        Ok(())
    }

    /// Serves every stop that is ready without waiting; returns the first process's wait
    /// status if it ended.
    pub fn pump(&mut self) -> Option<i32> {
        while let Ok(Some((tid, status))) = sys::wait_any(false) {
            if let Some(status) = self.on_stop(tid, status) {
                // Reaped here: `run` must still report it (a short program can end while the
                // launcher is still pumping its start).
                self.ended = Some(status);
            }
            // (Or reaped while it made a call for its kernel, `remote`.)
            if self.ended.is_some() {
                return self.ended;
            }
        }
        None
    }

    /// Serves stops until the first process ends; returns its exit status (128 + N for a
    /// signal).
    pub fn run(&mut self) -> Option<i32> {
        loop {
            let status = match self.ended.take() {
                Some(status) => Some(status),
                None => match sys::wait_any(true) {
                    Ok(Some((tid, status))) => self.on_stop(tid, status),
                    Ok(None) => None,
                    Err(_) => Some(125 << 8),
                },
            };
            if let Some(status) = status {
                return Some(if libc::WIFSIGNALED(status) {
                    128 + libc::WTERMSIG(status)
                } else {
                    libc::WEXITSTATUS(status)
                });
            }
        }
    }

    /// Handles one report of `waitpid`; the first process's status when it ended.
    fn on_stop(&mut self, tid: libc::pid_t, status: i32) -> Option<i32> {
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            self.pending.remove(&tid);
            self.waits.remove(&tid);
            self.known.remove(&tid);
            self.held.remove(&tid);
            self.release_orphans();
            if let Some(tgid) = self.threads.remove(&tid) {
                if tgid == tid {
                    self.processes.remove(&tgid);
                }
            }
            return (tid == self.root).then_some(status);
        }
        if !libc::WIFSTOPPED(status) {
            return None;
        }
        let sig = libc::WSTOPSIG(status);
        let ev = status >> 16;
        let tgid = self.tgid_of(tid);
        let resumed = match (sig, ev) {
            (libc::SIGTRAP, event::SECCOMP) => self.on_seccomp(tid, tgid),
            (s, 0) if s == libc::SIGTRAP | 0x80 => self.on_call_exit(tid),
            (libc::SIGTRAP, e @ (event::FORK | event::VFORK | event::CLONE)) => {
                // The parent is still in its call: `clone`'s flags are in its registers.
                let shares_memory = e == event::VFORK
                    || (e == event::CLONE
                        && sys::regs(tid).is_ok_and(|r| r.rdi & libc::CLONE_VM as u64 != 0));
                if let Ok(child) = sys::event_msg(tid) {
                    self.on_new_task(tgid, child as libc::pid_t, shares_memory);
                }
                sys::resume(tid, 0, false)
            }
            (libc::SIGTRAP, event::EXEC) => {
                self.on_exec(tid, tgid);
                sys::resume(tgid, 0, false)
            }
            // The first stop of an auto-attached task (held until its parent's event says whose
            // it is), or an interrupt.
            (libc::SIGTRAP, event::STOP) if !self.known.contains(&tid) => {
                self.held.insert(tid);
                Ok(())
            }
            (libc::SIGTRAP, event::STOP) => sys::resume(tid, 0, false),
            // A group-stop: stay stopped until SIGCONT, as without a tracer.
            (_, event::STOP) => sys::listen(tid),
            (libc::SIGSEGV, 0) if self.answer_tsc(tid, tgid) => sys::resume(tid, 0, false),
            (s, _) => sys::resume(tid, s, false),
        };
        // A tracee killed meanwhile (ESRCH) reports its end later.
        let _ = resumed;
        None
    }

    /// Answers an `rdtsc`/`rdtscp` that faulted (`PR_TSC_SIGSEGV`, reproducible mode) with the
    /// virtual counter, as cloister-rt's SIGSEGV handler does; false for any other fault.
    fn answer_tsc(&self, tid: libc::pid_t, tgid: libc::pid_t) -> bool {
        use kernel_host::GuestMemory;
        const SI_KERNEL: i32 = 0x80;
        let Some(tsc) = self.processes.get(&tgid).and_then(|p| p.kernel.virtual_tsc()) else { return false };
        if sys::signal_code(tid) != Some(SI_KERNEL) {
            return false;
        }
        let Ok(mut regs) = sys::regs(tid) else { return false };
        let mem = TraceeMemory { tid };
        let mut op = [0u8; 3];
        if mem.read(regs.rip, &mut op[..2]).is_err() {
            return false;
        }
        if op[..2] == [0x0f, 0x01] && mem.read(regs.rip + 2, &mut op[2..]).is_err() {
            return false;
        }
        let len = match op {
            [0x0f, 0x31, _] => 2,
            [0x0f, 0x01, 0xf9] => {
                // IA32_TSC_AUX, the CPU number: 0.
                regs.rcx = 0;
                3
            }
            _ => return false,
        };
        regs.rax = tsc & 0xffff_ffff;
        regs.rdx = tsc >> 32;
        regs.rip += len;
        sys::set_regs(tid, &regs).is_ok()
    }

    fn tgid_of(&mut self, tid: libc::pid_t) -> libc::pid_t {
        if let Some(&t) = self.threads.get(&tid) {
            return t;
        }
        let tgid = std::fs::read_to_string(format!("/proc/{tid}/status"))
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Tgid:").and_then(|v| v.trim().parse().ok())))
            .unwrap_or(tid);
        self.threads.insert(tid, tgid);
        tgid
    }

    /// A new thread shares its process's kernel, and so does a process that borrows its
    /// parent's memory (`vfork`); a new process gets its parent's, forked.
    fn on_new_task(&mut self, parent_tgid: libc::pid_t, child: libc::pid_t, shares_memory: bool) {
        self.register(parent_tgid, child, shares_memory);
        self.known.insert(child);
        if self.held.remove(&child) {
            let _ = sys::resume(child, 0, false);
        }
    }

    /// Lets held tasks go whose parent is gone before its event said whose they are (it was
    /// killed mid-fork): they get a kernel of their own at their first call.
    fn release_orphans(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let orphans: Vec<libc::pid_t> = self
            .held
            .iter()
            .copied()
            .filter(|&t| {
                namespace_id(t, "PPid:").is_none_or(|p| !self.threads.contains_key(&(p as libc::pid_t)))
            })
            .collect();
        for t in orphans {
            self.held.remove(&t);
            self.known.insert(t);
            let _ = sys::resume(t, 0, false);
        }
    }

    fn register(&mut self, parent_tgid: libc::pid_t, child: libc::pid_t, shares_memory: bool) {
        let tgid = self.tgid_of(child);
        if tgid != child || self.processes.contains_key(&child) {
            return;
        }
        if let Some(parent) = self.processes.get(&parent_tgid) {
            let kernel = if shares_memory {
                Rc::clone(&parent.kernel)
            } else {
                Rc::new(parent.kernel.forked(Some(self.shared), child as u32))
            };
            let pidfd = sys::pidfd_open(child).unwrap_or(-1);
            self.processes.insert(child, Process { kernel, pidfd, before_start: false, next_config: None });
        }
    }

    /// A new image: a kernel of its own, configured as the old one would have configured the
    /// runtime that loads it. The other threads of the process are gone.
    fn on_exec(&mut self, tid: libc::pid_t, tgid: libc::pid_t) {
        let former = sys::event_msg(tid).map_or(tid, |t| t as libc::pid_t);
        self.threads.retain(|&t, &mut g| g != tgid || t == tgid);
        self.pending.retain(|&t, _| self.threads.contains_key(&t));
        self.waits.retain(|&t, _| self.threads.contains_key(&t));
        // The leader's wait was the old image's (its mask too), whichever thread exec'd.
        self.waits.remove(&tgid);
        self.threads.insert(tgid, tgid);
        let config = match self.processes.get_mut(&tgid) {
            Some(p) if p.before_start => self.config.clone(),
            Some(p) => p.next_config.take().unwrap_or_else(|| p.kernel.config_after_exec(former as u32)),
            None => self.config.clone(),
        };
        // The exec's own exit stop comes in the new image: nothing of the old call to restore.
        self.pending.remove(&tgid);
        self.pending.remove(&former);
        self.processes.remove(&tgid);
        let process = self.process(tgid, config);
        let _ = fix_auxv(tgid, &process.kernel);
        self.processes.insert(tgid, process);
    }

    fn process(&self, tgid: libc::pid_t, config: Config) -> Process {
        // An empty image: the host loaded this one, and `/proc/self` describes it already.
        let kernel = Rc::new(Kernel::new(config, ProcessImage::default(), Some(self.shared)));
        Process { kernel, pidfd: sys::pidfd_open(tgid).unwrap_or(-1), before_start: false, next_config: None }
    }

    fn on_seccomp(&mut self, tid: libc::pid_t, tgid: libc::pid_t) -> std::io::Result<()> {
        let mut regs = sys::regs(tid)?;
        if [WAIT4, WAITID].contains(&(regs.orig_rax as u32)) {
            self.take_reports();
        }
        if !self.processes.contains_key(&tgid) {
            let mut p = self.process(tgid, self.config.clone());
            p.before_start = true;
            self.processes.insert(tgid, p);
        }
        let process = &self.processes[&tgid];
        let args = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9];
        let call = Syscall { nr: regs.orig_rax as u32, args };
        let mem = TraceeMemory { tid };
        let host = TraceeHost::new(tgid, tid, process.pidfd);
        let waiting = match self.waits.remove(&tid) {
            Some(w) if w.call == call => Some(w),
            Some(w) => {
                // Not the call that waits (nothing should run between rounds): the wait is
                // dropped, and this call served as any other.
                sys::set_sigmask(tid, w.mask)?;
                None
            }
            None => None,
        };
        let mask = waiting.as_ref().map_or_else(|| sys::sigmask(tid), |w| w.mask);
        let slot = WaitSlot::default();
        let mut task = TaskCtx::new(&mem, &host, mask, regs.rsp);
        task.rounds = Some(&slot);
        let started = waiting.as_ref().map_or_else(std::time::Instant::now, |w| w.started);
        let disposition = match &waiting {
            Some(w) => process.kernel.resume(&mut task, call, w.round, w.result),
            None => process.kernel.handle(&mut task, call),
        };
        if let Some(status) = host.lost() {
            // The tracee ended while it made a call for the kernel: its report was taken there.
            if let Some(status) = self.on_stop(tid, status) {
                self.ended = Some(status);
            }
            return Ok(());
        }
        if let Some(round) = slot.suspended.take() {
            // The next round of a wait: the tracee makes it, and the tracer serves others.
            if waiting.is_none() {
                sys::set_sigmask(tid, !0)?;
            }
            regs.orig_rax = u64::from(round.call.nr);
            [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9] = round.call.args;
            sys::set_regs(tid, &regs)?;
            self.waits.insert(tid, Waiting { call, round, result: 0, mask, started });
            let pending =
                Pending { args, after: None, fill: None, cookie: None, start: None, round: Some(call.nr) };
            self.pending.insert(tid, pending);
            return sys::resume(tid, 0, true);
        }
        if waiting.is_some() {
            sys::set_sigmask(tid, mask)?;
        }
        let cookie = self.trace.as_ref().map(|pipe| {
            let ns = started.elapsed().as_nanos() as u64;
            self.trace_seq = self.trace_seq.wrapping_add(1);
            let cookie = (u64::from(tid as u32) << 32) | u64::from(self.trace_seq);
            trace_call(pipe, &TraceeMemory { tid }, (tgid, tid), cookie, &call, &disposition, ns);
            cookie
        });
        let process = &self.processes[&tgid];
        match disposition {
            Disposition::Return(v) if host.handover(v).is_some() => {
                // The kernel's memfd is the supervisor's: the tracee makes its own instead,
                // and the supervisor fills it at the call's exit.
                let (fd, flags) = host.handover(v).unwrap_or_default();
                let name = task.push_scratch(b"cloister-proc\0");
                regs.orig_rax = syscalls::Sysno::memfd_create.id() as u64;
                regs.rdi = name.unwrap_or(0);
                regs.rsi = flags;
                sys::set_regs(tid, &regs)?;
                self.pending.insert(
                    tid,
                    Pending { args, after: None, fill: Some(fd), cookie, start: None, round: None },
                );
                sys::resume(tid, 0, true)
            }
            Disposition::Return(v) if v >= 0 && host.deferred().is_some() => {
                // The kernel changed directory "here": the tracee does it instead, and gets
                // that call's result.
                let (nr, arg) = match host.deferred() {
                    Some(Deferred::Chdir(path)) => {
                        let path = [path.as_slice(), b"\0"].concat();
                        (syscalls::Sysno::chdir, task.push_scratch(&path).unwrap_or(0))
                    }
                    Some(Deferred::Fchdir(fd)) => (syscalls::Sysno::fchdir, fd),
                    None => unreachable!("checked by the guard"),
                };
                regs.orig_rax = nr.id() as u64;
                regs.rdi = arg;
                sys::set_regs(tid, &regs)?;
                self.pending
                    .insert(tid, Pending { args, after: None, fill: None, cookie, start: None, round: None });
                sys::resume(tid, 0, true)
            }
            Disposition::Return(v) if v < 0 && process.before_start && call.nr == EXECVE => {
                // The launcher's start of the program: cloister-rt would have been exec'd and
                // refused it with one line, not handed the errno to the launcher.
                let program = task.read_cstring(args[0], 4096).unwrap_or_default();
                let refusal = check::start_failure(&process.kernel, &host, &program, Errno(-v as i32));
                refuse(tid, process.pidfd, &mut regs, &refusal)
            }
            Disposition::Return(v) => {
                if let Some(fd) = host.memfd() {
                    sys::close(fd);
                }
                regs.orig_rax = u64::MAX;
                regs.rax = v as u64;
                sys::set_regs(tid, &regs)?;
                sys::resume(tid, 0, false)
            }
            Disposition::Host(host_call) => {
                let changed = host_call != call;
                if changed {
                    regs.orig_rax = u64::from(host_call.nr);
                    [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9] = host_call.args;
                    sys::set_regs(tid, &regs)?;
                }
                let until_exit = changed || task.after.is_some() || cookie.is_some();
                if until_exit {
                    self.pending.insert(
                        tid,
                        Pending { args, after: task.after, fill: None, cookie, start: None, round: None },
                    );
                }
                sys::resume(tid, 0, until_exit)
            }
            Disposition::Exec(plan) => {
                // The kernel checked the target: the host runs the file the view shows (which
                // may be in an upper layer the sandbox's mount namespace does not merge), with
                // the program's own argument and environment arrays.
                let arrays = if call.nr == syscalls::Sysno::execveat.id() as u32 {
                    [args[2], args[3]]
                } else {
                    [args[1], args[2]]
                };
                let program = plan.argv.get(1).cloned().unwrap_or_default();
                if let Err(refusal) = check::image(&process.kernel, &host, &program) {
                    return refuse(tid, process.pidfd, &mut regs, &refusal);
                }
                let exec = exec_call(&process.kernel, &mut task, &host, &plan, arrays);
                let (file, argv) = match exec {
                    Ok(v) => v,
                    Err(e) => {
                        regs.orig_rax = u64::MAX;
                        regs.rax = e.ret() as u64;
                        sys::set_regs(tid, &regs)?;
                        return sys::resume(tid, 0, false);
                    }
                };
                let prefix = format!("{}=", Config::ENV);
                let next = plan
                    .envp
                    .iter()
                    .find_map(|e| e.strip_prefix(prefix.as_bytes()))
                    .and_then(|c| std::str::from_utf8(c).ok())
                    .and_then(|c| Config::decode(c).ok());
                if let Some(p) = self.processes.get_mut(&tgid) {
                    p.next_config = next;
                }
                regs.orig_rax = syscalls::Sysno::execve.id() as u64;
                [regs.rdi, regs.rsi, regs.rdx] = [file, argv, arrays[1]];
                sys::set_regs(tid, &regs)?;
                let start = self.processes.get(&tgid).filter(|p| p.before_start).map(|_| program);
                self.pending
                    .insert(tid, Pending { args, after: None, fill: None, cookie, start, round: None });
                sys::resume(tid, 0, true)
            }
            // Not redirected by this backend's filter: the host makes it as asked.
            Disposition::Fork(_) => sys::resume(tid, 0, false),
        }
    }

    /// Handles the reports already waiting, before a wait for a child is served. A traced
    /// child's end reaches its parent only once the tracer has reaped its report: the kernel's
    /// look for a ready child (`WNOHANG | WNOWAIT`, which orders a timer's signal before the
    /// child's end) must see what the host's wait will see right after, as in-process.
    fn take_reports(&mut self) {
        while let Ok(Some((tid, status))) = sys::wait_any(false) {
            if let Some(status) = self.on_stop(tid, status) {
                self.ended = Some(status);
            }
        }
    }

    fn on_call_exit(&mut self, tid: libc::pid_t) -> std::io::Result<()> {
        if let Some(p) = self.pending.remove(&tid) {
            let mut regs = sys::regs(tid)?;
            [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9] = p.args;
            if let (Some(nr), Some(w)) = (p.round, self.waits.get_mut(&tid)) {
                // A round of a wait ended: the program's call runs again, to its seccomp stop,
                // where the wait goes on. `rax` is its number, not a restart code, so the host
                // does not restart anything on the way out; no signal is delivered, all being
                // blocked.
                w.result = regs.rax as i64;
                regs.rax = u64::from(nr);
                regs.rip -= 2;
                sys::set_regs(tid, &regs)?;
                return sys::resume(tid, 0, false);
            }
            if let Some(AfterHost::AdvanceClockOnTimeout { timed_out, deadline, time_left }) = p.after {
                let tgid = self.tgid_of(tid);
                let counter = self.processes.get(&tgid).and_then(|p| p.kernel.virtual_clock_counter());
                if let (true, Some(counter)) = (regs.rax as i64 == timed_out, counter) {
                    counter.fetch_max(deadline, Ordering::SeqCst);
                }
                if let (Some(left), Some(counter)) = (time_left, counter) {
                    use kernel_host::GuestMemory;
                    let bytes = left.bytes(deadline, counter.load(Ordering::SeqCst));
                    // Not writable: left as it is, as Linux leaves it.
                    let _ = TraceeMemory { tid }.write(left.addr, &bytes);
                }
            }
            if let (Some(cookie), Some(pipe)) = (p.cookie, &self.trace) {
                write_record(pipe, &kernel_host::trace::record::encode_result(cookie, regs.rax as i64));
            }
            if let Some(fd) = p.fill {
                if (regs.rax as i64) >= 0 {
                    fill(tid, regs.rax as i32, fd);
                }
                sys::close(fd);
            }
            if let (Some(program), true) = (p.start, (regs.rax as i64) < 0) {
                // A failed execve returns to the launcher's code: run its `syscall` again as
                // `exit_group(126)`, after the line cloister-rt would print.
                let why = Errno(-(regs.rax as i64) as i32).name().unwrap_or("error");
                let line = format!("{}: cannot execute: {why}", String::from_utf8_lossy(&program));
                let tgid = self.tgid_of(tid);
                let pidfd = self.processes.get(&tgid).map_or(-1, |p| p.pidfd);
                regs.rip -= 2;
                return refuse(tid, pidfd, &mut regs, &check::Refusal { status: 126, line });
            }
            sys::set_regs(tid, &regs)?;
        }
        sys::resume(tid, 0, false)
    }
}

/// Ends the tracee stopped at its `execve` as cloister-rt ends an image it will not load: its
/// line on the tracee's standard error, then `exit_group(status)` in place of the call.
fn refuse(
    tid: libc::pid_t,
    pidfd: i32,
    regs: &mut libc::user_regs_struct,
    refusal: &check::Refusal,
) -> std::io::Result<()> {
    // The tracee's own stderr (the same open file, so its offset moves as its writes would).
    if let Ok(fd) = sys::dup_fd(pidfd, 2) {
        let line = format!("cloister: {}\n", refusal.line);
        // SAFETY: writing a local buffer to the supervisor's copy of the descriptor.
        unsafe { libc::write(fd, line.as_ptr().cast(), line.len()) };
        sys::close(fd);
    }
    // At a seccomp stop the call becomes `exit_group`; at a call's exit, with `rip` moved back
    // onto its `syscall` instruction, the instruction runs again as `exit_group`.
    regs.orig_rax = syscalls::Sysno::exit_group.id() as u64;
    regs.rax = regs.orig_rax;
    regs.rdi = refusal.status as u64;
    sys::set_regs(tid, regs)?;
    sys::resume(tid, 0, false)
}

/// [`crate::spawn::wait`] for a traced sandbox: serves its stops until its first process ends,
/// forwarding termination requests; `None` when `wall` passed first (the sandbox is killed).
pub fn wait(tracer: &mut Tracer, pid: libc::pid_t, wall: Option<std::time::Duration>) -> Option<i32> {
    crate::spawn::watch(pid);
    let timed_out = Arc::new(AtomicBool::new(false));
    if let Some(wall) = wall {
        let flag = Arc::clone(&timed_out);
        // The tracer thread blocks in waitpid; a killed sandbox ends that wait.
        std::thread::spawn(move || {
            std::thread::sleep(wall);
            // Not once the run is over: the pid may be reaped and reused by then.
            if !flag.swap(true, Ordering::SeqCst) {
                // SAFETY: signalling our own child, the sandbox's first process, not yet reaped.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
    }
    let status = tracer.run();
    // Whether the deadline came first: then the status is the kill's.
    let late = timed_out.swap(true, Ordering::SeqCst);
    if late {
        None
    } else {
        status
    }
}
