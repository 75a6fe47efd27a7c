//! `cloister run --tty` (policy: `"tty": true`): the program gets a pseudo-terminal of its own
//! as its controlling terminal, and the supervisor relays bytes between it and the user's
//! terminal.
//!
//! Without it, a program started with its standard input on a terminal shares the user's
//! terminal (and its session), and one started without gets no terminal at all (see
//! [`crate::spawn`] and docs/limits.md, "The terminal"). With it, the program's process (forked by
//! the keeper, [`crate::keeper`], which stays in a session without a terminal) starts a session
//! of its own and makes the pty's slave side its controlling terminal (`setsid`, `TIOCSCTTY`), as
//! a login shell leads its terminal's session: its process group is the pty's foreground group,
//! and an orphaned one, so a Ctrl-Z does not stop a program that has no shell to resume it. Whatever the program does to its terminal (modes, `TIOCSTI`, which the
//! seccomp floor refuses anyway, job control, hanging it up) stays on the pty: the user's
//! terminal only ever receives the bytes the program writes, and the supervisor puts its modes
//! back when the run ends.
//!
//! Of the launcher's standard streams, those that are the user's terminal are replaced by the
//! pty's slave; the others (a pipe, a file) reach the program as they are, as `ssh -t` and `docker
//! run -t` leave a redirected stream alone. So `cloister run --tty -- prog > out` still writes a
//! clean file, and `echo data | cloister run --tty -- less` reads `data` from the pipe and its
//! keys from the terminal. When none of the three is a terminal there is nothing to relay, and
//! `--tty` fails with one line (exit 125).
//!
//! The relay: the pty starts with the user's terminal's modes and window size (as `ssh` copies
//! them); the user's terminal goes into raw mode for the run, so every key (Ctrl-C included)
//! reaches the pty, whose own line discipline then echoes, edits lines and sends signals to the
//! program; `SIGWINCH` copies the window size again. A thread moves the bytes (`poll` on the
//! user's terminal, the pty's master side and a wake-up pipe) while the main thread waits for
//! the program. At the end it drains what the program wrote last and the user's terminal gets
//! its modes back, also when the run fails or times out ([`Relay`]'s `Drop`) or cloister panics
//! (a panic hook: release builds abort); when `cloister run` itself is killed (`SIGKILL`, which
//! runs no destructor), a guard process it started gives them back ([`guard`]).
//!
//! Read first: pty(7), termios(3) (`cfmakeraw`), tty_ioctl(4) (`TIOCSCTTY`, `TIOCSPGRP`,
//! `TIOCGWINSZ`, `TIOCSWINSZ`, `TIOCGPTPEER`), credentials(7) (sessions, process groups).

mod guard;

use crate::failure::Failure;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// How long the relay waits for the program's last output once the program has ended, when
/// something still holds the pty open (normally the pty reports at once that nobody does).
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// How often the relay looks at the pty again while no process holds it open (a program may
/// close its streams and open `/dev/tty` later).
const REOPEN_CHECK: Duration = Duration::from_millis(50);

/// Bytes from the user waiting for the program to read them: past this the relay stops reading
/// the user's terminal until the program catches up.
const INPUT_BACKLOG: usize = 64 * 1024;

/// The wake-up pipe's write end, for the `SIGWINCH` handler (-1: no relay).
static WAKE: AtomicI32 = AtomicI32::new(-1);

/// A wake-up byte: the window size changed.
const RESIZED: u8 = b'w';
/// A wake-up byte: the program ended; drain and stop.
const STOP: u8 = b's';

/// What the sandbox's first process needs to take the pty, decided before the fork.
#[derive(Clone, Copy, Debug)]
pub struct ChildTerminal {
    /// The pty's slave side (close-on-exec in the supervisor).
    pub slave: RawFd,
    /// Which of standard input, output and error go to the pty: those that were the user's
    /// terminal.
    pub streams: [bool; 3],
}

impl ChildTerminal {
    /// In the program's process, once the keeper forked it: starts a session, makes the pty
    /// its controlling terminal and puts the pty on the streams that were the user's terminal.
    /// Returns `false` (with `errno` set) when any step fails.
    ///
    /// # Safety
    /// Async-signal-safe (raw system calls); only in a process that leads no process group.
    pub unsafe fn take(&self) -> bool {
        // SAFETY: setsid, ioctl and dup2 on a descriptor the process inherited open.
        unsafe {
            if libc::setsid() < 0 || libc::ioctl(self.slave, libc::TIOCSCTTY, 0) != 0 {
                return false;
            }
            for (fd, on_pty) in (0..).zip(self.streams) {
                if on_pty && libc::dup2(self.slave, fd) < 0 {
                    return false;
                }
            }
        }
        true
    }
}

/// A pty made for one run, before the program starts.
pub struct Terminal {
    master: OwnedFd,
    slave: OwnedFd,
    streams: [bool; 3],
    /// The user's terminal as the relay reads it: standard input when that is a terminal.
    user_in: RawFd,
    /// The user's terminal as the relay writes it: standard output when that is a terminal.
    user_out: RawFd,
    /// The user's terminal's modes, which the pty starts with and the end of the run restores.
    modes: libc::termios,
}

impl Terminal {
    /// Makes the pty, with the modes and window size of the user's terminal. `asked_by` names
    /// the flag or policy key in the error when there is no terminal to relay.
    pub fn open(asked_by: &str) -> Result<Terminal, Failure> {
        // SAFETY: isatty only asks about descriptors 0 to 2.
        let streams = [0, 1, 2].map(|fd| unsafe { libc::isatty(fd) } == 1);
        let first = |order: [RawFd; 3]| order.into_iter().find(|&fd| streams[fd as usize]);
        let (Some(user_in), Some(user_out)) = (first([0, 1, 2]), first([1, 2, 0])) else {
            return Err(Failure::Setup(format!(
                "{asked_by}: none of standard input, output and error is a terminal, so there is none to relay; \
                 run cloister from a terminal, or drop {asked_by} (without it the program gets no terminal)"
            )));
        };
        let fail = |what: &str| {
            Failure::Setup(format!("{asked_by}: cannot {what}: {}", std::io::Error::last_os_error()))
        };
        // SAFETY: a zeroed termios is a valid value for tcgetattr to overwrite.
        let mut modes: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr writes one termios into `modes`.
        if unsafe { libc::tcgetattr(user_in, &mut modes) } != 0 {
            return Err(fail("read the terminal's modes"));
        }
        let (master, slave) = new_pty().map_err(&fail)?;
        // SAFETY: tcsetattr reads one termios; the slave is ours.
        if unsafe { libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &modes) } != 0 {
            return Err(fail("give the pseudo-terminal the terminal's modes"));
        }
        copy_window_size(user_out, master.as_raw_fd());
        // The relay never blocks on the program: its input waits in the relay's backlog.
        // SAFETY: fcntl on our own descriptor.
        unsafe {
            let flags = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(master.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        Ok(Terminal { master, slave, streams, user_in, user_out, modes })
    }

    /// What the sandbox's first process needs (see [`ChildTerminal::take`]).
    pub fn child(&self) -> ChildTerminal {
        ChildTerminal { slave: self.slave.as_raw_fd(), streams: self.streams }
    }

    /// Once the program started: closes the supervisor's copy of the slave side, puts the user's
    /// terminal into raw mode and starts relaying. The terminal's modes come back when the
    /// returned [`Relay`] is dropped.
    pub fn start(self) -> Result<Relay, Failure> {
        let Terminal { master, slave, streams: _, user_in, user_out, modes } = self;
        // Only the sandbox holds the slave now, so the master reports when the sandbox is gone.
        drop(slave);
        let (wake_r, wake_w) = wake_pipe()
            .map_err(|e| Failure::Setup(format!("cannot relay the terminal: cannot create a pipe: {e}")))?;
        let raw = RawMode::enter(user_in, modes);
        // Release builds abort on a panic, which runs no destructor: the hook puts the modes
        // back before the message is printed. Harmless once the relay is over.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // SAFETY: tcsetattr reads the modes saved at the start; a closed descriptor fails.
            unsafe { set_modes(user_in, &modes) };
            previous(info);
        }));
        WAKE.store(wake_w.as_raw_fd(), Ordering::Relaxed);
        install_resize_handler();
        // It may have changed since the pty was made.
        copy_window_size(user_out, master.as_raw_fd());
        let io = Io { master, wake: wake_r, user_in, user_out };
        let thread = std::thread::Builder::new()
            .name("cloister-tty".into())
            .spawn(move || io.relay())
            .map_err(|e| Failure::Setup(format!("cannot relay the terminal: cannot start a thread: {e}")))?;
        Ok(Relay { thread: Some(thread), wake: wake_w, _raw: raw })
    }
}

/// A running relay. Dropping it (or [`Relay::finish`]) drains the program's last output, stops
/// the relay and restores the user's terminal.
pub struct Relay {
    thread: Option<std::thread::JoinHandle<()>>,
    wake: OwnedFd,
    /// Dropped after the thread ended, so no byte reaches the terminal after its modes are back.
    _raw: RawMode,
}

impl Relay {
    /// Once the program has ended: relays what it wrote last, then restores the user's terminal.
    pub fn finish(self) {
        drop(self);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // SAFETY: restoring the default action of a signal, and writing one byte from a local
        // to our own pipe.
        unsafe {
            libc::signal(libc::SIGWINCH, libc::SIG_DFL);
            WAKE.store(-1, Ordering::Relaxed);
            libc::write(self.wake.as_raw_fd(), [STOP].as_ptr().cast(), 1);
        }
        if let Some(thread) = self.thread.take() {
            // A panic in the relay is the relay's end; the terminal is restored all the same.
            let _ = thread.join();
        }
    }
}

/// The user's terminal in raw mode; its modes come back when this is dropped, or from the
/// guard when the supervisor dies first.
struct RawMode {
    fd: RawFd,
    saved: libc::termios,
    guard: Option<guard::Guard>,
}

impl RawMode {
    fn enter(fd: RawFd, saved: libc::termios) -> RawMode {
        let mut raw = saved;
        // Before the modes change, so that no moment leaves them raw without a guard.
        let guard = guard::Guard::start(fd, saved);
        // SAFETY: cfmakeraw edits a local; tcsetattr reads it. A terminal that refuses (hung
        // up) is relayed in whatever mode it is.
        unsafe {
            libc::cfmakeraw(&mut raw);
            set_modes(fd, &raw);
        }
        RawMode { fd, saved, guard }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: tcsetattr reads the modes saved at the start.
        unsafe { set_modes(self.fd, &self.saved) };
        if let Some(guard) = self.guard.take() {
            guard.release();
        }
    }
}

/// `tcsetattr` after the output written so far, again when a signal interrupts it.
///
/// # Safety
/// `fd` is open for the whole call.
unsafe fn set_modes(fd: RawFd, modes: &libc::termios) {
    loop {
        // SAFETY: tcsetattr reads one termios; the caller keeps `fd` open.
        let r = unsafe { libc::tcsetattr(fd, libc::TCSADRAIN, modes) };
        if r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// The relay thread's descriptors.
struct Io {
    master: OwnedFd,
    wake: OwnedFd,
    user_in: RawFd,
    user_out: RawFd,
}

impl Io {
    /// Moves bytes until told to stop and the program's last output is out.
    fn relay(self) {
        let master = self.master.as_raw_fd();
        let mut backlog: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        let mut reading_user = true;
        // Since when no process holds the slave side open (`EIO` on the master).
        let mut unheld: Option<Instant> = None;
        let mut stop_by: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let look_at_master = unheld.is_none_or(|since| now >= since + REOPEN_CHECK);
            let master_events = if backlog.is_empty() { libc::POLLIN } else { libc::POLLIN | libc::POLLOUT };
            let take_input = reading_user && stop_by.is_none() && backlog.len() < INPUT_BACKLOG;
            let mut fds = [
                pollfd(self.wake.as_raw_fd(), libc::POLLIN),
                pollfd(if look_at_master { master } else { -1 }, master_events),
                pollfd(if take_input { self.user_in } else { -1 }, libc::POLLIN),
            ];
            let wait_until = [stop_by, unheld.filter(|_| !look_at_master).map(|since| since + REOPEN_CHECK)]
                .into_iter()
                .flatten()
                .min();
            let timeout = wait_until.map_or(-1, |t| {
                i32::try_from(t.saturating_duration_since(now).as_millis()).unwrap_or(i32::MAX).max(1)
            });
            // SAFETY: polling a local array of pollfds.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 3, timeout) };
            if n < 0 {
                if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return;
            }
            if stop_by.is_some_and(|t| Instant::now() >= t) {
                return;
            }
            if fds[0].revents != 0 {
                for byte in read_available(self.wake.as_raw_fd(), &mut buf).unwrap_or(&[]) {
                    match *byte {
                        RESIZED => copy_window_size(self.user_out, master),
                        _ => {
                            stop_by.get_or_insert_with(|| Instant::now() + DRAIN_GRACE);
                        }
                    }
                }
            }
            if look_at_master && fds[1].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                match read_available(master, &mut buf) {
                    Ok(bytes) if !bytes.is_empty() => {
                        unheld = None;
                        write_all(self.user_out, bytes);
                    }
                    Ok(_) => {}
                    // EIO (or end of file): no process holds the slave side open.
                    Err(_) if stop_by.is_some() => return,
                    Err(_) => unheld = Some(Instant::now()),
                }
            }
            if look_at_master && fds[1].revents & libc::POLLOUT != 0 {
                flush_backlog(master, &mut backlog);
            }
            if fds[2].revents != 0 {
                match read_available(self.user_in, &mut buf) {
                    Ok(bytes) if !bytes.is_empty() => {
                        backlog.extend_from_slice(bytes);
                        flush_backlog(master, &mut backlog);
                    }
                    Ok(_) => {}
                    // The user's terminal hung up (its SIGHUP reaches the program through the
                    // supervisor) or cannot be read (only its output stream is a terminal).
                    Err(_) => reading_user = false,
                }
            }
        }
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd { fd, events, revents: 0 }
}

/// One `read` into `buf`: the bytes read (none when there are none yet), or `Err` at end of
/// file or on an error other than `EINTR`/`EAGAIN`.
fn read_available(fd: RawFd, buf: &mut [u8]) -> Result<&[u8], ()> {
    loop {
        // SAFETY: reading at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            return Ok(&buf[..n.unsigned_abs()]);
        }
        if n == 0 {
            return Err(());
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Ok(&[]),
            _ => return Err(()),
        }
    }
}

/// Writes all of `bytes` to the user's terminal, waiting when it is full (or was left
/// non-blocking by someone else); drops them when it cannot be written.
fn write_all(fd: RawFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writing from a live slice.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n > 0 {
            bytes = &bytes[n.unsigned_abs()..];
            continue;
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EAGAIN) => {
                let mut out = [pollfd(fd, libc::POLLOUT)];
                // SAFETY: polling one local pollfd.
                unsafe { libc::poll(out.as_mut_ptr(), 1, 1000) };
            }
            _ => return,
        }
    }
}

/// Writes what the pty takes of the user's input now; the rest waits for `POLLOUT`.
fn flush_backlog(master: RawFd, backlog: &mut Vec<u8>) {
    while !backlog.is_empty() {
        // SAFETY: writing from a live buffer to our non-blocking master.
        let n = unsafe { libc::write(master, backlog.as_ptr().cast(), backlog.len()) };
        if n > 0 {
            backlog.drain(..n.unsigned_abs());
            continue;
        }
        if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if n < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN) {
            // Nobody holds the pty: what was typed has no reader.
            backlog.clear();
        }
        return;
    }
}

/// Gives the pty the user's terminal's window size, which sends `SIGWINCH` to the program
/// when it changed. Nothing when the user's terminal has no size to read.
fn copy_window_size(user: RawFd, master: RawFd) {
    // SAFETY: a zeroed winsize is a valid value for TIOCGWINSZ to overwrite.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into `size`; TIOCSWINSZ reads it.
    unsafe {
        if libc::ioctl(user, libc::TIOCGWINSZ, &mut size) == 0 {
            libc::ioctl(master, libc::TIOCSWINSZ, &size);
        }
    }
}

/// A new pty: the master side and the slave side, both close-on-exec and neither the
/// supervisor's controlling terminal. On failure, the step that failed (with `errno` set).
fn new_pty() -> Result<(OwnedFd, OwnedFd), &'static str> {
    // SAFETY: posix_openpt returns a new descriptor or -1.
    let fd = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err("open a pseudo-terminal (/dev/ptmx)");
    }
    // SAFETY: posix_openpt returned a fresh descriptor that nothing else owns.
    let master = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: grantpt and unlockpt act on the master we own.
    if unsafe { libc::grantpt(fd) } != 0 || unsafe { libc::unlockpt(fd) } != 0 {
        return Err("unlock the pseudo-terminal");
    }
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // Straight from the master (Linux 4.13), with no path to look up in /dev/pts.
    // SAFETY: TIOCGPTPEER takes the open flags as its argument and returns a new descriptor.
    let mut slave = unsafe { libc::ioctl(fd, libc::TIOCGPTPEER, flags) };
    if slave < 0 {
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: ptsname_r writes a C string of at most `name.len()` bytes into `name`.
        if unsafe { libc::ptsname_r(fd, name.as_mut_ptr(), name.len()) } != 0 {
            return Err("name the pseudo-terminal's slave side");
        }
        // SAFETY: `name` now holds a NUL-terminated path.
        slave = unsafe { libc::open(name.as_ptr(), flags) };
        if slave < 0 {
            return Err("open the pseudo-terminal's slave side");
        }
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok((master, unsafe { OwnedFd::from_raw_fd(slave) }))
}

/// The relay's wake-up pipe, non-blocking on both ends (the signal handler must not block).
fn wake_pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two descriptors for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn install_resize_handler() {
    // SAFETY: a zeroed sigaction with a handler that only writes to a pipe and keeps errno.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = resized as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGWINCH, &action, std::ptr::null_mut());
    }
}

/// `SIGWINCH`: wakes the relay, which copies the new window size.
extern "C" fn resized(_sig: libc::c_int) {
    let fd = WAKE.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write is async-signal-safe; errno is the interrupted code's, so it is kept.
        unsafe {
            let errno = *libc::__errno_location();
            libc::write(fd, [RESIZED].as_ptr().cast(), 1);
            *libc::__errno_location() = errno;
        }
    }
}
