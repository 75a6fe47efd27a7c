//! The `cloister` command: parses its arguments and hands them to the library.

fn main() {
    std::process::exit(cloister::cli::main());
}
