//! The `sshfleet` binary: parse flags, run, map the outcome to an exit code.

use clap::Parser;

fn main() {
    let cli = sshfleet::cli::Cli::parse();
    let code = match cli.into_config().and_then(sshfleet::run::execute) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("ERROR! {err}");
            err.exit_code()
        }
    };
    std::process::exit(code.code());
}
