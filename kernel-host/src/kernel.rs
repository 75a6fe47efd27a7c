//! The kernel: one instance per process image, shared by all of its threads.

use crate::config::Config;
use crate::dirs::Dirs;
use crate::identity::Identity;
use crate::process::{Process, ProcessImage};
use crate::random::Random;
use crate::shared::Shared;
use crate::signals::Signals;
use crate::syscall::{Disposition, Syscall};
use crate::table;
use crate::task::TaskCtx;
use crate::time::Clock;
use crate::timer::{Slot, Timers};
use crate::vfs::Vfs;

/// Which side of a fork [`Kernel::after_fork`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForkSide {
    /// The parent.
    Parent,
    /// The child: `parent_tid` forked, and is now `tid`.
    Child {
        /// The forking thread's id in the parent.
        parent_tid: u32,
        /// Its id in the child.
        tid: u32,
    },
}

/// The library-OS kernel. Every method takes `&self`: state that changes lives behind atomics
/// or [`crate::sync::SpinLock`]s, so that every thread of the program can be in a call at once.
pub struct Kernel {
    pub(crate) config: Config,
    pub(crate) identity: Identity,
    pub(crate) clock: Clock,
    pub(crate) timers: Timers,
    pub(crate) random: Random,
    pub(crate) process: Process,
    pub(crate) signals: Signals,
    pub(crate) dirs: Dirs,
    pub(crate) vfs: Option<Vfs>,
    /// The programs this process exec'd lately and what their lookups found.
    pub(crate) exec_memo: crate::sync::SpinLock<crate::sys::exec_memo::ExecMemo>,
}

/// The words a clock read served outside the kernel uses: the clock steps as
/// [`crate::time::VirtualClock::tick`] steps it (`clock`, then this process's `seen`), and reads
/// `epoch_ns` plus the elapsed time for the realtime clocks, [`crate::time::MONOTONIC_BASE_NS`]
/// plus it for the monotonic ones. Only while `timers_next` holds [`crate::timer::NEVER`] and
/// `timer_fds` is false: otherwise a read is a checkpoint, and the kernel serves it. (A read of
/// the time stamp counter is no checkpoint: `clock` and `seen` serve it whatever the timers.)
pub struct ClockWords<'a> {
    /// The sandbox's shared clock, nanoseconds elapsed.
    pub clock: &'a core::sync::atomic::AtomicU64,
    /// This process's last sight of it.
    pub seen: &'a core::sync::atomic::AtomicU64,
    /// The earliest expiry of the process's armed timers.
    pub timers_next: &'a core::sync::atomic::AtomicU64,
    /// Whether the process holds a timer descriptor.
    pub timer_fds: &'a core::sync::atomic::AtomicBool,
    /// What the realtime clocks read at the start, nanoseconds since 1970.
    pub epoch_ns: u64,
}

impl Kernel {
    /// A kernel serving `image` under `config`. `shared` is the memory the whole sandbox
    /// shares; without it (a sandbox of one process, or a unit test) the kernel keeps its own.
    pub fn new(config: Config, image: ProcessImage, shared: Option<&'static Shared>) -> Self {
        let shared = shared.unwrap_or_else(Shared::private);
        let vfs = Vfs::new(crate::vfs::mount::MountTable::new(&config.mounts), shared);
        Self::with_view(config, image, Some(shared), vfs)
    }

    /// [`Kernel::new`] with the view built already: the runtime built it to find the program.
    /// The view must use `shared` (or, without it, be the kernel's only user of
    /// [`Shared::private`] memory: pass `Some` of the view's then).
    pub fn with_view(
        config: Config,
        image: ProcessImage,
        shared: Option<&'static Shared>,
        vfs: Option<Vfs>,
    ) -> Self {
        let shared = shared.unwrap_or_else(Shared::private);
        let timers = Timers::new(&shared.timer_fds);
        for (which, &(expiry, interval)) in config.itimers.iter().enumerate() {
            if expiry != 0 {
                // Three timers in an empty table: it cannot be full.
                let _ = crate::sys::timer::inherit_interval(&timers, which as u32, Slot { expiry, interval });
            }
        }
        Kernel {
            identity: Identity::new(&config),
            clock: Clock::new(&config, shared),
            timers,
            random: Random::new(&config),
            process: Process::new(image),
            signals: Signals::new(),
            dirs: Dirs::default(),
            vfs: vfs.map(|v| v.with_shared_path(config.shared_path.as_deref())),
            exec_memo: crate::sync::SpinLock::default(),
            config,
        }
    }

    /// Decides what to do with one caught call. Calls the table does not serve are run on the
    /// host unchanged: the filter should not have trapped them, so this only costs a trap.
    ///
    /// Every call the kernel serves is a checkpoint for the process's virtual timers: one
    /// whose expiry the shared clock has reached (moved by this process or another) fires
    /// before the call is served, so its signal arrives as the call returns.
    pub fn handle(&self, task: &mut TaskCtx<'_>, call: Syscall) -> Disposition {
        if self.timers.next_expiry().is_some() {
            crate::sys::timer::checkpoint(self, task);
        }
        match table::lookup(call.nr) {
            Some(entry) => (entry.handler)(self, task, &call),
            None => Disposition::Host(call),
        }
    }

    /// Serves `call` on from a wait whose rounds run in the task (`sys/wake.rs`: the ptrace
    /// backend's, which lends [`TaskCtx::rounds`]): `round` is the round the task made (what
    /// the slot held) and `result` its raw result. The answer is the next round, a
    /// [`Disposition::Host`] call with the slot's `suspended` set again, or, once the wait
    /// ended, the handler's own disposition, as it goes on from its wait.
    pub fn resume(
        &self,
        task: &mut TaskCtx<'_>,
        call: Syscall,
        round: crate::sys::wake::Suspended,
        result: i64,
    ) -> Disposition {
        match crate::sys::wake::resume(self, task, round, result) {
            Some(next) => Disposition::Host(next),
            // Not `handle`: its checkpoint would fire the next expiry before the handler has
            // seen the end of its wait, which comes first.
            None => match table::lookup(call.nr) {
                Some(entry) => (entry.handler)(self, task, &call),
                None => Disposition::Host(call),
            },
        }
    }

    /// The configuration this kernel serves.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The virtual time-stamp counter of reproducible mode, what `rdtsc` reads: a 1 GHz
    /// counter that reads like the monotonic clock (and advances the virtual clock like any
    /// clock read). `None` when time is not virtual.
    pub fn virtual_tsc(&self) -> Option<u64> {
        self.clock.virtual_clock().map(|v| crate::time::MONOTONIC_BASE_NS.saturating_add(v.tick()))
    }

    /// The filesystem view, if the sandbox has one.
    pub fn vfs(&self) -> Option<&Vfs> {
        self.vfs.as_ref()
    }

    /// The process image the kernel answers for.
    pub fn image(&self) -> &ProcessImage {
        self.process.image()
    }

    /// `AT_RANDOM`'s 16 bytes when randomness is seeded.
    pub fn at_random(&self) -> Option<[u8; 16]> {
        self.random.at_random()
    }

    /// The program's disposition for one of the runtime's signals, for a backend forwarding
    /// a signal it did not cause.
    pub fn program_action(&self, sig: u32) -> crate::abi::KernelSigaction {
        self.signals.action(sig)
    }

    /// Sets the program's disposition for one of the runtime's signals (`SA_RESETHAND`).
    pub fn set_program_action(&self, sig: u32, act: crate::abi::KernelSigaction) {
        self.signals.set_action(sig, act);
    }

    /// Takes every kernel lock so that a fork cannot copy one half-held. Call right before the
    /// fork of a [`Disposition::Fork`], then [`Kernel::after_fork`] in parent and child.
    /// The parent keeps the clock of the fork in sight: no sleep of its child can come before
    /// it, and a timer it arms right after (`timeout`'s) must not start after one.
    pub fn prepare_fork(&self) {
        if let Some(v) = self.clock.virtual_clock() {
            v.keep_sight();
        }
        self.process.lock_for_fork();
        self.signals.lock_for_fork();
        self.timers.lock_for_fork();
        self.dirs.lock_for_fork();
        if let Some(v) = &self.vfs {
            v.lock_for_fork();
        }
        self.exec_memo.raw_lock();
    }

    /// Releases the locks [`Kernel::prepare_fork`] took and, in the child, moves it onto its
    /// own random stream and its forking thread's signal state onto its new thread id.
    pub fn after_fork(&self, fork: ForkSide) {
        self.exec_memo.raw_unlock();
        if let Some(v) = &self.vfs {
            v.unlock_after_fork();
        }
        self.dirs.unlock_after_fork();
        self.timers.unlock_after_fork();
        self.signals.unlock_after_fork();
        let index = self.process.unlock_after_fork(matches!(fork, ForkSide::Child { .. }));
        if let ForkSide::Child { parent_tid, tid } = fork {
            self.random.enter_child(index);
            self.signals.enter_child(parent_tid, tid);
            self.timers.enter_child(tid);
            // The child runs its parent's program under its own pid (its first thread's id).
            if let Some(v) = &self.vfs {
                v.record_exe(tid, &self.process.image().exe);
            }
        }
    }

    /// A kernel for the child of a fork this kernel's process made, for a backend whose kernels
    /// live outside the processes they serve (ptrace): the child (process `pid`, as the
    /// backend's host calls name it) gets its own random stream, numbered as
    /// [`Kernel::after_fork`] numbers it, the timer descriptors it shares with its parent, and
    /// fresh caches; `shared` is the sandbox's shared memory, as for [`Kernel::new`]. Called
    /// before the child runs: the parent keeps the clock of the fork in sight, as
    /// [`Kernel::prepare_fork`] has it.
    pub fn forked(&self, shared: Option<&'static Shared>, pid: u32) -> Kernel {
        if let Some(v) = self.clock.virtual_clock() {
            v.keep_sight();
        }
        let mut config = self.config.clone();
        config.lineage = self.random.lineage();
        config.itimers = [(0, 0); 3];
        self.process.lock_for_fork();
        let index = self.process.unlock_after_fork(false);
        let child = Kernel::new(config, self.process.image().clone(), shared);
        child.random.enter_child(index);
        self.timers.fork_into(&child.timers, pid);
        child
    }

    /// The configuration the next image of this process starts with when thread `tid` execs,
    /// for a backend that lets the host load the image (ptrace): what
    /// [`Disposition::Exec`]'s plan hands the runtime in the in-process backend.
    pub fn config_after_exec(&self, tid: u32) -> Config {
        let mut next = self.config.clone();
        next.lineage = self.random.lineage_after_exec();
        next.blocked = self.signals.virtually_blocked(tid);
        next.itimers = [(0, 0); 3];
        next
    }

    /// The virtual clock's counter (nanoseconds elapsed), which a backend advances for
    /// [`crate::AfterHost::AdvanceClockOnTimeout`]; `None` outside reproducible mode.
    pub fn virtual_clock_counter(&self) -> Option<&'static core::sync::atomic::AtomicU64> {
        self.clock.virtual_clock().map(|v| v.counter())
    }

    /// What a clock read needs to be served without calling in here, for a backend that
    /// serves `clock_gettime` on the program's own stack and mask while no timer could fire,
    /// or reads the time stamp counter, which only steps the clock ([`ClockWords`]); `None`
    /// outside reproducible mode.
    pub fn clock_words(&self) -> Option<ClockWords<'_>> {
        let v = self.clock.virtual_clock()?;
        let (clock, seen) = v.tick_words();
        let (timers_next, timer_fds) = self.timers.quiet_words();
        Some(ClockWords { clock, seen, timers_next, timer_fds, epoch_ns: v.base(crate::abi::CLOCK_REALTIME) })
    }

    /// Gives the first thread of a new image (`tid`) the view of the runtime's signals that
    /// the thread which exec'd had: a signal mask survives `execve`.
    /// `host_blocked` adds the runtime signals that were blocked on the host when the image
    /// started (the runtime unblocks them).
    pub fn inherit_blocked(&self, tid: u32, host_blocked: u64) {
        self.signals.set_virtually_blocked(tid, self.config.blocked | host_blocked, |_| true);
    }
}
