//! The redirect filter: classic BPF that returns `SECCOMP_RET_TRAP` for the calls a policy
//! redirects, unless they come from the runtime's own code.
//!
//! seccompiler cannot test the instruction pointer, so this one is written by hand. It
//! branches on the call number first: a number that is not redirected is allowed without
//! reading the instruction pointer or any argument, which keeps it in the host kernel's
//! seccomp action cache (`seccomp_cache_prepare`), so untrapped calls cost almost nothing.
//! See `seccomp(2)` and `Documentation/userspace-api/seccomp_filter.rst`.

use core::ops::Range;
use kernel_host::redirect::{ArgTest, Rule};

/// One classic BPF instruction (`struct sock_filter`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}
const _: () = assert!(core::mem::size_of::<SockFilter>() == 8);

pub use kernel_host::redirect::TRAP_DATA;

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGE_K: u16 = 0x35;
const BPF_JGT_K: u16 = 0x25;
const BPF_JSET_K: u16 = 0x45;
const BPF_RET_K: u16 = 0x06;

const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const ENOSYS: u32 = 38;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// Calls with this bit are the x32 ABI: never redirected, never allowed.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_IP: u32 = 8;
const fn off_arg_lo(arg: u8) -> u32 {
    16 + 8 * arg as u32
}

fn stmt(code: u16, k: u32) -> SockFilter {
    SockFilter { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter { code, jt, jf, k }
}

/// Builds the filter for `rules`; calls made from `runtime_code` are always allowed.
///
/// # Panics
/// If the runtime's code range crosses a 4 GiB boundary (the build places it so it never
/// does), or a rule's block is too long for a BPF jump.
pub fn redirect_program(rules: &[Rule], runtime_code: Range<u64>) -> Vec<SockFilter> {
    let hi = (runtime_code.start >> 32) as u32;
    assert_eq!(hi, ((runtime_code.end - 1) >> 32) as u32, "runtime code crosses a 4 GiB boundary");
    let trap = SECCOMP_RET_TRAP | u32::from(TRAP_DATA);
    let allow = stmt(BPF_RET_K, SECCOMP_RET_ALLOW);

    let mut p = vec![
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        // Other architectures are the floor's to refuse; this filter only redirects.
        jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        allow,
        stmt(BPF_LD_W_ABS, OFF_NR),
        jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1),
        stmt(BPF_RET_K, SECCOMP_RET_ERRNO | ENOSYS),
    ];
    // A binary search on the number, down to short runs of `if nr == N { <argument test>;
    // goto ip_check }`: a redirected call, which the host's cache cannot answer, runs about
    // thirty instructions whatever its number, where a chain in number order made `openat`
    // and `newfstatat` (from the program and from the runtime alike) walk past seventy rules.
    let mut rules = rules.to_vec();
    rules.sort_by_key(|r| r.nr);
    // The first rule for a number is the one a chain would have reached.
    rules.dedup_by_key(|r| r.nr);
    let mut to_patch = Vec::new();
    search(&mut p, &rules, &mut to_patch);
    let ip_check = p.len();
    for at in to_patch {
        p[at].k = (ip_check - at - 1) as u32;
    }
    p.extend([
        stmt(BPF_LD_W_ABS, OFF_IP + 4),
        jump(BPF_JEQ_K, hi, 0, 3),
        stmt(BPF_LD_W_ABS, OFF_IP),
        jump(BPF_JGE_K, runtime_code.start as u32, 0, 1),
        jump(BPF_JGE_K, runtime_code.end as u32, 0, 1),
        stmt(BPF_RET_K, trap),
        allow,
    ]);
    p
}

/// Rules at most this many are tested one after the other rather than split further.
const RUN: usize = 3;

/// Emits the search over `rules` (sorted, one per number): each half of the range is split at
/// its middle number until a short run is left, whose rules are tested in turn and which
/// ends in ALLOW. Each rule's block ends in a `ja` to the instruction-pointer check, whose
/// position goes in `to_patch`. Jumps to the upper half are `ja`s: a BPF conditional jump
/// reaches 255 instructions at most.
fn search(p: &mut Vec<SockFilter>, rules: &[Rule], to_patch: &mut Vec<usize>) {
    if rules.len() > RUN {
        let (low, high) = rules.split_at(rules.len() / 2);
        // `nr >= pivot`: take the `ja` to the upper half; otherwise skip it.
        p.push(jump(BPF_JGE_K, high[0].nr, 0, 1));
        let to_high = p.len();
        p.push(stmt(BPF_JMP_JA, 0));
        search(p, low, to_patch);
        p[to_high].k = (p.len() - to_high - 1) as u32;
        search(p, high, to_patch);
        return;
    }
    for rule in rules {
        let block = arg_block(rule.test);
        let skip = u8::try_from(block.len() + 1).expect("rule block too long");
        p.push(jump(BPF_JEQ_K, rule.nr, 0, skip));
        p.extend(block);
        to_patch.push(p.len());
        p.push(stmt(BPF_JMP_JA, 0));
    }
    p.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
}

/// The argument test of a rule: falls through to the `ja ip_check` that follows it when the
/// call should trap, returns ALLOW otherwise.
fn arg_block(test: ArgTest) -> Vec<SockFilter> {
    let allow = stmt(BPF_RET_K, SECCOMP_RET_ALLOW);
    match test {
        ArgTest::Always => vec![],
        ArgTest::Refuse { errno } => vec![stmt(BPF_RET_K, SECCOMP_RET_ERRNO | u32::from(errno))],
        ArgTest::InRange { arg, lo, hi } => vec![
            stmt(BPF_LD_W_ABS, off_arg_lo(arg)),
            jump(BPF_JGE_K, lo, 0, 1),
            jump(BPF_JGT_K, hi, 0, 1),
            allow,
        ],
        ArgTest::MaskClear { arg, mask } => {
            assert!(mask >> 32 == 0, "only low-word masks are supported");
            vec![stmt(BPF_LD_W_ABS, off_arg_lo(arg)), jump(BPF_JSET_K, mask as u32, 0, 1), allow]
        }
        ArgTest::NonZero { arg } => vec![
            stmt(BPF_LD_W_ABS, off_arg_lo(arg)),
            jump(BPF_JEQ_K, 0, 0, 3),
            stmt(BPF_LD_W_ABS, off_arg_lo(arg) + 4),
            jump(BPF_JEQ_K, 0, 0, 1),
            allow,
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel_host::Config;

    /// Runs a program the way the kernel would, on one `seccomp_data`.
    fn run(p: &[SockFilter], nr: u32, ip: u64, args: [u64; 6]) -> u32 {
        let mut data = Vec::new();
        data.extend(nr.to_ne_bytes());
        data.extend(AUDIT_ARCH_X86_64.to_ne_bytes());
        data.extend(ip.to_ne_bytes());
        for a in args {
            data.extend(a.to_ne_bytes());
        }
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = p[pc];
            pc += 1;
            match i.code {
                BPF_LD_W_ABS => {
                    let o = i.k as usize;
                    acc = u32::from_ne_bytes(data[o..o + 4].try_into().unwrap());
                }
                BPF_JMP_JA => pc += i.k as usize,
                BPF_JEQ_K | BPF_JGE_K | BPF_JGT_K | BPF_JSET_K => {
                    let taken = match i.code {
                        BPF_JEQ_K => acc == i.k,
                        BPF_JGE_K => acc >= i.k,
                        BPF_JGT_K => acc > i.k,
                        _ => acc & i.k != 0,
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                BPF_RET_K => return i.k,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    const RT: Range<u64> = 0x6f00_0040_0000..0x6f00_0050_0000;
    const TRAP: u32 = SECCOMP_RET_TRAP | TRAP_DATA as u32;

    #[test]
    fn redirected_calls_trap_except_from_the_runtime() {
        let cfg = Config { hostname: Some("h".into()), trace_fd: Some(1023), ..Config::default() };
        let p = redirect_program(&kernel_host::redirect::rules(&cfg), RT);
        let uname = 63;
        assert_eq!(run(&p, uname, 0x40_1000, [0; 6]), TRAP);
        assert_eq!(run(&p, uname, RT.start + 10, [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, uname, RT.end, [0; 6]), TRAP);
        assert_eq!(run(&p, uname, 0x7f00_0040_0010, [0; 6]), TRAP);
        assert_eq!(run(&p, 110 /* getppid */, 0x40_1000, [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, 3 /* close */, 0x40_1000, [4, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, 3, 0x40_1000, [1023, 0, 0, 0, 0, 0]), TRAP);
        assert_eq!(run(&p, 3, 0x40_1000, [1022, 0, 0, 0, 0, 0]), TRAP);
        assert_eq!(run(&p, 3, 0x40_1000, [1024, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, 3, 0x40_1000, [1021, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, 56 /* clone */, 0x40_1000, [0x100, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, 56, 0x40_1000, [17, 0, 0, 0, 0, 0]), TRAP);
        assert_eq!(run(&p, 14 /* sigprocmask */, 0x40_1000, [0, 0, 8, 8, 0, 0]), TRAP);
        assert_eq!(run(&p, 14, 0x40_1000, [0, 1 << 32, 0, 8, 0, 0]), TRAP);
        assert_eq!(run(&p, X32_SYSCALL_BIT | 63, 0x40_1000, [0; 6]), SECCOMP_RET_ERRNO | ENOSYS);
    }

    /// What the filter must answer, from the rules' documented meaning.
    fn expected(rules: &[Rule], nr: u32, ip: u64, args: [u64; 6]) -> u32 {
        let trap = if RT.contains(&ip) { SECCOMP_RET_ALLOW } else { TRAP };
        let Some(rule) = rules.iter().find(|r| r.nr == nr) else { return SECCOMP_RET_ALLOW };
        let low = |arg: u8| args[usize::from(arg)] as u32;
        match rule.test {
            ArgTest::Always => trap,
            ArgTest::Refuse { errno } => SECCOMP_RET_ERRNO | u32::from(errno),
            ArgTest::InRange { arg, lo, hi } if (lo..=hi).contains(&low(arg)) => trap,
            ArgTest::MaskClear { arg, mask } if args[usize::from(arg)] & mask == 0 => trap,
            ArgTest::NonZero { arg } if args[usize::from(arg)] != 0 => trap,
            _ => SECCOMP_RET_ALLOW,
        }
    }

    #[test]
    fn every_number_gets_its_rules_answer() {
        let view = Config {
            mounts: vec![kernel_host::config::Mount {
                guest: "/".into(),
                kind: kernel_host::config::MountKind::ReadOnly { host: "/".into() },
            }],
            ..Config::default()
        };
        let all = Config {
            reproducible: Some(Default::default()),
            seed: Some(1),
            trace_fd: Some(1023),
            ..view.clone()
        };
        for cfg in [Config::default(), view, all] {
            let rules = kernel_host::redirect::rules(&cfg);
            let p = redirect_program(&rules, RT);
            let args = [[0; 6], [1023, 1 << 32, 8, 0x100, 17, 1], [4, 0, 0, 0, 0, 0], [u64::MAX; 6]];
            for nr in 0..512 {
                for ip in [0x40_1000, RT.start + 10, RT.end] {
                    for a in args {
                        assert_eq!(
                            run(&p, nr, ip, a),
                            expected(&rules, nr, ip, a),
                            "nr {nr} ip {ip:#x} args {a:?}"
                        );
                    }
                }
            }
        }
    }
}
