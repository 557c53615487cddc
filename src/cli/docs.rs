//! `sshfleet completions SHELL` and `sshfleet man`: shell completions and man pages generated
//! from the clap definitions of this module (`clap_complete`, `clap_mangen`), so they can
//! never disagree with the flags the binary accepts.
//!
//! Both are produced here, at parse time, as text or files; the driver only prints or writes
//! them ([`crate::run::Command::Print`], [`crate::run::Command::WriteFiles`]).

use std::path::PathBuf;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;
use crate::error::{Error, Result};
use crate::run::Command;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

impl CompletionsArgs {
    pub fn into_command(self) -> Result<Command> {
        Ok(Command::Print(completions(self.shell)))
    }
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write one page per command (sshfleet.1, sshfleet-replicate.1, ...) into DIR instead of
    /// printing sshfleet.1.
    #[arg(long = "dir", value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

impl ManArgs {
    pub fn into_command(self) -> Result<Command> {
        match self.dir {
            None => Ok(Command::Print(man_page()?)),
            Some(dir) => Ok(Command::WriteFiles {
                dir,
                files: man_pages()?,
            }),
        }
    }
}

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> String {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "sshfleet", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// One page: clap_mangen's sections, then the command's examples (its `--help` ends with them)
/// as an `EXAMPLES` section set as written (no filling), one command line per line.
fn render(cmd: clap::Command) -> Result<String> {
    let examples = cmd.get_after_help().map(|h| h.to_string());
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.after_help(None::<&'static str>))
        .source(concat!("sshfleet ", env!("CARGO_PKG_VERSION")))
        .render(&mut out)
        .map_err(|e| Error::io("man page", e))?;
    let mut page = String::from_utf8_lossy(&out).into_owned();
    if let Some(text) = examples {
        page.push_str(&examples_section(&text));
    }
    Ok(page)
}

/// `Examples:\n  sshfleet ...` as roff: `.SH EXAMPLES`, then the lines unfilled.
fn examples_section(help: &str) -> String {
    let mut s = String::from(".SH EXAMPLES\n.nf\n");
    for line in help.lines().skip_while(|l| l.trim_end().ends_with(':')) {
        // Backslashes and hyphens as roff wants them; a leading `.` or `'` would be a request.
        let esc = line.trim().replace('\\', "\\e").replace('-', "\\-");
        if esc.starts_with('.') || esc.starts_with('\'') {
            s.push_str("\\&");
        }
        s.push_str(&esc);
        s.push('\n');
    }
    s.push_str(".fi\n");
    s
}

/// `sshfleet.1`: the global options and the list of commands.
pub fn man_page() -> Result<String> {
    render(Cli::command())
}

/// Every page: `sshfleet.1` and `sshfleet-CMD[-SUB].1` for each (sub)command, as
/// `(file name, roff)`.
pub fn man_pages() -> Result<Vec<(String, String)>> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut pages = Vec::new();
    collect(cmd, &mut pages)?;
    Ok(pages)
}

/// `cmd` must be built: its subcommands then carry display names `sshfleet-keys-rotate`.
fn collect(cmd: clap::Command, pages: &mut Vec<(String, String)>) -> Result<()> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
    pages.push((format!("{name}.1"), render(cmd.clone())?));
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        collect(sub.clone(), pages)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_is_completed_and_has_a_page() {
        let bash = completions(Shell::Bash);
        assert!(bash.contains("complete -F _sshfleet"), "{bash}");
        for sub in ["replicate", "rotate", "completions", "man"] {
            assert!(bash.contains(sub), "bash completion lacks {sub}");
        }
        let pages = man_pages().unwrap();
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        for n in [
            "sshfleet.1",
            "sshfleet-replicate.1",
            "sshfleet-keys-rotate.1",
        ] {
            assert!(names.contains(&n), "{names:?}");
        }
        let top = man_page().unwrap();
        assert!(top.starts_with(".ie"), "roff expected: {}", &top[..80]);
        assert!(top.contains("replicate"));
        assert!(
            top.contains(".SH EXAMPLES\n.nf\nsshfleet \\-i hosts.ini ping\n"),
            "{top}"
        );
    }
}
