//! The Landlock part of the floor: the host kernel itself refuses the sandbox the host paths
//! the policy does not name, so a program that bypasses the filesystem view with raw
//! `syscall` instructions still cannot read a hidden file or write a host file.
//!
//! The launcher [`prepare`]s the floor before it forks: it resolves the paths, lists the
//! directories it must carve (below), opens every path and builds a Landlock ruleset. The
//! forked child then only calls [`PreparedFloor::enforce`] (`no_new_privs` and
//! `landlock_restrict_self`, two system calls, no allocation) right before it execs the
//! runtime. [`restrict_self`] does both in one step, for a single-threaded process.
//!
//! What the floor allows ([`FsFloor`]):
//! - `read` trees: read files, list directories, execute;
//! - `write` trees: all of that, and write, truncate, create, delete, rename, link, device
//!   `ioctl`s;
//! - the character devices programs write to (`/dev/null`, `/dev/zero`, `/dev/full`,
//!   `/dev/tty`, `/dev/ptmx` and `/dev/pts`): read, write, truncate, `ioctl`;
//! - descriptors that are already open (the inherited standard streams, the runtime's reserved
//!   descriptors) keep working whatever they point to: Landlock checks a file when it is
//!   opened, and a file opened before the restriction keeps the rights it was opened with
//!   (`write` and `ftruncate` included). Reopening one by path (`/proc/self/fd/N`) is a new open,
//!   and is checked.
//!
//! Landlock can only allow, so a `hidden` path H inside a granted tree R is carved out: R's
//! rule is replaced by a rule for every entry of every directory on the way from R to H,
//! except the entry that leads to H (files get a file rule, directories a rule for what lies
//! beneath, symbolic links none: what they point to is governed where it really lies). The
//! directories on the way keep only the right to be listed. Consequences:
//! - an entry created on the host after the sandbox started, directly in a directory on the
//!   way to a hidden path, is out of the sandbox's reach (it had no rule when the ruleset was
//!   built); deeper entries are not affected;
//! - the sandbox cannot create or delete entries directly in those directories, even in a
//!   `write` tree;
//! - the right to list a directory reaches everything beneath it, so a hidden *directory* can
//!   be listed (names only; its files cannot be opened, read or executed). Landlock does not
//!   confine `stat` either: what a hidden path holds stays secret, not whether it exists;
//! - a hard link to a hidden file from elsewhere, or another mount of it, is readable where it
//!   lies;
//! - a hidden path that does not exist needs nothing, so one the host creates later is
//!   readable if its directory is.
//!
//! Several hidden paths compose: the allowed set is computed as one tree before any rule is
//! emitted. A tree named in `read` or `write` beneath a hidden path is still granted: the
//! policy named it. Network and scope restrictions ([`FloorOptions`]) are off by default.
//! [`prepare_net`] makes a layer of TCP rules alone, with no filesystem rules, which
//! `--net none` stacks on top when the host refuses the sandbox a network namespace.
//!
//! The floor asks for the rights of Landlock ABI 7 and enforces what the kernel offers; what is
//! missing is reported in [`FloorStatus`], never silently dropped. Out of its reach even on
//! ABI 7:
//! - connecting to a pathname unix socket the user may reach (ABI 9 confines it): a reachable
//!   D-Bus or container-engine socket stays a way out until a mount namespace hides it;
//! - UDP (ABI 10);
//! - calls Landlock never confines: `stat`, `chmod`, `chown`, `utimes`, `setxattr` on any path
//!   the sandbox can name, hidden ones included.
//!
//! And what it refuses that a program may want: writing `/proc` files (`/proc/self/comm`,
//! `oom_score_adj`, ...) like any file outside the `write` trees (`/proc/self` names a
//! different directory in every process, so no rule can grant it); `ioctl` on devices other
//! than the ones above (`/dev/urandom`'s, for one). `/dev/pts` is granted whole, so the
//! program can open the user's other terminals, as the user could; a private `devpts` in the
//! sandbox's mount namespace would close that.
//!
//! Read first: landlock(7), landlock_create_ruleset(2), landlock_add_rule(2),
//! landlock_restrict_self(2), and the kernel's `Documentation/userspace-api/landlock.rst`.

mod paths;
mod ruleset;
mod status;

pub use paths::FsFloor;
pub use ruleset::{
    prepare, prepare_net, restrict_self, EnforceError, FloorOptions, NetFloor, PrepareError, PreparedFloor,
    RestrictError,
};
pub use status::{abi, host_support, FloorStatus, Gap};
