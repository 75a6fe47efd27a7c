//! The kernel's configuration: the plain values a policy boils down to.
//!
//! The launcher builds a [`Config`] from the policy and the command line and hands it to
//! `cloister-rt` in one environment variable ([`Config::ENV`]); the runtime strips that variable
//! before the program sees its environment, and puts it back (updated) when the program execs.
//! The encoding is a short `key=value` list separated by `;`, with values percent-escaped, so
//! that it can be written and parsed without `std` on either side.

use alloc::string::String;
use alloc::vec::Vec;

/// Everything kernel-host needs to know about the sandbox it serves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The host name the program sees (`uname`, `gethostname`, `/proc/sys/kernel/hostname`);
    /// `None` leaves the host's.
    pub hostname: Option<String>,
    /// Seconds added to every realtime clock the program reads; `None` leaves clocks alone.
    pub time_offset: Option<i64>,
    /// Seed of the `getrandom` / `AT_RANDOM` stream; `None` leaves randomness to the host.
    pub seed: Option<u64>,
    /// Where this process sits in the sandbox's tree of forks and execs; mixed into the seed
    /// so that two processes never share a random stream.
    pub lineage: u64,
    /// Absolute path of `cloister-rt`, which every `execve` re-enters through.
    pub rt_path: String,
    /// Descriptor (reserved, inherited) that trace records are written to, if tracing.
    pub trace_fd: Option<i32>,
    /// The runtime's signals the exec'ing thread believed blocked: a mask survives `execve`.
    pub blocked: u64,
    /// Reproducible mode, when on.
    pub reproducible: Option<Reproducible>,
    /// Descriptor (reserved, inherited) of the memory the whole sandbox shares (the virtual
    /// clock), when some subsystem needs it.
    pub shared_fd: Option<i32>,
    /// A file holding the memory the whole sandbox shares, mapped by path (a sandbox with a
    /// filesystem view keeps it in its private directory, so no descriptor is reserved).
    pub shared_path: Option<String>,
    /// The filesystem view's mount table; empty when the program sees the host's filesystem
    /// as it is, or when the table lies packed in the shared memory ([`Config::mount_table`]).
    pub mounts: Vec<Mount>,
    /// The length of the view's mount table, packed ([`crate::vfs::mount::MountTable::packed`])
    /// in the file of [`Config::shared_path`] right after the shared page ([`Shared::SIZE`]
    /// bytes in): written there once by the launcher, read in place by every image, where a
    /// table in the configuration would be decoded and copied at every exec.
    ///
    /// [`Shared::SIZE`]: crate::shared::Shared::SIZE
    pub mount_table: Option<usize>,
    /// The interval timers (`ITIMER_REAL`, `_VIRTUAL`, `_PROF`) of the image that exec'd, as
    /// `(expiry, interval)` on the virtual clock (expiry 0: disarmed): they survive `execve`.
    pub itimers: [(u64, u64); 3],
    /// What the exec'ing image's kernel found when it checked this image's program. Then the
    /// runtime's command line is `cloister-rt PROGRAM EXE EXE_HOST INTERP_HOST ARGV...`: EXE
    /// the ELF's guest path (empty when unknown), the host paths of the ELF and its interpreter
    /// (empty: none), and ARGV after `#!` lines.
    pub handover: Option<Handover>,
}

/// The identities (`st_dev`, `st_ino`) of the files an `execve` checked: the ELF it runs and
/// its interpreter. The next image's runtime opens them by their host paths and uses what it
/// opened only if it is the same file; otherwise it looks the program up again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handover {
    /// The program's ELF.
    pub exe: (u64, u64),
    /// Its `PT_INTERP`, when the exec'ing kernel found one.
    pub interp: Option<(u64, u64)>,
}

/// One entry of the filesystem view: what the program finds at and below `guest`.
///
/// Every host path here is absolute and canonical (no symlinks, no `.`/`..`): the launcher
/// resolves them before the program starts, and the kernel joins guest suffixes onto them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// Where the program sees it: an absolute, normalised guest path (`/` included).
    pub guest: String,
    /// What is there.
    pub kind: MountKind,
}

/// What a [`Mount`] shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountKind {
    /// A host tree, read-only: writes fail with `EROFS`.
    ReadOnly {
        /// The host directory (or file) shown.
        host: String,
    },
    /// A host tree the program writes to directly: the user asked for it.
    ReadWrite {
        /// The host directory (or file) shown.
        host: String,
    },
    /// A host tree seen through a private layer: reads fall through to `lower` unless `upper`
    /// has the name; writes copy up into `upper`. `upper` is laid out as an overlayfs upper
    /// layer mounted with `userxattr`: a deletion is a character device 0/0 (a whiteout), a
    /// directory that hides the lower one's entries has `user.overlay.opaque` = `y`.
    Overlay {
        /// The host tree underneath (read-only to the program).
        lower: String,
        /// The private directory that takes the program's writes.
        upper: String,
    },
    /// A private, initially empty directory, thrown away after the run.
    Tmpfs {
        /// The host directory that holds it.
        host: String,
    },
    /// A hidden place: shown as an empty, read-only directory or file.
    Hidden {
        /// The empty host directory or file shown instead.
        host: String,
    },
}

/// The settings of reproducible mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reproducible {
    /// The virtual clock's start, seconds since 1970.
    pub epoch: i64,
    /// Sleeps advance the virtual clock without waiting.
    pub fast_sleep: bool,
    /// Processors the program sees.
    pub cpus: u32,
}

impl Default for Reproducible {
    fn default() -> Self {
        Reproducible { epoch: 946_684_800, fast_sleep: false, cpus: 1 }
    }
}

/// The descriptors the runtime may reserve, at the top of the default `RLIMIT_NOFILE`.
pub const RESERVED_FDS: core::ops::RangeInclusive<i32> = 1022..=1023;
/// The reserved descriptor of the trace pipe.
pub const TRACE_FD: i32 = 1023;
/// The reserved descriptor of the sandbox's shared memory.
pub const SHARED_FD: i32 = 1022;

/// Why an encoded configuration could not be read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A field had no `=`.
    MissingEquals,
    /// A key this version does not know.
    UnknownKey(String),
    /// A value that does not parse for its key.
    BadValue(&'static str),
}

impl Config {
    /// Name of the environment variable that carries the encoded configuration into
    /// `cloister-rt`. It never reaches the program.
    pub const ENV: &'static str = "CLOISTER_RT_CONFIG";

    /// Whether any clock is virtualised, which makes the runtime withhold the vDSO so that
    /// clock reads reach the trap.
    pub fn virtual_clocks(&self) -> bool {
        self.time_offset.is_some() || self.reproducible.is_some()
    }

    /// The reserved descriptors this configuration uses.
    pub fn reserved_fds(&self) -> impl Iterator<Item = i32> {
        self.trace_fd.into_iter().chain(self.shared_fd)
    }

    /// Whether the program sees a filesystem view, in the configuration or packed in the
    /// shared memory.
    pub fn has_view(&self) -> bool {
        !self.mounts.is_empty() || self.mount_table.is_some()
    }

    /// Encodes the configuration as the value of [`Config::ENV`].
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Some(h) = &self.hostname {
            push_field(&mut out, "hostname", h);
        }
        if let Some(t) = self.time_offset {
            push_field(&mut out, "time_offset", &alloc::format!("{t}"));
        }
        if let Some(s) = self.seed {
            push_field(&mut out, "seed", &alloc::format!("{s}"));
        }
        push_field(&mut out, "lineage", &alloc::format!("{}", self.lineage));
        push_field(&mut out, "rt", &self.rt_path);
        if let Some(fd) = self.trace_fd {
            push_field(&mut out, "trace_fd", &alloc::format!("{fd}"));
        }
        if self.blocked != 0 {
            push_field(&mut out, "blocked", &alloc::format!("{}", self.blocked));
        }
        if let Some(r) = self.reproducible {
            push_field(
                &mut out,
                "repro",
                &alloc::format!("{},{},{}", r.epoch, u8::from(r.fast_sleep), r.cpus),
            );
        }
        if let Some(fd) = self.shared_fd {
            push_field(&mut out, "shared_fd", &alloc::format!("{fd}"));
        }
        if let Some(p) = &self.shared_path {
            push_field(&mut out, "shared_path", p);
        }
        if let Some(len) = self.mount_table {
            push_field(&mut out, "mtab", &alloc::format!("{len}"));
        }
        if self.itimers.iter().any(|t| t.0 != 0) {
            let [(e0, i0), (e1, i1), (e2, i2)] = self.itimers;
            push_field(&mut out, "itimers", &alloc::format!("{e0},{i0},{e1},{i1},{e2},{i2}"));
        }
        if let Some(h) = self.handover {
            let (dev, ino) = h.exe;
            let value = match h.interp {
                Some((idev, iino)) => alloc::format!("{dev}:{ino},{idev}:{iino}"),
                None => alloc::format!("{dev}:{ino}"),
            };
            push_field(&mut out, "handover", &value);
        }
        for m in &self.mounts {
            // Already escaped part by part: it holds no `;` or `=` (see `decode`).
            push_raw_field(&mut out, "mount", &encode_mount(m));
        }
        out
    }

    /// Parses what [`Config::encode`] wrote.
    pub fn decode(text: &str) -> Result<Config, DecodeError> {
        let mut cfg = Config::default();
        for field in text.split(';').filter(|f| !f.is_empty()) {
            let (key, raw) = field.split_once('=').ok_or(DecodeError::MissingEquals)?;
            // A mount's parts are escaped one by one, and the field as a whole is not: a
            // configuration that carries its table (the ptrace backend's) is decoded at every
            // exec, so it is read once, not unescaped twice.
            if key == "mount" {
                cfg.mounts.push(decode_mount(raw).ok_or(DecodeError::BadValue("mount"))?);
                continue;
            }
            let value = unescape(raw).ok_or(DecodeError::BadValue("escape"))?;
            match key {
                "hostname" => cfg.hostname = Some(value),
                "time_offset" => {
                    cfg.time_offset = Some(value.parse().map_err(|_| DecodeError::BadValue("time_offset"))?)
                }
                "seed" => cfg.seed = Some(value.parse().map_err(|_| DecodeError::BadValue("seed"))?),
                "lineage" => cfg.lineage = value.parse().map_err(|_| DecodeError::BadValue("lineage"))?,
                "rt" => cfg.rt_path = value,
                "trace_fd" => {
                    cfg.trace_fd = Some(value.parse().map_err(|_| DecodeError::BadValue("trace_fd"))?)
                }
                "blocked" => cfg.blocked = value.parse().map_err(|_| DecodeError::BadValue("blocked"))?,
                "repro" => {
                    cfg.reproducible = Some(parse_reproducible(&value).ok_or(DecodeError::BadValue("repro"))?)
                }
                "shared_fd" => {
                    cfg.shared_fd = Some(value.parse().map_err(|_| DecodeError::BadValue("shared_fd"))?)
                }
                "shared_path" => cfg.shared_path = Some(value),
                "mtab" => {
                    let len: usize = value.parse().map_err(|_| DecodeError::BadValue("mtab"))?;
                    if len > crate::vfs::mount::MAX_PACKED {
                        return Err(DecodeError::BadValue("mtab"));
                    }
                    cfg.mount_table = Some(len);
                }
                "itimers" => cfg.itimers = parse_itimers(&value).ok_or(DecodeError::BadValue("itimers"))?,
                "handover" => {
                    cfg.handover = Some(parse_handover(&value).ok_or(DecodeError::BadValue("handover"))?)
                }
                other => return Err(DecodeError::UnknownKey(String::from(other))),
            }
        }
        Ok(cfg)
    }
}

fn parse_itimers(value: &str) -> Option<[(u64, u64); 3]> {
    let mut words = value.split(',').map(|w| w.parse::<u64>().ok());
    let mut out = [(0, 0); 3];
    for slot in &mut out {
        *slot = (words.next()??, words.next()??);
    }
    words.next().is_none().then_some(out)
}

fn parse_handover(value: &str) -> Option<Handover> {
    let identity = |w: &str| {
        let (dev, ino) = w.split_once(':')?;
        Some((dev.parse().ok()?, ino.parse().ok()?))
    };
    let mut files = value.split(',').map(identity);
    let exe = files.next()??;
    let interp = match files.next() {
        Some(file) => Some(file?),
        None => None,
    };
    files.next().is_none().then_some(Handover { exe, interp })
}

fn parse_reproducible(value: &str) -> Option<Reproducible> {
    let mut parts = value.split(',');
    let epoch = parts.next()?.parse().ok()?;
    let fast_sleep = parts.next()? == "1";
    let cpus = parts.next()?.parse().ok()?;
    Some(Reproducible { epoch, fast_sleep, cpus })
}

/// `guest,kind,host[,upper]`, each part escaped on its own so that a ',' in a path survives.
fn encode_mount(m: &Mount) -> String {
    let (kind, hosts): (&str, Vec<&str>) = match &m.kind {
        MountKind::ReadOnly { host } => ("ro", alloc::vec![host]),
        MountKind::ReadWrite { host } => ("rw", alloc::vec![host]),
        MountKind::Overlay { lower, upper } => ("overlay", alloc::vec![lower, upper]),
        MountKind::Tmpfs { host } => ("tmpfs", alloc::vec![host]),
        MountKind::Hidden { host } => ("hidden", alloc::vec![host]),
    };
    let mut out = String::new();
    for (i, part) in core::iter::once(m.guest.as_str()).chain([kind]).chain(hosts).enumerate() {
        if i > 0 {
            out.push(',');
        }
        escape_into(&mut out, part);
    }
    out
}

/// Reads what [`encode_mount`] wrote. Every exec decodes the whole table, so each part is
/// unescaped straight into the string it ends in: no list of parts, no copies.
fn decode_mount(value: &str) -> Option<Mount> {
    let mut parts = value.split(',');
    let guest = unescape(parts.next()?)?;
    if !guest.starts_with('/') {
        return None;
    }
    let kind = parts.next()?;
    let mut host = || parts.next().and_then(unescape);
    let kind = match kind {
        "ro" => MountKind::ReadOnly { host: host()? },
        "rw" => MountKind::ReadWrite { host: host()? },
        "overlay" => MountKind::Overlay { lower: host()?, upper: host()? },
        "tmpfs" => MountKind::Tmpfs { host: host()? },
        "hidden" => MountKind::Hidden { host: host()? },
        _ => return None,
    };
    parts.next().is_none().then_some(Mount { guest, kind })
}

fn push_field(out: &mut String, key: &str, value: &str) {
    push_raw_field(out, key, "");
    escape_into(out, value);
}

/// A field whose value needs no escaping (it holds no `;`, `=` or bare `%`).
fn push_raw_field(out: &mut String, key: &str, value: &str) {
    if !out.is_empty() {
        out.push(';');
    }
    out.push_str(key);
    out.push('=');
    out.push_str(value);
}

fn escape_into(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_./:".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

fn unescape(raw: &str) -> Option<String> {
    if !raw.contains('%') {
        return Some(String::from(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_every_field() {
        let cfg = Config {
            hostname: Some("a;b=c %d".into()),
            time_offset: Some(-86_400),
            seed: Some(42),
            lineage: 7,
            rt_path: "/opt/cloister dir/cloister-rt".into(),
            trace_fd: Some(1021),
            blocked: 1 << 30,
            reproducible: Some(Reproducible { epoch: 5, fast_sleep: true, cpus: 2 }),
            shared_fd: Some(1022),
            shared_path: Some("/tmp/c,x/shared".into()),
            mount_table: Some(1234),
            mounts: alloc::vec![
                Mount {
                    guest: "/".into(),
                    kind: MountKind::Overlay { lower: "/".into(), upper: "/tmp/c,x/upper".into() },
                },
                Mount { guest: "/tmp".into(), kind: MountKind::Tmpfs { host: "/tmp/c,x/tmp/0".into() } },
                Mount { guest: "/root/.ssh".into(), kind: MountKind::Hidden { host: "/e".into() } },
                Mount { guest: "/data 1".into(), kind: MountKind::ReadOnly { host: "/srv/d%x".into() } },
                Mount { guest: "/w".into(), kind: MountKind::ReadWrite { host: "/home/u/w".into() } },
            ],
            itimers: [(5_000, 10), (0, 0), (u64::MAX, 1)],
            handover: Some(Handover { exe: (2049, 131_075), interp: Some((2049, 7)) }),
        };
        assert_eq!(Config::decode(&cfg.encode()), Ok(cfg));
    }

    #[test]
    fn a_handover_without_interpreter_round_trips_and_bad_ones_do_not_parse() {
        let cfg = Config { handover: Some(Handover { exe: (3, 4), interp: None }), ..Config::default() };
        assert_eq!(Config::decode(&cfg.encode()), Ok(cfg));
        for bad in ["handover=", "handover=3", "handover=3:4,x", "handover=1:2,3:4,5:6", "handover=-1:2"] {
            assert_eq!(Config::decode(bad), Err(DecodeError::BadValue("handover")), "{bad}");
        }
    }

    #[test]
    fn bad_mounts_do_not_parse() {
        let huge = alloc::format!("mtab={}", crate::vfs::mount::MAX_PACKED + 1);
        for bad in ["mount=/a,ro", "mount=/a,ro,/b,/c", "mount=a,ro,/b", "mtab=-1", "mtab=x", &huge] {
            assert!(Config::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_key_is_an_error() {
        assert_eq!(Config::decode("colour=blue"), Err(DecodeError::UnknownKey("colour".into())));
    }
}
