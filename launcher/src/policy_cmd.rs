//! `cloister policy list | show | check`.

use crate::cli::PolicyCommand;

/// Runs a policy subcommand; returns the exit status.
pub fn run(cmd: &PolicyCommand) -> i32 {
    match cmd {
        PolicyCommand::List => {
            for name in policies::builtin_names() {
                let summary = policies::builtin_summary(name).unwrap_or_default();
                println!("{name:<16} {summary}");
            }
            0
        }
        PolicyCommand::Show { name } => match policies::builtin_text(name) {
            Some(text) => {
                print!("{text}");
                0
            }
            None => match policies::load(name) {
                Ok(p) => {
                    println!("{}", p.to_json_pretty());
                    0
                }
                Err(e) => {
                    eprintln!("cloister: {e}");
                    125
                }
            },
        },
        PolicyCommand::Check { file } => {
            let text = file.to_string_lossy();
            // A path given to `check` is always a file, even without a slash.
            let arg = if file.components().count() == 1 { format!("./{text}") } else { text.into_owned() };
            match policies::load(&arg) {
                Ok(_) => {
                    println!("{}: ok", file.display());
                    0
                }
                Err(e) => {
                    eprintln!("cloister: {e}");
                    1
                }
            }
        }
    }
}
