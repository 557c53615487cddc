//! Resolve the hosts a command works on: load the inventory, select `pattern` then
//! `--limit`, build each host's [`ConnSpec`] (its variables as the ssh command line
//! Ansible would build, resolved with the OpenSSH client configuration: `--ssh-config`,
//! else `-F` in the host's ssh args, else `~/.ssh/config` + `/etc/ssh/ssh_config`; see
//! [`ssh_settings`]) and apply the command-line overrides ([`ConnOverrides`]). Every fleet
//! command calls [`resolve_targets`].
//!
//! Overrides (command line beats inventory, as the flags promise): `-u` → user,
//! `--private-key` → the only identity file, `--known-hosts` → the only known_hosts file,
//! `--host-key-checking` → policy, `-b`/`--become-user` → become. `-T` applies to hosts whose
//! inventory sets no `ansible_ssh_timeout`/`ansible_timeout` and whose ssh config sets no
//! `ConnectTimeout` (it always has a value, so it cannot tell "given" from "default").

use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use crate::inventory::conn::{ConnSpec, HostKeyPolicy, SshSettings};
use crate::inventory::hop::{HopPost, HopResolver, ResolveHop};
use crate::inventory::{Inventory, InventoryError};
use crate::ssh_config::ConfigFiles;

/// Resolving hosts failed (the inventory could not be read, or a pattern is bad).
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Inventory(#[from] InventoryError),
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
    /// `--ssh-config FILE` (`none`: no file): the OpenSSH client config instead of
    /// `~/.ssh/config` + `/etc/ssh/ssh_config`; beats `-F` in the inventory's ssh args.
    pub ssh_config: Option<String>,
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
            ssh_config: None,
        }
    }
}

/// Resolves `ProxyJump` hops for the SSH layer ([`ResolveHop`]), through the same OpenSSH
/// configuration as the targets. Each hop is resolved as OpenSSH resolves it (its own
/// `ssh -l USER -p PORT -J EARLIER HOP`): `-u`, `--private-key` and become do not apply to
/// hops, as `ssh -J` passes none of the target's options on; the trust flags do
/// (`--known-hosts`, `--host-key-checking`) and `-T` is the default connect timeout.
pub fn hop_resolver(g: &ConnOverrides) -> Result<Arc<dyn ResolveHop>, ResolveError> {
    let settings = ssh_settings(g)?;
    let known_hosts = g.known_hosts.clone();
    let policy = g.host_key_policy;
    let timeout = g.connect_timeout;
    let post: HopPost = Arc::new(move |mut spec: ConnSpec| {
        if let Some(f) = &known_hosts {
            spec.known_hosts_files = vec![f.clone()];
        }
        if let Some(p) = policy {
            spec.host_key_policy = Some(p);
        }
        if spec.connect_timeout.is_none() {
            spec.connect_timeout = Some(timeout);
        }
        spec
    });
    Ok(Arc::new(HopResolver::new(settings, Some(post))))
}

/// The OpenSSH config source of this invocation (`--ssh-config`, else the defaults).
pub fn ssh_settings(g: &ConnOverrides) -> Result<SshSettings, ResolveError> {
    Ok(match &g.ssh_config {
        Some(f) => SshSettings::new(ConfigFiles::from_flag(f), true)?,
        None => SshSettings::new(ConfigFiles::Default, false)?,
    })
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
    let settings = ssh_settings(overrides)?;
    hosts
        .iter()
        .map(|h| apply_overrides(inv.conn_spec_with(h, &settings)?, overrides))
        .collect()
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
}
