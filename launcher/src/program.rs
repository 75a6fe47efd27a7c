//! Finding the program and checking, before anything is set up, that it can run: so that a
//! missing or unrunnable program gets exit 127/126 and one clear line, never a half-started
//! sandbox. The runtime checks again when it loads (files can change); this gives the error
//! its best wording.

use crate::failure::Failure;
use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{EM_X86_64, ET_DYN, ET_EXEC};
use goblin::elf::program_header::{ProgramHeader, PT_LOAD};
use kernel_host::binfmt::{self, Format};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Finds `name` like a shell: a name with a `/` is a path; otherwise the first executable
/// file of that name in `$PATH`.
pub fn resolve(name: &OsStr) -> Result<PathBuf, Failure> {
    let shown = name.to_string_lossy();
    if name.is_empty() {
        return Err(Failure::NotFound("an empty program name: not found".into()));
    }
    if name.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(name));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    let mut not_executable = None;
    for dir in std::env::split_paths(&path) {
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        let candidate = dir.join(name);
        if candidate.is_file() {
            if is_executable(&candidate) {
                return Ok(candidate);
            }
            not_executable.get_or_insert(candidate);
        }
    }
    match not_executable {
        Some(p) => Err(Failure::NotExecutable(format!(
            "{}: permission denied (the file is not executable)",
            p.display()
        ))),
        None => Err(Failure::NotFound(format!("{shown}: command not found (searched PATH)"))),
    }
}

fn is_executable(path: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 }
}

/// Checks that `path` is something `execve` would run: an x86_64 ELF whose headers parse, or
/// a `#!` script whose interpreter is.
pub fn precheck(path: &Path) -> Result<(), Failure> {
    check(path, 0)
}

fn check(path: &Path, depth: usize) -> Result<(), Failure> {
    let shown = path.display();
    let cannot = |why: &str| Failure::NotExecutable(format!("{shown}: cannot execute: {why}"));
    if depth > binfmt::MAX_DEPTH {
        return Err(cannot("too many levels of #! interpreters"));
    }
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Failure::NotFound(format!("{shown}: not found")),
        _ => cannot(&e.to_string()),
    })?;
    if meta.is_dir() {
        return Err(cannot("it is a directory"));
    }
    if !is_executable(path) {
        return Err(cannot("permission denied (the file is not executable)"));
    }
    let mut file = File::open(path).map_err(|e| cannot(&e.to_string()))?;
    let mut head = vec![0u8; 4096];
    let n = file.read(&mut head).map_err(|e| cannot(&e.to_string()))?;
    head.truncate(n);
    if head.starts_with(b"\x7fELF") {
        return check_elf(&file, &head).map_err(|why| cannot(&why));
    }
    match binfmt::format_of(&head) {
        Format::Script(s) => {
            let interp = PathBuf::from(OsStr::from_bytes(&s.interpreter));
            check(&interp, depth + 1).map_err(|e| {
                Failure::NotExecutable(format!("{shown}: bad interpreter {}: {e}", interp.display()))
            })
        }
        _ => Err(cannot("it is not an executable file (no ELF header, no #! line)")),
    }
}

fn check_elf(file: &File, head: &[u8]) -> Result<(), String> {
    let header = goblin::elf::Elf::parse_header(head).map_err(|e| format!("corrupt ELF header ({e})"))?;
    if header.e_ident[4] != 2 || header.e_machine != EM_X86_64 {
        let machine = goblin::elf::header::machine_to_str(header.e_machine);
        let bits = if header.e_ident[4] == 1 { 32 } else { 64 };
        return Err(format!(
            "wrong architecture: a {bits}-bit {machine} program, and cloister runs x86_64 programs"
        ));
    }
    if header.e_type != ET_EXEC && header.e_type != ET_DYN {
        return Err("not an executable (an object file or core dump?)".into());
    }
    if header.e_phentsize != 56 || header.e_phnum == 0 || header.e_phnum > 256 {
        return Err("corrupt ELF program headers".into());
    }
    let mut phdrs = vec![0u8; 56 * header.e_phnum as usize];
    file.read_exact_at(&mut phdrs, header.e_phoff)
        .map_err(|_| "truncated ELF program headers".to_string())?;
    let ctx = Ctx::new(Container::Big, Endian::Little);
    let phdrs = ProgramHeader::parse(&phdrs, 0, header.e_phnum as usize, ctx)
        .map_err(|e| format!("corrupt ELF program headers ({e})"))?;
    if !phdrs.iter().any(|p| p.p_type == PT_LOAD) {
        return Err("the ELF file has nothing to load".into());
    }
    Ok(())
}
