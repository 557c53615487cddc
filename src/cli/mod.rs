//! Command-line interface: clap definitions and their conversion into domain configuration.
//!
//! Nothing outside this module sees clap types. [`Cli::into_config`] turns the parsed flags
//! into a [`crate::run::Invocation`]: the global flags become the domain
//! [`crate::commands::Config`] here, once (`--forks 0` clamped, `--host-key-checking`
//! parsed, durations built), plus one domain command. Each command family keeps its flags in
//! its own file.

pub mod adhoc;
pub mod config;
pub mod docs;
pub mod files;
#[cfg(feature = "testfleet")]
pub mod fleet;
pub mod hostkeys;
pub mod inventory;
pub mod keys;
pub mod runs;

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::commands::Config;
use crate::error::{Error, Result};
use crate::fleet::RunOptions;
use crate::fleet::resolve::ConnOverrides;
use crate::inventory::conn::HostKeyPolicy;
use crate::report::{OutputMode, ReportOptions};
use crate::run::Invocation;
use crate::secret::SecretSource;

/// Rotate SSH keys and replicate files across an Ansible inventory, in parallel, safely.
#[derive(Debug, Parser)]
#[command(
    name = "sshfleet",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = "Examples:\n  sshfleet -i hosts.ini ping\n  sshfleet -i hosts.ini keys rotate --generate --new-key ~/.ssh/fleet_2026\n  sshfleet -i hosts.ini replicate --from ca01 /etc/pki/ca-bundle.pem -b"
)]
pub struct Cli {
    /// Inventory file or directory (repeatable; comma-separated host lists like `a,b,` too).
    /// Default: $ANSIBLE_INVENTORY, then ansible.cfg [defaults] inventory, then /etc/ansible/hosts.
    #[arg(
        short = 'i',
        long = "inventory",
        global = true,
        help_heading = "Global options",
        value_name = "INVENTORY"
    )]
    pub inventory: Vec<String>,

    /// Further limit selected hosts to a pattern (Ansible syntax: `a:b`, `&g`, `!g`, `~re`, `@file`).
    #[arg(
        short = 'l',
        long = "limit",
        global = true,
        help_heading = "Global options",
        value_name = "SUBSET"
    )]
    pub limit: Option<String>,

    /// How many hosts to work on at once (default: ANSIBLE_FORKS / ansible.cfg `forks`, else
    /// 200).
    #[arg(
        short = 'f',
        long = "forks",
        global = true,
        help_heading = "Global options",
        value_name = "FORKS"
    )]
    pub forks: Option<usize>,

    /// Connect as this user (beats ansible.cfg and ANSIBLE_REMOTE_USER; ansible_user in the
    /// inventory beats it, as in Ansible).
    #[arg(
        short = 'u',
        long = "user",
        global = true,
        help_heading = "Global options",
        value_name = "REMOTE_USER"
    )]
    pub remote_user: Option<String>,

    /// Private key file for authentication (beats ansible.cfg and ANSIBLE_PRIVATE_KEY_FILE;
    /// ansible_ssh_private_key_file in the inventory beats it, as in Ansible).
    #[arg(
        long = "private-key",
        visible_alias = "key-file",
        global = true,
        help_heading = "Global options",
        value_name = "PRIVATE_KEY_FILE"
    )]
    pub private_key: Option<PathBuf>,

    /// Environment variable holding the passphrase of an encrypted private key.
    #[arg(
        long = "passphrase-env",
        global = true,
        help_heading = "Global options",
        value_name = "VAR"
    )]
    pub passphrase_env: Option<String>,

    /// Ask for the connection password on the terminal (password/keyboard-interactive auth).
    #[arg(
        short = 'k',
        long = "ask-pass",
        global = true,
        help_heading = "Global options"
    )]
    pub ask_pass: bool,

    /// Environment variable holding the connection password (non-interactive -k).
    #[arg(
        long = "password-env",
        global = true,
        help_heading = "Global options",
        value_name = "VAR"
    )]
    pub password_env: Option<String>,

    /// Ask for the privilege escalation (sudo/su) password on the terminal.
    #[arg(
        short = 'K',
        long = "ask-become-pass",
        global = true,
        help_heading = "Global options"
    )]
    pub ask_become_pass: bool,

    /// Environment variable holding the become password (non-interactive -K).
    #[arg(
        long = "become-password-env",
        global = true,
        help_heading = "Global options",
        value_name = "VAR"
    )]
    pub become_password_env: Option<String>,

    /// known_hosts file to check host keys against (default ~/.ssh/known_hosts).
    #[arg(
        long = "known-hosts",
        global = true,
        help_heading = "Global options",
        value_name = "FILE"
    )]
    pub known_hosts: Option<PathBuf>,

    /// Host key checking: yes (strict, default), accept-new, no.
    #[arg(
        long = "host-key-checking",
        global = true,
        help_heading = "Global options",
        value_name = "MODE"
    )]
    pub host_key_checking: Option<String>,

    /// Connection timeout in seconds (default: ANSIBLE_TIMEOUT / ansible.cfg `timeout`, else
    /// 10; ansible_timeout/ansible_ssh_timeout in the inventory beat it, as in Ansible).
    #[arg(
        short = 'T',
        long = "timeout",
        global = true,
        help_heading = "Global options",
        value_name = "SECS"
    )]
    pub timeout: Option<u64>,

    /// ssh arguments for every host, as Ansible's `--ssh-common-args` (the default of
    /// ansible_ssh_common_args).
    #[arg(
        long = "ssh-common-args",
        global = true,
        help_heading = "Global options",
        value_name = "ARGS",
        allow_hyphen_values = true
    )]
    pub ssh_common_args: Option<String>,

    /// ssh-only arguments, as Ansible's `--ssh-extra-args` (the default of
    /// ansible_ssh_extra_args).
    #[arg(
        long = "ssh-extra-args",
        global = true,
        help_heading = "Global options",
        value_name = "ARGS",
        allow_hyphen_values = true
    )]
    pub ssh_extra_args: Option<String>,

    /// Whole-job timeout per host in seconds (0 = none).
    #[arg(
        long = "host-timeout",
        global = true,
        help_heading = "Global options",
        default_value_t = 0,
        value_name = "SECS"
    )]
    pub host_timeout: u64,

    /// Run operations with become (sudo).
    #[arg(
        short = 'b',
        long = "become",
        global = true,
        help_heading = "Global options"
    )]
    pub r#become: bool,

    /// Privilege escalation method: sudo (default) or su.
    #[arg(
        long = "become-method",
        global = true,
        help_heading = "Global options",
        value_name = "METHOD"
    )]
    pub become_method: Option<String>,

    /// Become this user (default root).
    #[arg(
        long = "become-user",
        global = true,
        help_heading = "Global options",
        value_name = "USER"
    )]
    pub become_user: Option<String>,

    /// Don't make any changes; predict what would change.
    #[arg(
        short = 'C',
        long = "check",
        global = true,
        help_heading = "Global options"
    )]
    pub check: bool,

    /// Show the differences in files that change.
    #[arg(
        short = 'D',
        long = "diff",
        global = true,
        help_heading = "Global options"
    )]
    pub diff: bool,

    /// Print one JSON document with a result object per host instead of the text recap.
    #[arg(long = "json", global = true, help_heading = "Global options")]
    pub json: bool,

    /// More output (repeat for more).
    #[arg(short = 'v', long = "verbose", global = true, help_heading = "Global options", action = ArgAction::Count)]
    pub verbose: u8,

    /// OpenSSH client config to read instead of ~/.ssh/config and /etc/ssh/ssh_config
    /// (`none`: none at all). Beats `-F` in ansible_ssh_common_args/_extra_args.
    #[arg(
        long = "ssh-config",
        global = true,
        help_heading = "Global options",
        value_name = "FILE"
    )]
    pub ssh_config: Option<String>,

    /// Run journal directory (default: $SSHFLEET_JOURNAL_DIR, else
    /// $XDG_STATE_HOME/sshfleet/journal, else ~/.local/state/sshfleet/journal).
    #[arg(
        long = "journal-dir",
        global = true,
        help_heading = "Global options",
        value_name = "DIR"
    )]
    pub journal_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the inventory as `ansible-inventory` does (`--list` or `--host H`).
    #[command(
        after_help = "Examples:\n  sshfleet -i inventory/hosts.ini inventory --list\n  sshfleet -i inventory/ inventory --host web01"
    )]
    Inventory(inventory::InventoryArgs),
    /// List the hosts a pattern selects, as `ansible PATTERN --list-hosts` does.
    #[command(
        after_help = "Examples:\n  sshfleet -i hosts.ini hosts 'web:&prod:!web03'\n  sshfleet -i hosts.ini -l @retry.txt hosts all"
    )]
    Hosts(inventory::HostsArgs),
    /// Connect, authenticate and run `true` on every selected host.
    #[command(
        after_help = "Examples:\n  sshfleet -i hosts.ini ping\n  sshfleet -i hosts.ini ping web -u admin --private-key ~/.ssh/admin_ed25519\n  sshfleet -i hosts.ini --host-key-checking accept-new ping new_racks"
    )]
    Ping(adhoc::PingArgs),
    /// Run a command (no shell) on every selected host, like `ansible -m command`.
    #[command(
        after_help = "Examples:\n  sshfleet -i hosts.ini run -- systemctl is-active sshd\n  sshfleet -i hosts.ini run -H db -b -- cat /etc/sudoers.d/deploy"
    )]
    Run(adhoc::RunArgs),
    /// Manage authorized_keys: list, add, remove, set (exclusive), rotate.
    #[command(
        subcommand,
        after_help = "Examples:\n  sshfleet -i hosts.ini keys list --user deploy\n  sshfleet -i hosts.ini keys rotate --generate --new-key ~/.ssh/fleet_2026 --install"
    )]
    Keys(keys::KeysCommand),
    /// The hosts' own keys: scan them against known_hosts, certify them with a CA, rotate them
    /// (publish a new host key, then retire the old one).
    #[command(
        subcommand,
        after_help = "Examples:\n  sshfleet -i hosts.ini hostkeys scan --update-known-hosts --diff\n  sshfleet -i hosts.ini hostkeys certify --ca ~/ca/host_ca -b\n  sshfleet -i hosts.ini hostkeys rotate -b --retire"
    )]
    Hostkeys(hostkeys::HostkeysCommand),
    /// Fetch files from one host to the controller (or print them as JSON, like slurp).
    #[command(
        after_help = "Examples:\n  sshfleet -i hosts.ini slurp --from ca01 /etc/pki/ca.crt --dest fetched/\n  sshfleet -i hosts.ini slurp --from 'web*' /etc/nginx/nginx.conf --dest configs/\n  sshfleet -i hosts.ini --json slurp --from ca01 /etc/pki/ca.crt"
    )]
    Slurp(files::SlurpArgs),
    /// Copy controller files to every selected host.
    #[command(
        after_help = "Examples:\n  sshfleet -i hosts.ini copy ./token --dest /etc/app/ -b --owner app --mode 0600\n  sshfleet -i hosts.ini copy -r ./conf.d/ --dest /etc/app/conf.d/ -H web -b --check --diff"
    )]
    Copy(files::CopyArgs),
    /// Copy files from one host to every other selected host, byte for byte.
    #[command(
        after_help = "Examples:\n  sshfleet -i hosts.ini replicate --from ca01 /etc/pki/ca-bundle.pem -b --mode 0644\n  sshfleet -i hosts.ini -l pki replicate --from ca01 -r /etc/pki/issued/ -b\n  sshfleet -i hosts.ini replicate --from ca01 /etc/pki/ca.crt --validate 'openssl x509 -in %s'"
    )]
    Replicate(files::ReplicateArgs),
    /// List the runs in the journal, or show one (`runs show ID`).
    #[command(
        after_help = "Examples:\n  sshfleet runs\n  sshfleet runs show 20261203T113600.123Z-4242 --json"
    )]
    Runs(runs::RunsArgs),
    /// Put authorized_keys files back as they were before a run (lock-out safe; files changed
    /// since are reported as conflicts and left alone).
    #[command(
        after_help = "Examples:\n  sshfleet -i hosts.ini undo 20261203T113600.123Z-4242 --check --diff\n  sshfleet -i hosts.ini --private-key ~/.ssh/fleet_2026 undo 20261203T113600.123Z-4242 --verify-key ~/.ssh/id_ed25519"
    )]
    Undo(runs::UndoArgs),
    /// Print a shell completion script generated from these flags.
    #[command(
        after_help = "Examples:\n  sshfleet completions bash > /etc/bash_completion.d/sshfleet\n  sshfleet completions zsh > \"${fpath[1]}/_sshfleet\"\n  sshfleet completions fish > ~/.config/fish/completions/sshfleet.fish"
    )]
    Completions(docs::CompletionsArgs),
    /// Print the man page (roff), or write one page per command with --dir.
    #[command(
        after_help = "Examples:\n  sshfleet man | man -l -\n  sudo sshfleet man --dir /usr/local/share/man/man1 && man sshfleet-replicate"
    )]
    Man(docs::ManArgs),
    /// Show the Ansible settings in effect and where each came from (ansible.cfg, ANSIBLE_*,
    /// flags); `--host H`: what a connection to H would use, and why.
    #[command(
        after_help = "Examples:\n  sshfleet config\n  sshfleet -i inventory/hosts.ini config --host web01 --json"
    )]
    Config(config::ConfigArgs),
    /// Print what the OpenSSH client configuration resolves for a host, like `ssh -G`.
    #[command(
        after_help = "Examples:\n  sshfleet ssh-config web01\n  sshfleet ssh-config -F ./ssh_config -o Port=2222 bastion\n  sshfleet -i inventory/hosts.ini ssh-config app.internal"
    )]
    SshConfig(inventory::SshConfigArgs),
    /// Test/demo: run a local fleet of real sshd hosts on 127.0.0.1 (`fleet up`; root only).
    #[cfg(feature = "testfleet")]
    #[command(
        subcommand,
        after_help = "Examples:\n  sshfleet fleet up --hosts 10 --dir /tmp/fleet\n  sshfleet -i /tmp/fleet/inventory.ini ping"
    )]
    Fleet(fleet::FleetCommand),
}

/// `--host-key-checking` values: yes/true/strict, accept-new, no/false/off.
pub fn parse_policy(s: &str) -> Result<HostKeyPolicy> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "strict" | "1" | "on" => Ok(HostKeyPolicy::Strict),
        "accept-new" | "accept_new" | "new" => Ok(HostKeyPolicy::AcceptNew),
        "no" | "false" | "off" | "0" => Ok(HostKeyPolicy::Off),
        other => Err(Error::Usage(format!(
            "--host-key-checking: unknown mode {other:?} (use yes, accept-new or no)"
        ))),
    }
}

impl Cli {
    /// The global flags as domain configuration (low-level flags to high-level config, once).
    fn config(&self) -> Result<Config> {
        use crate::ansible_config::{AnsibleConfig, Env, Origin, conn};
        let host_key_policy = self
            .host_key_checking
            .as_deref()
            .map(parse_policy)
            .transpose()?;
        let become_method = match self.become_method.as_deref() {
            None => None,
            Some(m @ ("sudo" | "su")) => Some(m.to_string()),
            Some(other) => {
                return Err(Error::Usage(format!(
                    "--become-method: {other:?} is not supported (sudo, su)"
                )));
            }
        };
        let env = Env::from_process();
        let ansible = AnsibleConfig::load(&env)?;
        if let Some(w) = &ansible.warning {
            eprintln!("[WARNING]: {w}");
        }
        if self.verbose > 0 {
            for (key, origin, why) in &ansible.not_applied {
                eprintln!(
                    "[sshfleet] {key} is set ({}) but not applied: {why}",
                    origin.label()
                );
            }
        }
        let cli_conn = conn::CliConn {
            remote_user: self.remote_user.clone(),
            private_key: self.private_key.clone(),
            timeout: self.timeout,
            r#become: self.r#become,
            become_user: self.become_user.clone(),
            ssh_common_args: self.ssh_common_args.clone(),
            ssh_extra_args: self.ssh_extra_args.clone(),
        };
        let defaults = conn::ConnDefaults::resolve(&ansible, &cli_conn, env.cwd());
        let connect_timeout =
            Duration::from_secs(u64::try_from(defaults.timeout.value).unwrap_or(0).max(1));
        // sshfleet's own default is 200 forks, not Ansible's 5: it is made for many hosts.
        let (forks, forks_origin) = match (self.forks, ansible.int("forks")) {
            (Some(f), _) => (f, Origin::Cli("-f".into())),
            (None, Some((f, o))) if *o != Origin::Default => {
                (usize::try_from(f).unwrap_or(1), o.clone())
            }
            _ => (200, Origin::Default),
        };
        Ok(Config {
            inventory: self.inventory.clone(),
            limit: self.limit.clone(),
            conn: ConnOverrides {
                remote_user: self.remote_user.clone(),
                private_key: self.private_key.clone(),
                passphrase_env: self.passphrase_env.clone(),
                known_hosts: self.known_hosts.clone(),
                host_key_policy,
                connect_timeout,
                r#become: self.r#become,
                become_user: self.become_user.clone(),
                defaults: std::sync::Arc::new(defaults),
                ssh_config: self.ssh_config.clone(),
                become_method,
                password: SecretSource::from_flags(self.ask_pass, self.password_env.clone()),
                become_password: SecretSource::from_flags(
                    self.ask_become_pass,
                    self.become_password_env.clone(),
                ),
            },
            run: RunOptions::new(
                forks,
                (self.host_timeout > 0).then(|| Duration::from_secs(self.host_timeout)),
            ),
            report: ReportOptions {
                output: if self.json {
                    OutputMode::Json
                } else {
                    OutputMode::Text
                },
                verbose: self.verbose,
                diff: self.diff,
            },
            check: self.check,
            diff: self.diff,
            ansible: std::sync::Arc::new(ansible),
            forks_origin,
            journal: crate::commands::JournalSettings {
                dir: self.journal_dir.clone(),
                argv: std::env::args().collect(),
            },
        })
    }

    /// Parse flags into the domain invocation.
    pub fn into_config(self) -> Result<Invocation> {
        let config = self.config()?;
        let command = match self.command {
            Command::Inventory(a) => a.into_command()?,
            Command::Hosts(a) => a.into_command()?,
            Command::Ping(a) => a.into_command()?,
            Command::Run(a) => a.into_command()?,
            Command::Keys(a) => a.into_command()?,
            Command::Hostkeys(a) => a.into_command()?,
            Command::Slurp(a) => a.into_command()?,
            Command::Copy(a) => a.into_command()?,
            Command::Replicate(a) => a.into_command()?,
            Command::Completions(a) => a.into_command()?,
            Command::Man(a) => a.into_command()?,
            Command::Config(a) => a.into_command()?,
            Command::Runs(a) => a.into_command()?,
            Command::Undo(a) => a.into_command()?,
            #[cfg(feature = "testfleet")]
            Command::Fleet(a) => a.into_command()?,
            Command::SshConfig(a) => a.into_command()?,
        };
        Ok(Invocation { config, command })
    }
}

/// `-H/--hosts PATTERN`: which inventory hosts a command works on.
#[derive(Debug, Args)]
pub struct Hosts {
    /// Host pattern (Ansible syntax).
    #[arg(
        short = 'H',
        long = "hosts",
        default_value = "all",
        value_name = "PATTERN"
    )]
    pub pattern: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn policies() {
        assert_eq!(parse_policy("yes").unwrap(), HostKeyPolicy::Strict);
        assert_eq!(
            parse_policy("accept-new").unwrap(),
            HostKeyPolicy::AcceptNew
        );
        assert_eq!(parse_policy("False").unwrap(), HostKeyPolicy::Off);
        assert!(parse_policy("maybe").is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Words of a simple shell line: blanks split, '…' and "…" quote (\" inside "…").
    fn sh_words(line: &str) -> Vec<String> {
        let (mut words, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, ' ') => {
                    if any {
                        words.push(std::mem::take(&mut cur));
                    }
                    any = false;
                }
                (None, '\'' | '"') => (quote, any) = (Some(c), true),
                (Some(q), c) if c == q => quote = None,
                (Some('"'), '\\') => cur.extend(chars.next()),
                (_, c) => (cur.push(c), any = true).0,
            }
        }
        assert!(quote.is_none(), "unbalanced quotes: {line}");
        if any {
            words.push(cur);
        }
        words
    }

    /// Every command a user runs ends its `--help` with two or three examples, each a real
    /// `sshfleet` command line that parses with these very definitions.
    #[test]
    fn every_command_help_ends_with_examples_that_parse() {
        fn leaves(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
            let subs: Vec<_> = cmd
                .get_subcommands()
                .filter(|s| s.get_name() != "help")
                .collect();
            if let Some(h) = cmd.get_after_help() {
                out.push((path.clone(), h.to_string()));
            } else if subs.is_empty() {
                out.push((path.clone(), String::new()));
            }
            for s in subs {
                let mut p = path.clone();
                p.push(s.get_name().to_string());
                leaves(s, p, out);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        let mut all = Vec::new();
        leaves(&cmd, vec![], &mut all);
        assert!(all.len() > 10, "{all:?}");
        for (path, help) in all {
            let Some(text) = help.strip_prefix("Examples:\n") else {
                panic!("sshfleet {}: --help has no examples", path.join(" "));
            };
            let examples: Vec<&str> = text.lines().collect();
            assert!(
                (2..=3).contains(&examples.len()),
                "sshfleet {}: {examples:?}",
                path.join(" ")
            );
            for ex in examples {
                let line = ex.trim().trim_start_matches("sudo ");
                let line = line.split(" | ").next().unwrap();
                let line = line.split(" && ").next().unwrap();
                let line = line.split(" > ").next().unwrap();
                let argv = sh_words(line);
                assert_eq!(argv[0], "sshfleet", "{ex}");
                if let Err(e) = Cli::try_parse_from(&argv) {
                    panic!("example does not parse: {ex}\n{e}");
                }
            }
        }
    }
}
