//! Flags of `keys list|add|remove|set|rotate|audit|revoke`, turned into [`crate::commands::keys::KeysCommand`].
//!
//! In the `keys` subcommands `--user` names the owner of the `authorized_keys` file (as
//! Ansible's `authorized_key user=`), so the global `-u/--user` (login user) is spelled
//! `-u/--remote-user` here. Both flags share the global's id, so the login user still
//! reaches `-u` ([`crate::fleet::resolve::ConnOverrides::remote_user`]).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::commands::keys::{
    AuditConfig, EditAction, EditConfig, FileOptions, GenerateSpec, KeySource, KeyType,
    KeysCommand as Cmd, ListConfig, RevokeConfig, RotateConfig, Selection,
};
use crate::error::{Error, Result};
use crate::run::Command;

use super::Hosts;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List authorized keys (fingerprints and comments) per host.
    #[command(
        after_help = "Examples:\n  sshfleet -i hosts.ini keys list --user deploy\n  sshfleet -i hosts.ini keys list -H db -b --user postgres"
    )]
    List(ListArgs),
    /// Add keys (like authorized_key state=present).
    #[command(
        after_help = "Examples:\n  sshfleet -i hosts.ini keys add --user deploy --key ~/.ssh/alice.pub --diff\n  sshfleet -i hosts.ini keys add --user deploy --key https://github.com/alice.keys --key-options 'from=\"10.0.0.0/8\"'"
    )]
    Add(EditArgs),
    /// Remove keys (like authorized_key state=absent).
    #[command(
        after_help = "Examples:\n  sshfleet -i hosts.ini keys remove --user deploy --key 'ssh-ed25519 AAAA... bob@laptop'\n  sshfleet -i hosts.ini keys remove --user deploy --key bob.pub -b --check --diff"
    )]
    Remove(EditArgs),
    /// Make the given keys the only ones (like authorized_key exclusive=true).
    #[command(
        after_help = "Examples:\n  sshfleet -i hosts.ini keys set --user deploy --key new.pub --key ops.pub --check --diff\n  sshfleet -i hosts.ini keys set -H web --user deploy --key team.keys --keep-comments -b"
    )]
    Set(EditArgs),
    /// Add a new key, prove it logs in on its own, then remove every other key.
    #[command(
        after_help = "Examples:\n  sshfleet -i hosts.ini keys rotate --generate --new-key ~/.ssh/fleet_2026 --install\n  sshfleet -i hosts.ini keys rotate --user backup -b --new-key ~/.ssh/backup_2026 --keep ops.pub\n  sshfleet -i hosts.ini keys rotate --new-key ~/.ssh/fleet_2026 --check --diff"
    )]
    Rotate(RotateArgs),
    /// Every account's keys on every host, from sshd's effective configuration (-b to see
    /// everything), grouped by key, with findings.
    #[command(
        after_help = "Examples:\n  sshfleet -i hosts.ini -b keys audit\n  sshfleet -i hosts.ini -b keys audit --known-keys team.keys --csv > keys.csv\n  sshfleet -i hosts.ini -b --json keys audit"
    )]
    Audit(AuditArgs),
    /// Remove a key from every account's files on every host (guarded against lock-out).
    #[command(
        after_help = "Examples:\n  sshfleet -i hosts.ini -b keys revoke --comment '*@laptop-bob' --check --diff\n  sshfleet -i hosts.ini -b keys revoke --fingerprint SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s\n  sshfleet -i hosts.ini -b keys revoke --key bob.pub"
    )]
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Allow list (authorized_keys or .pub lines): keys not in it are findings.
    #[arg(long = "known-keys", value_name = "FILE")]
    pub known_keys: Option<PathBuf>,
    /// CSV rows (one per place a key appears) instead of the table.
    #[arg(long = "csv")]
    pub csv: bool,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub hosts: HostArgs,
    /// The key: public key text, a .pub/authorized_keys file, or an http(s):// URL
    /// (repeatable; matched by fingerprint).
    #[arg(long = "key", value_name = "KEY", num_args = 1..)]
    pub keys: Vec<String>,
    /// A fingerprint as ssh-keygen -lf prints it (SHA256:...; repeatable).
    #[arg(long = "fingerprint", value_name = "SHA256", num_args = 1..)]
    pub fingerprints: Vec<String>,
    /// A glob over key comments, e.g. '*@laptop-bob' (repeatable).
    #[arg(long = "comment", value_name = "GLOB", num_args = 1..)]
    pub comments: Vec<String>,
    /// Remove even the key the controller is logged in with, and empty the login user's file.
    #[arg(long = "force")]
    pub force: bool,
}

/// Host selection and login user, common to every keys subcommand.
#[derive(Debug, Args)]
pub struct HostArgs {
    #[command(flatten)]
    pub select: Hosts,
    /// Log in as this user (overrides ansible_user; `--user` here names the key owner).
    #[arg(
        id = "remote_user",
        short = 'u',
        long = "remote-user",
        value_name = "REMOTE_USER"
    )]
    pub remote_user: Option<String>,
}

/// How the authorized_keys file is handled (authorized_key's file options).
#[derive(Debug, Args)]
pub struct FileArgs {
    /// authorized_keys path (default ~USER/.ssh/authorized_keys).
    #[arg(long = "path", value_name = "PATH")]
    pub path: Option<String>,
    /// Don't create ~USER/.ssh (0700, owned by the user) when it is missing.
    #[arg(long = "no-manage-dir")]
    pub no_manage_dir: bool,
    /// Write through a symlinked authorized_keys (refused by default).
    #[arg(long = "follow")]
    pub follow: bool,
    /// With an exclusive set, keep `#` comment lines.
    #[arg(long = "keep-comments")]
    pub keep_comments: bool,
    /// Keep the previous file as a timestamped backup on the host.
    #[arg(long = "backup")]
    pub backup: bool,
}

impl FileArgs {
    fn into_options(self) -> FileOptions {
        FileOptions {
            path: self.path,
            manage_dir: !self.no_manage_dir,
            follow: self.follow,
            keep_comments: self.keep_comments,
            backup: self.backup,
        }
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Whose keys (default: the login user).
    #[arg(long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// authorized_keys path (default ~USER/.ssh/authorized_keys).
    #[arg(long = "path", value_name = "PATH")]
    pub path: Option<String>,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Owner of the authorized_keys file.
    #[arg(long = "user", value_name = "USER", required = true)]
    pub user: String,
    /// Public key text, a .pub/authorized_keys file, or an http(s):// URL (repeatable).
    #[arg(long = "key", value_name = "KEY", required = true, num_args = 1..)]
    pub keys: Vec<String>,
    /// Options for every given key (replacing theirs), e.g. 'from="10.0.0.0/8",no-pty'.
    #[arg(long = "key-options", value_name = "OPTIONS")]
    pub key_options: Option<String>,
    /// Comment for every given key (replacing theirs).
    #[arg(long = "comment", value_name = "COMMENT")]
    pub comment: Option<String>,
    #[command(flatten)]
    pub file: FileArgs,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub hosts: HostArgs,
    /// The new private key (its public half is PATH.pub).
    #[arg(long = "new-key", value_name = "PATH", required = true)]
    pub new_key: PathBuf,
    /// Generate the new key pair at --new-key first (refused if it exists).
    #[arg(long = "generate")]
    pub generate: bool,
    /// Type of the generated key.
    #[arg(long = "type", value_name = "TYPE", default_value = "ed25519", value_parser = ["ed25519", "rsa"], requires = "generate")]
    pub key_type: String,
    /// RSA modulus size for --type rsa (default 3072).
    #[arg(long = "bits", value_name = "BITS", requires = "generate")]
    pub bits: Option<usize>,
    /// Comment of the generated key (default sshfleet-rotated-DATE).
    #[arg(long = "comment", value_name = "COMMENT", requires = "generate")]
    pub comment: Option<String>,
    /// Environment variable holding the new key's passphrase.
    #[arg(long = "new-passphrase-env", value_name = "VAR")]
    pub new_passphrase_env: Option<String>,
    /// Keys to keep besides the new one: key text or a .pub file (repeatable).
    #[arg(long = "keep", value_name = "PUBKEY", num_args = 1..)]
    pub keep: Vec<String>,
    /// Whose keys to rotate (default: each host's login user).
    #[arg(long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// Afterwards move the new pair where the private key used to connect lives
    /// (--private-key or the inventory's), keeping the old pair as a timestamped backup.
    #[arg(long = "install")]
    pub install: bool,
    #[command(flatten)]
    pub file: FileArgs,
}

fn key_sources(args: &[String]) -> Result<Vec<KeySource>> {
    args.iter()
        .map(|a| KeySource::classify(a, |p| Path::new(p).exists()).map_err(Error::Usage))
        .collect()
}

fn selection(h: HostArgs) -> Selection {
    Selection {
        pattern: h.select.pattern,
    }
}

impl KeysCommand {
    pub fn into_command(self) -> Result<Command> {
        Ok(Command::Keys(self.into_domain(unix_now())?))
    }

    /// The domain configuration; `now` only picks the default key comment.
    pub fn into_domain(self, now: i64) -> Result<Cmd> {
        Ok(match self {
            KeysCommand::List(a) => Cmd::List(ListConfig {
                hosts: selection(a.hosts),
                user: a.user,
                path: a.path,
            }),
            KeysCommand::Audit(a) => Cmd::Audit(AuditConfig {
                hosts: selection(a.hosts),
                known_keys: a.known_keys,
                csv: a.csv,
            }),
            KeysCommand::Revoke(a) => Cmd::Revoke(RevokeConfig {
                hosts: selection(a.hosts),
                keys: key_sources(&a.keys)?,
                fingerprints: a.fingerprints,
                comments: a.comments,
                force: a.force,
            }),
            KeysCommand::Add(a) => edit(a, EditAction::Add)?,
            KeysCommand::Remove(a) => edit(a, EditAction::Remove)?,
            KeysCommand::Set(a) => edit(a, EditAction::Set)?,
            KeysCommand::Rotate(a) => {
                let generate = if a.generate {
                    Some(GenerateSpec {
                        key_type: KeyType::from_name(&a.key_type, a.bits).map_err(Error::Usage)?,
                        comment: a
                            .comment
                            .unwrap_or_else(|| crate::ssh::keygen::default_comment(now)),
                    })
                } else {
                    None
                };
                let keep = key_sources(&a.keep)?;
                if let Some(KeySource::Url(u)) =
                    keep.iter().find(|k| matches!(k, KeySource::Url(_)))
                {
                    return Err(Error::Usage(format!(
                        "--keep {u}: give kept keys as text or a .pub file, not a URL"
                    )));
                }
                Cmd::Rotate(RotateConfig {
                    hosts: selection(a.hosts),
                    new_key: a.new_key,
                    generate,
                    new_passphrase_env: a.new_passphrase_env,
                    keep,
                    user: a.user,
                    install: a.install,
                    file: a.file.into_options(),
                })
            }
        })
    }
}

fn edit(a: EditArgs, action: EditAction) -> Result<Cmd> {
    if action == EditAction::Remove && (a.key_options.is_some() || a.comment.is_some()) {
        return Err(Error::Usage(
            "keys remove: --key-options and --comment do not apply (keys are matched by their blob)"
                .into(),
        ));
    }
    if action != EditAction::Set && a.file.keep_comments {
        return Err(Error::Usage(
            "--keep-comments only applies to `keys set` (an exclusive set)".into(),
        ));
    }
    Ok(Cmd::Edit(EditConfig {
        hosts: selection(a.hosts),
        action,
        user: a.user,
        keys: key_sources(&a.keys)?,
        key_options: a.key_options,
        comment: a.comment,
        file: a.file.into_options(),
    }))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::run::Invocation;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Invocation> {
        let mut argv = vec!["sshfleet"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .map_err(|e| Error::Usage(e.to_string()))?
            .into_config()
    }

    fn keys(inv: Invocation) -> Cmd {
        match inv.command {
            Command::Keys(k) => k,
            other => panic!("not a keys command: {other:?}"),
        }
    }

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0iZxG8rKfJ8fZ3Oo6i3bUQH2l2Xh0pJb0S9cB7q0cA me@x";

    #[test]
    fn add_flags_become_edit_config() {
        let inv = parse(&[
            "keys",
            "add",
            "--user",
            "deploy",
            "--key",
            KEY,
            "--key-options",
            "no-pty",
            "--path",
            "/etc/ssh/keys/deploy",
            "--no-manage-dir",
            "--backup",
            "-H",
            "web",
        ])
        .unwrap();
        assert_eq!(inv.config.conn.remote_user, None);
        assert_eq!(
            keys(inv),
            Cmd::Edit(EditConfig {
                hosts: Selection {
                    pattern: "web".into()
                },
                action: EditAction::Add,
                user: "deploy".into(),
                keys: vec![KeySource::Literal(KEY.into())],
                key_options: Some("no-pty".into()),
                comment: None,
                file: FileOptions {
                    path: Some("/etc/ssh/keys/deploy".into()),
                    manage_dir: false,
                    follow: false,
                    keep_comments: false,
                    backup: true,
                },
            })
        );
    }

    #[test]
    fn user_is_key_owner_and_remote_user_is_login() {
        let inv = parse(&[
            "--check",
            "keys",
            "set",
            "-u",
            "admin",
            "--user",
            "backup",
            "--key",
            KEY,
            "https://example.com/k",
            "--keep-comments",
        ])
        .unwrap();
        assert_eq!(inv.config.conn.remote_user.as_deref(), Some("admin"));
        assert!(inv.config.check);
        let Cmd::Edit(e) = keys(inv) else { panic!() };
        assert_eq!(e.user, "backup");
        assert_eq!(e.action, EditAction::Set);
        assert_eq!(
            e.keys,
            vec![
                KeySource::Literal(KEY.into()),
                KeySource::Url("https://example.com/k".into())
            ]
        );
        assert!(e.file.keep_comments);
        // The global -u still works before the subcommand.
        let inv = parse(&["-u", "root", "keys", "list"]).unwrap();
        assert_eq!(inv.config.conn.remote_user.as_deref(), Some("root"));
        assert_eq!(
            keys(inv),
            Cmd::List(ListConfig {
                hosts: Selection {
                    pattern: "all".into()
                },
                user: None,
                path: None
            })
        );
    }

    #[test]
    fn edit_needs_user_and_key_and_rejects_misplaced_options() {
        assert!(parse(&["keys", "add", "--key", KEY]).is_err());
        assert!(parse(&["keys", "add", "--user", "u"]).is_err());
        assert!(
            parse(&[
                "keys",
                "remove",
                "--user",
                "u",
                "--key",
                KEY,
                "--comment",
                "c"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "keys",
                "add",
                "--user",
                "u",
                "--key",
                KEY,
                "--keep-comments"
            ])
            .is_err()
        );
        let err = parse(&["keys", "add", "--user", "u", "--key", "nonsense"]).unwrap_err();
        assert!(err.to_string().contains("nonsense"), "{err}");
    }

    #[test]
    fn rotate_flags() {
        let inv = parse(&["keys", "rotate", "--new-key", "/k/new", "--generate"]).unwrap();
        let Cmd::Rotate(r) = keys(inv) else { panic!() };
        assert_eq!(r.new_key, PathBuf::from("/k/new"));
        let g = r.generate.unwrap();
        assert_eq!(g.key_type, KeyType::Ed25519);
        assert!(g.comment.starts_with("sshfleet-rotated-"));
        assert_eq!(r.user, None);
        assert!(!r.install);
        assert!(r.file.manage_dir);

        let inv = parse(&[
            "keys",
            "rotate",
            "--new-key",
            "/k/new",
            "--generate",
            "--type",
            "rsa",
            "--bits",
            "4096",
            "--comment",
            "c",
            "--new-passphrase-env",
            "NEWPASS",
            "--keep",
            KEY,
            "--user",
            "backup",
            "--install",
        ])
        .unwrap();
        let Cmd::Rotate(r) = keys(inv) else { panic!() };
        assert_eq!(
            r.generate,
            Some(GenerateSpec {
                key_type: KeyType::Rsa { bits: 4096 },
                comment: "c".into()
            })
        );
        assert_eq!(r.new_passphrase_env.as_deref(), Some("NEWPASS"));
        assert_eq!(r.keep, vec![KeySource::Literal(KEY.into())]);
        assert_eq!(r.user.as_deref(), Some("backup"));
        assert!(r.install);

        // --type/--bits need --generate; bad sizes and URL keeps are refused.
        assert!(parse(&["keys", "rotate", "--new-key", "/k", "--type", "rsa"]).is_err());
        assert!(
            parse(&[
                "keys",
                "rotate",
                "--new-key",
                "/k",
                "--generate",
                "--type",
                "rsa",
                "--bits",
                "512"
            ])
            .is_err()
        );
        assert!(parse(&["keys", "rotate", "--new-key", "/k", "--keep", "https://x/k"]).is_err());
        assert!(parse(&["keys", "rotate"]).is_err());
    }
}

#[cfg(test)]
mod audit_revoke_tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn keys(args: &[&str]) -> Cmd {
        let mut argv = vec!["sshfleet"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv)
            .unwrap()
            .into_config()
            .unwrap()
            .command
        {
            Command::Keys(k) => k,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn audit_and_revoke_flags() {
        assert_eq!(
            keys(&["keys", "audit", "--known-keys", "/k", "--csv", "-H", "web"]),
            Cmd::Audit(AuditConfig {
                hosts: Selection {
                    pattern: "web".into()
                },
                known_keys: Some("/k".into()),
                csv: true,
            })
        );
        match keys(&[
            "keys",
            "revoke",
            "--comment",
            "*@laptop-bob",
            "--fingerprint",
            "SHA256:abc",
            "--force",
        ]) {
            Cmd::Revoke(r) => {
                assert_eq!(r.comments, ["*@laptop-bob"]);
                assert_eq!(r.fingerprints, ["SHA256:abc"]);
                assert!(r.force && r.keys.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }
}
