//! Identity: the host name the program sees.
//!
//! Read `uname(2)` and `gethostname(2)`: glibc's `gethostname` is `uname` underneath, and
//! `/proc/sys/kernel/hostname` is served by [`crate::procfs`]. Virtual process and user ids
//! come with the reproducible mode.

use crate::abi::{UTSNAME_SIZE, UTS_FIELD, UTS_NODENAME};
use crate::config::Config;
use crate::sync::OnceValue;
use alloc::vec::Vec;

/// The kernel release reproducible mode shows (`uname -r`).
pub const RELEASE: &[u8] = b"6.1.0-cloister";
/// The kernel version reproducible mode shows (`uname -v`).
pub const VERSION: &[u8] = b"#1 SMP PREEMPT_DYNAMIC Sat Jan  1 00:00:00 UTC 2000";
/// Offsets of `release`, `version` and `domainname` in `struct utsname`.
const UTS_RELEASE: usize = 2 * UTS_FIELD;
const UTS_VERSION: usize = 3 * UTS_FIELD;
const UTS_DOMAINNAME: usize = 5 * UTS_FIELD;

/// The sandbox's identity.
pub struct Identity {
    hostname: Option<Vec<u8>>,
    /// Reproducible mode: the release, version and domain name are fixed too.
    fixed_kernel: bool,
    /// The host's `utsname`, read once: none of its fields but the names ever change, and
    /// the node name is replaced anyway.
    host_uts: OnceValue<[u8; UTSNAME_SIZE]>,
}

impl Identity {
    /// Identity as the configuration sets it.
    pub fn new(config: &Config) -> Self {
        let hostname = config.hostname.as_ref().map(|h| {
            let mut v = h.as_bytes().to_vec();
            v.truncate(UTS_FIELD - 1);
            v
        });
        Identity { hostname, fixed_kernel: config.reproducible.is_some(), host_uts: OnceValue::new() }
    }

    /// The host's `utsname` as first read, if it was.
    pub fn cached_host_uts(&self) -> Option<[u8; UTSNAME_SIZE]> {
        self.host_uts.get().copied()
    }

    /// Keeps the host's `utsname` for later calls.
    pub fn cache_host_uts(&self, uts: [u8; UTSNAME_SIZE]) {
        self.host_uts.set(uts);
    }

    /// The virtual host name, if there is one.
    pub fn hostname(&self) -> Option<&[u8]> {
        self.hostname.as_deref()
    }

    /// Rewrites a `struct utsname` the host filled in to show the sandbox's identity.
    pub fn patch_utsname(&self, uts: &mut [u8; UTSNAME_SIZE]) {
        let mut set = |at: usize, value: &[u8]| {
            let field = &mut uts[at..at + UTS_FIELD];
            field.fill(0);
            field[..value.len()].copy_from_slice(value);
        };
        if let Some(name) = &self.hostname {
            set(UTS_NODENAME, name);
        }
        if self.fixed_kernel {
            set(UTS_RELEASE, RELEASE);
            set(UTS_VERSION, VERSION);
            set(UTS_DOMAINNAME, b"(none)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodename_is_replaced_and_other_fields_kept() {
        let cfg = Config { hostname: Some("sandbox".into()), ..Config::default() };
        let mut uts = [0u8; UTSNAME_SIZE];
        uts[..5].copy_from_slice(b"Linux");
        uts[UTS_NODENAME..UTS_NODENAME + 20].copy_from_slice(b"a-much-longer-host-x");
        Identity::new(&cfg).patch_utsname(&mut uts);
        assert_eq!(&uts[..6], b"Linux\0");
        assert_eq!(&uts[UTS_NODENAME..UTS_NODENAME + 8], b"sandbox\0");
        assert!(uts[UTS_NODENAME + 8..UTS_NODENAME + UTS_FIELD].iter().all(|&b| b == 0));
    }
}
