//! The subcommands of `roundtrip`, one module each.

pub mod parse;
