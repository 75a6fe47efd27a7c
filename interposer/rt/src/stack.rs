//! The program's initial stack: `argc`, `argv`, `envp`, the auxiliary vector and the strings
//! they point to, laid out as the host kernel's `create_elf_tables` does. The runtime builds
//! it itself, so it decides what `AT_RANDOM`, `AT_EXECFN` and `AT_SYSINFO_EHDR` say.

use alloc::vec::Vec;

/// `AT_NULL`: end of the auxiliary vector.
pub const AT_NULL: u64 = 0;
/// Program headers of the program.
pub const AT_PHDR: u64 = 3;
/// Size of one program header.
pub const AT_PHENT: u64 = 4;
/// Number of program headers.
pub const AT_PHNUM: u64 = 5;
/// Load address of the interpreter.
pub const AT_BASE: u64 = 7;
/// Flags (none).
pub const AT_FLAGS: u64 = 8;
/// The program's entry point.
pub const AT_ENTRY: u64 = 9;
/// 16 random bytes.
pub const AT_RANDOM: u64 = 25;
/// The file name given to `execve`.
pub const AT_EXECFN: u64 = 31;
/// The vDSO.
pub const AT_SYSINFO_EHDR: u64 = 33;

/// An auxiliary vector entry whose value is one of the strings this builder places.
#[derive(Clone, Copy)]
pub enum AuxValue {
    /// A plain value.
    Value(u64),
    /// The address of the `AT_EXECFN` string.
    ExecFn,
    /// The address of the 16 random bytes.
    Random,
}

/// What goes on the stack.
pub struct InitialStack<'a> {
    /// Arguments.
    pub argv: &'a [&'a [u8]],
    /// Environment.
    pub envp: &'a [&'a [u8]],
    /// Auxiliary vector, without the terminating `AT_NULL`.
    pub auxv: &'a [(u64, AuxValue)],
    /// `AT_EXECFN`'s string.
    pub execfn: &'a [u8],
    /// `AT_RANDOM`'s bytes.
    pub random: [u8; 16],
}

/// The built stack: where it starts, and the auxiliary vector as `/proc/self/auxv` shows it.
pub struct Built {
    /// The stack pointer to start the program with (points at `argc`).
    pub sp: u64,
    /// The auxiliary vector's bytes, `AT_NULL` included.
    pub auxv: Vec<u8>,
    /// Where the argument strings lie, back to back: `[start, end)`.
    pub args: (u64, u64),
    /// Where the environment strings lie, right after them.
    pub env: (u64, u64),
}

impl InitialStack<'_> {
    /// Writes the stack so that it ends just below `top`.
    ///
    /// # Safety
    /// The memory below `top` must be writable and unused for as many bytes as the strings and
    /// vectors need (it is the process's own stack, well below the caller's frames).
    pub unsafe fn write(&self, top: u64) -> Built {
        // Bytes of each list of strings with their NULs.
        let length = |list: &[&[u8]]| list.iter().map(|s| s.len() as u64 + 1).sum::<u64>();
        let (arg_bytes, env_bytes) = (length(self.argv), length(self.envp));
        let strings = arg_bytes + env_bytes + self.execfn.len() as u64 + 1 + 16;
        let str_base = (top - strings) & !15;
        let words = 1 + self.argv.len() + 1 + self.envp.len() + 1 + 2 * (self.auxv.len() + 1);
        let sp = (str_base - 8 * words as u64) & !15;

        let mut at = str_base;
        let mut put = |bytes: &[u8], nul: bool| -> u64 {
            let start = at;
            // SAFETY: [str_base, str_base + strings) is ours, per the function's contract, and
            // the strings are placed one after another within it.
            unsafe {
                core::ptr::copy_nonoverlapping(bytes.as_ptr(), at as *mut u8, bytes.len());
                if nul {
                    *((at + bytes.len() as u64) as *mut u8) = 0;
                }
            }
            at += bytes.len() as u64 + u64::from(nul);
            start
        };
        let random = put(&self.random, false);
        let execfn = put(self.execfn, true);
        // The vectors go straight to their place below the strings, word by word: built in the
        // heap first, they were two more blocks of every exec'd image's start-up (a page).
        let mut slot = sp;
        let mut push = |word: u64| {
            // SAFETY: [sp, sp + 8 * words) lies below str_base, inside the caller's region, and
            // exactly `words` words are pushed.
            unsafe { *(slot as *mut u64) = word };
            slot += 8;
        };
        push(self.argv.len() as u64);
        for s in self.argv {
            push(put(s, true));
        }
        push(0);
        for s in self.envp {
            push(put(s, true));
        }
        push(0);
        // Back to back after AT_EXECFN's string: the arguments, then the environment.
        let args_start = execfn + self.execfn.len() as u64 + 1;
        let env_start = args_start + arg_bytes;
        let env_end = env_start + env_bytes;
        let aux_at = sp + 8 * (words - 2 * (self.auxv.len() + 1)) as u64;
        for &(key, value) in self.auxv {
            push(key);
            push(match value {
                AuxValue::Value(v) => v,
                AuxValue::ExecFn => execfn,
                AuxValue::Random => random,
            });
        }
        push(AT_NULL);
        push(0);
        let aux_len = 16 * (self.auxv.len() + 1);
        // SAFETY: the auxiliary vector was just written there.
        let auxv = unsafe { core::slice::from_raw_parts(aux_at as *const u8, aux_len) }.to_vec();
        Built { sp, auxv, args: (args_start, env_start), env: (env_start, env_end) }
    }
}
