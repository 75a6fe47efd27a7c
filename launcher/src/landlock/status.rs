//! What the host's Landlock can enforce of the floor: its ABI version, and what an older ABI
//! leaves out, named so that the launcher and `cloister doctor` can say it.

use super::ruleset::{FloorOptions, NetFloor};
use std::fmt;

/// `landlock_create_ruleset` flag that asks for the ABI version (`linux/landlock.h`).
const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;

/// The host's Landlock ABI version, or the errno that says why there is none (`ENOSYS`: not
/// built in; `EOPNOTSUPP`: built in but not enabled at boot).
pub fn abi() -> Result<i32, i32> {
    // SAFETY: with a null attribute, size 0 and the VERSION flag the call only returns a number.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if abi > 0 {
        Ok(i32::try_from(abi).unwrap_or(i32::MAX))
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::ENOSYS))
    }
}

/// A part of the floor the host's Landlock ABI cannot enforce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gap {
    /// ABI 1: moving or linking a file to another directory is always refused, even inside a
    /// `write` tree (`LANDLOCK_ACCESS_FS_REFER`, ABI 2).
    Refer,
    /// Truncation is not confined: `truncate(2)` and `O_TRUNC` can empty any host file the
    /// user may write (`LANDLOCK_ACCESS_FS_TRUNCATE`, ABI 3).
    Truncate,
    /// TCP `bind` and `connect` are not confined (`LANDLOCK_ACCESS_NET_*_TCP`, ABI 4).
    TcpPorts,
    /// `ioctl` on device files is not confined (`LANDLOCK_ACCESS_FS_IOCTL_DEV`, ABI 5).
    DeviceIoctl,
    /// Signals to processes outside the sandbox are not refused (`LANDLOCK_SCOPE_SIGNAL`, ABI
    /// 6).
    SignalScope,
    /// Abstract unix sockets outside the sandbox can be reached
    /// (`LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET`, ABI 6).
    AbstractUnixScope,
}

impl Gap {
    /// The ABI that closes the gap.
    fn closed_by(self) -> i32 {
        match self {
            Gap::Refer => 2,
            Gap::Truncate => 3,
            Gap::TcpPorts => 4,
            Gap::DeviceIoctl => 5,
            Gap::SignalScope | Gap::AbstractUnixScope => 6,
        }
    }

    /// A few words for a one-line report.
    pub fn short(self) -> &'static str {
        match self {
            Gap::Refer => "cross-directory rename",
            Gap::Truncate => "truncate",
            Gap::TcpPorts => "net",
            Gap::DeviceIoctl => "device ioctl",
            Gap::SignalScope => "signal scope",
            Gap::AbstractUnixScope => "abstract unix scope",
        }
    }
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Gap::Refer => "a file cannot be moved or linked to another directory, even in a write tree",
            Gap::Truncate => "truncate(2) and O_TRUNC are not confined",
            Gap::TcpPorts => "TCP bind and connect are not confined",
            Gap::DeviceIoctl => "ioctl on device files is not confined",
            Gap::SignalScope => "signals to processes outside the sandbox are not refused",
            Gap::AbstractUnixScope => "abstract unix sockets outside the sandbox can be reached",
        };
        write!(f, "{what} (needs Landlock ABI {})", self.closed_by())
    }
}

/// What the floor's Landlock ruleset enforces on this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FloorStatus {
    /// Everything the floor asks for.
    Enforced {
        /// The host's Landlock ABI.
        abi: i32,
    },
    /// The host's ABI is older than the floor's; the rest is enforced.
    PartiallyEnforced {
        /// The host's Landlock ABI.
        abi: i32,
        /// What it leaves out (only parts that were asked for).
        missing: Vec<Gap>,
    },
    /// Nothing: the host has no usable Landlock.
    Unsupported {
        /// Why, for the user.
        why: String,
    },
}

impl FloorStatus {
    /// What the floor asked for by `options` gets from a host whose ABI probe answered `abi`.
    pub(super) fn of(abi: Result<i32, i32>, options: &FloorOptions) -> FloorStatus {
        let abi = match abi {
            Ok(abi) => abi,
            Err(libc::EOPNOTSUPP) => {
                return FloorStatus::Unsupported {
                    why: "Landlock is built into the kernel but not enabled (add it to the lsm= boot \
                          parameter)"
                        .into(),
                }
            }
            Err(errno) => {
                return FloorStatus::Unsupported {
                    why: format!("the kernel has no Landlock ({})", std::io::Error::from_raw_os_error(errno)),
                }
            }
        };
        let asked = [
            (Gap::Refer, true),
            (Gap::Truncate, true),
            (Gap::TcpPorts, options.net.is_some()),
            (Gap::DeviceIoctl, true),
            (Gap::SignalScope, options.scope_signals),
            (Gap::AbstractUnixScope, options.scope_abstract_unix),
        ];
        let missing: Vec<Gap> = asked
            .into_iter()
            .filter(|&(gap, asked)| asked && abi < gap.closed_by())
            .map(|(gap, _)| gap)
            .collect();
        if missing.is_empty() {
            FloorStatus::Enforced { abi }
        } else {
            FloorStatus::PartiallyEnforced { abi, missing }
        }
    }
}

impl fmt::Display for FloorStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FloorStatus::Enforced { abi } => write!(f, "Landlock floor enforced (ABI {abi})"),
            FloorStatus::PartiallyEnforced { abi, missing } => {
                write!(f, "Landlock floor partly enforced (ABI {abi}):")?;
                for (i, gap) in missing.iter().enumerate() {
                    write!(f, "{} {gap}", if i == 0 { "" } else { ";" })?;
                }
                Ok(())
            }
            FloorStatus::Unsupported { why } => write!(f, "no Landlock floor: {why}"),
        }
    }
}

/// What this host's Landlock offers a floor that asks for everything (filesystem, TCP ports,
/// both scopes): for `cloister doctor`.
pub fn host_support() -> FloorStatus {
    let everything =
        FloorOptions { scope_signals: true, scope_abstract_unix: true, net: Some(NetFloor::default()) };
    FloorStatus::of(abi(), &everything)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> FloorOptions {
        FloorOptions { scope_signals: true, scope_abstract_unix: true, net: Some(NetFloor::default()) }
    }

    #[test]
    fn gaps_follow_the_abi_and_what_was_asked() {
        assert_eq!(FloorStatus::of(Ok(7), &all()), FloorStatus::Enforced { abi: 7 });
        assert_eq!(FloorStatus::of(Ok(6), &all()), FloorStatus::Enforced { abi: 6 });
        assert_eq!(
            FloorStatus::of(Ok(4), &all()),
            FloorStatus::PartiallyEnforced {
                abi: 4,
                missing: vec![Gap::DeviceIoctl, Gap::SignalScope, Gap::AbstractUnixScope]
            }
        );
        assert_eq!(
            FloorStatus::of(Ok(3), &FloorOptions::default()),
            FloorStatus::PartiallyEnforced { abi: 3, missing: vec![Gap::DeviceIoctl] }
        );
        assert_eq!(
            FloorStatus::of(Ok(1), &FloorOptions::default()),
            FloorStatus::PartiallyEnforced {
                abi: 1,
                missing: vec![Gap::Refer, Gap::Truncate, Gap::DeviceIoctl]
            }
        );
    }

    #[test]
    fn no_landlock_says_why() {
        let status = FloorStatus::of(Err(libc::EOPNOTSUPP), &all());
        assert!(status.to_string().contains("lsm="), "{status}");
        let status = FloorStatus::of(Err(libc::ENOSYS), &all());
        assert!(matches!(status, FloorStatus::Unsupported { .. }), "{status}");
    }

    #[test]
    fn a_partial_floor_names_what_is_missing() {
        let status = FloorStatus::of(Ok(2), &FloorOptions::default()).to_string();
        assert!(status.contains("truncate(2)") && status.contains("ABI 3"), "{status}");
    }
}
