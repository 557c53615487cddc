//! Fleet-level `authorized_keys` commands: `keys list|add|remove|set|rotate|audit|revoke`.
//!
//! This module owns the domain configuration of those commands ([`KeysCommand`]) and their
//! drivers. The editing itself is the single-host `authorized_key` operation
//! ([`crate::ops::authorized_key`]), driven here over an `SshTarget` per host (listing and
//! exclusive-set planning are in [`crate::ops::keys`]); rotation adds the lock-out-safe
//! sequencing ([`rotate`]), key sources ([`source`]) and controller key pairs
//! ([`crate::ssh::keygen`]). `audit` and `revoke` ([`audit`], [`revoke`]) work on every
//! account and every file sshd reads, from the host's effective sshd configuration.
//!
//! Login user vs key owner: `-u/--remote-user` (or the inventory's `ansible_user`) is who
//! we log in as; `--user` is whose `authorized_keys` is edited. Editing another user's file
//! needs `-b` (or logging in as that user). `rotate` verifies the new key by logging in **as
//! the rotated user** with only that key, and applies the exclusive set over that connection
//! (as that user, without become unless the rotated user is the login user).

pub mod audit;
pub mod edit;
pub mod hops;
pub mod resume;
pub mod revoke;
pub mod rotate;
pub mod source;

use std::path::PathBuf;

use super::Config;
pub use crate::ssh::keygen::{GenerateSpec, KeyType};

/// A key given on the command line (`--key`, `--keep`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `http://` or `https://`: fetched once on the controller and validated.
    Url(String),
    /// A file of public keys (`.pub` or authorized_keys format); `file:///p` or a path that
    /// exists.
    File(PathBuf),
    /// The key text itself (one or more lines).
    Literal(String),
}

impl KeySource {
    /// Classify one command-line argument. URLs by scheme, `file://` as a file, an existing
    /// path as a file, anything with whitespace as key text; anything else is an error (a
    /// key line always has a type and a blob separated by whitespace).
    pub fn classify(arg: &str, exists: impl Fn(&str) -> bool) -> Result<KeySource, String> {
        let lower = arg.get(..8).unwrap_or(arg).to_ascii_lowercase();
        if lower.starts_with("https://") || lower.starts_with("http://") {
            return Ok(KeySource::Url(arg.to_string()));
        }
        if let Some(p) = arg.strip_prefix("file://") {
            return Ok(KeySource::File(PathBuf::from(p)));
        }
        if exists(arg) {
            return Ok(KeySource::File(PathBuf::from(arg)));
        }
        if arg.trim().contains(char::is_whitespace) {
            return Ok(KeySource::Literal(arg.to_string()));
        }
        Err(format!(
            "{arg:?} is neither a public key (\"TYPE BASE64 [COMMENT]\"), an existing file, nor an http(s):// URL"
        ))
    }
}

/// Which hosts, and whose file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Host pattern (Ansible syntax), further narrowed by `--limit`.
    pub pattern: String,
}

/// `keys list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListConfig {
    pub hosts: Selection,
    /// Whose keys; `None` = the login user.
    pub user: Option<String>,
    /// authorized_keys path; `None` = `~user/.ssh/authorized_keys`.
    pub path: Option<String>,
}

/// `add` (present), `remove` (absent), `set` (present + exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditAction {
    Add,
    Remove,
    Set,
}

/// File handling options shared by the editing commands (authorized_key's options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOptions {
    pub path: Option<String>,
    pub manage_dir: bool,
    pub follow: bool,
    /// With an exclusive set: keep `#` comment lines (upstream drops them).
    pub keep_comments: bool,
    pub backup: bool,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            path: None,
            manage_dir: true,
            follow: false,
            keep_comments: false,
            backup: false,
        }
    }
}

/// `keys add|remove|set`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditConfig {
    pub hosts: Selection,
    pub action: EditAction,
    pub user: String,
    pub keys: Vec<KeySource>,
    pub key_options: Option<String>,
    pub comment: Option<String>,
    pub file: FileOptions,
}

/// `keys rotate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotateConfig {
    pub hosts: Selection,
    /// The new private key; its public half is `PATH.pub`.
    pub new_key: PathBuf,
    /// Generate the pair at `new_key` first (refused if it exists).
    pub generate: Option<GenerateSpec>,
    /// Environment variable holding the new key's passphrase (to encrypt it when
    /// generating, to decrypt it for the verification login).
    pub new_passphrase_env: Option<String>,
    /// Keys to keep besides the new one.
    pub keep: Vec<KeySource>,
    /// Whose keys; `None` = each host's login user.
    pub user: Option<String>,
    /// Afterwards, move the new pair to where the connection's private key lives.
    pub install: bool,
    pub file: FileOptions,
}

/// `keys audit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    pub hosts: Selection,
    /// An allow list: keys not in it are findings.
    pub known_keys: Option<PathBuf>,
    /// CSV rows instead of the table (`--json` is the global flag).
    pub csv: bool,
}

/// `keys revoke`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeConfig {
    pub hosts: Selection,
    /// Keys given as text, files or URLs (matched by fingerprint).
    pub keys: Vec<KeySource>,
    /// `SHA256:...`.
    pub fingerprints: Vec<String>,
    /// Globs over key comments.
    pub comments: Vec<String>,
    /// Override the lock-out guard.
    pub force: bool,
}

/// Run a `keys` subcommand to completion.
pub fn execute(g: &Config, cmd: &KeysCommand) -> crate::error::Result<crate::error::ExitCode> {
    match cmd {
        KeysCommand::List(c) => edit::list_keys(g, c),
        KeysCommand::Edit(c) => edit::edit(g, c),
        KeysCommand::Rotate(c) => rotate::rotate(g, c),
        KeysCommand::Audit(c) => audit::audit(g, c),
        KeysCommand::Revoke(c) => revoke::revoke(g, c),
    }
}

/// A `keys` subcommand, as domain configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeysCommand {
    List(ListConfig),
    Edit(EditConfig),
    Rotate(RotateConfig),
    Audit(AuditConfig),
    Revoke(RevokeConfig),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_key_arguments() {
        let none = |_: &str| false;
        assert_eq!(
            KeySource::classify("https://example.com/u.keys", none),
            Ok(KeySource::Url("https://example.com/u.keys".into()))
        );
        assert_eq!(
            KeySource::classify("HTTP://example.com/u.keys", none),
            Ok(KeySource::Url("HTTP://example.com/u.keys".into()))
        );
        assert_eq!(
            KeySource::classify("file:///tmp/a.pub", none),
            Ok(KeySource::File("/tmp/a.pub".into()))
        );
        assert_eq!(
            KeySource::classify("/tmp/a.pub", |p| p == "/tmp/a.pub"),
            Ok(KeySource::File("/tmp/a.pub".into()))
        );
        assert_eq!(
            KeySource::classify("ssh-ed25519 AAAAC3 me@x", none),
            Ok(KeySource::Literal("ssh-ed25519 AAAAC3 me@x".into()))
        );
        let err = KeySource::classify("/missing.pub", none).unwrap_err();
        assert!(err.contains("/missing.pub"), "{err}");
        assert!(KeySource::classify("", none).is_err());
    }
}
