//! [`NetPlan`]: what a network mode asks of the sandbox's set-up, prepared before the fork (the
//! child only installs and enforces).

use super::floor;
use super::hosttap::HostTap;
use super::nat;
use super::tap::TapConfig;
use crate::failure::Failure;
use crate::landlock::{FloorStatus, PreparedFloor};
use policies::{AllowRule, InterfaceAddress, NetMode};
use seccompiler::BpfProgram;
use std::path::Path;

/// The network part of a sandbox's set-up.
pub struct NetPlan {
    mode: NetMode,
    /// Seccomp programs for a sandbox in its own network namespace.
    in_namespace: Vec<BpfProgram>,
    /// Seccomp programs for a sandbox that wanted one and was refused.
    without_namespace: Vec<BpfProgram>,
    /// The Landlock layer for that case too (`None` when the mode needs none).
    without_namespace_landlock: Option<PreparedFloor>,
    /// The wire's or the NAT's TAP device, which the sandbox's first process makes.
    tap: Option<TapConfig>,
    /// Where a `nat` sandbox may go.
    allow: Vec<AllowRule>,
    /// The host TAP device of `tap:IFNAME`, attached before the sandbox starts.
    host_tap: Option<HostTap>,
}

impl NetPlan {
    /// The plan for `mode`, with the sandbox's `address` on a wire or a host TAP device (which
    /// only they take, and need) and the `allow`-list of a NAT (which only `nat` takes): for `none`,
    /// both floors (with and without a namespace) are built now, since whether the host gives
    /// the namespace is only known once the child tried. A wire and a NAT have no fallback:
    /// without the namespace they have no interface to give. `tap:IFNAME` attaches to the host's
    /// device here, so that a missing one costs nothing but the line that says so.
    pub fn prepare(
        mode: NetMode,
        address: Option<InterfaceAddress>,
        allow: Vec<AllowRule>,
    ) -> Result<NetPlan, Failure> {
        if let Some(first) = allow.first().filter(|_| !mode.takes_allow_list()) {
            return Err(Failure::Setup(format!(
                "--allow {first}: the network mode {mode} lets nothing out to allow; add --net nat, \
                 or leave --allow out"
            )));
        }
        let mut host_tap = None;
        let tap = match (&mode, address) {
            (NetMode::Wire(_), Some(address)) => Some(TapConfig::new(address)),
            (NetMode::Tap(name), Some(address)) => {
                let device = HostTap::open(name)?;
                let config = TapConfig::new(address).with_mtu(device.mtu());
                host_tap = Some(device);
                Some(config)
            }
            (NetMode::Tap(name), None) => {
                return Err(Failure::Setup(format!(
                    "--net tap:{name} needs the sandbox's address on the device's network: add --ip \
                     ADDR/LEN (such as --ip 10.77.0.2/24), or \"address\" in the policy's network \
                     section"
                )))
            }
            (NetMode::Wire(path), None) => {
                return Err(Failure::Setup(format!(
                    "--net wire:{} needs the sandbox's address on the wire: add --ip ADDR/LEN (such \
                     as --ip 10.9.0.2/24), or \"address\" in the policy's network section",
                    path.display()
                )))
            }
            (_, Some(address)) => {
                return Err(Failure::Setup(format!(
                    "--ip {address}: the network mode {mode} has no interface to address; add --net \
                     wire:PATH or --net tap:IFNAME, or leave --ip out"
                )))
            }
            (NetMode::Nat, None) => Some(TapConfig::with_gateway(nat::GUEST, nat::GATEWAY)),
            (_, None) => None,
        };
        let mut plan = NetPlan {
            mode,
            in_namespace: Vec::new(),
            without_namespace: Vec::new(),
            without_namespace_landlock: None,
            tap,
            allow,
            host_tap,
        };
        match plan.mode {
            NetMode::Host => {}
            NetMode::Wire(_) | NetMode::Nat | NetMode::Tap(_) => {
                let seccomp = |e: crate::floor::FloorError| Failure::Setup(e.to_string());
                plan.in_namespace = vec![
                    floor::families(floor::IN_NAMESPACE).map_err(seccomp)?,
                    floor::raw_ip().map_err(seccomp)?,
                ];
            }
            NetMode::None => {
                let seccomp = |e: crate::floor::FloorError| Failure::Setup(e.to_string());
                plan.in_namespace = vec![
                    floor::families(floor::IN_NAMESPACE).map_err(seccomp)?,
                    floor::raw_ip().map_err(seccomp)?,
                ];
                plan.without_namespace = vec![floor::families(floor::WITHOUT_NAMESPACE).map_err(seccomp)?];
                let landlock = floor::tcp_lockout().map_err(|e| {
                    Failure::Setup(format!("cannot prepare the network's Landlock layer: {e}"))
                })?;
                plan.without_namespace_landlock = Some(landlock);
            }
        }
        Ok(plan)
    }

    /// The mode.
    pub fn mode(&self) -> &NetMode {
        &self.mode
    }

    /// Whether the sandbox should get a network namespace of its own, with its loopback up.
    pub fn wants_namespace(&self) -> bool {
        match self.mode {
            NetMode::None | NetMode::Wire(_) | NetMode::Nat | NetMode::Tap(_) => true,
            NetMode::Host => false,
        }
    }

    /// The TAP device the sandbox's first process makes in its namespace (a wire, a NAT, a host
    /// TAP device).
    pub fn tap(&self) -> Option<&TapConfig> {
        self.tap.as_ref()
    }

    /// The allow-list of a `nat` sandbox (empty for the other modes).
    pub fn allow(&self) -> &[AllowRule] {
        &self.allow
    }

    /// For `nat` with a view whose state directory is `state`: writes the sandbox's
    /// `/etc/resolv.conf` there (naming the gateway's DNS) and returns its path, for the view to
    /// show over the host's.
    pub fn resolv_conf(&self, state: Option<&Path>) -> Result<Option<std::path::PathBuf>, Failure> {
        let Some(state) = state.filter(|_| self.mode == NetMode::Nat) else { return Ok(None) };
        let path = state.join("resolv.conf");
        let text = format!(
            "# cloister --net nat: the gateway's DNS answers the allowed names\nnameserver {}\n",
            nat::DNS
        );
        std::fs::write(&path, text)
            .map_err(|e| Failure::Setup(format!("cannot write {}: {e}", path.display())))?;
        Ok(Some(path))
    }

    /// For a mode with an interface (a wire, a NAT, a host TAP device) and a view whose state
    /// directory is `state`: writes the sandbox's own `/etc/hosts` there (its loopback names,
    /// and `hostname` at its interface's address, as a host's installer writes it) and returns
    /// its path, for the view to show over the host's, whose names are the host's addresses.
    pub fn hosts_file(
        &self,
        state: Option<&Path>,
        hostname: &str,
    ) -> Result<Option<std::path::PathBuf>, Failure> {
        let (Some(state), Some(tap)) = (state, &self.tap) else { return Ok(None) };
        let path = state.join("hosts");
        let text = format!(
            "# cloister: the sandbox's own names\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{}\t{hostname}\n",
            tap.address()
        );
        std::fs::write(&path, text)
            .map_err(|e| Failure::Setup(format!("cannot write {}: {e}", path.display())))?;
        Ok(Some(path))
    }

    /// The host TAP device of `tap:IFNAME`, for the relay (once; it is the supervisor's, not
    /// the sandbox's).
    pub fn take_host_tap(&mut self) -> Option<HostTap> {
        self.host_tap.take()
    }

    /// The hub a wire joins.
    pub fn hub(&self) -> Option<&Path> {
        match &self.mode {
            NetMode::Wire(path) => Some(path),
            _ => None,
        }
    }

    /// What the sandbox gets instead when the host refuses the namespace, for the line that
    /// says so.
    pub fn without_namespace_note(&self) -> String {
        let tcp = match self.without_namespace_landlock.as_ref().map(PreparedFloor::status) {
            Some(FloorStatus::Enforced { .. }) => "and Landlock refuses TCP bind and connect",
            _ => "and this host's Landlock cannot refuse TCP on a socket the program is handed (ABI 4)",
        };
        format!(
            "--net {} refuses IPv4, IPv6, packet and netlink sockets instead (so the program has no \
             loopback either), {tcp}",
            self.mode
        )
    }

    /// The seccomp programs the sandbox installs after the floor's, depending on whether it got
    /// its own network namespace.
    pub fn programs(&self, in_namespace: bool) -> &[BpfProgram] {
        if in_namespace {
            &self.in_namespace
        } else {
            &self.without_namespace
        }
    }

    /// The Landlock layer the sandbox enforces when it did not get a namespace it wanted.
    pub fn landlock_without_namespace(&self) -> Option<&PreparedFloor> {
        self.without_namespace_landlock.as_ref()
    }

    /// In the sandbox's first process, before it execs: drops the capabilities that reach the
    /// host's network (see [`floor::drop_net_capabilities`]) for every mode but `host`.
    /// Async-signal-safe.
    pub fn drop_capabilities(&self) {
        if self.mode != NetMode::Host {
            floor::drop_net_capabilities();
        }
    }
}
