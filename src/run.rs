//! The controller's entry point after argument parsing: [`Invocation`] in, exit code out.
//!
//! `main` parses flags with the `cli` module, which builds the domain configuration once
//! ([`Config`]: the global flags, already split per layer) and one [`Command`]; this file
//! only dispatches to the driver in [`crate::commands`]. `main` maps an error to the process
//! exit code with [`crate::error::Error::exit_code`].

use crate::commands::Config;
use crate::error::{ExitCode, Result};

/// One domain command, free of clap types.
#[derive(Debug, Clone)]
pub enum Command {
    /// `inventory --list`
    InventoryList,
    /// `inventory --host H`
    InventoryHost(String),
    /// `hosts PATTERN`
    Hosts(String),
    /// `ping [PATTERN]`
    Ping { pattern: String },
    /// `run [PATTERN] -- ARGV`
    Run { pattern: String, argv: Vec<String> },
    /// `keys ...`
    Keys(crate::commands::keys::KeysCommand),
    /// `hostkeys ...`
    Hostkeys(crate::commands::hostkeys::HostkeysCommand),
    /// `slurp`, `copy`, `replicate`
    Files(crate::ops::replicate::FilesCommand),
    /// Print generated text (`completions SHELL`, `man`) on stdout.
    Print(String),
    /// Write generated files into `dir` (`man --dir DIR`): `(file name, content)`.
    WriteFiles {
        dir: std::path::PathBuf,
        files: Vec<(String, String)>,
    },
    /// `config [--host H]`
    Config { host: Option<String> },
    /// `runs` (list) or `runs show ID`
    Runs { show: Option<String> },
    /// `undo RUN_ID`
    Undo(crate::commands::undo::UndoConfig),
    /// `ssh-config [-F FILE] HOST`: what the OpenSSH config resolves for a host
    SshConfig {
        host: String,
        file: Option<String>,
        /// ssh arguments given on sshfleet's command line (parsed like ansible_ssh_args).
        ssh_args: String,
    },
    /// `fleet up`: a local test/demo fleet (see [`crate::testfleet::up`])
    #[cfg(feature = "testfleet")]
    FleetUp(crate::testfleet::up::UpConfig),
}

/// A fully parsed command line.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub config: Config,
    pub command: Command,
}

/// Run one invocation to completion and return the exit code.
pub fn execute(inv: Invocation) -> Result<ExitCode> {
    use crate::commands::{adhoc, config, files, inventory, keys};
    let g = &inv.config;
    match inv.command {
        #[cfg(feature = "testfleet")]
        Command::FleetUp(cfg) => {
            crate::testfleet::up::run_up(cfg)?;
            Ok(ExitCode::Ok)
        }
        Command::Print(text) => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth reporting.
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            Ok(ExitCode::Ok)
        }
        Command::WriteFiles { dir, files } => {
            std::fs::create_dir_all(&dir).map_err(|e| crate::error::Error::io(dir.display(), e))?;
            for (name, content) in files {
                // Temp file and rename: a reader never sees half a page.
                let path = dir.join(&name);
                let tmp = dir.join(format!(".{name}.sshfleet-{}.tmp", std::process::id()));
                std::fs::write(&tmp, content)
                    .and_then(|()| std::fs::rename(&tmp, &path))
                    .map_err(|e| {
                        let _ = std::fs::remove_file(&tmp);
                        crate::error::Error::io(path.display(), e)
                    })?;
                println!("{}", path.display());
            }
            Ok(ExitCode::Ok)
        }
        Command::InventoryList => inventory::list(g),
        Command::InventoryHost(h) => inventory::host(g, &h),
        Command::Hosts(p) => inventory::hosts(g, &p),
        Command::SshConfig {
            host,
            file,
            ssh_args,
        } => inventory::ssh_config(g, &host, file.as_deref(), &ssh_args),
        Command::Ping { pattern } => adhoc::ping(g, &pattern),
        Command::Run { pattern, argv } => adhoc::run_command(g, &pattern, &argv),
        Command::Keys(cmd) => keys::execute(g, &cmd),
        Command::Hostkeys(cmd) => crate::commands::hostkeys::execute(g, &cmd),
        Command::Files(cmd) => files::execute(g, &cmd),
        Command::Config { host } => config::command(g, host.as_deref()),
        Command::Runs { show } => crate::commands::runs::command(g, show.as_deref()),
        Command::Undo(cfg) => crate::commands::undo::undo(g, &cfg),
    }
}
