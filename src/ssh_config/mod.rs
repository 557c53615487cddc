//! OpenSSH client configuration (`ssh_config(5)`), resolved exactly as OpenSSH 9.2's
//! `ssh -G` resolves it: which settings apply to a host, given the command-line options
//! and the configuration files.
//!
//! Pure apart from what OpenSSH itself asks the system ([`sys`]: the passwd entry of the
//! local uid, `glob(3)` for `Include`, `Match exec` commands).
//!
//! Layout: [`lex`] splits lines as `misc.c` does, [`keywords`] is the 9.2 keyword table
//! with the value checks, [`pattern`] the `Host`/`Match` wildcards, [`tokens`] `%x`, `~`
//! and `${VAR}` expansion, [`jump`] ProxyJump values, [`resolve`] the passes over the
//! files. [`Resolved::dump`] prints `ssh -G` lines.
//!
//! What it refuses, as `ssh` does: an unknown keyword (not covered by an `IgnoreUnknown`
//! already in effect) or an invalid value anywhere, also in blocks that do not apply;
//! unbalanced quotes; an unreadable `-F` file; included files with bad owner/permissions.
//! Every error names the file and line.

pub mod jump;
pub mod keywords;
pub mod lex;
pub mod pattern;
pub mod resolve;
pub mod sys;
pub mod tokens;

use std::path::PathBuf;
use std::sync::Arc;

pub use jump::{Hop, Jump};
pub use resolve::{CmdOption, Expander, resolve};
pub use sys::LocalUser;

/// A configuration `ssh` would refuse, or a host it could not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshConfigError {
    /// A bad line (`file` is `command-line` for `-o` options).
    #[error("{file} line {line}: {msg}")]
    Line {
        file: String,
        line: usize,
        msg: String,
    },
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
    /// Resolution failed after reading (bad token in HostName, jump loop, ...).
    #[error("{target}: {msg}")]
    Target { target: String, msg: String },
    #[error("cannot look up the local user (getpwuid) for uid {0}")]
    NoLocalUser(u32),
}

/// Which configuration files are read (`ssh`'s default, `-F FILE`, `-F none`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ConfigFiles {
    /// `~/.ssh/config`, then `/etc/ssh/ssh_config`.
    #[default]
    Default,
    /// `-F FILE`: only this file (must exist).
    File(PathBuf),
    /// `-F none`.
    Disabled,
}

impl ConfigFiles {
    /// The value of `-F`/`--ssh-config`: `none` disables, anything else is a file.
    pub fn from_flag(v: &str) -> ConfigFiles {
        if v.eq_ignore_ascii_case("none") {
            ConfigFiles::Disabled
        } else {
            ConfigFiles::File(PathBuf::from(v))
        }
    }
}

/// Looks up an environment variable (`${VAR}` in paths).
pub type EnvFn = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;
/// Runs a `Match exec` command; `Ok(exit status)`.
pub type ExecFn = Arc<dyn Fn(&str) -> Result<i32, String> + Send + Sync>;

/// What the resolver takes from its surroundings.
#[derive(Clone)]
pub struct Context {
    pub local: LocalUser,
    /// `gethostname()` (`%l`, `%L`, `%C`).
    pub thishost: String,
    /// Directory of the system file and of its relative `Include`s (`/etc/ssh`).
    pub system_dir: PathBuf,
    pub env: EnvFn,
    pub exec: ExecFn,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("local", &self.local)
            .field("thishost", &self.thishost)
            .field("system_dir", &self.system_dir)
            .finish()
    }
}

impl Context {
    /// The real one: passwd entry of our uid, `/etc/ssh`, the process environment,
    /// `Match exec` run with `$SHELL -c` (else `/bin/sh`).
    pub fn system() -> Result<Context, SshConfigError> {
        let local = LocalUser::current()
            .ok_or_else(|| SshConfigError::NoLocalUser(unsafe { libc::getuid() }))?;
        Ok(Context {
            local,
            thishost: sys::hostname(),
            system_dir: PathBuf::from("/etc/ssh"),
            env: Arc::new(|v| std::env::var(v).ok()),
            exec: Arc::new(sys::run_shell),
        })
    }
}

/// `StrictHostKeyChecking` as resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictHostKeyChecking {
    Yes,
    No,
    Ask,
    AcceptNew,
}

impl StrictHostKeyChecking {
    /// How `ssh -G` prints it.
    pub fn as_ssh_g(self) -> &'static str {
        match self {
            StrictHostKeyChecking::Yes => "true",
            StrictHostKeyChecking::No => "false",
            StrictHostKeyChecking::Ask => "ask",
            StrictHostKeyChecking::AcceptNew => "accept-new",
        }
    }
}

/// Everything resolved for one host. Paths are as `ssh -G` shows them: IdentityFile,
/// CertificateFile and GlobalKnownHostsFile unexpanded, UserKnownHostsFile and
/// IdentityAgent expanded; [`Resolved::expand`] expands the others as `ssh` does when it
/// uses them.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The name as typed.
    pub host_arg: String,
    /// Where to connect: HostName with `%h` expanded, lower-cased unless an address.
    pub hostname: String,
    pub user: String,
    /// User came from an option or a file (not the local user default).
    pub user_given: bool,
    pub port: u16,
    pub port_given: bool,
    /// In order, defaults (`~/.ssh/id_*`) when none was given.
    pub identity_files: Vec<String>,
    pub identity_files_given: bool,
    pub certificate_files: Vec<String>,
    pub identities_only: bool,
    pub identity_agent: Option<String>,
    pub proxy_jump: Option<Jump>,
    /// Raw (unexpanded), `none` already removed.
    pub proxy_command: Option<String>,
    pub user_known_hosts: Vec<String>,
    pub user_known_hosts_given: bool,
    pub global_known_hosts: Vec<String>,
    pub global_known_hosts_given: bool,
    pub strict_host_key_checking: StrictHostKeyChecking,
    pub strict_given: bool,
    /// Lower-cased.
    pub host_key_alias: Option<String>,
    /// Seconds; `None` is `connecttimeout none`.
    pub connect_timeout: Option<i64>,
    pub server_alive_interval: i64,
    pub server_alive_count_max: i64,
    pub expander: Expander,
}

impl Resolved {
    /// Expand `~`, `%` tokens and `${VAR}` in a path (IdentityFile, CertificateFile), as
    /// `ssh` does before opening it.
    pub fn expand(&self, s: &str) -> Result<String, tokens::TokenError> {
        self.expander.expand(s)
    }

    /// `ssh -G` lines for the settings sshfleet resolves, in `ssh -G`'s order.
    pub fn dump(&self) -> String {
        let mut o = String::new();
        let mut line = |k: &str, v: &str| {
            o.push_str(k);
            o.push(' ');
            o.push_str(v);
            o.push('\n');
        };
        line("host", &self.host_arg);
        line("user", &self.user);
        line("hostname", &self.hostname);
        line("port", &self.port.to_string());
        line(
            "identitiesonly",
            if self.identities_only { "yes" } else { "no" },
        );
        line(
            "stricthostkeychecking",
            self.strict_host_key_checking.as_ssh_g(),
        );
        line(
            "serveralivecountmax",
            &self.server_alive_count_max.to_string(),
        );
        line(
            "serveraliveinterval",
            &self.server_alive_interval.to_string(),
        );
        if let Some(a) = &self.host_key_alias {
            line("hostkeyalias", a);
        }
        if let Some(a) = &self.identity_agent {
            line("identityagent", a);
        }
        for f in &self.identity_files {
            line("identityfile", f);
        }
        for f in &self.certificate_files {
            line("certificatefile", f);
        }
        let oneline = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(" ")
            }
        };
        line("globalknownhostsfile", &oneline(&self.global_known_hosts));
        line("userknownhostsfile", &oneline(&self.user_known_hosts));
        match self.connect_timeout {
            Some(t) => line("connecttimeout", &t.to_string()),
            None => line("connecttimeout", "none"),
        }
        match (&self.proxy_jump, &self.proxy_command) {
            (Some(j), _) => line("proxyjump", &j.display()),
            (None, Some(c)) => line("proxycommand", c),
            (None, None) => {}
        }
        o
    }
}

#[cfg(test)]
mod tests;
