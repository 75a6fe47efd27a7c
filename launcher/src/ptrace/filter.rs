//! The redirect filter of the ptrace backend: the in-process filter's rules, minus the calls
//! that only the in-process runtime needs to see, with `SECCOMP_RET_TRACE` where it returns
//! `SECCOMP_RET_TRAP`, and no trusted code range (nothing in the process is cloister's).

use interposer::SockFilter;
use kernel_host::redirect::{Rule, TRAP_DATA};
use kernel_host::Config;
use syscalls::Sysno;

const BPF_RET_K: u16 = 0x06;
const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;

/// Calls the in-process runtime redirects for itself: the host loads each image (so the
/// program break and `/proc/self` need no help), there is no runtime signal to hide, and new
/// processes and threads are reported by ptrace events. (`execve` stays: the view decides
/// which host file runs.)
const RUNTIME_ONLY: [Sysno; 6] =
    [Sysno::brk, Sysno::fork, Sysno::clone, Sysno::clone3, Sysno::rt_sigaction, Sysno::rt_sigprocmask];

/// The calls this backend traces under `config`.
pub fn rules(config: &Config) -> Vec<Rule> {
    kernel_host::redirect::rules(config)
        .into_iter()
        .filter(|r| !RUNTIME_ONLY.iter().any(|s| s.id() as u32 == r.nr))
        .collect()
}

/// The filter for `rules`.
pub fn program(rules: &[Rule]) -> Vec<SockFilter> {
    // Page 0 cannot be mapped (`vm.mmap_min_addr`): no call comes from there.
    let mut p = interposer::redirect_program(rules, 0..1);
    let trap = SECCOMP_RET_TRAP | u32::from(TRAP_DATA);
    for insn in p.iter_mut().filter(|i| i.code == BPF_RET_K && i.k == trap) {
        insn.k = SECCOMP_RET_TRACE | u32::from(TRAP_DATA);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_instead_of_trapping_and_leaves_the_runtime_calls_alone() {
        let config = Config { hostname: Some("h".into()), ..Config::default() };
        let rules = rules(&config);
        assert!(rules.iter().any(|r| r.nr == Sysno::uname.id() as u32));
        assert!(!rules.iter().any(|r| r.nr == Sysno::brk.id() as u32));
        let p = program(&rules);
        assert!(p.iter().any(|i| i.code == BPF_RET_K && i.k == SECCOMP_RET_TRACE | u32::from(TRAP_DATA)));
        assert!(!p.iter().any(|i| i.code == BPF_RET_K && i.k & 0xffff_0000 == SECCOMP_RET_TRAP));
    }
}
