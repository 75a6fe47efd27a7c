//! The sandbox's network: what each mode of `--net` / `network.mode` sets up before the program
//! runs. See docs/network.md for what a user gets.
//!
//! - **`host`**: nothing; the program's sockets are the host's.
//! - **`none`**: the sandbox's first process makes a network namespace of its own
//!   ([`crate::namespaces`], rootless through the user namespace it makes when not root) and
//!   brings its loopback up ([`loopback`]), so 127.0.0.1 and ::1 work inside and nothing else
//!   exists. On top of it, a seccomp program ([`floor`]) refuses the socket families a network
//!   namespace does not confine (`AF_VSOCK` reaches the hypervisor, `AF_BLUETOOTH` the host's
//!   radios) and raw IP sockets, and the bounding set loses `CAP_NET_ADMIN` and `CAP_NET_RAW`,
//!   so a program run as root cannot move an interface between namespaces or configure the
//!   host's. Where the host refuses the namespace, the launcher says so once and the fallback
//!   floor refuses every socket family but `AF_UNIX` and `AF_ALG` (no IPv4, IPv6, packet or
//!   netlink sockets, so no loopback either), and a Landlock layer refuses TCP `bind` and
//!   `connect` on any socket the program was handed (ABI 4 and later).
//!
//! - **`wire:PATH`**: the namespace and floor of `none`, plus a TAP device `eth0` in the
//!   namespace with the sandbox's address ([`tap`], made by the first process, whose descriptor
//!   goes to the supervisor), and a relay in the supervisor ([`relay`]) that moves its frames to
//!   and from the virtual switch `cloister hub PATH` runs ([`hub`]). The sandbox's sockets are
//!   real kernel sockets of its namespace, and its TCP/IP stack is that namespace's: the engine
//!   in the supervisor only moves Ethernet frames ([`frame`]).
//!
//! - **`nat`**: the namespace, floor and `eth0` of a wire, at 10.0.2.15/24 with the default
//!   route through 10.0.2.2, and on the supervisor's side of the TAP device a user-mode NAT
//!   gateway built on smoltcp ([`nat`]) that lets out only what the allow-list names.
//!
//! - **`tap:IFNAME`**: the namespace, floor and `eth0` of a wire (with IFNAME's MTU), and the
//!   wire's relay moving frames between it and the existing host TAP device IFNAME, which the
//!   supervisor attaches to before the sandbox starts ([`hosttap`]).
//!
//! [`NetPlan`] is where each mode says what it needs.
//!
//! With a view, the sandbox's mount namespace also shows its own `/sys/class/net`
//! ([`crate::view::mounts::MountPlan::own_sysfs_net`]). What this does not do: redirect any
//! socket call (no mode needs it: see docs/network.md), give a sandbox without a view its own
//! `/sys/class/net`, or confine UDP on a socket the program was handed in the fallback (Landlock's network rules are
//! for TCP only).
//!
//! Read first: network_namespaces(7), netdevice(7) (`SIOCSIFFLAGS`), socket(2) and
//! address_families(7), capabilities(7) (the bounding set), landlock(7) (`LANDLOCK_ACCESS_NET_*`),
//! and for the wire the kernel's Documentation/networking/tuntap.rst.

mod floor;
pub mod frame;
pub mod hosttap;
pub mod hub;
mod loopback;
pub mod nat;
mod plan;
pub mod relay;
pub mod tap;

pub use loopback::bring_up_loopback;
pub use plan::NetPlan;
