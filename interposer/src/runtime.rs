//! Finding `cloister-rt` and the range of its code, which the redirect filter trusts.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// File name of the runtime.
pub const RT_NAME: &str = "cloister-rt";
/// Environment variable that overrides where the runtime is found.
pub const RT_ENV: &str = "CLOISTER_RT";

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
                "the runtime {} is missing; build the workspace (`cargo build --release`) or set {RT_ENV}",
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

    /// Reads the runtime at `path`.
    pub fn open(path: &Path) -> Result<RtImage, LocateError> {
        let path = std::fs::canonicalize(path).map_err(|_| LocateError::NotFound(path.to_path_buf()))?;
        let bytes = std::fs::read(&path).map_err(|e| LocateError::Read(path.clone(), e))?;
        let invalid = |why: &str| LocateError::Invalid(path.clone(), why.to_string());
        let elf = goblin::elf::Elf::parse(&bytes).map_err(|e| invalid(&e.to_string()))?;
        if elf.header.e_type != goblin::elf::header::ET_EXEC {
            return Err(invalid("it must be linked at a fixed address (ET_EXEC)"));
        }
        let mut exec_segments = elf
            .program_headers
            .iter()
            .filter(|ph| ph.p_type == goblin::elf::program_header::PT_LOAD && ph.is_executable());
        let seg = exec_segments.next().ok_or_else(|| invalid("it has no executable segment"))?;
        if exec_segments.next().is_some() {
            return Err(invalid("it has more than one executable segment"));
        }
        let gate = elf
            .syms
            .iter()
            .find(|s| elf.strtab.get_at(s.st_name) == Some("cloister_gate"))
            .map(|s| s.st_value)
            .ok_or_else(|| invalid("it has no cloister_gate symbol (was it stripped?)"))?;
        let code = seg.p_vaddr..seg.p_vaddr + seg.p_memsz;
        if !code.contains(&gate) {
            return Err(invalid("cloister_gate lies outside its code"));
        }
        Ok(RtImage { path, code, code_file_offset: seg.p_offset, gate })
    }
}
