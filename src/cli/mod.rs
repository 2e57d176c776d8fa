//! The subcommands of `roundtrip`, one module each.

pub mod bench;
pub mod get;
pub mod parse;
