//! The end of a run with a filesystem view: count what the program changed, say so in one
//! line on stderr (when there is something to say), keep the changes with a manifest (`--changes DIR`) or discard them, and
//! clean the state directory up.
//!
//! Nothing here changes the exit status: it stays the program's. A failure to report or to
//! clean up is one more line on stderr.

use super::manifest::{Change, Layer, Manifest, VERSION};
use super::scan::{count, scan};
use crate::view::View;
use kernel_host::config::MountKind;

/// Changes from which a discarded state directory is removed in the background rather than
/// before `cloister run` returns (see [`crate::view::state::State::finish`]): about a tenth of
/// a second of unlinking on our machines.
pub const REMOVE_LATER: usize = 5_000;

/// The one line that sums the changes up (counted by [`Kind`]), without the `cloister: `
/// prefix.
pub fn summary(counts: [usize; 3], kept_in: Option<&std::path::Path>) -> String {
    let [created, modified, deleted] = counts;
    let fate = match kept_in {
        Some(dir) => format!("kept in {}", dir.display()),
        None => "discarded".to_owned(),
    };
    format!("{created} created, {modified} modified, {deleted} deleted \u{2014} {fate}")
}

/// The manifest of a run's changes.
pub fn manifest(view_mounts: &[kernel_host::config::Mount], changes: Vec<Change>) -> Manifest {
    let mounts = view_mounts
        .iter()
        .filter_map(|m| match &m.kind {
            MountKind::Overlay { lower, .. } => Some(Layer { guest: m.guest.clone(), lower: lower.clone() }),
            _ => None,
        })
        .collect();
    Manifest { version: VERSION, upper: "upper".into(), mounts, changes }
}

/// Reports and cleans up after the program ended: the summary line when the program changed
/// something or the changes are kept, unless `quiet`.
pub fn finish(view: View, quiet: bool) {
    let kept = view.state.is_kept();
    let mut large = false;
    // A discarded run's line needs the counts alone.
    let scanned = if kept {
        scan(&view.mounts, true).map(|changes| (Manifest::counts(&changes), Some(changes)))
    } else {
        count(&view.mounts).map(|counts| (counts, None))
    };
    match scanned {
        Ok((counts, changes)) => {
            let total: usize = counts.iter().sum();
            large = total >= REMOVE_LATER;
            let kept_in = kept.then(|| view.state.dir().to_path_buf());
            let line = summary(counts, kept_in.as_deref());
            if let Some(changes) = changes {
                let text = serde_json::to_string_pretty(&manifest(&view.mounts, changes))
                    .expect("a manifest is strings and numbers");
                let path = view.state.manifest();
                if let Err(e) = std::fs::write(&path, text + "\n") {
                    eprintln!(
                        "cloister: cannot write {}: {e}; the changes are in its upper/",
                        path.display()
                    );
                }
            }
            // A run that changed nothing and keeps nothing has nothing to report: the program's
            // stderr stays its own.
            if !quiet && (kept || total > 0) {
                eprintln!("cloister: {line}");
            }
        }
        Err(e) if kept => eprintln!(
            "cloister: cannot list the program's changes: {e}; they are in {} without a manifest",
            view.state.upper().display()
        ),
        Err(e) => eprintln!("cloister: cannot list the program's changes: {e}"),
    }
    if let Err(e) = view.state.finish(large) {
        eprintln!("cloister: {e}");
    }
}
