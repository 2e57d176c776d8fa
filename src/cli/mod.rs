//! The subcommands of `roundtrip`, one module each.

pub mod bench;
pub mod get;
pub mod parse;

/// A line on stderr. A closed or failing stderr is not the run's failure
/// (`2>&1 | head -1` must not panic, nor change the exit code).
pub fn warn(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
