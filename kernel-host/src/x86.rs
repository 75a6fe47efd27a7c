//! Just enough of the x86-64 encoding to patch an instruction that must not trap any more: the
//! in-process runtime replaces a learned call site of the program interpreter with a jump to a
//! stub (`interposer/rt/src/prepatch.rs`). A `syscall` site's `mov eax, NR` is five bytes, the
//! jump's size; an `rdtsc` is two, so the jump also covers the instructions after it, which
//! the stub then runs at its own address. Only plain instructions move: no prefix but REX, no
//! branch, no call, nothing that reads the instruction pointer except a RIP-relative operand,
//! whose displacement is adjusted. Anything else leaves the site as it is (it keeps trapping).
//!
//! See the Intel SDM, volume 2, chapter 2 ("Instruction format") and appendix A (opcode map).

use alloc::vec::Vec;

/// `rdtsc`.
pub const RDTSC: [u8; 2] = [0x0f, 0x31];
/// Bytes of `jmp rel32`, which replaces a site.
pub const JUMP_LEN: usize = 5;
/// Bytes of the stub a `syscall` site jumps to (see [`syscall_stub`]).
pub const SYSCALL_STUB_LEN: usize = 48;
/// The most bytes an `rdtsc` site's jump may cover: the `rdtsc` and the instructions it moves.
pub const RDTSC_SITE_MAX: usize = 16;

/// One instruction that can run at another address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Movable {
    /// Its length in bytes.
    pub len: usize,
    /// Where its 32-bit RIP-relative displacement lies in it, if it has one.
    pub rip_disp: Option<usize>,
}

/// Decodes the instruction at the start of `code` if it is one of the plain forms that mean
/// the same wherever they run (given a RIP-relative displacement adjusted): ALU and `mov`
/// forms with a ModRM operand, shifts and ALU ops by an immediate, `mov` of an immediate,
/// `push`/`pop` of a register, `nop`, `movzx`/`movsx`, `imul`.
pub fn movable(code: &[u8]) -> Option<Movable> {
    let mut i = 0;
    let rex = match *code.first()? {
        b @ 0x40..=0x4f => {
            i = 1;
            b
        }
        _ => 0,
    };
    let op = *code.get(i)?;
    i += 1;
    // (has a ModRM byte, immediate bytes, the ModRM reg field it requires)
    let (modrm, imm, reg): (bool, usize, Option<u8>) = match op {
        0x01 | 0x03 | 0x09 | 0x0b | 0x21 | 0x23 | 0x29 | 0x2b | 0x31 | 0x33 | 0x39 | 0x3b | 0x85 | 0x88
        | 0x89 | 0x8a | 0x8b | 0x8d => (true, 0, None),
        0x80 | 0x83 | 0xc0 | 0xc1 => (true, 1, None),
        0xc6 => (true, 1, Some(0)),
        0x81 | 0x69 => (true, 4, None),
        0xc7 => (true, 4, Some(0)),
        0xb8..=0xbf => (false, if rex & 8 != 0 { 8 } else { 4 }, None),
        0x50..=0x5f | 0x90 => (false, 0, None),
        0x0f => {
            let op2 = *code.get(i)?;
            i += 1;
            match op2 {
                0xb6 | 0xb7 | 0xbe | 0xbf | 0xaf => (true, 0, None),
                0x1f => (true, 0, Some(0)),
                _ => return None,
            }
        }
        _ => return None,
    };
    let mut rip_disp = None;
    if modrm {
        let m = *code.get(i)?;
        i += 1;
        let (md, r, rm) = (m >> 6, (m >> 3) & 7, m & 7);
        if reg.is_some_and(|want| want != r) || (op == 0x8d && md == 3) {
            return None;
        }
        if md != 3 {
            if rm == 4 {
                let sib = *code.get(i)?;
                i += 1;
                if md == 0 && sib & 7 == 5 {
                    i += 4;
                }
            } else if md == 0 && rm == 5 {
                rip_disp = Some(i);
                i += 4;
            }
            i += match md {
                1 => 1,
                2 => 4,
                _ => 0,
            };
        }
    }
    i += imm;
    (i <= code.len()).then_some(Movable { len: i, rip_disp })
}

/// The instructions an `rdtsc` at the start of `code` moves when its jump goes in: as many
/// movable ones as reach [`JUMP_LEN`] bytes with the `rdtsc`. Returns the bytes the jump
/// covers and each moved instruction (its offset in `code`, and its decoding).
pub fn rdtsc_site(code: &[u8]) -> Option<(usize, Vec<(usize, Movable)>)> {
    if code.get(..2)? != RDTSC {
        return None;
    }
    let mut at = RDTSC.len();
    let mut moved = Vec::new();
    while at < JUMP_LEN {
        let m = movable(code.get(at..)?)?;
        moved.push((at, m));
        at += m.len;
    }
    (at <= RDTSC_SITE_MAX).then_some((at, moved))
}

/// For each `(from, to)` of `ranges`, whether some direct jump or call in `code` (whose first
/// byte is at address `base`) may land strictly between `from` and `to`. Every byte is tried
/// as the start of one, so no real branch is missed; a false match only leaves a site
/// unpatched. One pass over the code answers every range: `ld.so`'s code is 150 KiB, and a
/// pass per site cost a sandbox's first copy about 7 ms.
pub fn jumped_into(code: &[u8], base: u64, ranges: &[(u64, u64)]) -> Vec<bool> {
    let mut hit = alloc::vec![false; ranges.len()];
    let (Some(lo), Some(hi)) = (ranges.iter().map(|r| r.0).min(), ranges.iter().map(|r| r.1).max()) else {
        return hit;
    };
    // Most bytes start no branch: a table, not a match, so that the scan seldom mispredicts.
    const NONE: u8 = 0;
    const REL8: u8 = 1;
    const REL32: u8 = 2;
    const TWO_BYTE: u8 = 3;
    const KIND: [u8; 256] = {
        let mut k = [NONE; 256];
        let mut op = 0x70;
        while op <= 0x7f {
            k[op] = REL8;
            op += 1;
        }
        k[0xe0] = REL8;
        k[0xe1] = REL8;
        k[0xe2] = REL8;
        k[0xe3] = REL8;
        k[0xeb] = REL8;
        k[0xe8] = REL32;
        k[0xe9] = REL32;
        k[0x0f] = TWO_BYTE;
        k
    };
    let rel32 =
        |at: usize| code.get(at..at + 4).map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])));
    for (i, &op) in code.iter().enumerate() {
        let kind = KIND[usize::from(op)];
        if kind == NONE {
            continue;
        }
        let here = base as i64 + i as i64;
        let target = match kind {
            REL32 => rel32(i + 1).map(|r| here + 5 + r),
            REL8 => code.get(i + 1).map(|&r| here + 2 + i64::from(r as i8)),
            _ if matches!(code.get(i + 1), Some(0x80..=0x8f)) => rel32(i + 2).map(|r| here + 6 + r),
            _ => None,
        };
        let Some(t) = target.filter(|&t| (lo as i64) < t && t < hi as i64) else { continue };
        for (h, &(from, to)) in hit.iter_mut().zip(ranges) {
            *h |= (from as i64) < t && t < to as i64;
        }
    }
    hit
}

/// `jmp rel32` from `at` to `to`, or `None` when they are 2 GiB or more apart.
pub fn jump(at: u64, to: u64) -> Option<[u8; JUMP_LEN]> {
    let rel = i32::try_from((to as i64).wrapping_sub(at as i64 + JUMP_LEN as i64)).ok()?;
    let mut out = [0xe9, 0, 0, 0, 0];
    out[1..].copy_from_slice(&rel.to_le_bytes());
    Some(out)
}

/// Whether the movable instruction `insn` may write `rax` (or part of it: `ah` too). Errs
/// towards yes.
fn writes_rax(insn: &[u8]) -> bool {
    let (rex, rest) = match insn.first() {
        Some(&b @ 0x40..=0x4f) => (b, &insn[1..]),
        _ => (0, insn),
    };
    let (r, b) = ((rex >> 2) & 1, rex & 1);
    let Some(&op) = rest.first() else { return true };
    let modrm = |at: usize| rest.get(at).map(|&m| (m >> 6, ((m >> 3) & 7) | r << 3, (m & 7) | b << 3));
    // A byte register operand numbered `n`: without a REX prefix, 4 is `ah`.
    let is_rax_byte = |n: u8| n == 0 || (rex == 0 && n == 4);
    match op {
        // Register destination in ModRM.reg.
        0x03 | 0x0b | 0x23 | 0x2b | 0x33 | 0x8b | 0x8d | 0x69 => modrm(1).is_none_or(|(_, reg, _)| reg == 0),
        0x8a => modrm(1).is_none_or(|(_, reg, _)| is_rax_byte(reg)),
        0x0f => match rest.get(1) {
            Some(0x1f) => false,
            Some(0xb6 | 0xb7 | 0xbe | 0xbf | 0xaf) => modrm(2).is_none_or(|(_, reg, _)| reg == 0),
            _ => true,
        },
        // Destination in ModRM.rm: rax only as a register operand.
        0x01 | 0x09 | 0x21 | 0x29 | 0x31 | 0x89 | 0x81 | 0x83 | 0xc1 | 0xc7 => {
            modrm(1).is_none_or(|(md, _, rm)| md == 3 && rm == 0)
        }
        0x88 | 0x80 | 0xc0 | 0xc6 => modrm(1).is_none_or(|(md, _, rm)| md == 3 && is_rax_byte(rm)),
        0x39 | 0x3b | 0x85 | 0x50..=0x57 => false,
        // `nop`; with REX.B, `xchg r8, rax`.
        0x90 => b != 0,
        0xb8..=0xbf => (op - 0xb8) | b << 3 == 0,
        0x58..=0x5f => (op - 0x58) | b << 3 == 0,
        _ => true,
    }
}

/// Whether `byte`, right before a site's `mov eax` (`b8`), leaves it a `mov eax`: no REX or
/// escape byte, which would make the two one other instruction. Legacy prefixes are not
/// refused: `f2`, `f3`, `66` and `64`–`67` end many instructions as ModRM or immediate bytes
/// (ld.so's `openat` follows `mov edx, esi`, `89 f2`), and refusing them would leave such
/// sites trapping.
pub fn prefix_free(byte: u8) -> bool {
    !(0x40..=0x4f).contains(&byte) && byte != 0x0f
}

/// Bytes of code a `syscall` site's `mov eax, NR` may lie before its `syscall`.
pub const SYSCALL_SITE_MAX: usize = 32;

/// A `syscall` site starting at `code`: `mov eax, NR`, then instructions that can move and
/// leave `rax` alone (the wrapper setting up its arguments), then `syscall`. Returns where the
/// `syscall` is, and the instructions between.
pub fn syscall_site(code: &[u8], nr: u32) -> Option<(usize, Vec<(usize, Movable)>)> {
    if *code.first()? != 0xb8 || code.get(1..5)? != nr.to_le_bytes() {
        return None;
    }
    let mut at = JUMP_LEN;
    let mut moved = Vec::new();
    while code.get(at..at + 2)? != [0x0f, 0x05] {
        let m = movable(code.get(at..)?)?;
        if writes_rax(&code[at..at + m.len]) {
            return None;
        }
        moved.push((at, m));
        at += m.len;
        if at + 2 > SYSCALL_SITE_MAX {
            return None;
        }
    }
    Some((at, moved))
}

/// Appends the instructions `moved` (decoded from `code`, which starts at address `from`) to
/// `out`, whose first byte will be at address `to`, with their RIP-relative displacements adjusted
/// so that their operands stay where they were. `None` if one no longer fits in 32 bits.
fn append_moved(
    out: &mut Vec<u8>,
    from: u64,
    to: u64,
    code: &[u8],
    moved: &[(usize, Movable)],
) -> Option<()> {
    for &(at, m) in moved {
        let start = out.len();
        out.extend_from_slice(code.get(at..at + m.len)?);
        if let Some(d) = m.rip_disp {
            let disp = i64::from(i32::from_le_bytes(code.get(at + d..at + d + 4)?.try_into().ok()?));
            // The operand's address: the next instruction's address plus the displacement.
            let target = (from + (at + m.len) as u64) as i64 + disp;
            let next = (to + (start + m.len) as u64) as i64;
            let new = i32::try_from(target - next).ok()?;
            out[start + d..start + d + 4].copy_from_slice(&new.to_le_bytes());
        }
    }
    Some(())
}

/// The stub a `syscall` site at `site` (its `mov eax, NR`, with the `syscall` right after)
/// jumps to, placed at `stub`: it steps over the red zone and calls `entry` with the call
/// number in `eax`. After the return address the stub holds the site's resumption as an offset
/// from that word (so that the stub means the same wherever its image lands), `entry`, and
/// `test`, which says on which arguments the redirect filter traps the call.
pub fn syscall_stub(site: u64, stub: u64, nr: u32, entry: u64, test: [u8; 16]) -> [u8; SYSCALL_STUB_LEN] {
    let mut code = [0u8; SYSCALL_STUB_LEN];
    let out = moved_syscall_stub(site, site + 5, stub, &[], &[], nr, entry, test).unwrap_or_default();
    code.copy_from_slice(&out[..SYSCALL_STUB_LEN]);
    code
}

/// [`syscall_stub`] for a site whose `syscall` lies at `syscall`, after the instructions
/// `moved` (decoded from `code`, the site's bytes), which the stub runs first, where they were
/// run with the program's stack pointer.
#[allow(clippy::too_many_arguments)]
pub fn moved_syscall_stub(
    site: u64,
    syscall: u64,
    stub: u64,
    code: &[u8],
    moved: &[(usize, Movable)],
    nr: u32,
    entry: u64,
    test: [u8; 16],
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(SYSCALL_STUB_LEN + 16);
    // mov eax, NR: first, as at the site, for the moved instructions that read `rax`.
    out.push(0xb8);
    out.extend_from_slice(&nr.to_le_bytes());
    append_moved(&mut out, site, stub, code, moved)?;
    // lea rsp, [rsp - 128]: after them, which ran with the program's stack pointer.
    out.extend_from_slice(&[0x48, 0x8d, 0x64, 0x24, 0x80]);
    // call [rip + 8]: the second word after this instruction; the return address it pushes is
    // the first word's.
    out.extend_from_slice(&[0xff, 0x15, 0x08, 0, 0, 0]);
    let word = stub + out.len() as u64;
    out.extend_from_slice(&(syscall + 2).wrapping_sub(word).to_le_bytes());
    out.extend_from_slice(&entry.to_le_bytes());
    out.extend_from_slice(&test);
    Some(out)
}

/// The stub an `rdtsc` site at `site` jumps to, placed at `stub`: it calls `entry` (which
/// leaves the counter in `edx:eax` and everything else as it was) below the red zone, runs the
/// instructions the jump covered (`moved`, decoded from `code`, the site's bytes), and jumps
/// back behind them. `None` if a displacement or jump does not fit in 32 bits.
pub fn rdtsc_stub(
    site: u64,
    stub: u64,
    code: &[u8],
    covered: usize,
    moved: &[(usize, Movable)],
    entry: u64,
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    // lea rsp, [rsp - 128]; call [rip + X]; lea rsp, [rsp + 128]
    out.extend_from_slice(&[0x48, 0x8d, 0x64, 0x24, 0x80, 0xff, 0x15, 0, 0, 0, 0]);
    out.extend_from_slice(&[0x48, 0x8d, 0xa4, 0x24, 0x80, 0, 0, 0]);
    append_moved(&mut out, site, stub, code, moved)?;
    let back = jump(stub + out.len() as u64, site + covered as u64)?;
    out.extend_from_slice(&back);
    while out.len() % 8 != 0 {
        out.push(0xcc);
    }
    let word = out.len();
    out.extend_from_slice(&entry.to_le_bytes());
    // The call's displacement: from the end of the call (byte 11) to the word.
    out[7..11].copy_from_slice(&((word - 11) as i32).to_le_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_instructions_are_measured() {
        // shl rdx, 32
        assert_eq!(movable(&[0x48, 0xc1, 0xe2, 0x20]), Some(Movable { len: 4, rip_disp: None }));
        // or rax, rdx
        assert_eq!(movable(&[0x48, 0x09, 0xd0]).map(|m| m.len), Some(3));
        // xor ecx, ecx
        assert_eq!(movable(&[0x31, 0xc9]).map(|m| m.len), Some(2));
        // mov rdi, [rbp - 0xb0]
        assert_eq!(movable(&[0x48, 0x8b, 0xbd, 0x50, 0xff, 0xff, 0xff]).map(|m| m.len), Some(7));
        // mov r10, [rbp - 0x268]
        assert_eq!(movable(&[0x4c, 0x8b, 0x95, 0x98, 0xfd, 0xff, 0xff]).map(|m| m.len), Some(7));
        // mov r8d, 0x20000000
        assert_eq!(movable(&[0x41, 0xb8, 0, 0, 0, 0x20]).map(|m| m.len), Some(6));
        // movabs rax, imm64
        assert_eq!(movable(&[0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8]).map(|m| m.len), Some(10));
        // mov esi, [rbx + 0x2e0]
        assert_eq!(movable(&[0x8b, 0xb3, 0xe0, 0x02, 0, 0]).map(|m| m.len), Some(6));
        // mov rax, [rsp + 8] (SIB, disp8)
        assert_eq!(movable(&[0x48, 0x8b, 0x44, 0x24, 0x08]).map(|m| m.len), Some(5));
    }

    #[test]
    fn rip_relative_operands_are_found() {
        // andb [rip + 0x18652], 0xdf
        assert_eq!(
            movable(&[0x80, 0x25, 0x52, 0x86, 0x01, 0x00, 0xdf]),
            Some(Movable { len: 7, rip_disp: Some(2) })
        );
        // lea r13, [rip + 0x17e55]
        assert_eq!(
            movable(&[0x4c, 0x8d, 0x2d, 0x55, 0x7e, 0x01, 0x00]),
            Some(Movable { len: 7, rip_disp: Some(3) })
        );
    }

    #[test]
    fn branches_prefixes_and_truncations_are_refused() {
        for code in [
            &[0xe8, 0, 0, 0, 0][..],   // call
            &[0xeb, 0x10],             // jmp rel8
            &[0x74, 0x10],             // je
            &[0x0f, 0x84, 0, 0, 0, 0], // je rel32
            &[0xff, 0xe0],             // jmp rax
            &[0xc3],                   // ret
            &[0x66, 0x89, 0xc0],       // operand-size prefix
            &[0xf3, 0x48, 0xab],       // rep stosq
            &[0x0f, 0x05],             // syscall
            &[0x0f, 0x31],             // rdtsc
            &[0x48, 0x8b],             // no ModRM
            &[0x48, 0x8b, 0x05, 0, 0], // displacement cut short
            &[0xc7, 0xc8, 0, 0, 0, 0], // c7 /1 is not mov
            &[0x48, 0x8d, 0xc0],       // lea with a register operand
        ] {
            assert_eq!(movable(code), None, "{code:02x?}");
        }
    }

    #[test]
    fn an_rdtsc_site_covers_whole_instructions() {
        // rdtsc; shl rdx, 32; or rax, rdx
        let code = [0x0f, 0x31, 0x48, 0xc1, 0xe2, 0x20, 0x48, 0x09, 0xd0];
        let (covered, moved) = rdtsc_site(&code).unwrap();
        assert_eq!(covered, 6);
        assert_eq!(moved, alloc::vec![(2, Movable { len: 4, rip_disp: None })]);
        // rdtsc; xor ecx, ecx; mov r9, rax
        let (covered, moved) = rdtsc_site(&[0x0f, 0x31, 0x31, 0xc9, 0x49, 0x89, 0xc1]).unwrap();
        assert_eq!((covered, moved.len()), (7, 2));
        // rdtsc; ret
        assert_eq!(rdtsc_site(&[0x0f, 0x31, 0xc3, 0x90, 0x90]), None);
        // not an rdtsc
        assert_eq!(rdtsc_site(&[0x0f, 0x05, 0x90, 0x90, 0x90]), None);
    }

    #[test]
    fn jumps_into_a_site_are_found() {
        // At 0x100: jmp +3 (to 0x105); at 0x102: rdtsc and what it covers, 0x102..0x108.
        let code = [0xeb, 0x03, 0x0f, 0x31, 0x48, 0xc1, 0xe2, 0x20];
        // One pass answers every range: only the rdtsc's range is landed in.
        assert_eq!(
            jumped_into(&code, 0x100, &[(0x102, 0x108), (0x100, 0x102), (0x104, 0x105)]),
            [true, false, false]
        );
        // A jump to the site's first byte is fine: the patch's jump starts there.
        let code = [0xeb, 0x00, 0x0f, 0x31, 0x48, 0xc1, 0xe2, 0x20];
        assert_eq!(jumped_into(&code, 0x100, &[(0x102, 0x108)]), [false]);
        // call rel32 backwards into the site.
        let mut code = alloc::vec![0x0f, 0x31, 0x48, 0xc1, 0xe2, 0x20, 0xe8];
        code.extend_from_slice(&(-9i32).to_le_bytes());
        assert_eq!(jumped_into(&code, 0, &[(0, 6), (8, 20)]), [true, false]);
        assert!(jumped_into(&code, 0, &[]).is_empty());
    }

    #[test]
    fn a_syscall_stub_resumes_behind_the_site_wherever_it_lands() {
        let a = syscall_stub(0x1000, 0x9000, 257, 0x6f00_0000_1234, [7; 16]);
        let b = syscall_stub(0x0555_1000, 0x0555_9000, 257, 0x6f00_0000_1234, [7; 16]);
        assert_eq!(a, b);
        let word = i64::from_le_bytes(a[16..24].try_into().unwrap());
        assert_eq!((0x9000 + 16 + word) as u64, 0x1007);
        assert_eq!(&a[..5], &[0xb8, 1, 1, 0, 0]);
    }

    #[test]
    fn an_rdtsc_stub_keeps_rip_relative_operands_pointing_at_the_same_place() {
        // rdtsc; andb [rip + 0x100], 0xdf
        let code = [0x0f, 0x31, 0x80, 0x25, 0x00, 0x01, 0x00, 0x00, 0xdf];
        let (covered, moved) = rdtsc_site(&code).unwrap();
        assert_eq!(covered, 9);
        let (site, stub) = (0x4000u64, 0x20000u64);
        let out = rdtsc_stub(site, stub, &code, covered, &moved, 0x6f00_0000_0000).unwrap();
        // The moved `and` starts at byte 19; its operand was at site + 9 + 0x100.
        assert_eq!(&out[19..21], &[0x80, 0x25]);
        let disp = i64::from(i32::from_le_bytes(out[21..25].try_into().unwrap()));
        assert_eq!(stub as i64 + 19 + 7 + disp, site as i64 + 9 + 0x100);
        // Then the jump back behind the covered bytes.
        let rel = i64::from(i32::from_le_bytes(out[27..31].try_into().unwrap()));
        assert_eq!(out[26], 0xe9);
        assert_eq!(stub as i64 + 31 + rel, (site + 9) as i64);
        // The call reads the entry's word.
        let call = i64::from(i32::from_le_bytes(out[7..11].try_into().unwrap()));
        let word = (11 + call) as usize;
        assert_eq!(u64::from_le_bytes(out[word..word + 8].try_into().unwrap()), 0x6f00_0000_0000);
    }

    #[test]
    fn a_wrapper_that_sets_arguments_after_the_number_is_a_site() {
        // ld.so's openat: mov eax, 0x101; mov rsi, rdi; mov edi, -100; syscall
        let code = [0xb8, 0x01, 0x01, 0, 0, 0x48, 0x89, 0xfe, 0xbf, 0x9c, 0xff, 0xff, 0xff, 0x0f, 0x05];
        let (at, moved) = syscall_site(&code, 257).unwrap();
        assert_eq!((at, moved.len()), (13, 2));
        assert_eq!(syscall_site(&code, 2), None, "another number");
        // The plain shape.
        assert_eq!(
            syscall_site(&[0xb8, 0x15, 0, 0, 0, 0x0f, 0x05], 21).map(|(at, m)| (at, m.len())),
            Some((5, 0))
        );
        // Something between that writes rax, or cannot move: not a site.
        for mid in
            [&[0x48, 0x89, 0xf8][..], &[0x31, 0xc0], &[0x58], &[0x48, 0x8d, 0x05, 0, 0, 0, 0], &[0xeb, 0x00]]
        {
            let mut code = alloc::vec![0xb8, 0x15, 0, 0, 0];
            code.extend_from_slice(mid);
            code.extend_from_slice(&[0x0f, 0x05]);
            assert_eq!(syscall_site(&code, 21), None, "{mid:02x?}");
        }
        // r8 is not rax: 4c 89 c0 is mov rax, r8 (writes rax); 49 89 c0 is mov r8, rax, which
        // reads it (the stub sets rax first, as the site does).
        let mut code = alloc::vec![0xb8, 0x15, 0, 0, 0, 0x49, 0x89, 0xc0, 0x0f, 0x05];
        assert!(syscall_site(&code, 21).is_some());
        code[5] = 0x4c;
        assert_eq!(syscall_site(&code, 21), None);
        // Byte registers: without REX, 4 is ah; xchg r8, rax.
        for mid in [
            &[0x8a, 0xe2][..],
            &[0x88, 0xc4],
            &[0x80, 0xe4, 0x0f],
            &[0xc0, 0xe4, 1],
            &[0xc6, 0xc4, 1],
            &[0x49, 0x90],
        ] {
            let mut code = alloc::vec![0xb8, 0x15, 0, 0, 0];
            code.extend_from_slice(mid);
            code.extend_from_slice(&[0x0f, 0x05]);
            assert_eq!(syscall_site(&code, 21), None, "{mid:02x?}");
        }
        // With a REX prefix, 4 is spl: mov spl, dl leaves rax alone; a plain nop too.
        for mid in [&[0x40, 0x88, 0xd4][..], &[0x90], &[0x48, 0x90]] {
            let mut code = alloc::vec![0xb8, 0x15, 0, 0, 0];
            code.extend_from_slice(mid);
            code.extend_from_slice(&[0x0f, 0x05]);
            assert!(syscall_site(&code, 21).is_some(), "{mid:02x?}");
        }
    }

    #[test]
    fn a_moved_syscall_stub_runs_the_setup_then_calls_and_resumes_behind_the_syscall() {
        let code = [0xb8, 0x01, 0x01, 0, 0, 0x48, 0x89, 0xfe, 0xbf, 0x9c, 0xff, 0xff, 0xff, 0x0f, 0x05];
        let (at, moved) = syscall_site(&code, 257).unwrap();
        let (site, stub) = (0x2_0b0e_u64, 0x3_6000_u64);
        let out =
            moved_syscall_stub(site, site + at as u64, stub, &code, &moved, 257, 0x6f00_0000_1234, [9; 16])
                .unwrap();
        assert_eq!(&out[..5], &[0xb8, 0x01, 0x01, 0, 0], "rax is set first, as at the site");
        assert_eq!(&out[5..13], &code[5..13]);
        assert_eq!(&out[13..18], &[0x48, 0x8d, 0x64, 0x24, 0x80]);
        let word = 24;
        let resume = i64::from_le_bytes(out[word..word + 8].try_into().unwrap());
        assert_eq!(stub as i64 + word as i64 + resume, (site + 15) as i64);
        assert_eq!(&out[word + 16..word + 32], &[9; 16]);
    }

    #[test]
    fn jumps_too_far_are_refused() {
        assert_eq!(jump(0, 1 << 32), None);
        assert_eq!(jump(0x1000, 0x2000), Some([0xe9, 0xfb, 0x0f, 0, 0]));
    }
}
