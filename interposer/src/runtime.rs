//! Finding `cloister-rt` and the range of its code, which the redirect filter trusts.

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::program_header::{ProgramHeader, PT_LOAD};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// File name of the runtime.
pub const RT_NAME: &str = "cloister-rt";
/// Environment variable that overrides where the runtime is found.
pub const RT_ENV: &str = "CLOISTER_RT";
/// Where the gate sits, after the runtime's entry point (see `interposer/rt/src/start.rs`).
const GATE_OFFSET: u64 = 16;
/// The gate's instructions: `syscall; mov rcx, [rsp]; mov rsp, [rsp + 8]; jmp rcx`.
const GATE_BYTES: [u8; 13] = [0x0f, 0x05, 0x48, 0x8b, 0x0c, 0x24, 0x48, 0x8b, 0x64, 0x24, 0x08, 0xff, 0xe1];

/// The runtime binary, ready to be executed.
#[derive(Clone, Debug)]
pub struct RtImage {
    /// Absolute path.
    pub path: PathBuf,
    /// Addresses of its executable segment (it is linked at a fixed address).
    pub code: Range<u64>,
    /// Where that segment lies in the file, to map it in the launcher's child before exec.
    pub code_file_offset: u64,
    /// Address of `cloister_gate`, a `syscall` in the runtime's code: the launcher's child
    /// makes its final `execve` through it, since the redirect filter is already in place.
    pub gate: u64,
}

/// Why the runtime could not be used.
#[derive(Debug)]
pub enum LocateError {
    /// Not found beside the launcher, nor where `CLOISTER_RT` points.
    NotFound(PathBuf),
    /// Found but unreadable.
    Read(PathBuf, std::io::Error),
    /// Not a runtime cloister can use (not ELF, position-independent, no code).
    Invalid(PathBuf, String),
}

impl std::fmt::Display for LocateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LocateError::NotFound(p) => write!(
                f,
                "the runtime {} is missing: build the whole workspace (`cargo build --release` at its root; `cargo run` alone builds only the launcher) or set {RT_ENV}",
                p.display()
            ),
            LocateError::Read(p, e) => write!(f, "cannot read the runtime {}: {e}", p.display()),
            LocateError::Invalid(p, why) => {
                write!(f, "{} is not a usable cloister runtime: {why}", p.display())
            }
        }
    }
}

impl std::error::Error for LocateError {}

impl RtImage {
    /// Finds the runtime: `$CLOISTER_RT`, else beside the running executable.
    pub fn locate() -> Result<RtImage, LocateError> {
        let path = match std::env::var_os(RT_ENV) {
            Some(p) => PathBuf::from(p),
            None => {
                let exe =
                    std::env::current_exe().map_err(|e| LocateError::Read(PathBuf::from(RT_NAME), e))?;
                exe.with_file_name(RT_NAME)
            }
        };
        Self::open(&path)
    }

    /// Reads the runtime at `path`: its headers, and the gate's bytes to check them.
    pub fn open(path: &Path) -> Result<RtImage, LocateError> {
        let path = std::fs::canonicalize(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => LocateError::NotFound(path.to_path_buf()),
            _ => LocateError::Read(path.to_path_buf(), e),
        })?;
        let invalid = |why: &str| LocateError::Invalid(path.clone(), why.to_string());
        let file = std::fs::File::open(&path).map_err(|e| LocateError::Read(path.clone(), e))?;
        let mut head = vec![0u8; 4096];
        let n = file.read_at(&mut head, 0).map_err(|e| LocateError::Read(path.clone(), e))?;
        head.truncate(n);
        let header = goblin::elf::Elf::parse_header(&head).map_err(|e| invalid(&e.to_string()))?;
        if header.e_type != goblin::elf::header::ET_EXEC {
            return Err(invalid("it must be linked at a fixed address (ET_EXEC)"));
        }
        let ph_end = header.e_phoff as usize + usize::from(header.e_phnum) * usize::from(header.e_phentsize);
        if header.e_phentsize != 56 || ph_end > head.len() {
            return Err(invalid("its program headers are not where cloister expects them"));
        }
        let ctx = Ctx::new(Container::Big, Endian::Little);
        let phdrs = ProgramHeader::parse(&head, header.e_phoff as usize, usize::from(header.e_phnum), ctx)
            .map_err(|e| invalid(&e.to_string()))?;
        let mut exec_segments = phdrs.iter().filter(|ph| ph.p_type == PT_LOAD && ph.is_executable());
        let seg = exec_segments.next().ok_or_else(|| invalid("it has no executable segment"))?;
        if exec_segments.next().is_some() {
            return Err(invalid("it has more than one executable segment"));
        }
        let code = seg.p_vaddr..seg.p_vaddr + seg.p_memsz;
        let gate = header.e_entry + GATE_OFFSET;
        if !code.contains(&gate) || !code.contains(&(gate + GATE_BYTES.len() as u64 - 1)) {
            return Err(invalid("its gate lies outside its code"));
        }
        let mut bytes = [0u8; GATE_BYTES.len()];
        file.read_exact_at(&mut bytes, seg.p_offset + (gate - seg.p_vaddr))
            .map_err(|e| LocateError::Read(path.clone(), e))?;
        if bytes != GATE_BYTES {
            return Err(invalid("its gate is not where this launcher expects it (mixed versions?)"));
        }
        Ok(RtImage { path, code, code_file_offset: seg.p_offset, gate })
    }
}
