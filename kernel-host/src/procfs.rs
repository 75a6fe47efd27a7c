//! The few `/proc` files the kernel answers for, because the host would describe the runtime
//! instead of the program: `exe`, `cmdline`, `environ` and `auxv` of the calling process, and
//! `/proc/sys/kernel/hostname` when the host name is virtual.

/// A `/proc` file the kernel serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcFile {
    /// `/proc/self/exe`: the program, not the runtime.
    Exe,
    /// `/proc/self/cmdline`: the program's arguments.
    Cmdline,
    /// `/proc/self/auxv`: the auxiliary vector the runtime built.
    Auxv,
    /// `/proc/self/environ`: the environment the program started with.
    Environ,
    /// `/proc/sys/kernel/hostname`.
    Hostname,
}

/// Recognises a path the kernel serves. `own_pid` is asked only when the path names a numeric
/// pid, to tell `/proc/<own pid>/exe` from another process's.
pub fn classify(path: &[u8], own_pid: impl FnOnce() -> u64) -> Option<ProcFile> {
    let rest = path.strip_prefix(b"/proc/")?;
    if rest == b"sys/kernel/hostname" {
        return Some(ProcFile::Hostname);
    }
    let slash = rest.iter().position(|&b| b == b'/')?;
    let (who, file) = (&rest[..slash], &rest[slash + 1..]);
    let mine = match who {
        b"self" | b"thread-self" => true,
        digits if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => {
            parse_decimal(digits) == Some(own_pid())
        }
        _ => false,
    };
    if !mine {
        return None;
    }
    match file {
        b"exe" => Some(ProcFile::Exe),
        b"cmdline" => Some(ProcFile::Cmdline),
        b"auxv" => Some(ProcFile::Auxv),
        b"environ" => Some(ProcFile::Environ),
        _ => None,
    }
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, &d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_files_are_recognised_and_others_are_not() {
        let pid = || 42;
        assert_eq!(classify(b"/proc/self/exe", pid), Some(ProcFile::Exe));
        assert_eq!(classify(b"/proc/42/cmdline", pid), Some(ProcFile::Cmdline));
        assert_eq!(classify(b"/proc/thread-self/auxv", pid), Some(ProcFile::Auxv));
        assert_eq!(classify(b"/proc/43/exe", pid), None);
        assert_eq!(classify(b"/proc/self/maps", pid), None);
        assert_eq!(classify(b"/etc/passwd", pid), None);
        assert_eq!(classify(b"/proc/sys/kernel/hostname", pid), Some(ProcFile::Hostname));
    }
}
