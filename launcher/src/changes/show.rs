//! `cloister changes show DIR [--diff]`: the kept changes as a tree, with each entry's kind,
//! type and size; with `--diff`, unified diffs of text files (the host's file as it is now
//! against the kept one; an empty file stands for the missing side of a created or deleted
//! file).

use super::entry::EntryType;
use super::manifest::{Change, Kind, Manifest};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

/// Files larger than this are not diffed (similar holds both sides in memory).
const MAX_DIFF_BYTES: u64 = 8 << 20;

/// The whole output of `changes show` for `dir`; the error is one line.
pub fn render(dir: &Path, diff: bool) -> Result<String, String> {
    let manifest = Manifest::load(dir)?;
    let mut out = tree(&manifest.changes);
    let [created, modified, deleted] = Manifest::counts(&manifest.changes);
    let _ = writeln!(out, "{created} created, {modified} modified, {deleted} deleted");
    if diff {
        for change in &manifest.changes {
            out.push_str(&file_diff(&manifest, dir, change));
        }
    }
    Ok(out)
}

/// The changes as an indented tree; the directories above them that did not change are shown
/// without a kind.
pub fn tree(changes: &[Change]) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut shown: BTreeSet<String> = BTreeSet::new();
    for change in changes {
        let parts: Vec<&str> = change.path.split('/').filter(|p| !p.is_empty()).collect();
        for depth in 0..parts.len() {
            let ancestor = format!("/{}", parts[..depth].join("/"));
            if shown.insert(ancestor) {
                let label = match depth {
                    0 => "/".to_owned(),
                    _ => format!("{}{}/", indent(depth), parts[depth - 1]),
                };
                rows.push((label, String::new()));
            }
        }
        shown.insert(change.path.clone());
        let mut name = format!("{}{}", indent(parts.len()), parts.last().copied().unwrap_or("/"));
        if change.ty == EntryType::Dir && !parts.is_empty() {
            name.push('/');
        }
        rows.push((name, describe(change)));
    }
    let width = rows.iter().map(|(n, _)| n.chars().count()).max().unwrap_or(0).min(60) + 2;
    let mut out = String::new();
    for (name, what) in rows {
        let line = if what.is_empty() { name } else { format!("{name:<width$}{what}") };
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

fn indent(depth: usize) -> String {
    "  ".repeat(depth)
}

/// `modified  file     1.2 KiB` / `created   symlink  -> target`.
fn describe(change: &Change) -> String {
    let detail = match change.ty {
        EntryType::File => human(change.size),
        EntryType::Symlink => format!("-> {}", change.target.as_deref().unwrap_or("?")),
        EntryType::Dir | EntryType::Other => String::new(),
    };
    let mut text = format!("{:<9} {:<8} {detail}", change.kind.word(), change.ty.word());
    if let Some(host) = change.host.as_ref().filter(|_| change.kind == Kind::Modified) {
        if host.ty != change.ty {
            let _ = write!(text, " (was a {})", host.ty.word());
        } else if host.mode != change.mode {
            let _ = write!(text, " (mode {} -> {})", host.mode, change.mode);
        }
    }
    text
}

/// A size for people: `12 B`, `1.5 KiB`, `3.0 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The unified diff of one changed file ("" for anything that is not a file on either side).
fn file_diff(manifest: &Manifest, dir: &Path, change: &Change) -> String {
    let host_is_file = change.host.as_ref().is_some_and(|h| h.ty == EntryType::File);
    let new_is_file = change.kind != Kind::Deleted && change.ty == EntryType::File;
    let old_is_file = match change.kind {
        Kind::Created => false,
        Kind::Modified => host_is_file || change.host.is_none() && change.ty == EntryType::File,
        Kind::Deleted => change.ty == EntryType::File,
    };
    if !new_is_file && !old_is_file {
        return String::new();
    }
    let rel = change.path.trim_start_matches('/');
    let (old_name, new_name) = (
        if old_is_file { format!("a/{rel}") } else { "/dev/null".into() },
        if new_is_file { format!("b/{rel}") } else { "/dev/null".into() },
    );
    let read = |path: Option<std::path::PathBuf>| -> Result<Vec<u8>, String> {
        let Some(path) = path else { return Ok(Vec::new()) };
        let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.len() > MAX_DIFF_BYTES {
            return Err(format!("{} is larger than {}", path.display(), human(MAX_DIFF_BYTES)));
        }
        std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
    };
    let old = read(old_is_file.then(|| manifest.lower_path(&change.path)).flatten());
    let new = read(new_is_file.then(|| manifest.upper_path(dir, &change.path)));
    let (old, new) = match (old, new) {
        (Ok(old), Ok(new)) => (old, new),
        (Err(e), _) | (_, Err(e)) => return format!("--- {old_name}\n+++ {new_name}\n(no diff: {e})\n"),
    };
    let text = |b: &[u8]| if b.contains(&0) { None } else { std::str::from_utf8(b).ok().map(str::to_owned) };
    match (text(&old), text(&new)) {
        (Some(old), Some(new)) => {
            if old == new {
                return String::new();
            }
            similar::TextDiff::from_lines(&old, &new)
                .unified_diff()
                .context_radius(3)
                .header(&old_name, &new_name)
                .missing_newline_hint(true)
                .to_string()
        }
        _ => format!("Binary files {old_name} and {new_name} differ\n"),
    }
}
