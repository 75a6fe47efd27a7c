//! `/proc/self/mountinfo` and `/proc/self/mounts` as the view shows the mounts: the program
//! sees its own mount table (the overlay at `/`, its private `/tmp`, its read-only and hidden
//! paths), not the sandbox's mount namespace, which names the host's tree, the state directory
//! and the hidden paths' stand-ins. Under the kernel's own trees (`/proc`, `/sys`, `/dev`),
//! which the view hands to the host, the host's mounts are shown as they are.

use super::host::{dev_numbers, makedev, Hc};
use super::mount::{Layers, VMount};
use super::path::{host_cpath, is_within};
use super::Vfs;
use alloc::vec::Vec;

/// One line of the table before numbering.
struct Line {
    point: Vec<u8>,
    dev: u64,
    /// `mountinfo`'s fields 4 and 6: the root of the mount within its filesystem, options.
    root: Vec<u8>,
    options: Vec<u8>,
    /// Filesystem type, source, and super options.
    fstype: Vec<u8>,
    source: Vec<u8>,
    super_options: Vec<u8>,
}

/// Ids the table starts numbering at: clear of the few a real table would show.
const FIRST_ID: usize = 1000;

impl Vfs {
    /// The view's `mountinfo`; `host` is the host's (the sandbox namespace's) `mountinfo`,
    /// whose lines under the kernel's trees are kept.
    pub fn mountinfo(&self, h: Hc<'_>, host: &[u8]) -> Vec<u8> {
        let lines = self.lines(h, host);
        let mut out = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            // The parent is the nearest mount above; the root's is one that is not listed.
            let parent = lines[..i]
                .iter()
                .rposition(|p| p.point != l.point && is_within(&l.point, &p.point))
                .map_or(FIRST_ID - 1, |p| FIRST_ID + p);
            let (major, minor) = dev_numbers(l.dev);
            out.extend_from_slice(alloc::format!("{} {parent} {major}:{minor} ", FIRST_ID + i).as_bytes());
            escape_into(&mut out, &l.root);
            out.push(b' ');
            escape_into(&mut out, &l.point);
            out.push(b' ');
            out.extend_from_slice(&l.options);
            out.extend_from_slice(b" - ");
            out.extend_from_slice(&l.fstype);
            out.push(b' ');
            escape_into(&mut out, &l.source);
            out.push(b' ');
            out.extend_from_slice(&l.super_options);
            out.push(b'\n');
        }
        out
    }

    /// The view's `mounts` (`/proc/self/mounts`, `/etc/mtab`).
    pub fn mounts_file(&self, h: Hc<'_>, host: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for l in self.lines(h, host) {
            escape_into(&mut out, &l.source);
            out.push(b' ');
            escape_into(&mut out, &l.point);
            out.push(b' ');
            out.extend_from_slice(&l.fstype);
            out.push(b' ');
            out.extend_from_slice(&l.options);
            out.extend_from_slice(b" 0 0\n");
        }
        out
    }

    /// The view's `mountstats` (`/proc/self/mountstats`): one line per mount. The statistics
    /// the host adds for network filesystems are not shown.
    pub fn mountstats_file(&self, h: Hc<'_>, host: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for l in self.lines(h, host) {
            out.extend_from_slice(b"device ");
            escape_into(&mut out, &l.source);
            out.extend_from_slice(b" mounted on ");
            escape_into(&mut out, &l.point);
            out.extend_from_slice(b" with fstype ");
            out.extend_from_slice(&l.fstype);
            out.push(b'\n');
        }
        out
    }

    /// The view's mounts and the host's mounts under the kernel's trees, parents first.
    fn lines(&self, h: Hc<'_>, host: &[u8]) -> Vec<Line> {
        let view: Vec<VMount> = self.mounts.iter().collect();
        let shown_by_host =
            |point: &[u8]| self.mounts.find(point).is_some_and(|(m, _)| m.layers == Layers::Passthrough);
        // The mounts that hide the state directory where a layer would show it are the
        // sandbox's business, not the program's.
        let state = self.state_dir.as_deref().map(super::path::strip_nul);
        let mut lines: Vec<Line> = view
            .iter()
            .filter(|m| m.layers != Layers::Passthrough)
            .filter(|m| !state.is_some_and(|s| is_within(m.guest, s)))
            .filter_map(|m| view_line(h, m, self.state_dir.as_deref()))
            .collect();
        // The empty file the sandbox's namespace binds over each block device under `/dev` is
        // the sandbox's business too (its root, within its filesystem, ends the host path).
        let block_stand_in = state.map(|s| [s, b"/hidden/block"].concat());
        let stand_in = |l: &Line| {
            l.root.ends_with(b"/hidden/block")
                && block_stand_in.as_ref().is_some_and(|b| b.ends_with(&l.root))
        };
        for line in host.split(|&b| b == b'\n') {
            if let Some(l) = host_line(line).filter(|l| shown_by_host(&l.point) && !stand_in(l)) {
                lines.push(l);
            }
        }
        // Parents first; a later mount on the same point covers an earlier one, as the host
        // lists them.
        lines.sort_by(|a, b| a.point.split(|&c| c == b'/').cmp(b.point.split(|&c| c == b'/')));
        lines
    }
}

/// The line of view mount `m`; `state` is the state directory (NUL-terminated), which no line
/// names: a hidden path's stand-in, which lies there, shows as `none`. `None` for a private
/// place the program has not made (a hidden path missing at the start): the path is not there.
fn view_line(h: Hc<'_>, m: &VMount, state: Option<&[u8]>) -> Option<Line> {
    let in_state = |root: &[u8]| state.is_some_and(|s| is_within(root, super::path::strip_nul(s)));
    let (dir, writable, fstype, source): (&[u8], bool, &[u8], &[u8]) = match &m.layers {
        Layers::Overlay { lower, .. } => (lower, true, b"overlay", b"overlay"),
        Layers::Direct { root, private: true, .. } => (root, true, b"tmpfs", b"tmpfs"),
        Layers::Direct { root, writable, .. } if in_state(root) => (root, *writable, b"none", b"none"),
        Layers::Direct { root, writable, .. } => (root, *writable, b"none", root),
        Layers::Passthrough => (m.guest, true, b"none", b"none"),
    };
    let dev = match h.lstat(&host_cpath(dir, b"")) {
        Ok(st) => st.dev(),
        Err(_) if matches!(m.layers, Layers::Direct { private: true, .. }) => return None,
        Err(_) => 0,
    };
    let rw: &[u8] = if writable { b"rw" } else { b"ro" };
    Some(Line {
        point: m.guest.to_vec(),
        dev,
        root: b"/".to_vec(),
        options: [rw, b",relatime"].concat(),
        fstype: fstype.to_vec(),
        source: if source.is_empty() { b"/".to_vec() } else { source.to_vec() },
        super_options: rw.to_vec(),
    })
}

/// A line of the host's `mountinfo`, unescaped where it matters (the mount point).
fn host_line(line: &[u8]) -> Option<Line> {
    let (head, tail) = split_at_separator(line)?;
    let f: Vec<&[u8]> = head.split(|&b| b == b' ').collect();
    let t: Vec<&[u8]> = tail.split(|&b| b == b' ').collect();
    let (dev, root, point, options) = (f.get(2)?, f.get(3)?, f.get(4)?, f.get(5)?);
    let (major, minor) = dev.split_at(dev.iter().position(|&b| b == b':')?);
    let number = |d: &[u8]| core::str::from_utf8(d).ok()?.parse::<u64>().ok();
    let (major, minor) = (number(major)?, number(&minor[1..])?);
    Some(Line {
        point: unescape(point),
        dev: makedev(major, minor),
        root: unescape(root),
        options: options.to_vec(),
        fstype: t.first()?.to_vec(),
        source: unescape(t.get(1)?),
        super_options: t.get(2).map_or(Vec::new(), |s| s.to_vec()),
    })
}

/// Splits a `mountinfo` line at ` - `, after the optional fields.
fn split_at_separator(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = line.windows(3).position(|w| w == b" - ")?;
    Some((&line[..at], &line[at + 3..]))
}

/// Appends `field` with the escapes `mountinfo` uses (octal for space, tab, newline, `\`).
fn escape_into(out: &mut Vec<u8>, field: &[u8]) {
    for &b in field {
        match b {
            b' ' | b'\t' | b'\n' | b'\\' => out.extend_from_slice(alloc::format!("\\{b:03o}").as_bytes()),
            _ => out.push(b),
        }
    }
}

/// Undoes [`escape_into`].
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push(d.iter().fold(0u8, |v, c| v.wrapping_mul(8).wrapping_add(c - b'0')));
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_lines_are_read_and_fields_escaped_both_ways() {
        let l = host_line(b"36 35 98:0 /mnt\\0401 /dev/pts rw,nosuid shared:7 - devpts devpts rw,mode=600")
            .unwrap();
        assert_eq!(l.point, b"/dev/pts");
        assert_eq!(l.root, b"/mnt 1");
        assert_eq!((l.fstype.as_slice(), l.source.as_slice()), (&b"devpts"[..], &b"devpts"[..]));
        assert_eq!(dev_numbers(l.dev), (98, 0));
        let mut out = Vec::new();
        escape_into(&mut out, b"/a b\\c");
        assert_eq!(out, b"/a\\040b\\134c");
        assert_eq!(unescape(&out), b"/a b\\c");
        assert!(host_line(b"garbage").is_none());
    }

    #[test]
    fn device_numbers_round_trip() {
        for (major, minor) in [(0, 0), (8, 1), (259, 3), (4095, 255), (4096, 1 << 20)] {
            assert_eq!(dev_numbers(makedev(major, minor)), (major, minor));
        }
    }
}
