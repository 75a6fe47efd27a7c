//! The `network` section: which network a sandbox gets ([`NetMode`]), and its address on a wire.
//!
//! A mode is written the same way in a policy (`"network": {"mode": "none"}`) and on the command
//! line (`cloister run --net none`), and both go through [`NetMode`]'s `FromStr`, so the words
//! and the errors are the same in both places. Modes are `NAME` or `NAME:ARGUMENT`: `none`,
//! `host`, `nat`, `wire:PATH` and `tap:IFNAME`. A wire and a host TAP device need the sandbox's
//! address (`"address": "10.9.0.2/24"` beside `mode`, or `--ip`), which no other mode takes;
//! `nat` takes an allow-list (`"allow": ["10.0.2.2:8000"]`, or `--allow`), which no other mode
//! does ([`crate::AllowRule`]).
//!
//! This module only names modes; the launcher decides what each one sets up
//! (`launcher/src/net/`), and docs/network.md says what each gives.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::de::Visitor;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::allow::AllowRule;
use crate::interface::InterfaceAddress;

/// The network a sandbox gets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum NetMode {
    /// Only the sandbox's own loopback (127.0.0.1 and ::1): a network namespace of its own,
    /// or, where the host refuses one, no IP sockets at all.
    None,
    /// The host's network as it is: no isolation. The default, so that a policy without a
    /// `network` section behaves as it did before the section existed.
    #[default]
    Host,
    /// A port on the virtual Ethernet switch (`cloister hub PATH`) listening at this unix
    /// socket: the sandbox's own namespace, loopback and an `eth0` with the policy's address.
    Wire(PathBuf),
    /// The sandbox's own namespace and loopback, and an `eth0` behind a user-mode NAT gateway
    /// that lets out only what the allow-list names.
    Nat,
    /// The sandbox's own namespace and loopback, and an `eth0` with the policy's address whose
    /// frames go to and from this existing TAP device of the host (or of a namespace the user
    /// made): whatever the host does with that device (a bridge, routes, nothing) is the
    /// sandbox's network.
    Tap(String),
}

impl NetMode {
    /// The mode's name, without its argument (`wire` for `wire:PATH`).
    pub fn name(&self) -> &'static str {
        match self {
            NetMode::None => "none",
            NetMode::Host => "host",
            NetMode::Wire(_) => "wire",
            NetMode::Nat => "nat",
            NetMode::Tap(_) => "tap",
        }
    }

    /// Whether the mode takes an interface address (`--ip`, `network.address`).
    pub fn takes_address(&self) -> bool {
        matches!(self, NetMode::Wire(_) | NetMode::Tap(_))
    }

    /// Whether the mode takes an allow-list (`--allow`, `network.allow`).
    pub fn takes_allow_list(&self) -> bool {
        *self == NetMode::Nat
    }
}

impl fmt::Display for NetMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetMode::Wire(path) => write!(f, "wire:{}", path.display()),
            NetMode::Tap(name) => write!(f, "tap:{name}"),
            _ => f.write_str(self.name()),
        }
    }
}

/// Why a network mode was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetModeError {
    /// `wire` without the hub's path (`wire`, `wire:`).
    WireWithoutPath(String),
    /// `tap` without an interface name, or with one Linux would refuse (empty, longer than 15
    /// bytes, `.` or `..`, or with `/`, `:` or white space in it).
    BadInterfaceName(String),
    /// No mode of that name.
    Unknown(String),
}

/// What to write instead, for every [`NetModeError`] (and the policy's `$.network.mode`).
pub(crate) const NET_MODE_FIX: &str = r#"write "none" (only the sandbox's own loopback), "host" (the host's network, no isolation), "nat" (a NAT gateway to what --allow names), "wire:PATH" (a port on the switch `cloister hub PATH` runs) or "tap:IFNAME" (an existing TAP device of the host)"#;

impl NetModeError {
    /// What to write instead.
    pub fn fix(&self) -> &'static str {
        NET_MODE_FIX
    }
}

impl fmt::Display for NetModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetModeError::WireWithoutPath(written) => {
                write!(f, "the network mode {written:?} names no hub: write the hub's socket after \"wire:\"")
            }
            NetModeError::BadInterfaceName(written) => write!(
                f,
                "the network mode {written:?} names no TAP device Linux could have: write its name \
                 after \"tap:\" (1 to 15 bytes, no '/', ':' or white space)"
            ),
            NetModeError::Unknown(written) => write!(
                f,
                "there is no network mode {written:?} (there are none, host, nat, wire:PATH and \
                 tap:IFNAME)"
            ),
        }
    }
}

impl std::error::Error for NetModeError {}

impl FromStr for NetMode {
    type Err = NetModeError;

    fn from_str(written: &str) -> Result<NetMode, NetModeError> {
        let name = written.split_once(':').map_or(written, |(name, _)| name);
        match name {
            "none" if name == written => Ok(NetMode::None),
            "host" if name == written => Ok(NetMode::Host),
            "wire" => match written.split_once(':') {
                Some((_, path)) if !path.is_empty() => Ok(NetMode::Wire(PathBuf::from(path))),
                _ => Err(NetModeError::WireWithoutPath(written.to_owned())),
            },
            "nat" if name == written => Ok(NetMode::Nat),
            "tap" => match written.split_once(':') {
                Some((_, ifname)) if valid_interface_name(ifname) => Ok(NetMode::Tap(ifname.to_owned())),
                _ => Err(NetModeError::BadInterfaceName(written.to_owned())),
            },
            _ => Err(NetModeError::Unknown(written.to_owned())),
        }
    }
}

/// Whether Linux would take `name` for a network interface (the kernel's `dev_valid_name`).
fn valid_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace())
}

impl Serialize for NetMode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NetMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<NetMode, D::Error> {
        struct ModeVisitor;

        impl Visitor<'_> for ModeVisitor {
            type Value = NetMode;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a network mode")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<NetMode, E> {
                v.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_str(ModeVisitor)
    }
}

/// The `network` section of a policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    /// Free text: why the sandbox gets this network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The network; `host` when not given.
    pub mode: NetMode,
    /// The sandbox's address on a wire, e.g. `10.9.0.2/24`; required by `wire:PATH`, refused
    /// by the other modes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<InterfaceAddress>,
    /// Where a `nat` sandbox may go (`HOST:PORT`, `CIDR:PORT`, `NAME:PORT`, `*:PORT`);
    /// refused by the other modes. Empty: nowhere.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<AllowRule>,
}
