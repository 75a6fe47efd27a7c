//! What a program changed through the filesystem view's overlays: found at exit by comparing
//! each upper tree with its host tree ([`scan`]), summed up in one line and kept with a
//! manifest ([`report`], [`manifest`]), and looked at or applied to the host later by
//! `cloister changes show|apply DIR` ([`show`], [`apply`]).
//!
//! The upper tree's format is overlayfs's with `userxattr` ([`entry`]); the kernel writes it,
//! this module only reads it (and `apply` writes the host). See docs/filesystem.md.

pub mod apply;
pub mod entry;
pub mod manifest;
pub mod report;
pub mod scan;
pub mod show;

#[cfg(test)]
mod tests;

use crate::cli::ChangesCommand;

/// Runs a `changes` subcommand; returns the exit status.
pub fn run(cmd: &ChangesCommand) -> i32 {
    match cmd {
        ChangesCommand::Show { dir, diff } => match show::render(dir, *diff) {
            Ok(text) => {
                print!("{text}");
                0
            }
            Err(e) => {
                eprintln!("cloister: {e}");
                125
            }
        },
        ChangesCommand::Apply { dir, dry_run, force } => apply::run(dir, *dry_run, *force),
    }
}
