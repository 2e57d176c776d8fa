//! `roundtrip`: the command-line tool of the roundtrip HTTP/1.1 stack.
//!
//! `main` only parses the command line and dispatches; each subcommand lives
//! in its own module under [`cli`] and returns its exit code.
//!
//! Exit codes shared by every subcommand: 0 success, 2 usage or I/O error
//! (clap uses 2 for usage errors, and for a bare `roundtrip`, which prints
//! the help). A failed request exits 1 from `bench`, and from `get` with
//! curl's code for the failure (see [`cli::get`]).

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tools for the roundtrip HTTP/1.1 client stack.
#[derive(Debug, Parser)]
#[command(name = "roundtrip", version, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fetch URLs through one client and write their bodies, like curl.
    Get(Box<cli::get::Args>),
    /// Decode a captured response stream and print its events, one per line.
    Parse(cli::parse::Args),
    /// Start a loopback origin and measure requests per second, latency and
    /// connection reuse on a backend.
    Bench(cli::bench::Args),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Get(args) => cli::get::run(&args),
        Command::Parse(args) => cli::parse::run(&args),
        Command::Bench(args) => cli::bench::run(&args),
    }
}
