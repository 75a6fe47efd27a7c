//! The few files the kernel answers for: those where the host would describe the runtime
//! instead of the program (`exe`, `cmdline`, `environ` and `auxv` of the calling process), and
//! those that show what the sandbox makes virtual: the host name, the kernel release, the
//! processors (reproducible mode) and the random devices (when randomness is seeded).

/// A file the kernel may serve. Whether it does depends on the configuration: a file whose
/// subject is not virtual is the host's.
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
    /// `/proc/sys/kernel/osrelease`.
    OsRelease,
    /// `/proc/cpuinfo`.
    CpuInfo,
    /// `/sys/devices/system/cpu/{online,possible,present}`: the processor list.
    CpuList,
    /// `/dev/urandom`, `/dev/random`.
    RandomDevice,
    /// `/proc/sys/kernel/random/uuid`: a fresh random UUID on each read.
    RandomUuid,
    /// `/proc/uptime`.
    Uptime,
    /// `/proc/loadavg`.
    LoadAvg,
    /// `/etc/hostname`.
    EtcHostname,
    /// `/etc/passwd`, in reproducible mode the sandbox's own.
    EtcPasswd,
    /// `/etc/group`, in reproducible mode the sandbox's own.
    EtcGroup,
    /// `/proc/self/mountinfo`: the view's mounts.
    MountInfo,
    /// `/proc/self/mounts`, `/proc/mounts`, `/etc/mtab`: the view's mounts.
    Mounts,
    /// `/proc/self/mountstats`: the view's mounts, in that file's shape.
    MountStats,
}

/// Recognises a path the kernel serves. `own_pid` is asked only when the path names a numeric
/// pid, to tell `/proc/<own pid>/exe` from another process's.
pub fn classify(path: &[u8], own_pid: impl FnOnce() -> u64) -> Option<ProcFile> {
    match path {
        b"/dev/urandom" | b"/dev/random" => return Some(ProcFile::RandomDevice),
        b"/etc/hostname" => return Some(ProcFile::EtcHostname),
        b"/etc/passwd" => return Some(ProcFile::EtcPasswd),
        b"/etc/group" => return Some(ProcFile::EtcGroup),
        b"/etc/mtab" | b"/proc/mounts" => return Some(ProcFile::Mounts),
        b"/sys/devices/system/cpu/online"
        | b"/sys/devices/system/cpu/possible"
        | b"/sys/devices/system/cpu/present" => return Some(ProcFile::CpuList),
        _ => {}
    }
    let rest = path.strip_prefix(b"/proc/")?;
    match rest {
        b"sys/kernel/hostname" => return Some(ProcFile::Hostname),
        b"sys/kernel/osrelease" => return Some(ProcFile::OsRelease),
        b"cpuinfo" => return Some(ProcFile::CpuInfo),
        b"sys/kernel/random/uuid" => return Some(ProcFile::RandomUuid),
        b"uptime" => return Some(ProcFile::Uptime),
        b"loadavg" => return Some(ProcFile::LoadAvg),
        _ => {}
    }
    let slash = rest.iter().position(|&b| b == b'/')?;
    let (who, file) = (&rest[..slash], &rest[slash + 1..]);
    let is_pid = |c: &[u8]| !c.is_empty() && c.iter().all(u8::is_ascii_digit);
    // The mount table is the whole sandbox's (one mount namespace), whichever of its processes
    // or threads the path names.
    if who == b"self" || who == b"thread-self" || is_pid(who) {
        let table = match file.rsplit(|&b| b == b'/').next() {
            Some(b"mountinfo") => Some(ProcFile::MountInfo),
            Some(b"mounts") => Some(ProcFile::Mounts),
            Some(b"mountstats") => Some(ProcFile::MountStats),
            _ => None,
        };
        let parts: alloc::vec::Vec<&[u8]> = file.split(|&b| b == b'/').collect();
        let shape = match parts.as_slice() {
            [_] => true,
            [b"task", tid, _] => is_pid(tid),
            _ => false,
        };
        if table.is_some() && shape {
            return table;
        }
    }
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

/// `/proc/cpuinfo` for `cpus` processors: the host's first processor, repeated and renumbered,
/// with the clock speed (which moves from read to read) fixed.
pub fn cpuinfo(host: &[u8], cpus: u32) -> alloc::vec::Vec<u8> {
    use alloc::vec::Vec;
    let first = host.split(|&b| b == b'\n').take_while(|l| !l.is_empty()).collect::<Vec<_>>();
    let mut out = Vec::new();
    for i in 0..cpus {
        for line in &first {
            let key = line.split(|&b| b == b':').next().unwrap_or(&[]);
            let key = key.trim_ascii_end();
            let value: Option<alloc::string::String> = match key {
                b"processor" | b"core id" | b"apicid" | b"initial apicid" => Some(alloc::format!("{i}")),
                b"siblings" | b"cpu cores" => Some(alloc::format!("{cpus}")),
                b"physical id" => Some(alloc::string::String::from("0")),
                b"cpu MHz" => Some(alloc::string::String::from("2000.000")),
                _ => None,
            };
            match value {
                Some(v) => {
                    out.extend_from_slice(
                        &line[..line.iter().position(|&b| b == b':').map_or(line.len(), |p| p + 1)],
                    );
                    out.push(b' ');
                    out.extend_from_slice(v.as_bytes());
                }
                None => out.extend_from_slice(line),
            }
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    out
}

/// A version 4 UUID from 16 random bytes, as the kernel prints it.
pub fn uuid(mut b: [u8; 16]) -> alloc::vec::Vec<u8> {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut out = alloc::string::String::new();
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = core::fmt::Write::write_fmt(&mut out, format_args!("{byte:02x}"));
    }
    out.push('\n');
    out.into_bytes()
}

/// The processor list (`0`, `0-3`) of `cpus` processors.
pub fn cpu_list(cpus: u32) -> alloc::vec::Vec<u8> {
    if cpus <= 1 {
        b"0\n".to_vec()
    } else {
        alloc::format!("0-{}\n", cpus - 1).into_bytes()
    }
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
        assert_eq!(classify(b"/etc/passwd", pid), Some(ProcFile::EtcPasswd));
        assert_eq!(classify(b"/etc/shadow", pid), None);
        assert_eq!(classify(b"/proc/sys/kernel/hostname", pid), Some(ProcFile::Hostname));
        assert_eq!(classify(b"/dev/urandom", pid), Some(ProcFile::RandomDevice));
        assert_eq!(classify(b"/sys/devices/system/cpu/online", pid), Some(ProcFile::CpuList));
        assert_eq!(classify(b"/proc/cpuinfo", pid), Some(ProcFile::CpuInfo));
        assert_eq!(classify(b"/proc/self/task/12/mountinfo", pid), Some(ProcFile::MountInfo));
        assert_eq!(classify(b"/proc/99/mounts", pid), Some(ProcFile::Mounts));
        assert_eq!(classify(b"/proc/self/task/x/mountinfo", pid), None);
        assert_eq!(classify(b"/proc/self/mountstats", pid), Some(ProcFile::MountStats));
        assert_eq!(classify(b"/proc/7/task/7/mountstats", pid), Some(ProcFile::MountStats));
        assert_eq!(classify(b"/proc/self/fdinfo/mountinfo", pid), None);
    }
}
