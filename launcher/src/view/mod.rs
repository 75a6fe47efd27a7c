//! The filesystem view: from the policy's `filesystem` section and the `--ro`, `--rw`,
//! `--overlay`, `--tmpfs`, `--hide` and `--cwd` flags to the kernel's mount table
//! (`kernel_host::config::Mount`), the sandbox's private state directory that backs it, and the
//! host directory the program starts in.
//!
//! [`request`] merges what was asked (pure: no file is touched), [`state`] makes and removes
//! the state directory, and [`table`] resolves host paths and lays the mounts out in it. The
//! kernel enforces the view; what the program changed is reported by [`crate::changes`].
//! Under the view lies the floor for a program that skips it: [`floor`] (Landlock) and
//! [`mounts`] (the sandbox's mount namespace).
//! See docs/filesystem.md.

pub mod floor;
pub mod mounts;
pub mod request;
pub mod state;
pub mod table;

pub use request::{MountFlag, Request, ViewFlag};
pub use state::State;
pub use table::View;
