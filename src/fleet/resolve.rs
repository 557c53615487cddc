//! Resolve the hosts a command works on: load the inventory, select `pattern` then
//! `--limit`, build each host's [`ConnSpec`] and apply the command-line overrides
//! ([`ConnOverrides`]). Every fleet command calls [`resolve_targets`].
//!
//! Overrides (command line beats inventory, as the flags promise): `-u` → user,
//! `--private-key` → the only identity file, `--known-hosts` → the only known_hosts file,
//! `--host-key-checking` → policy, `-b`/`--become-user` → become. `-T` applies to hosts whose
//! inventory sets no `ansible_ssh_timeout`/`ansible_timeout` (it always has a value, so it
//! cannot tell "given" from "default"). Passwords from `-k`/`-K` (or their `--*-env`
//! variables) fill in hosts whose inventory sets none: as in Ansible, `ansible_password` and
//! `ansible_become_password` win over the command line. `--become-method` overrides.

use std::path::PathBuf;
use std::time::Duration;

use crate::inventory::conn::{ConnSpec, HostKeyPolicy};
use crate::inventory::{Inventory, InventoryError};
use crate::secret::{Secret, SecretSource};

/// Resolving hosts failed (the inventory could not be read, or a pattern is bad).
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// A command-line password could not be had (`--password-env` unset, no terminal).
    #[error("{0}")]
    Secret(String),
}

/// Which hosts: a pattern, then `--limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection<'a> {
    pub pattern: &'a str,
    pub limit: Option<&'a str>,
}

/// The connection flags of the command line (`-u`, `--private-key`, `--known-hosts`,
/// `--host-key-checking`, `-T`, `-b`, `--become-user`, `--passphrase-env`), already parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnOverrides {
    pub remote_user: Option<String>,
    pub private_key: Option<PathBuf>,
    /// Environment variable holding the passphrase of an encrypted private key.
    pub passphrase_env: Option<String>,
    pub known_hosts: Option<PathBuf>,
    pub host_key_policy: Option<HostKeyPolicy>,
    pub connect_timeout: Duration,
    pub r#become: bool,
    pub become_user: Option<String>,
    /// `--become-method` (sudo, su; checked by the command line).
    pub become_method: Option<String>,
    /// `-k` / `--password-env`: the login password for every host.
    pub password: SecretSource,
    /// `-K` / `--become-password-env`: the become password for every host.
    pub become_password: SecretSource,
}

impl Default for ConnOverrides {
    /// No overrides, `-T 10`.
    fn default() -> Self {
        ConnOverrides {
            remote_user: None,
            private_key: None,
            passphrase_env: None,
            known_hosts: None,
            host_key_policy: None,
            connect_timeout: Duration::from_secs(10),
            r#become: false,
            become_user: None,
            become_method: None,
            password: SecretSource::None,
            become_password: SecretSource::None,
        }
    }
}

/// The command line's login and become passwords, asked for (or read from their environment
/// variables) once per run. Like Ansible, an empty become answer means "the SSH password".
pub fn command_line_secrets(
    g: &ConnOverrides,
) -> Result<(Option<Secret>, Option<Secret>), ResolveError> {
    let get =
        |src: &SecretSource, flag: &str, prompt: &str| -> Result<Option<Secret>, ResolveError> {
            match src {
                SecretSource::None => Ok(None),
                SecretSource::Env(var) => Secret::from_env(var).map(Some).ok_or_else(|| {
                    ResolveError::Secret(format!("{flag}: environment variable {var} is not set"))
                }),
                SecretSource::Prompt => crate::ssh::keys::prompt(prompt)
                    .map(|s| Some(Secret::new(s)))
                    .map_err(|e| {
                        ResolveError::Secret(format!(
                            "{flag}: cannot read a password from the terminal: {e}"
                        ))
                    }),
            }
        };
    let login = get(&g.password, "--ask-pass", "SSH password: ")?;
    let become_prompt = if login.is_some() {
        "BECOME password[defaults to SSH password]: "
    } else {
        "BECOME password: "
    };
    let mut become_pw = get(&g.become_password, "--ask-become-pass", become_prompt)?;
    if g.become_password == SecretSource::Prompt
        && become_pw.as_ref().is_some_and(|s| s.expose().is_empty())
    {
        become_pw = login.clone();
    }
    Ok((login, become_pw))
}

/// Fill in the command line's passwords (see [`command_line_secrets`]) where the inventory
/// sets none.
pub fn apply_secrets(
    mut spec: ConnSpec,
    login: &Option<Secret>,
    become_pw: &Option<Secret>,
) -> ConnSpec {
    if spec.password.is_none() {
        spec.password = login.clone();
    }
    if spec.r#become.password.is_none() {
        spec.r#become.password = become_pw.clone();
    }
    spec
}

/// Apply the command-line overrides `g` to one host's spec.
pub fn apply_overrides(mut spec: ConnSpec, g: &ConnOverrides) -> Result<ConnSpec, ResolveError> {
    if let Some(u) = &g.remote_user {
        spec.user = Some(u.clone());
    }
    if let Some(k) = &g.private_key {
        spec.identity_files = vec![k.clone()];
    }
    if let Some(f) = &g.known_hosts {
        spec.known_hosts_files = vec![f.clone()];
    }
    if let Some(p) = g.host_key_policy {
        spec.host_key_policy = Some(p);
    }
    if spec.connect_timeout.is_none() {
        spec.connect_timeout = Some(g.connect_timeout);
    }
    if g.r#become {
        spec.r#become.enabled = true;
    }
    if let Some(u) = &g.become_user {
        spec.r#become.user = Some(u.clone());
    }
    if let Some(m) = &g.become_method {
        spec.r#become.method = Some(m.clone());
    }
    Ok(spec)
}

/// The connection specs of the hosts `sel` selects in `inventory` (sources as `-i` gives
/// them), in Ansible's order, with the overrides applied. Inventory warnings go to stderr; an
/// empty selection is `Ok(vec![])` (callers print Ansible's "no hosts matched" warning and
/// exit 0).
pub fn resolve_targets(
    inventory: &[String],
    sel: &Selection<'_>,
    overrides: &ConnOverrides,
) -> Result<Vec<ConnSpec>, ResolveError> {
    let inv = Inventory::load(inventory)?;
    for w in inv.warnings() {
        eprintln!("[WARNING]: {w}");
    }
    let hosts = inv.select(sel.pattern, sel.limit)?;
    let specs = hosts
        .iter()
        .map(|h| apply_overrides(inv.conn_spec(h)?, overrides))
        .collect::<Result<Vec<_>, _>>()?;
    if specs.is_empty() {
        return Ok(specs);
    }
    let (login, become_pw) = command_line_secrets(overrides)?;
    Ok(specs
        .into_iter()
        .map(|s| apply_secrets(s, &login, &become_pw))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    fn global() -> ConnOverrides {
        ConnOverrides {
            connect_timeout: Duration::from_secs(7),
            ..Default::default()
        }
    }

    #[test]
    fn cli_overrides_inventory() {
        let mut spec = ConnSpec::new("h");
        spec.user = Some("inv".into());
        spec.identity_files = vec![PathBuf::from("/inv/key")];
        spec.connect_timeout = Some(Duration::from_secs(3));
        let s = apply_overrides(spec.clone(), &global()).unwrap();
        assert_eq!(s.user.as_deref(), Some("inv"));
        assert_eq!(s.connect_timeout, Some(Duration::from_secs(3)));
        assert!(!s.r#become.enabled);

        let mut g = global();
        g.remote_user = Some("cli".into());
        g.private_key = Some(PathBuf::from("/cli/key"));
        g.known_hosts = Some(PathBuf::from("/cli/kh"));
        g.host_key_policy = Some(HostKeyPolicy::AcceptNew);
        g.r#become = true;
        g.become_user = Some("postgres".into());
        let s = apply_overrides(spec, &g).unwrap();
        assert_eq!(s.user.as_deref(), Some("cli"));
        assert_eq!(s.identity_files, vec![PathBuf::from("/cli/key")]);
        assert_eq!(s.known_hosts_files, vec![PathBuf::from("/cli/kh")]);
        assert_eq!(s.host_key_policy, Some(HostKeyPolicy::AcceptNew));
        assert!(s.r#become.enabled);
        assert_eq!(s.r#become.user.as_deref(), Some("postgres"));
        let s = apply_overrides(ConnSpec::new("x"), &global()).unwrap();
        assert_eq!(s.connect_timeout, Some(Duration::from_secs(7)));
    }

    #[test]
    fn command_line_passwords_fill_in_and_inventory_wins() {
        let var = "SSHFLEET_TEST_RESOLVE_PW";
        // SAFETY: a variable only this test uses.
        unsafe { std::env::set_var(var, "cli-pw") };
        let mut g = global();
        g.password = SecretSource::Env(var.into());
        g.become_password = SecretSource::Env(var.into());
        let (l, b) = command_line_secrets(&g).unwrap();
        assert_eq!(l.as_ref().map(Secret::expose), Some("cli-pw"));
        let mut inv = ConnSpec::new("h");
        inv.password = Some(Secret::new("inv-pw"));
        let s = apply_secrets(inv, &l, &b);
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("inv-pw"));
        assert_eq!(
            s.r#become.password.as_ref().map(Secret::expose),
            Some("cli-pw")
        );
        g.password = SecretSource::Env("SSHFLEET_TEST_RESOLVE_UNSET".into());
        let e = command_line_secrets(&g).unwrap_err().to_string();
        assert!(e.contains("SSHFLEET_TEST_RESOLVE_UNSET"), "{e}");
        let mut g = global();
        g.become_method = Some("su".into());
        let s = apply_overrides(ConnSpec::new("h"), &g).unwrap();
        assert_eq!(s.r#become.method.as_deref(), Some("su"));
    }
}
