//! cloister's policies: the schema (serde), validation with clear errors, and the built-in
//! policies, which are JSON files embedded in the binary.
//!
//! A policy says what the sandboxed program sees of its host: its host name (`identity`), its
//! clocks (`time`), its randomness (`random`), its files (`filesystem`), its network
//! (`network`) and how much of the host it may use (`limits`). Every object may carry a
//! `comment`, and unknown keys are errors. The launcher
//! calls [`load`] with what the user gave (`--policy NAME|FILE`), prints a [`PolicyError`] as one
//! line, and hands the kernel a plain `kernel_host::Config` through [`Policy::apply_to`]; the
//! launcher reads the network mode itself, as it sets the network up. The filesystem view is the
//! exception: its paths are only checked for shape here ([`PathSpec`], [`BindSpec`]); the
//! launcher expands `~`, resolves host paths and builds the mount table, because that needs the
//! host tree and the user's home.
//!
//! This crate does not touch the sandbox itself: it sets up nothing and enforces nothing.
//!
//! ```
//! let policy = policies::load("fixed-identity").unwrap();
//! assert_eq!(policy.identity.hostname.as_deref(), Some("cloister"));
//! ```

mod allow;
mod builtin;
mod error;
mod interface;
mod limits;
mod load;
mod network;
mod path_spec;
mod schema;
mod validate;

#[cfg(test)]
mod tests;

pub use allow::{AllowError, AllowHost, AllowRule};
pub use builtin::{builtin_names, builtin_summary, builtin_text};
pub use error::PolicyError;
pub use interface::{AddressError, InterfaceAddress};
pub use limits::{check_limit, Limits, MAX_WALL_SECONDS, MIN_MEMORY_BYTES, MIN_OPEN_FILES};
pub use load::{label, load, parse};
pub use network::{NetMode, NetModeError, Network};
pub use path_spec::{normalize_guest, BindError, BindSpec, PathError, PathSpec};
pub use schema::{Filesystem, Identity, Policy, Random, Time};
pub use validate::{MAX_CPUS, MAX_EPOCH_SECONDS, MAX_HOSTNAME_LEN, MAX_OFFSET_SECONDS};
