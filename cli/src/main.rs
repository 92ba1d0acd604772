//! `dsa`: the command-line tool of dsa-kernels. `dsa check` is the place to start; `dsa --help`
//! lists the rest.

mod args;
mod bench;
mod check;
mod compile;
mod error;
mod jit;
mod table;
mod tune;

use args::{Cli, Command};
use clap::Parser;

fn main() {
    let cli = Cli::parse();
    if std::env::var_os("DSA_JIT_QUIET").is_none() {
        // The commands report compiles themselves (progress bars, summaries).
        // SAFETY: no other thread exists yet, so nothing reads the environment concurrently.
        unsafe { std::env::set_var("DSA_JIT_QUIET", "1") };
    }
    let result = match cli.command {
        Command::Check(a) => check::run(&a),
        Command::Bench(a) => bench::run(&a),
        Command::Tune(a) => tune::run(&a),
        Command::Jit { action } => jit::run(&action),
    };
    if let Err(e) = result {
        eprintln!("dsa: error: {e}");
        std::process::exit(e.exit_code());
    }
}
