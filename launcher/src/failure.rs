//! Failures of cloister itself, and the exit status each gives the user.

use std::fmt;

/// Why `cloister run` could not run the program. The program's own errors are its exit
/// status; these are the cases where it never ran.
#[derive(Debug)]
pub enum Failure {
    /// cloister could not set up (bad policy, missing runtime, filters refused): exit 125.
    Setup(String),
    /// The program exists but cannot be executed: exit 126.
    NotExecutable(String),
    /// The program was not found: exit 127.
    NotFound(String),
}

impl Failure {
    /// The exit status for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Setup(_) => 125,
            Failure::NotExecutable(_) => 126,
            Failure::NotFound(_) => 127,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Setup(m) | Failure::NotExecutable(m) | Failure::NotFound(m) => f.write_str(m),
        }
    }
}
